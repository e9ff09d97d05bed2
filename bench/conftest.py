"""Micro-benchmarks of each backend op (pytest-benchmark): pytest bench/ --benchmark-only."""

import pytest

import gpunn


@pytest.fixture(params=gpunn.available_backends())
def backend(request):
    return gpunn.get_backend(request.param)
