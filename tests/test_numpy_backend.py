"""NumpyBackend specifics: the compiled CPU kernels change no number, and fall back."""

import re
import shutil
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.special import expit

from gpunn import cpu_kernels
from gpunn.backends import NumpyBackend, UpdateHyper
from gpunn.backends.numpy_backend import BIAS_ACT_MIN_SIZE, TAKE_ROWS_MIN_SIZE, TANH_LOGISTIC_MIN_SIZE

needs_compiler = pytest.mark.skipif(
    cpu_kernels.load()[0] is None, reason=f"no compiled CPU kernels here: {cpu_kernels.load()[1]}")


@pytest.fixture
def fresh_load(monkeypatch, tmp_path):
    """``cpu_kernels.load`` with an empty cache folder, restored after the test."""
    monkeypatch.setenv("GPUNN_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("GPUNN_CPU_KERNELS", raising=False)
    cpu_kernels.load.cache_clear()
    yield cpu_kernels.load
    cpu_kernels.load.cache_clear()


def _run_steps(backend, rule, dtype, hyper, n, steps=3, acc=None):
    rng = np.random.RandomState(0)
    params = rng.normal(size=n).astype(dtype)
    state = tuple(np.zeros(n, dtype) for _ in range(2 if rule == "adam" else 1))
    for step in range(steps):
        grads = np.random.RandomState(step + 1).normal(size=n).astype(dtype)
        backend.fused_update(rule, params, grads, state, hyper, acc)
    return params, state


@needs_compiler
@pytest.mark.parametrize("rule, extra", [("adam", {}), ("adam", dict(beta_1=0.5, epsilon=1e-3)),
                                          ("sgd", dict(momentum=0.9, nesterov=True)),
                                          ("sgd", dict(momentum=0.9)), ("sgd", {})])
@pytest.mark.parametrize("l2", [0.0, 1e-3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 7, 100_003])
@pytest.mark.parametrize("grad_scale", [32.0, 0.125, 96.0, 7.5])  # powers of two multiply
def test_compiled_step_is_bitwise_equal_to_numpy(rule, extra, l2, dtype, n, grad_scale):
    hyper = UpdateHyper(lr=1e-2, grad_scale=grad_scale, n_weights=n // 2 + 1, l2=l2,
                        penalty_scale=0.5 * l2, **extra)
    acc_ref, acc = np.zeros(1), np.zeros(1)
    p_ref, state_ref = _run_steps(NumpyBackend(compiled=False), rule, dtype, hyper, n, acc=acc_ref)
    p, state = _run_steps(NumpyBackend(), rule, dtype, hyper, n, acc=acc)
    np.testing.assert_array_equal(p, p_ref)
    for a, b in zip(state, state_ref):
        np.testing.assert_array_equal(a, b)
    # the penalty is a sum in another order (double lanes, not BLAS's dot): equal to rounding
    assert acc[0] == pytest.approx(acc_ref[0], rel=1e-5 if dtype == np.float32 else 1e-13)
    assert (acc[0] > 0) == (l2 > 0)  # no penalty asked for: acc untouched


@needs_compiler
def test_compiled_step_reads_grads_and_refuses_what_it_cannot_take():
    compiled = cpu_kernels.load()[0]
    p, g = np.ones(10, np.float32), np.full(10, 2, np.float32)
    velocity = np.zeros(10, np.float32)
    assert compiled.pointers((p, g, velocity)) == [a.ctypes.data for a in (p, g, velocity)] + [None]
    acc = np.zeros(1)
    assert compiled.pointers((p, g, velocity), acc)[-1] == acc.ctypes.data
    assert compiled.pointers((p, g, velocity), np.zeros(1, np.float32)) is None  # acc is float64
    assert compiled.pointers((p, g, np.zeros(10, np.float64))) is None  # mixed dtypes
    assert compiled.pointers((p, g, np.zeros(20, np.float32)[::2])) is None  # not contiguous
    assert compiled.pointers((p, g, np.zeros(9, np.float32))) is None  # wrong size
    assert compiled.pointers((p, g, [0.0] * 10)) is None  # not an array
    assert compiled.pointers(tuple(a.astype(np.float16) for a in (p, g, velocity))) is None
    p2 = p.copy()  # same contents, another buffer: another pointer, never the cached one
    assert compiled.pointers((p2, g, velocity))[0] == p2.ctypes.data != p.ctypes.data
    NumpyBackend().fused_update("sgd", p, g, (np.zeros(10, np.float32),),
                                UpdateHyper(lr=0.5, grad_scale=1.0, n_weights=10))
    np.testing.assert_array_equal(p, 0.0)
    np.testing.assert_array_equal(g, 2.0)  # the raw gradient is read, never written


def test_finish_grad_matches_formula():
    n = 1003
    p, g = np.random.RandomState(1).normal(size=(2, n))
    out = g.copy()
    NumpyBackend().finish_grad(p, out, UpdateHyper(lr=0, grad_scale=4.0, n_weights=n - 10, l2=0.5))
    expected = g / 4.0
    expected[: n - 10] = (g[: n - 10] + 0.5 * p[: n - 10]) / 4.0
    np.testing.assert_array_equal(out, expected)


@needs_compiler
def test_compiled_step_is_built_once_and_cached(fresh_load, tmp_path):
    compiled, why = fresh_load()
    assert compiled is not None and "compiled for this CPU" in why
    built = list(tmp_path.glob("cpu_kernels_*.so"))
    assert len(built) == 1 and str(built[0]) in why
    assert not list(tmp_path.glob("*.tmp"))  # the temporary was renamed, not left behind
    inode = built[0].stat().st_ino  # a rebuild would rename a new file over it
    fresh_load.cache_clear()
    fresh_load()
    assert built[0].stat().st_ino == inode


def test_environment_variable_turns_the_compiled_step_off(fresh_load, monkeypatch):
    monkeypatch.setenv("GPUNN_CPU_KERNELS", "0")
    compiled, why = fresh_load()
    assert compiled is None and "GPUNN_CPU_KERNELS=0" in why
    assert "GPUNN_CPU_KERNELS=0" in NumpyBackend().device_info()["cpu kernels"]


@pytest.mark.parametrize("compiler, expected", [("/nonexistent/c++", "No such file"),
                                                 ("false", "could not compile")])
def test_a_missing_or_failing_compiler_falls_back_to_numpy(fresh_load, monkeypatch, compiler,
                                                           expected):
    monkeypatch.setenv("CXX", shutil.which(compiler) or compiler)
    compiled, why = fresh_load()
    assert compiled is None and why.startswith("NumPy") and expected in why
    hyper = UpdateHyper(lr=0.1, grad_scale=2.0, n_weights=3, l2=0.1, momentum=0.9)
    p, _ = _run_steps(NumpyBackend(), "sgd", np.float64, hyper, 5)
    p_ref, _ = _run_steps(NumpyBackend(compiled=False), "sgd", np.float64, hyper, 5)
    np.testing.assert_array_equal(p, p_ref)


@pytest.mark.parametrize("size", [7, TANH_LOGISTIC_MIN_SIZE - 1, TANH_LOGISTIC_MIN_SIZE, 50_000])
def test_float32_logistic_is_accurate_on_both_paths(size):
    """Small float32 arrays take expit (relative error of an ulp or two everywhere); large
    ones the tanh form, whose absolute error stays within an ulp or two of 1 (it cancels for
    very negative z, where the outputs are tiny next to 1)."""
    z = np.concatenate([np.linspace(-30, 30, size - 4), [-1e4, 1e4, 0.0, -0.0]]).astype(np.float32)
    out = np.empty_like(z)
    NumpyBackend().sigmoid(z, out)
    truth = expit(z.astype(np.float64))
    assert np.all((out >= 0) & (out <= 1))
    assert np.abs(out - truth).max() <= 2.0**-23  # two ulps of values just below 1
    if size < TANH_LOGISTIC_MIN_SIZE:
        ulps = np.abs(out - truth) / np.spacing(truth.astype(np.float32))
        assert ulps.max() <= 2


@needs_compiler
def test_pointer_cache_forgets_freed_buffers():
    """A freed buffer's id may be reused by a new array: the cache must not serve it."""
    compiled = cpu_kernels.load()[0]
    for i in range(50):
        buffers = tuple(np.zeros(64 if i % 2 else 5000, np.float32) for _ in range(3))
        assert compiled.pointers(buffers) == [b.ctypes.data for b in buffers] + [None]
        del buffers  # the next arrays may get the same ids, at other addresses


@needs_compiler
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rows", [1, 15, 16, 127, 128, 1000])  # x 64: across each threshold
@pytest.mark.parametrize("activation", ["relu", "identity", "logistic", "tanh"])
def test_compiled_bias_act_and_grad_are_bitwise_equal_to_numpy(dtype, rows, activation):
    """From its size threshold on (``BIAS_ACT_MIN_SIZE``) bias + identity, bias + ReLU and
    the float32 bias + logistic run compiled, and the gradients of ReLU, logistic and tanh
    at every size; the rest stays in NumPy. Either way the numbers are the same."""
    rng = np.random.RandomState(0)
    z = rng.normal(size=(rows, 64)).astype(dtype)
    z[0, 2], z[0, 3] = np.nan, -0.0  # NaN must propagate on both paths, as np.maximum does
    z[-1, :3] = [-200.0, 200.0, np.inf]  # saturated logistic units
    bias = rng.normal(size=64).astype(dtype)
    bias[3] = 0.0
    delta = rng.normal(size=(rows, 64)).astype(dtype)
    results = []
    for backend in (NumpyBackend(), NumpyBackend(compiled=False)):
        a = backend.bias_act(z, bias, activation, out=np.empty_like(z))
        in_place = z.copy()
        backend.bias_act(in_place, bias, activation, out=in_place)  # out aliases z
        grad = backend.act_grad(delta.copy(), a, activation)
        sums = np.empty(64, dtype)  # the bias gradient in the same pass, as col_sum gives it
        grad_with_sums = backend.act_grad(delta.copy(), a, activation, col_sums=sums)
        col_sums = backend.col_sum(grad, np.empty(64, dtype))
        results.append((a, in_place, grad, grad_with_sums, sums, col_sums))
    for got, want in zip(*results):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(results[0][0], results[0][1])
    np.testing.assert_array_equal(results[0][4], results[0][5])  # fused sums == col_sum's
    compiled = cpu_kernels.load()[0]
    has_bias_kernel = activation in ("relu", "identity") or (activation, dtype) == (
        "logistic", np.float32)
    assert compiled.bias_act(z, bias, activation, np.empty_like(z)) == has_bias_kernel
    assert (activation in BIAS_ACT_MIN_SIZE) == (activation in ("relu", "identity", "logistic"))
    has_grad_kernel = activation != "identity"
    assert compiled.act_grad(delta.copy(), z, activation) == has_grad_kernel
    assert compiled.act_grad(delta.copy(), z, activation, np.empty(64, dtype)) == has_grad_kernel


@needs_compiler
def test_compiled_elementwise_ops_leave_empty_arrays_to_numpy():
    compiled = cpu_kernels.load()[0]
    for shape in [(0, 4), (4, 0)]:
        z = np.zeros(shape, np.float32)
        assert not compiled.act_grad(z, z, "relu", np.zeros(shape[1], np.float32))
        assert not compiled.softmax(z, np.empty_like(z))
        assert not compiled.bias_act(z, np.zeros(shape[1], np.float32), "relu", np.empty_like(z))
    backend = NumpyBackend()
    sums = np.full(3, 7.0, np.float32)
    backend.act_grad(np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32), "relu", sums)
    np.testing.assert_array_equal(sums, 0)  # no rows: the bias gradient is zero


