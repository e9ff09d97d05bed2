"""Micro-benchmarks of each backend op (pytest-benchmark): pytest bench/ --benchmark-only."""

import pytest

import gpunn
from gpunn.backends import NumpyBackend


def _variants() -> dict:
    """Every available backend, plus the NumPy backend without its compiled CPU kernels
    (``numpy-plain``), so the table shows what compiling each op buys."""
    variants = {name: (lambda name=name: gpunn.get_backend(name))
                for name in gpunn.available_backends()}
    variants["numpy-plain"] = lambda: NumpyBackend(compiled=False)
    return variants


VARIANTS = _variants()


@pytest.fixture(params=sorted(VARIANTS))
def backend(request):
    return VARIANTS[request.param]()
