"""Shared fixtures: the backends every conformance test runs on, and the data paths."""

from __future__ import annotations

from pathlib import Path

import pytest

import gpunn
from gpunn.backends import cupy_status

REPO = Path(__file__).resolve().parents[1]
MNIST_DIR = REPO.parent / "shared" / "data" / "mnist"


def _numpy_backend():
    return gpunn.get_backend("numpy")


def _cupy_backend():
    ok, why = cupy_status()
    if not ok:
        pytest.skip(f"real CuPy backend not usable here: {why}")
    return gpunn.get_backend("cupy")


def _cupy_standin_backend():
    """CupyBackend's own code on the CUDA emulator: our real kernels, run on the CPU."""
    import shutil

    if shutil.which("g++") is None:
        pytest.skip("g++ not found: the CUDA emulator needs it")
    import fakecupy

    from gpunn.backends.cupy_backend import CupyBackend

    return CupyBackend(xp=fakecupy)


#: name -> factory. Every backend the machine can run joins the conformance suite by
#: being listed here; factories skip (with the reason) when their backend cannot run.
BACKEND_FACTORIES = {"numpy": _numpy_backend, "cupy": _cupy_backend,
                     "cupy-standin": _cupy_standin_backend}


@pytest.fixture(params=sorted(BACKEND_FACTORIES))
def backend(request):
    """Each backend in ``BACKEND_FACTORIES`` in turn."""
    return BACKEND_FACTORIES[request.param]()


@pytest.fixture
def reference():
    """The NumPy backend, the oracle the others are compared with."""
    return gpunn.get_backend("numpy")


@pytest.fixture
def mnist_dir():
    if not (MNIST_DIR / "train-images.idx3-ubyte.gz").exists():
        pytest.skip(f"MNIST IDX files not found at {MNIST_DIR} (only the project's machines have them)")
    return MNIST_DIR