@needs_compiler
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1), (7, 2), (256, 10), (33, 37), (5, 129), (3, 300)])
def test_compiled_softmax_is_bitwise_equal_to_numpy(dtype, shape):
    """The compiled row maximum and row sum around NumPy's exp change no bit, NaN and inf
    included (the sums have mixed scales, where another summation order would round
    differently)."""
    rng = np.random.RandomState(0)
    z = (rng.normal(size=shape) * np.exp2(rng.randint(-8, 8, size=shape))).astype(dtype)
    if shape[0] > 3:
        z[1, 0], z[2, -1], z[3, 0] = np.nan, np.inf, -np.inf
    compiled, reference = NumpyBackend(), NumpyBackend(compiled=False)
    got = compiled.softmax(z, out=np.empty_like(z))
    with np.errstate(invalid="ignore"):  # inf - inf in NumPy's shift
        np.testing.assert_array_equal(got, reference.softmax(z, out=np.empty_like(z)))
    in_place = z.copy()
    np.testing.assert_array_equal(compiled.softmax(in_place, out=in_place), got)
    assert cpu_kernels.load()[0].softmax(z, np.empty_like(z))  # the compiled path ran


class _NumpyReversingSums:
    """NumPy, except that ``add.reduce`` sums each row from its end."""

    add = SimpleNamespace(reduce=lambda x, **kw: np.add.reduce(x[..., ::-1], **kw))

    def __getattr__(self, name):
        return getattr(np, name)


