"""The backend contract, checked op by op against plain formulas for every backend.

Parametrised by the ``backend`` fixture (tests/conftest.py): every backend this machine
can run, so a GPU backend joins by being available, with no new tests.
"""

import numpy as np
import pytest
from scipy.special import expit, softmax, xlogy

from gpunn.backends.base import UpdateHyper

DTYPES = [np.float32, np.float64]
RTOL = {np.float32: 2e-5, np.float64: 1e-12}


def _rng_data(shape, dtype, seed=0, scale=1.0):
    return (np.random.RandomState(seed).normal(size=shape) * scale).astype(dtype)


def _close(backend, actual, expected, dtype, rtol_scale=1.0):
    np.testing.assert_allclose(backend.to_numpy(actual), expected,
                               rtol=RTOL[dtype] * rtol_scale, atol=RTOL[dtype] * rtol_scale)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ta, tb", [(False, False), (True, False), (False, True)])
def test_matmul_into_out(backend, dtype, ta, tb):
    a, b = _rng_data((7, 5), dtype, 1), _rng_data((5, 3) if not tb else (3, 5), dtype, 2)
    if ta:
        a = _rng_data((5, 7), dtype, 1)
    out = backend.empty((7, 3), dtype)
    result = backend.matmul(backend.asarray(a), backend.asarray(b), out=out,
                            transpose_a=ta, transpose_b=tb)
    expected = (a.T if ta else a).astype(np.float64) @ (b.T if tb else b).astype(np.float64)
    _close(backend, out, expected, dtype, 10)
    assert result is out


@pytest.mark.parametrize("dtype", DTYPES)
def test_matmul_strided_operand(backend, dtype):
    """A strided view multiplies right too (CuPy's cuBLAS fast path hands it to matmul)."""
    wide, b = _rng_data((7, 10), dtype, 3), _rng_data((5, 3), dtype, 4)
    out = backend.empty((7, 3), dtype)
    backend.matmul(backend.asarray(wide)[:, ::2], backend.asarray(b), out=out)
    _close(backend, out, wide[:, ::2].astype(np.float64) @ b.astype(np.float64), dtype, 10)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation, f", [
    ("identity", lambda z: z), ("logistic", expit), ("tanh", np.tanh),
    ("relu", lambda z: np.maximum(z, 0)), ("exp", np.exp),
])
@pytest.mark.parametrize("shape", [(1, 1), (3, 257), (1000, 3)])
def test_bias_act(backend, dtype, activation, f, shape):
    z, b = _rng_data(shape, dtype, 3), _rng_data(shape[1], dtype, 4)
    out = backend.empty(shape, dtype)
    backend.bias_act(backend.asarray(z), backend.asarray(b), activation, out=out)
    _close(backend, out, f(z.astype(np.float64) + b), dtype, 5)
    zd = backend.asarray(z.copy())  # in place: out aliases z
    backend.bias_act(zd, backend.asarray(b), activation, out=zd)
    _close(backend, zd, f(z.astype(np.float64) + b), dtype, 5)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation, fprime", [
    ("identity", lambda a: np.ones_like(a)), ("logistic", lambda a: a * (1 - a)),
    ("tanh", lambda a: 1 - a**2), ("relu", lambda a: (a > 0).astype(a.dtype)),
])
@pytest.mark.parametrize("shape", [(9, 33), (300, 64)])  # the larger one compiled on a CPU
def test_act_grad_from_output(backend, dtype, activation, fprime, shape):
    a = np.abs(_rng_data(shape, dtype, 5)) * (_rng_data(shape, dtype, 6) > 0)
    if activation in ("logistic",):
        a = expit(_rng_data(shape, dtype, 5))
    delta = _rng_data(shape, dtype, 7)
    expected = delta * fprime(a.astype(np.float64))
    d = backend.asarray(delta.copy())
    backend.act_grad(d, backend.asarray(a), activation)
    _close(backend, d, expected, dtype, 5)
    d, sums = backend.asarray(delta.copy()), backend.empty(shape[1], dtype)
    backend.act_grad(d, backend.asarray(a), activation, col_sums=sums)  # + the bias gradient
    _close(backend, d, expected, dtype, 5)
    _close(backend, sums, expected.sum(axis=0), dtype, 50)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (4, 10), (3, 1500)])
