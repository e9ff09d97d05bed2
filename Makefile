# The README's commands. Each target sets up what it needs (a virtual environment in
# .venv, re-made when pyproject.toml changes) and then runs.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)

.PHONY: setup demo test bench gpu-check clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[test]"
	rm -f $(VENV)/.installed-* && touch $@

## demo: train an MLP on scikit-learn's bundled digits; prints backend, accuracy, samples/s
demo: setup
	$(PY) -m gpunn train digits --hidden 256,128 --activation relu --solver adam \
		--batch-size 64 --epochs 40 --lr 1e-3 --seed 0 --test-size 0.25

## test: the whole test suite (GPU-only tests skip, saying why)
test: setup
	$(PY) -m pytest -q

## bench: side-by-side throughput against scikit-learn (and PyTorch when installed)
bench: setup
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[bench]"
	$(PY) -m gpunn.benchmark

## gpu-check: on a machine with an NVIDIA GPU, the whole GPU verification and benchmark
gpu-check:
	bash scripts/gpu_check.sh

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