@needs_compiler
def test_compiled_softmax_stays_off_where_numpy_sums_in_another_order(monkeypatch):
    """NumPy's summation order is checked when the kernels load: a mismatch leaves the
    softmax to NumPy rather than change a result."""
    library = re.search(r"\((.+)\)$", cpu_kernels.load()[1]).group(1)
    z = np.ones((4, 10), np.float32)
    assert cpu_kernels.CpuKernels(library).softmax(z, np.empty_like(z))
    monkeypatch.setattr(cpu_kernels, "np", _NumpyReversingSums())
    assert not cpu_kernels.CpuKernels(library).softmax(z, np.empty_like(z))


@needs_compiler
def test_kernels_keep_pointers_only_while_their_arrays_live_unchanged():
    """Pointers are cached per op and arrays: an entry goes when one of its arrays is
    freed, and an array resized in place (its data moved) is looked up afresh."""
    library = re.search(r"\((.+)\)$", cpu_kernels.load()[1]).group(1)
    kernels = cpu_kernels.CpuKernels(library)  # an empty cache
    z, bias = np.full((512, 64), -1.0, np.float32), np.ones(64, np.float32)
    out = np.empty_like(z)
    assert kernels.bias_act(z, bias, "relu", out) and len(kernels._cache) == 1
    np.testing.assert_array_equal(out, 0.0)
    short = bias[:63]
    assert not kernels.bias_act(z, short, "relu", out)  # refused, and the refusal kept
    assert not kernels.bias_act(z, short, "relu", out) and len(kernels._cache) == 2
    del out
    assert len(kernels._cache) == 0
    z.resize((1024, 64), refcheck=False)  # new data, the same array object
    z[:] = 2.0
    out = np.empty_like(z)
    assert kernels.bias_act(z, bias, "relu", out)
    np.testing.assert_array_equal(out, 3.0)


