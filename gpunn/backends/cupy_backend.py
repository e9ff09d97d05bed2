"""CuPy backend: cuBLAS for the GEMMs, gpunn's own CUDA kernels for everything else.

Kernels come from ``kernels/*.cu`` (see ``gpunn.kernels``), compiled once per dtype.
Every scalar argument is passed as a NumPy scalar of the kernel's C type: a Python float
handed to a ``float`` parameter would be read as the wrong bits on the device.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from .. import kernels
from .base import OUTPUT_LOSSES, UPDATE_RULES, Backend, UpdateHyper

ACT_CODES = {"identity": 0, "logistic": 1, "tanh": 2, "relu": 3, "exp": 4}
THREADS = 256  # elementwise and reduction kernels
#: column sums: 32 warps a block share each 32 columns' rows (on an H100, 18 us for a
#: 1024 x 2048 delta against 36 us with 8 warps)
COLUMN_SUM_THREADS = 1024
MAX_BLOCKS = 4096  # grid-stride loops cover the rest


def _elementwise_grid(size: int) -> tuple[int]:
    return (max(1, min(MAX_BLOCKS, -(-size // THREADS))),)


def _row_block(n_cols: int) -> tuple[int]:
    """One block per row: enough whole warps for the row, at most THREADS."""
    return (min(THREADS, 32 * -(-n_cols // 32)),)


class CublasGemm:
    """Row-major ``out = op(a) @ op(b)`` straight through cuBLAS's sgemm/dgemm.

    ``cupy.matmul`` spends ~30 us of host time a call on its general checks (measured on
    an H100 machine's Xeon), while a small training step's GEMMs take a few us each on
    the GPU: each step is bound by the host's launches. A row-major C = A B is the
    column-major C^T = B^T A^T, so cuBLAS gets the operands swapped and no copy is made.
    """

    def __init__(self, xp: Any, cublas: Any = None):
        """``cublas`` injects the bindings (tests); by default CuPy's own."""
        if cublas is None:
            from cupy_backends.cuda.libs import cublas

        self._handle = xp.cuda.device.get_cublas_handle
        self._routines = {np.dtype(np.float32): cublas.sgemm, np.dtype(np.float64): cublas.dgemm}
        # alpha = 1 and beta = 0 on the host (cuBLAS's default pointer mode), kept alive here
        self._scalars = {dt: np.array([1, 0], dt) for dt in self._routines}
        self._op = (0, 1)  # cublasOperation_t: N, T

    @staticmethod
    def usable(xp: Any) -> bool:
        """Real CuPy with its cuBLAS bindings (a stand-in for tests keeps ``xp.matmul``)."""
        if getattr(xp, "__name__", "") != "cupy":
            return False
        try:
            from cupy_backends.cuda.libs import cublas  # noqa: F401
        except ImportError:
            return False
        return True

    def __call__(self, a, b, out, transpose_a: bool, transpose_b: bool) -> bool:
        """Multiplies and returns True, or returns False for operands it leaves to CuPy
        (other shapes or dtypes, non-contiguous arrays, empty dimensions: CuPy multiplies
        them or says what is wrong)."""
        routine = self._routines.get(out.dtype)
        if routine is None or not a.ndim == b.ndim == out.ndim == 2:
            return False
        m, k = (a.shape[1], a.shape[0]) if transpose_a else a.shape
        k_b, n = (b.shape[1], b.shape[0]) if transpose_b else b.shape
        if (k != k_b or out.shape != (m, n) or 0 in (m, n, k) or a.dtype != out.dtype
                or b.dtype != out.dtype or not (a.flags.c_contiguous and b.flags.c_contiguous
                                                and out.flags.c_contiguous)):
            return False
        scalars = self._scalars[out.dtype].ctypes.data
        routine(self._handle(), self._op[transpose_b], self._op[transpose_a], n, m, k,
                scalars, b.data.ptr, b.shape[1], a.data.ptr, a.shape[1],
                scalars + out.itemsize, out.data.ptr, n)
        return True


class CupyBackend(Backend):
    """NVIDIA GPU backend through CuPy. ``xp`` injects a CuPy-compatible module (tests)."""

    name = "cupy"

    def __init__(self, xp: Any = None):
        if xp is None:
            import cupy as xp
        self.xp = xp
        self._kernel_sets: dict[str, kernels.KernelSet] = {}
        self._functions: dict[tuple, Any] = {}
        self._gemm = CublasGemm(xp) if CublasGemm.usable(xp) else None

    def __reduce__(self):
        """Pickled as the name of its array module (kernels and handles are rebuilt)."""
        return _cupy_backend_of, (self.xp.__name__,)

    def _kernel(self, name: str, dtype) -> Any:
        # one dict lookup a launch: naming the dtype costs more than the lookup itself
        fn = self._functions.get((name, dtype))
        if fn is None:
            dtype_name = np.dtype(dtype).name
            kset = self._kernel_sets.get(dtype_name)
            if kset is None:
                kset = self._kernel_sets[dtype_name] = kernels.KernelSet(self.xp, dtype_name)
            fn = self._functions[(name, dtype)] = kset.get(name)
        return fn

    def _grid_stride(self, name: str, dtype, size: int, args: tuple) -> None:
        """Launch kernel ``name`` as a 1-D grid-stride loop over ``size`` elements."""
        self._kernel(name, dtype)(_elementwise_grid(size), (THREADS,), args)

    # -- memory -------------------------------------------------------------------------
    def holds(self, x):
        return isinstance(x, self.xp.ndarray)

    def asarray(self, x, dtype=None):
        return self.xp.ascontiguousarray(self.xp.asarray(x, dtype=dtype))

    def to_numpy(self, x):
        return self.xp.asnumpy(x)

    def empty(self, shape, dtype):
        return self.xp.empty(shape, dtype)

    def zeros(self, shape, dtype):
        return self.xp.zeros(shape, dtype)

    def take_rows(self, x, idx, out):
        view = out[: len(idx)]
        if idx.dtype == np.int64 and x.dtype == out.dtype and x.flags.c_contiguous and len(idx):
            n_cols = np.int32(x.shape[1] if x.ndim == 2 else 1)
            self._grid_stride("take_rows", x.dtype, view.size,  # one launch; CuPy's take: two
                              (x, idx, view, np.int64(len(idx)), n_cols))
        else:
            self.xp.take(x, idx, axis=0, out=view)
        return view

    # -- linear algebra -----------------------------------------------------------------
    def matmul(self, a, b, out, transpose_a=False, transpose_b=False):
        if self._gemm is None or not self._gemm(a, b, out, transpose_a, transpose_b):
            self.xp.matmul(a.T if transpose_a else a, b.T if transpose_b else b, out=out)
        return out

    def col_sum(self, x, out):
        self.act_grad(x, None, "identity", col_sums=out)
        return out

    # -- activations --------------------------------------------------------------------
    def bias_act(self, z, bias, activation, out):
        n_rows, n_cols = z.shape
        self._grid_stride("bias_act", z.dtype, z.size, (z, bias, out, np.int64(n_rows),
                          np.int32(n_cols), np.int32(ACT_CODES[activation])))
        return out

    def act_grad(self, delta, a, activation, col_sums=None):
        code = np.int32(ACT_CODES[activation])
        if col_sums is not None:  # one pass: CuPy's column sum alone costs twice a launch
            n_rows, n_cols = delta.shape
            self._kernel("act_grad_col_sum", delta.dtype)(
                (max(1, -(-n_cols // 32)),), (COLUMN_SUM_THREADS,),
                (delta, a, np.int32(n_rows), np.int32(n_cols), code, col_sums),
            )
        elif activation != "identity":
            self._grid_stride("act_grad", delta.dtype, delta.size,
                              (delta, a, np.int64(delta.size), code))
        return delta

    def sigmoid(self, z, out):
        # no bias: a plain activation over every element
        self._grid_stride("bias_act", z.dtype, z.size, (z, None, out, np.int64(z.size),
                          np.int32(1), np.int32(ACT_CODES["logistic"])))
        return out

    def softmax(self, z, out):
        n_rows, n_cols = z.shape
        self._kernel("softmax_rows", z.dtype)(
            (max(1, n_rows),), _row_block(n_cols), (z, out, np.int32(n_rows), np.int32(n_cols))
        )
        return out

    # -- loss ---------------------------------------------------------------------------
    def loss_grad(self, output, z, y, delta, acc, scale=1.0, sample_weight=None):
        if output not in OUTPUT_LOSSES:
            raise ValueError(f"unknown output {output!r}; expected one of {list(OUTPUT_LOSSES)}")
        n_rows, n_cols = z.shape
        common = (z, y, delta, sample_weight, acc, np.float64(scale), np.int32(n_rows), np.int32(n_cols))
        if output == "softmax":
            self._kernel("loss_grad_softmax", z.dtype)((max(1, n_rows),), _row_block(n_cols), common)
        else:
            self._grid_stride("loss_grad_elementwise", z.dtype, z.size,
                              common + (np.int32(ACT_CODES[output]),))
        return delta

    def sum_squares(self, x, acc, scale):
        self._grid_stride("sum_squares", x.dtype, x.size,
                          (x, np.int64(x.size), acc, np.float64(scale)))
        return acc

    # -- optimizer ----------------------------------------------------------------------
    def finish_grad(self, params, grads, hyper):
        T = params.dtype.type
        self._grid_stride("finish_grad", params.dtype, params.size,
                          (params, grads, np.int64(params.size), np.int64(hyper.n_weights),
                           T(hyper.l2), T(hyper.grad_scale)))
        return grads

    def fused_update(self, rule: str, params, grads, state, hyper: UpdateHyper, acc=None):
        if rule not in UPDATE_RULES:
            raise ValueError(f"unknown update rule {rule!r}; expected one of {list(UPDATE_RULES)}")
        T = params.dtype.type
        n, nw = np.int64(params.size), np.int64(hyper.n_weights)
        # a null acc skips the penalty's block reduction altogether
        penalty = (acc if hyper.penalty_scale else None, np.float64(hyper.penalty_scale))
        if rule == "sgd":
            args = (params, grads, state[0], n, nw, T(hyper.lr), T(hyper.momentum), T(hyper.l2),
                    T(hyper.grad_scale), np.int32(bool(hyper.nesterov)), *penalty)
            self._grid_stride("fused_sgd", params.dtype, params.size, args)
        else:
            args = (params, grads, state[0], state[1], n, nw, T(hyper.lr), T(hyper.beta_1),
                    T(1 - hyper.beta_1), T(hyper.beta_2), T(1 - hyper.beta_2), T(hyper.epsilon),
                    T(hyper.l2), T(hyper.grad_scale), *penalty)
            self._grid_stride("fused_adam", params.dtype, params.size, args)

    # -- checks and device --------------------------------------------------------------
    def all_finite(self, x):
        return bool(self.xp.isfinite(x).all())

    def read_scalar(self, acc):
        return float(acc[0])

    def synchronize(self):
        self.xp.cuda.runtime.deviceSynchronize()

    def device_info(self):
        xp = self.xp
        device = xp.cuda.Device()
        props = xp.cuda.runtime.getDeviceProperties(device.id)
        name = props["name"]
        free, total = xp.cuda.runtime.memGetInfo()
        return {
            "device": name.decode() if isinstance(name, bytes) else str(name),
            "compute_capability": str(device.compute_capability),
            "memory": f"{free / 2**30:.1f} GiB free of {total / 2**30:.1f} GiB",
            "cupy": xp.__version__,
            "cuda_runtime": str(xp.cuda.runtime.runtimeGetVersion()),
        }


def _cupy_backend_of(module_name: str) -> CupyBackend:
    """The backend of a CuPy-like module, by name: gpunn's own for CuPy itself."""
    if module_name == "cupy":
        from . import get_backend

        return get_backend("cupy")
    return CupyBackend(importlib.import_module(module_name))