def test_softmax_and_sigmoid(backend, dtype, shape):
    z = _rng_data(shape, dtype, 8, scale=30)
    out = backend.empty(shape, dtype)
    backend.softmax(backend.asarray(z), out=out)
    _close(backend, out, softmax(z.astype(np.float64), axis=1), dtype, 10)
    backend.sigmoid(backend.asarray(z), out=out)
    _close(backend, out, expit(z.astype(np.float64)), dtype, 10)


def _loss_reference(output, z, y, sw, eps):
    """Per-sample losses and f(z) as scikit-learn defines them."""
    if output == "softmax":
        p = softmax(z, axis=1)
        return -(y * np.log(np.clip(p, eps, 1 - eps))).sum(1), p
    if output == "logistic":
        p = expit(z)
        c = np.clip(p, eps, 1 - eps)
        return -(xlogy(y, c) + xlogy(1 - y, 1 - c)).sum(1), p
    if output == "identity":
        return 0.5 * ((z - y) ** 2).mean(1), z
    p = np.exp(z)
    return (xlogy(y, y / p) - y + p).sum(1), p


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output", ["softmax", "logistic", "identity", "exp"])
@pytest.mark.parametrize("shape", [(1, 1), (5, 3), (2, 1200)])
@pytest.mark.parametrize("weighted", [False, True])
def test_loss_grad(backend, dtype, output, shape, weighted):
    n, k = shape
    rng = np.random.RandomState(9)
    z = _rng_data(shape, dtype, 10, scale=1 if output == "exp" else 5)
    if output == "softmax":
        y = np.eye(k, dtype=dtype)[rng.randint(k, size=n)]
    elif output == "exp":
        y = rng.poisson(1.0, size=shape).astype(dtype)
    elif output == "logistic":
        y = rng.randint(2, size=shape).astype(dtype)
    else:
        y = _rng_data(shape, dtype, 11)
    sw = rng.uniform(0.5, 2, n).astype(dtype) if weighted else None
    delta = backend.empty(shape, dtype)
    acc = backend.zeros(1, np.float64)
    acc[0] = 1.5  # accumulates on top of what is there
    backend.loss_grad(output, backend.asarray(z), backend.asarray(y), delta, acc, 0.25,
                      None if sw is None else backend.asarray(sw))
    eps = np.finfo(dtype).eps
    per_sample, f = _loss_reference(output, z.astype(np.float64), y.astype(np.float64), sw, eps)
    w = np.ones(n) if sw is None else sw.astype(np.float64)
    assert backend.read_scalar(acc) == pytest.approx(1.5 + 0.25 * (w * per_sample).sum(),
                                                      rel=RTOL[dtype] * 50)
    _close(backend, delta, (f - y) * w[:, None], dtype, 50)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(0, 5), (300, 70)])  # no rows; columns past a 32-wide block
def test_col_sum_shapes(backend, dtype, shape):
    x = _rng_data(shape, dtype, 13)
    out = backend.asarray(np.full(shape[1], np.nan, dtype))  # every column must be written
    backend.col_sum(backend.asarray(x), out=out)
    _close(backend, out, x.astype(np.float64).sum(0), dtype, 50)


@pytest.mark.parametrize("dtype", DTYPES)
def test_col_sum_take_rows_sum_squares(backend, dtype):
    x = _rng_data((37, 6), dtype, 12)
    out = backend.empty(6, dtype)
    backend.col_sum(backend.asarray(x), out=out)
    _close(backend, out, x.astype(np.float64).sum(0), dtype, 20)
    idx = np.array([5, 0, 36, 5], dtype=np.int64)
    rows = backend.empty((10, 6), dtype)
    got = backend.take_rows(backend.asarray(x), backend.asarray(idx), rows)
    assert got.shape == (4, 6)
    _close(backend, got, x[idx], dtype)
    weights = backend.take_rows(backend.asarray(x[:, 1].copy()), backend.asarray(idx),
                                backend.empty(10, dtype))  # a vector: sample weights
    _close(backend, weights, x[idx, 1], dtype)
    acc = backend.zeros(1, np.float64)
    backend.sum_squares(backend.asarray(x.ravel()), acc, 0.5)
    assert backend.read_scalar(acc) == pytest.approx(0.5 * (x.astype(np.float64) ** 2).sum(),
                                                      rel=RTOL[dtype] * 20)