@needs_compiler
def test_compiled_elementwise_refuses_what_it_cannot_take():
    compiled = cpu_kernels.load()[0]
    z = np.ones((512, 64), np.float32)
    assert not compiled.bias_act(z, np.ones(63, np.float32), "relu", np.empty_like(z))  # bias
    assert not compiled.bias_act(z, np.ones(64, np.float64), "relu", np.empty_like(z))  # dtype
    assert not compiled.bias_act(z[:, ::2], np.ones(32, np.float32), "relu",
                                 np.empty((512, 32), np.float32))  # a strided view
    assert not compiled.act_grad(z, np.ones((512, 32), np.float32), "relu")  # shapes differ
    assert not compiled.act_grad(z, np.ones(64, np.float32), "relu")  # a row is no output
    assert not compiled.act_grad(z, z.copy(), "relu", np.ones(63, np.float32))  # sums' length
    assert not compiled.bias_act(z, np.ones(64, np.float32), "relu", np.ones(64, np.float32))
    assert compiled.bias_act(z[:300], np.ones(64, np.float32), "relu", z[:300])  # leading rows


@needs_compiler
def test_builds_unused_for_a_month_are_pruned_when_a_new_one_is_made(fresh_load, tmp_path):
    import os
    import time

    stale, recent = tmp_path / "cpu_kernels_0000000000000000.so", tmp_path / "cpu_kernels_1111.so"
    for path, days in ((stale, cpu_kernels.STALE_DAYS + 1), (recent, 1)):
        path.write_bytes(b"")
        then = time.time() - days * 86400
        os.utime(path, (then, then))
    fresh_load()
    assert not stale.exists() and recent.exists()
    assert len(list(tmp_path.glob("cpu_kernels_*.so"))) == 2  # the recent one and the new one


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n, k, m", [(32, 3, 5), (1, 7, 3), (256, 784, 256), (33, 17, 1)])
def test_matmul_equals_numpy_matmul_bitwise(dtype, n, k, m):
    """It calls np.dot for speed; scikit-learn uses @: the results must be the same bits."""
    rng = np.random.RandomState(0)
    a, b, d = (rng.normal(size=s).astype(dtype) for s in ((n, k), (k, m), (n, m)))
    be = NumpyBackend()
    cases = [((a, b, False, False), a @ b), ((a, d, True, False), a.T @ d),
             ((d, b, False, True), d @ b.T)]
    for (x, y, ta, tb), expected in cases:
        out = np.empty_like(expected)
        np.testing.assert_array_equal(be.matmul(x, y, out=out, transpose_a=ta, transpose_b=tb),
                                      expected)


