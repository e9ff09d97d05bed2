"""gpunn's CUDA kernels, run on the CPU by the CUDA emulator (tests/cuda_emu).

The backend conformance suite already runs every op through CupyBackend on the emulator
(backend id "cupy-standin"). Here: each kernel directly, at edge sizes, under several
thread schedules, once under AddressSanitizer; and planted bugs (a missing barrier, an
out-of-bounds write, a divergent barrier) that the harness must catch.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.special import expit, softmax

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is needed to build the CUDA emulator")

from cuda_emu import HERE, KernelLaunchError, Library, launch  # noqa: E402

SCHEDULES = ["inorder", "reversed", "random"]
PLANTED = HERE / "planted" / "bugs.cu"


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("n_cols", [1, 31, 32, 33, 255, 256, 257, 1500])
@pytest.mark.parametrize("dtype, ctype", [(np.float32, "float"), (np.float64, "double")])
def test_softmax_rows_any_width_any_schedule(schedule, n_cols, dtype, ctype):
    z = np.random.RandomState(n_cols).normal(scale=20, size=(3, n_cols)).astype(dtype)
    out = np.empty_like(z)
    block = min(256, 32 * -(-n_cols // 32))
    launch(f"softmax_rows<{ctype}>", (2,), (block,),  # 2 blocks for 3 rows: the row loop
           (z, out, np.int32(3), np.int32(n_cols)), schedule=schedule, seed=n_cols)
    np.testing.assert_allclose(out, softmax(z.astype(np.float64), axis=1), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("schedule", ["inorder", "random"])
@pytest.mark.parametrize("size", [1, 255, 256, 257, 5000])
def test_elementwise_kernels_with_grid_stride(schedule, size):
    """Fewer blocks than elements / threads: the grid-stride loop must cover the rest."""
    z = np.random.RandomState(size).normal(size=(size, 1)).astype(np.float32)
    out = np.empty_like(z)
    launch("bias_act<float>", (2,), (64,), (z, None, out, np.int64(size), np.int32(1), np.int32(1)),
           schedule=schedule, seed=size)
    np.testing.assert_allclose(out, expit(z), rtol=1e-6)
    acc = np.zeros(1)
    launch("sum_squares<float>", (3,), (32,), (z.ravel(), np.int64(size), acc, np.float64(2.0)),
           schedule=schedule, seed=size)
    assert acc[0] == pytest.approx(2 * (z.astype(np.float64) ** 2).sum(), rel=1e-6)


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("n_rows, n_cols", [(1, 1), (5, 31), (70, 33), (33, 64)])
@pytest.mark.parametrize("threads", [32, 256, 1024])
def test_act_grad_col_sum_any_shape_any_block(schedule, n_rows, n_cols, threads):
    """Every column summed whatever the warps per block; relu's gradient applied first."""
    rng = np.random.RandomState(n_rows * n_cols)
    delta, a = rng.normal(size=(2, n_rows, n_cols)).astype(np.float32)
    expected = delta * (a > 0)
    sums = np.full(n_cols, np.nan, np.float32)
    launch("act_grad_col_sum<float>", (-(-n_cols // 32),), (threads,),
           (delta, a, np.int32(n_rows), np.int32(n_cols), np.int32(3), sums),
           schedule=schedule, seed=n_rows)
    np.testing.assert_array_equal(delta, expected)
    np.testing.assert_allclose(sums, expected.astype(np.float64).sum(axis=0), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("n_cols", [1, 3, 784])
def test_take_rows_with_grid_stride(n_cols):
    """Fewer threads than elements, repeated indices, and a vector (one column)."""
    x = np.random.RandomState(n_cols).normal(size=(50, n_cols))
    idx = np.array([49, 0, 7, 7, 13], np.int64)
    out = np.full((len(idx), n_cols), np.nan)
    launch("take_rows<double>", (2,), (32,), (x, idx, out, np.int64(len(idx)), np.int32(n_cols)),
           schedule="random")
    np.testing.assert_array_equal(out, x[idx])


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_fused_softmax_loss_with_thousands_of_classes(schedule):
    rng = np.random.RandomState(0)
    n, k = 4, 1200
    z = rng.normal(scale=5, size=(n, k))
    y = np.eye(k)[rng.randint(k, size=n)]
    delta, acc = np.empty_like(z), np.zeros(1)
    launch("loss_grad_softmax<double>", (n,), (256,),
           (z, y, delta, None, acc, np.float64(1.0), np.int32(n), np.int32(k)), schedule=schedule)
    p = softmax(z, axis=1)
    np.testing.assert_allclose(delta, p - y, atol=1e-12)
    assert acc[0] == pytest.approx(-np.log(p[y == 1]).sum(), rel=1e-12)


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("rule", ["sgd", "adam"])
@pytest.mark.parametrize("n, n_weights", [(1, 1), (300, 290), (5000, 4000)])
def test_fused_step_adds_the_penalty_of_the_weights_before_the_update(schedule, rule, n, n_weights):
    """Several blocks, a grid smaller than the buffer (the stride loop) and a tail of
    biases that the penalty must leave out; the sum is of the weights as they were."""
    rng = np.random.RandomState(n)
    p, g = rng.normal(size=(2, n))
    old_weights = p[:n_weights].copy()
    state = [np.zeros(n) for _ in range(2 if rule == "adam" else 1)]
    acc = np.array([1.0])
    scalars = ((np.float64(0.1), np.float64(0.9), np.float64(1e-3), np.float64(4), np.int32(1))
               if rule == "sgd" else
               (np.float64(1e-3), np.float64(0.9), np.float64(0.1), np.float64(0.999),
                np.float64(0.001), np.float64(1e-8), np.float64(1e-3), np.float64(4)))
    launch(f"fused_{rule}<double>", (3,), (64,),
           (p, g, *state, np.int64(n), np.int64(n_weights), *scalars, acc, np.float64(0.25)),
           schedule=schedule, seed=n)
    assert acc[0] == pytest.approx(1.0 + 0.25 * np.dot(old_weights, old_weights), rel=1e-12)
    assert not np.array_equal(p[:n_weights], old_weights)  # and the step itself was taken


def test_scalar_arguments_must_have_the_kernel_type():
    """A Python number where the kernel takes float/int is a silent bug on a GPU: refused."""
    z = np.ones((2, 2), np.float32)
    with pytest.raises(TypeError, match="must be a int32 scalar"):
        launch("bias_act<float>", (1,), (32,), (z, None, z, np.int64(2), 2, np.int32(0)))
    with pytest.raises(TypeError, match="needs a contiguous float32 array"):
        launch("bias_act<float>", (1,), (32,), (z.astype(np.float64), None, z, np.int64(2),
                                                np.int32(2), np.int32(0)))
    p = np.ones(4, np.float32)
    with pytest.raises(TypeError, match="must be a float32 scalar"):
        launch("finish_grad<float>", (1,), (32,), (p, p, np.int64(4), np.int64(2), 0.5, np.float32(1)))


def test_planted_missing_barrier_is_caught():
    lib = Library([PLANTED])
    x = np.arange(1.0, 65.0)
    results = {}
    for synced in (1, 0):
        for schedule in SCHEDULES:
            out = np.zeros(1)
            x_run = x + 100 * len(results)  # fresh values: stale shared memory cannot help
            lib.launch("block_sum<double>", (1,), (64,), (x_run, out, np.int32(64), np.int32(synced)),
                       schedule=schedule, seed=3)
            results[(synced, schedule)] = out[0] == x_run.sum()
    assert all(results[(1, s)] for s in SCHEDULES), "the correct kernel must pass every schedule"
    assert not all(results[(0, s)] for s in SCHEDULES), "the missing barrier went unnoticed"


def test_planted_divergent_barrier_is_a_clear_error_not_a_hang():
    lib = Library([PLANTED])
    with pytest.raises(KernelLaunchError, match="divergent barrier"):
        lib.launch("divergent_barrier<float>", (1,), (32,), (np.zeros(32, np.float32), np.int32(32)))


ASAN_SCRIPT = r"""
import sys, numpy as np
sys.path.insert(0, sys.argv[1])
from cuda_emu import Library, kernels_library
from pathlib import Path
if sys.argv[2] == "ours":
    lib = kernels_library(sanitize=True)
    for n in (1, 257, 3000):
        z = np.random.normal(size=(n, 3)); y = np.eye(3)[np.arange(n) % 3]
        d = np.empty_like(z); acc = np.zeros(1)
        lib.launch("loss_grad_softmax<double>", (n,), (32,), (z, y, d, None, acc, np.float64(1), np.int32(n), np.int32(3)), schedule="random")
        lib.launch("loss_grad_elementwise<double>", (4,), (64,), (z, y, d, None, acc, np.float64(1), np.int32(n), np.int32(3), np.int32(1)))
        p = np.ones(n); g = np.ones(n); m = np.zeros(n); v = np.zeros(n)
        lib.launch("act_grad_col_sum<double>", (1,), (1024,), (z, z, np.int32(n), np.int32(3), np.int32(1), np.zeros(3)), schedule="random")
        lib.launch("take_rows<double>", (2,), (64,), (z, np.arange(n, dtype=np.int64)[::-1].copy(), d, np.int64(n), np.int32(3)))
        lib.launch("fused_adam<double>", (2,), (64,), (p, g, m, v, np.int64(n), np.int64(n // 2), np.float64(1e-3), np.float64(0.9), np.float64(0.1), np.float64(0.999), np.float64(0.001), np.float64(1e-8), np.float64(1e-4), np.float64(1), acc, np.float64(0.5)))
    print("clean")
else:
    lib = Library([Path(sys.argv[1]) / "cuda_emu" / "planted" / "bugs.cu"], sanitize=True)
    x = np.ones(2000); out = np.zeros(2000)
    lib.launch("shift_out_of_bounds<double>", (4,), (64,), (x, out, np.int64(2000)))
    print("not caught")
"""


def _run_under_asan(which):
    runtime = subprocess.run(["g++", "-print-file-name=libasan.so"], capture_output=True, text=True).stdout.strip()
    if not os.path.isabs(runtime):
        pytest.skip("AddressSanitizer runtime (libasan) not installed")
    env = {**os.environ, "LD_PRELOAD": runtime, "ASAN_OPTIONS": "detect_leaks=0:detect_stack_use_after_return=0"}
    return subprocess.run([sys.executable, "-c", ASAN_SCRIPT, str(HERE.parent), which], capture_output=True,
                          text=True, env=env, timeout=300)


def test_our_kernels_are_clean_under_address_sanitizer():
    result = _run_under_asan("ours")
    assert result.returncode == 0 and "clean" in result.stdout, result.stderr[-3000:]
    assert "ERROR: AddressSanitizer" not in result.stderr


def test_planted_out_of_bounds_write_is_caught_by_address_sanitizer():
    result = _run_under_asan("planted")
    assert result.returncode != 0
    assert "heap-buffer-overflow" in result.stderr and "shift_out_of_bounds" in result.stderr
