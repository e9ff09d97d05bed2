#!/usr/bin/env bash
# The whole GPU verification, on a machine with an NVIDIA GPU (`make gpu-check`):
#  1. installs gpunn with the CuPy build matching the driver into .venv-gpu (or, where python3
#     already has CuPy, runs this checkout with it);
#  2. runs the backend conformance suite, gradient checks, numerical-safety and
#     cross-backend trajectory and device-input tests against real CuPy (under compute-sanitizer memcheck
#     when it is installed);
#  3. runs the per-op micro-benchmarks on CuPy (bench/test_ops.py);
#  4. runs the side-by-side benchmark (CuPy, NumPy, scikit-learn, PyTorch CUDA if present).
# Prints a short summary table at the end; exits non-zero if any step fails.
set -uo pipefail
cd "$(dirname "$0")/.."
command -v nvidia-smi >/dev/null || { echo "gpu-check: no nvidia-smi: this machine has no NVIDIA driver" >&2; exit 2; }
driver_cuda=$(nvidia-smi | sed -n 's/.*CUDA Version: \([0-9]*\).*/\1/p' | head -n1)
extra=$([ "${driver_cuda:-12}" -ge 13 ] && echo cuda13 || echo cuda12)
# Where python3 already has CuPy, pytest and scikit-learn (an offline GPU image, often itself a
# venv), use it as it is with this checkout on the path: no package registry is needed.
if python3 -c "import cupy, pytest, sklearn, threadpoolctl" 2>/dev/null; then
  PY=python3; export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
else
  python3 -m venv .venv-gpu && .venv-gpu/bin/pip install -q -e ".[test,bench,$extra]" || exit 1
  PY=.venv-gpu/bin/python
fi
declare -A status
tests="tests/test_backend_conformance.py tests/test_gradients.py tests/test_numerical_safety.py tests/test_cross_backend.py tests/test_device_input.py tests/test_backend_selection.py tests/test_host_weights.py"
$PY -c "import gpunn, json; print(json.dumps(gpunn.info(), indent=1, default=str))"
GPUNN_BACKEND=cupy $PY -m pytest -q -k "cupy and not standin" $tests; status[tests]=$?
if command -v compute-sanitizer >/dev/null; then
  compute-sanitizer --tool memcheck --error-exitcode 1 $PY -m pytest -q -x -k "cupy and not standin" \
    tests/test_backend_conformance.py tests/test_cross_backend.py; status[memcheck]=$?
else
  echo "compute-sanitizer not found: memcheck step skipped"; status[memcheck]=skipped
fi
$PY -m pytest -q bench/test_ops.py -k cupy --benchmark-only --benchmark-columns=median,min,max,rounds
status[micro]=$?
$PY -m gpunn.benchmark --workloads W2,W4 --solvers adam --json gpu_bench.json; status[benchmark]=$?
echo
printf '%-12s %s\n' step result
for step in tests memcheck micro benchmark; do printf '%-12s %s\n' "$step" "${status[$step]/#0/ok}"; done
for step in tests memcheck micro benchmark; do
  case "${status[$step]}" in 0|skipped) ;; *) exit 1 ;; esac
done
