"""CuPy backend: cuBLAS for the GEMMs, gpunn's own CUDA kernels for everything else.

Kernels come from ``kernels/*.cu`` (see ``gpunn.kernels``), compiled once per dtype.
Every scalar argument is passed as a NumPy scalar of the kernel's C type: a Python float
handed to a ``float`` parameter would be read as the wrong bits on the device.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import kernels
from .base import OUTPUT_LOSSES, UPDATE_RULES, Backend, UpdateHyper

ACT_CODES = {"identity": 0, "logistic": 1, "tanh": 2, "relu": 3, "exp": 4}
THREADS = 256  # elementwise and reduction kernels
MAX_BLOCKS = 4096  # grid-stride loops cover the rest


def _elementwise_grid(size: int) -> tuple[int]:
    return (max(1, min(MAX_BLOCKS, -(-size // THREADS))),)


def _row_block(n_cols: int) -> tuple[int]:
    """One block per row: enough whole warps for the row, at most THREADS."""
    return (min(THREADS, 32 * -(-n_cols // 32)),)


class CupyBackend(Backend):
    """NVIDIA GPU backend through CuPy. ``xp`` injects a CuPy-compatible module (tests)."""

    name = "cupy"

    def __init__(self, xp: Any = None):
        if xp is None:
            import cupy as xp
        self.xp = xp
        self._kernel_sets: dict[str, kernels.KernelSet] = {}

    def _kernel(self, name: str, dtype) -> Any:
        dtype_name = np.dtype(dtype).name
        kset = self._kernel_sets.get(dtype_name)
        if kset is None:
            kset = self._kernel_sets[dtype_name] = kernels.KernelSet(self.xp, dtype_name)
        return kset.get(name)

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
        self.xp.take(x, idx, axis=0, out=view)
        return view

    # -- linear algebra -----------------------------------------------------------------
    def matmul(self, a, b, out, transpose_a=False, transpose_b=False):
        return self.xp.matmul(a.T if transpose_a else a, b.T if transpose_b else b, out=out)

    def col_sum(self, x, out):
        return self.xp.sum(x, axis=0, out=out)

    # -- activations --------------------------------------------------------------------
    def bias_act(self, z, bias, activation, out):
        n_rows, n_cols = z.shape
        self._kernel("bias_act", z.dtype)(
            _elementwise_grid(z.size), (THREADS,),
            (z, bias, out, np.int64(n_rows), np.int32(n_cols), np.int32(ACT_CODES[activation])),
        )
        return out

    def act_grad(self, delta, a, activation, col_sums=None):
        if activation != "identity":
            self._kernel("act_grad", delta.dtype)(
                _elementwise_grid(delta.size), (THREADS,),
                (delta, a, np.int64(delta.size), np.int32(ACT_CODES[activation])),
            )
        if col_sums is not None:
            self.col_sum(delta, out=col_sums)
        return delta

    def sigmoid(self, z, out):
        self._kernel("bias_act", z.dtype)(  # no bias: a plain activation over every element
            _elementwise_grid(z.size), (THREADS,),
            (z, None, out, np.int64(z.size), np.int32(1), np.int32(ACT_CODES["logistic"])),
        )
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
            self._kernel("loss_grad_elementwise", z.dtype)(
                _elementwise_grid(z.size), (THREADS,), common + (np.int32(ACT_CODES[output]),)
            )
        return delta

    def sum_squares(self, x, acc, scale):
        self._kernel("sum_squares", x.dtype)(
            _elementwise_grid(x.size), (THREADS,), (x, np.int64(x.size), acc, np.float64(scale))
        )
        return acc

    # -- optimizer ----------------------------------------------------------------------
    def finish_grad(self, params, grads, hyper):
        T = params.dtype.type
        self._kernel("finish_grad", params.dtype)(
            _elementwise_grid(params.size), (THREADS,),
            (params, grads, np.int64(params.size), np.int64(hyper.n_weights), T(hyper.l2),
             T(hyper.grad_scale)),
        )
        return grads

    def fused_update(self, rule: str, params, grads, state, hyper: UpdateHyper, acc=None):
        if rule not in UPDATE_RULES:
            raise ValueError(f"unknown update rule {rule!r}; expected one of {list(UPDATE_RULES)}")
        T = params.dtype.type
        n, nw = np.int64(params.size), np.int64(hyper.n_weights)
        grid = _elementwise_grid(params.size)
        # a null acc skips the penalty's block reduction altogether
        penalty = (acc if hyper.penalty_scale else None, np.float64(hyper.penalty_scale))
        if rule == "sgd":
            args = (params, grads, state[0], n, nw, T(hyper.lr), T(hyper.momentum), T(hyper.l2),
                    T(hyper.grad_scale), np.int32(bool(hyper.nesterov)), *penalty)
            self._kernel("fused_sgd", params.dtype)(grid, (THREADS,), args)
        else:
            args = (params, grads, state[0], state[1], n, nw, T(hyper.lr), T(hyper.beta_1),
                    T(1 - hyper.beta_1), T(hyper.beta_2), T(1 - hyper.beta_2), T(hyper.epsilon),
                    T(hyper.l2), T(hyper.grad_scale), *penalty)
            self._kernel("fused_adam", params.dtype)(grid, (THREADS,), args)

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
