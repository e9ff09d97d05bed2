"""NumpyBackend specifics: the threaded optimizer step changes no number."""

import numpy as np
import pytest

from gpunn.backends import NumpyBackend, UpdateHyper
from gpunn.backends.numpy_backend import PARALLEL_MIN_SIZE


@pytest.mark.parametrize("rule, extra", [("adam", {}), ("sgd", dict(momentum=0.9, nesterov=True)),
                                          ("sgd", dict(momentum=0.5))])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_threaded_update_is_bitwise_equal_to_serial(rule, extra, dtype):
    n = 3 * PARALLEL_MIN_SIZE + 7
    rng = np.random.RandomState(0)
    hyper = UpdateHyper(lr=1e-2, grad_scale=32.0, n_weights=n // 2 + 1, l2=1e-3, **extra)
    results = []
    for threads in (1, 2, 3):
        backend = NumpyBackend(n_threads=threads)
        assert len(backend._chunks(n)) == threads
        params = rng.normal(size=n).astype(dtype) if not results else start.copy()
        start = params.copy() if not results else start
        state = tuple(np.zeros(n, dtype) for _ in range(2 if rule == "adam" else 1))
        for step in range(3):
            grads = np.random.RandomState(step).normal(size=n).astype(dtype)
            backend.fused_update(rule, params, grads, state, hyper)
        results.append((params, state))
    for params, state in results[1:]:
        np.testing.assert_array_equal(params, results[0][0])
        for a, b in zip(state, results[0][1]):
            np.testing.assert_array_equal(a, b)


def test_threaded_finish_grad_matches_formula():
    n = 2 * PARALLEL_MIN_SIZE + 3
    backend = NumpyBackend(n_threads=2)
    p, g = np.random.RandomState(1).normal(size=(2, n))
    out = g.copy()
    backend.finish_grad(p, out, UpdateHyper(lr=0, grad_scale=4.0, n_weights=n - 10, l2=0.5))
    expected = g / 4.0
    expected[: n - 10] = (g[: n - 10] + 0.5 * p[: n - 10]) / 4.0
    np.testing.assert_array_equal(out, expected)