def test_models_trained_in_threads_side_by_side_equal_sequential_ones():
    """The backend and its compiled kernels are shared by the process: fits running in
    threads side by side must not touch each other's buffers."""
    from concurrent.futures import ThreadPoolExecutor

    import gpunn

    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 20)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(int)

    def fit(seed):  # logistic and tanh use the backend's scratch buffers at every step
        return gpunn.MLPClassifier((64, 32), activation=("logistic", "tanh")[seed % 2],
                                   solver=("sgd", "adam")[seed // 2 % 2], max_iter=6,
                                   batch_size=16, random_state=seed, backend="numpy").fit(X, y)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sequential = [fit(seed) for seed in range(6)]
        with ThreadPoolExecutor(6) as pool:
            threaded = list(pool.map(fit, range(6)))
    for a, b in zip(sequential, threaded):
        for wa, wb in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
            np.testing.assert_array_equal(wa, wb)


@needs_compiler
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_cols", [100, 3, 16])  # rows in and out of whole 64-byte lines
def test_compiled_row_gather_equals_numpy_take(dtype, n_cols):
    x = np.random.RandomState(0).normal(size=(500, n_cols)).astype(dtype)
    n_idx = 8 * (TAKE_ROWS_MIN_SIZE // n_cols // 8 + 1) + 5  # groups of eight, a tail of 5
    idx = np.random.RandomState(1).randint(-500, 500, size=n_idx)
    idx[:3] = [499, -500, 0]  # both ends, from the end too, and repeats below
    idx[-2:] = idx[5]
    out = np.full((len(idx) + 5, n_cols), np.nan, dtype)
    got = NumpyBackend().take_rows(x, idx, out)
    assert got.base is out and np.isnan(out[len(idx):]).all()  # leading rows only
    np.testing.assert_array_equal(got, np.take(x, idx, axis=0))
    assert cpu_kernels.load()[0].take_rows(x, idx, out[: len(idx)])


@needs_compiler
@pytest.mark.parametrize("bad", [500, -501])
def test_compiled_row_gather_refuses_an_index_out_of_range_before_writing(bad):
    x = np.ones((500, 100))
    idx = np.zeros(TAKE_ROWS_MIN_SIZE // 100 + 1, np.int64)
    idx[-1] = bad
    out = np.zeros((len(idx), 100))
    with pytest.raises(IndexError, match=f"index {bad} is out of bounds for axis 0 with size 500"):
        NumpyBackend().take_rows(x, idx, out)
    assert not out.any()
    with pytest.raises(IndexError):  # the NumPy path says the same
        NumpyBackend(compiled=False).take_rows(x, idx, out)


@needs_compiler
def test_compiled_row_gather_leaves_what_it_cannot_take_to_numpy():
    compiled = cpu_kernels.load()[0]
    x, out = np.ones((500, 100), np.float32), np.empty((200, 100), np.float32)
    idx = np.arange(200)
    assert compiled.take_rows(x, idx, out)
    assert not compiled.take_rows(x, idx.astype(np.int32), out)  # index type
    assert not compiled.take_rows(x, idx[:100], out)  # lengths differ
    assert not compiled.take_rows(x.astype(np.float64), idx, out)  # dtypes differ
    assert not compiled.take_rows(np.ones((500, 200), np.float32)[:, ::2], idx, out)  # strided
    assert not compiled.take_rows(x, idx[:0], out[:0])  # nothing to gather