def _reference_update(rule, p, g, state, h):
    g = g.copy()
    g[: h.n_weights] += h.l2 * p[: h.n_weights]
    g /= h.grad_scale
    if rule == "sgd":
        (v,) = state
        v = h.momentum * v - h.lr * g
        return p + (h.momentum * v - h.lr * g if h.nesterov else v), (v,)
    m, v = state
    m = h.beta_1 * m + (1 - h.beta_1) * g
    v = h.beta_2 * v + (1 - h.beta_2) * g * g
    return p - h.lr * m / (np.sqrt(v) + h.epsilon), (m, v)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rule, hyper", [
    ("sgd", dict(momentum=0.0)), ("sgd", dict(momentum=0.9)),
    ("sgd", dict(momentum=0.9, nesterov=True)), ("adam", {}),
])
@pytest.mark.parametrize("n", [1, 1025])
def test_fused_update_matches_reference(backend, dtype, rule, hyper, n):
    h = UpdateHyper(lr=0.05, grad_scale=7.0, n_weights=max(n - 3, 0), l2=0.3, penalty_scale=0.125,
                    **hyper)
    p, g = _rng_data(n, dtype, 13), _rng_data(n, dtype, 14)
    state = tuple(np.abs(_rng_data(n, dtype, 15 + i)) for i in range(2 if rule == "adam" else 1))
    pd, gd = backend.asarray(p.copy()), backend.asarray(g.copy())
    sd = tuple(backend.asarray(s.copy()) for s in state)
    ref = [x.astype(np.float64) for x in (p, g)]
    acc, ref_acc = backend.zeros(1, np.float64), 0.0
    for _ in range(3):  # three steps: state carries over
        backend.fused_update(rule, pd, gd, sd, h, acc)
        ref_acc += 0.125 * np.sum(ref[0][: h.n_weights] ** 2)  # the weights before the step
        ref_p, ref_state = _reference_update(rule, ref[0], ref[1], [s.astype(np.float64) for s in state], h)
        state = tuple(s.astype(dtype) for s in ref_state)
        ref[0] = ref_p
        gd[...] = backend.asarray(g.copy())  # grads may be overwritten by the update
    _close(backend, pd, ref[0], dtype, 50)
    for got, want in zip(sd, state):
        _close(backend, got, want, dtype, 50)
    assert backend.read_scalar(acc) == pytest.approx(ref_acc, rel=RTOL[dtype] * 50)


@pytest.mark.parametrize("rule", ["sgd", "adam"])
def test_fused_update_without_penalty_leaves_acc_alone(backend, rule):
    """L2 decay in the step but penalty_scale 0 (a step whose loss is not wanted, as in
    the gradient checks): the loss accumulator is left as it was."""
    n = 1025
    state = tuple(backend.zeros(n, np.float32) for _ in range(2 if rule == "adam" else 1))
    acc = backend.asarray(np.array([2.5]))
    p = backend.asarray(_rng_data(n, np.float32, 30))
    h = UpdateHyper(lr=0.05, grad_scale=7.0, n_weights=n - 3, l2=0.3, momentum=0.9)
    backend.fused_update(rule, p, backend.asarray(_rng_data(n, np.float32, 31)), state, h, acc)
    assert backend.read_scalar(acc) == 2.5


@pytest.mark.parametrize("dtype", DTYPES)
def test_finish_grad_applies_l2_to_weights_only(backend, dtype):
    p, g = _rng_data(10, dtype, 20), _rng_data(10, dtype, 21)
    gd = backend.asarray(g.copy())
    backend.finish_grad(backend.asarray(p), gd, UpdateHyper(lr=0, grad_scale=4.0, n_weights=6, l2=0.5))
    expected = g.astype(np.float64) / 4
    expected[:6] = (g[:6] + 0.5 * p[:6].astype(np.float64)) / 4
    _close(backend, gd, expected, dtype, 5)


def test_all_finite_and_device_info(backend):
    x = backend.asarray(np.ones(5))
    assert backend.all_finite(x)
    x[2] = np.nan
    assert not backend.all_finite(x)
    info = backend.device_info()
    assert isinstance(info, dict) and info
    backend.synchronize()
