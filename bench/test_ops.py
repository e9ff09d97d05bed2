"""Each backend op, and one whole training step, at W2's shapes (batch 256, 784-256-128-10).

Run: .venv/bin/python -m pytest bench/ --benchmark-only   (make bench runs the side-by-side
throughput comparison instead). Device work is synchronised inside each timed call.
"""

import numpy as np
import pytest

from gpunn.backends import UpdateHyper
from gpunn.mlp import MLP, Workspace

BATCH, UNITS = 256, [784, 256, 128, 10]
DTYPE = np.float32


def _timed(benchmark, backend, fn):
    def run():
        fn()
        backend.synchronize()

    benchmark(run)


def _rand(backend, *shape):
    return backend.asarray(np.random.RandomState(0).standard_normal(shape).astype(DTYPE))


def test_matmul_into_out(benchmark, backend):
    a, w, out = _rand(backend, BATCH, 784), _rand(backend, 784, 256), backend.empty((BATCH, 256), DTYPE)
    _timed(benchmark, backend, lambda: backend.matmul(a, w, out=out))


@pytest.mark.parametrize("activation", ["relu", "logistic"])
def test_bias_act(benchmark, backend, activation):
    z, b = _rand(backend, BATCH, 256), _rand(backend, 256)
    _timed(benchmark, backend, lambda: backend.bias_act(z, b, activation, out=z))


@pytest.mark.parametrize("activation", ["relu", "logistic"])
def test_act_grad(benchmark, backend, activation):
    d, a = _rand(backend, BATCH, 256), backend.asarray(np.abs(np.random.rand(BATCH, 256)).astype(DTYPE))
    _timed(benchmark, backend, lambda: backend.act_grad(d, a, activation))


def test_softmax_cross_entropy(benchmark, backend):
    z = _rand(backend, BATCH, 10)
    y = backend.asarray(np.eye(10, dtype=DTYPE)[np.arange(BATCH) % 10])
    delta, acc = backend.empty((BATCH, 10), DTYPE), backend.zeros(1, np.float64)
    _timed(benchmark, backend, lambda: backend.loss_grad("softmax", z, y, delta, acc))


@pytest.mark.parametrize("rule", ["sgd", "adam"])
def test_fused_update(benchmark, backend, rule):
    n = sum(i * o + o for i, o in zip(UNITS[:-1], UNITS[1:]))
    p, g = _rand(backend, n), _rand(backend, n)
    state = tuple(backend.zeros(n, DTYPE) for _ in range(2 if rule == "adam" else 1))
    acc = backend.zeros(1, np.float64)  # the step adds the loss's L2 term, as in training
    hyper = UpdateHyper(lr=1e-3, grad_scale=BATCH, n_weights=n - 394, l2=1e-4, momentum=0.9,
                        nesterov=True, penalty_scale=5e-5)
    _timed(benchmark, backend, lambda: backend.fused_update(rule, p, g, state, hyper, acc))


def test_whole_training_step(benchmark, backend):
    model = MLP(UNITS, "relu", "softmax", backend, DTYPE)
    model.init_weights(np.random.RandomState(0))
    ws = Workspace(backend, UNITS, BATCH, DTYPE)
    x = _rand(backend, BATCH, 784)
    y = backend.asarray(np.eye(10, dtype=DTYPE)[np.arange(BATCH) % 10])
    acc = backend.zeros(1, np.float64)
    state = tuple(backend.zeros(model.n_params, DTYPE) for _ in range(2))
    hyper = UpdateHyper(lr=1e-3, grad_scale=BATCH, n_weights=model.n_weights, l2=1e-4,
                        penalty_scale=5e-5)

    def step():
        model.loss_grad(x, y, ws, acc)
        backend.fused_update("adam", model.params, model.grads, state, hyper, acc)

    _timed(benchmark, backend, step)


@pytest.mark.parametrize("library", ["gpunn", "scikit-learn"])
def test_streamed_partial_fit_call(benchmark, library):
    """One ``partial_fit`` call on a 256-row chunk (W2's network, adam): a training step plus
    the per-call set-up that a user streaming data pays, next to scikit-learn's."""
    import warnings

    from sklearn.neural_network import MLPClassifier as SklearnMLP

    import gpunn

    rng = np.random.RandomState(0)
    X, y = rng.standard_normal((BATCH, UNITS[0])).astype(DTYPE), np.arange(BATCH) % UNITS[-1]
    kwargs = dict(hidden_layer_sizes=tuple(UNITS[1:-1]), batch_size=BATCH, random_state=0)
    est = (gpunn.MLPClassifier(backend="numpy", **kwargs) if library == "gpunn"
           else SklearnMLP(**kwargs))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.partial_fit(X, y, classes=np.arange(UNITS[-1]))
        benchmark(est.partial_fit, X, y)
