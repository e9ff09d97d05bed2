"""NumPy backend: the CPU implementation of the contract and the reference for all others.

Each op is written as the same sequence of NumPy operations scikit-learn performs, so
float64 training agrees with scikit-learn to rounding. Temporaries come from a small
scratch cache keyed by shape and dtype, so a training step allocates nothing after the
first batch of each size. Ufunc methods are called directly (``np.add.reduce`` rather
than ``np.sum``): for small networks the per-call overhead is the cost.

Where NumPy cannot fuse, the same operations compiled for this CPU take over
(``gpunn.cpu_kernels``): the optimizer step (one pass instead of ~14), bias + ReLU and
the activation gradients (one pass instead of two or three, the bias gradient summed in
the same pass), bias + logistic around NumPy's tanh (three calls instead of five), the
gather of a batch's rows, and softmax's row maximum and row sum (NumPy reduces one row
per call). They agree with the NumPy code below bitwise (the loss's L2 term, summed in
the optimizer's pass, to rounding); where nothing can be compiled,
that code runs.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from scipy.special import expit, xlogy

from .. import cpu_kernels
from .base import ACTIVATIONS, OUTPUT_LOSSES, UPDATE_RULES, Backend, UpdateHyper


class NumpyBackend(Backend):
    """CPU backend on NumPy and the machine's BLAS.

    ``compiled=False`` runs everything in NumPy even where the compiled CPU kernels are
    available (the reference the tests compare them with).
    """

    name = "numpy"

    def __init__(self, compiled: bool = True) -> None:
        # one scratch cache per thread: estimators share this backend, and fits running
        # in threads side by side must not write into each other's temporaries
        self._thread = threading.local()
        self.compiled = compiled

    def __reduce__(self):
        """Pickled as its settings (an estimator given this backend pickles, e.g. for a
        grid search's worker processes); the scratch buffers start afresh."""
        return _numpy_backend_of, (self.compiled,)

    def _kernels(self) -> cpu_kernels.CpuKernels | None:
        return cpu_kernels.load()[0] if self.compiled else None

    def _scratch(self, slot: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """A reusable temporary for ``slot``; its contents are undefined on return."""
        try:
            cache = self._thread.scratch
        except AttributeError:
            cache = self._thread.scratch = {}
        key = (slot, shape, dtype)
        buf = cache.get(key)
        if buf is None:
            buf = cache[key] = np.empty(shape, dtype)
        return buf

    # -- memory -------------------------------------------------------------------------
    def asarray(self, x, dtype=None):
        return np.ascontiguousarray(x, dtype=dtype)

    def to_numpy(self, x):
        return np.asarray(x)

    def empty(self, shape, dtype):
        return np.empty(shape, dtype)

    def zeros(self, shape, dtype):
        return np.zeros(shape, dtype)

    def take_rows(self, x, idx, out):
        view = out[: len(idx)]
        if view.size >= TAKE_ROWS_MIN_SIZE:  # a batch of X: rows' misses overlap
            kernels = self._kernels()
            if kernels is not None and kernels.take_rows(x, idx, view):
                return view
        x.take(idx, axis=0, out=view)  # the method: np.take's Python wrapper costs 1 us
        return view

    # -- linear algebra -----------------------------------------------------------------
    def matmul(self, a, b, out, transpose_a=False, transpose_b=False):
        # np.dot: the same BLAS call as np.matmul (results equal to the bit) with 0.35 us
        # less overhead, which small networks pay eight times a step
        return np.dot(a.T if transpose_a else a, b.T if transpose_b else b, out=out)

    def col_sum(self, x, out):
        return np.add.reduce(x, axis=0, out=out)

    # -- activations --------------------------------------------------------------------
    def bias_act(self, z, bias, activation, out):
        min_size = BIAS_ACT_MIN_SIZE.get(activation)
        if min_size is not None and z.size >= min_size:
            kernels = self._kernels()
            if kernels is not None and kernels.bias_act(z, bias, activation, out):
                return out
        np.add(z, bias, out=out)
        return _apply_activation(activation, out)

    def act_grad(self, delta, a, activation, col_sums=None):
        kernels = self._kernels()  # one call beats NumPy's three or four at any size
        if kernels is not None and kernels.act_grad(delta, a, activation, col_sums):
            return delta
        self._act_grad(delta, a, activation)
        if col_sums is not None:
            self.col_sum(delta, out=col_sums)
        return delta

    def _act_grad(self, delta, a, activation) -> None:
        if activation == "identity":
            return
        tmp = self._scratch("act_grad", a.shape, a.dtype)
        if activation == "logistic":  # delta *= a; delta *= 1 - a
            delta *= a
            np.subtract(1, a, out=tmp)
        elif activation == "tanh":  # delta *= 1 - a**2
            np.multiply(a, a, out=tmp)
            np.subtract(1, tmp, out=tmp)
        elif activation == "relu":  # delta[a == 0] = 0 (a >= 0 after relu)
            np.greater(a, 0, out=tmp)
        else:
            raise ValueError(f"no derivative for activation {activation!r}")
        delta *= tmp

    def sigmoid(self, z, out):
        return _logistic(z, out)

    def softmax(self, z, out):
        kernels = self._kernels()
        if kernels is not None and kernels.softmax(z, out):
            return out
        row = self._scratch("row", (z.shape[0], 1), z.dtype)
        np.maximum.reduce(z, axis=1, keepdims=True, out=row)
        np.subtract(z, row, out=out)
        np.exp(out, out=out)
        np.add.reduce(out, axis=1, keepdims=True, out=row)
        out /= row
        return out

    # -- loss ---------------------------------------------------------------------------
    def loss_grad(self, output, z, y, delta, acc, scale=1.0, sample_weight=None):
        if output not in OUTPUT_LOSSES:
            raise ValueError(f"unknown output {output!r}; expected one of {list(OUTPUT_LOSSES)}")
        tmp = self._scratch("loss", z.shape, z.dtype)
        # delta = f(z), then the per-element loss into tmp, from f(z) and y.
        if output == "softmax":
            self.softmax(z, delta)
        elif output == "logistic":
            _logistic(z, delta)
        else:
            np.copyto(delta, z)
            _apply_activation(output, delta)
        sign = 1.0  # the cross-entropies are summed as y log p, then negated once
        if output in ("softmax", "logistic"):
            sign = -1.0
            eps = _EPS[z.dtype]
            np.maximum(delta, eps, out=tmp)  # clip to [eps, 1 - eps], as scikit-learn
            np.minimum(tmp, 1 - eps, out=tmp)
            if output == "softmax":  # y log p
                np.log(tmp, out=tmp)
                tmp *= y
            else:  # y log p + (1 - y) log(1 - p), with xlogy's 0 log 0 = 0
                neg_p = self._scratch("loss_neg_p", z.shape, z.dtype)
                neg_y = self._scratch("loss_neg_y", z.shape, z.dtype)
                np.subtract(1, tmp, out=neg_p)
                np.subtract(1, y, out=neg_y)
                xlogy(neg_y, neg_p, out=neg_p)
                xlogy(y, tmp, out=tmp)
                tmp += neg_p
        elif output == "identity":  # 0.5 (f - y)**2, averaged over outputs below
            np.subtract(y, delta, out=tmp)
            np.multiply(tmp, tmp, out=tmp)
            tmp *= 0.5 / z.shape[1]
        else:  # exp: y log(y / p) - y + p
            np.divide(y, delta, out=tmp)
            xlogy(y, tmp, out=tmp)
            tmp -= y
            tmp += delta
        if sample_weight is None:  # one float64 sum over the batch, as scikit-learn's
            loss = sign * float(np.add.reduce(tmp, axis=None, dtype=np.float64))
        else:
            per_sample = self._scratch("per_sample", (z.shape[0],), z.dtype)
            np.add.reduce(tmp, axis=1, out=per_sample)
            loss = sign * float(np.dot(per_sample, sample_weight))
        acc[0] += scale * loss
        delta -= y
        if sample_weight is not None:
            delta *= sample_weight[:, None]
        return delta

    def sum_squares(self, x, acc, scale):
        acc[0] += scale * float(np.dot(x, x))
        return acc

    # -- optimizer ----------------------------------------------------------------------
    def finish_grad(self, params, grads, hyper):
        weights = slice(0, hyper.n_weights)
        if hyper.l2 and hyper.n_weights:
            tmp = self._scratch("l2", (hyper.n_weights,), params.dtype)
            np.multiply(params[weights], hyper.l2, out=tmp)
            grads[weights] += tmp
        grads /= hyper.grad_scale
        return grads

    def fused_update(self, rule, params, grads, state, hyper, acc=None):
        if rule not in UPDATE_RULES:
            raise ValueError(f"unknown update rule {rule!r}; expected one of {list(UPDATE_RULES)}")
        if not hyper.penalty_scale:
            acc = None
        kernels = self._kernels()
        pointers = None if kernels is None else kernels.pointers((params, grads, *state), acc)
        if pointers is not None:
            kernels.step(rule, pointers, params, hyper)
            return
        if acc is not None:
            self.sum_squares(params[: hyper.n_weights], acc, hyper.penalty_scale)
        if rule == "sgd":
            self._sgd(params, self.finish_grad(params, grads, hyper), state[0], hyper)
        else:
            self._adam(params, self.finish_grad(params, grads, hyper), *state, hyper)

    def _sgd(self, p, g, velocity, hyper) -> None:
        lr_g = self._scratch("lr_g", p.shape, p.dtype)
        np.multiply(g, hyper.lr, out=lr_g)
        velocity *= hyper.momentum
        velocity -= lr_g
        if hyper.nesterov:
            step = self._scratch("step", p.shape, p.dtype)
            np.multiply(velocity, hyper.momentum, out=step)
            step -= lr_g
            p += step
        else:
            p += velocity

    def _adam(self, p, g, m, v, hyper) -> None:
        step = self._scratch("step", p.shape, p.dtype)
        denom = self._scratch("denom", p.shape, p.dtype)
        m *= hyper.beta_1
        np.multiply(g, 1 - hyper.beta_1, out=step)
        m += step
        v *= hyper.beta_2
        np.multiply(g, g, out=step)
        step *= 1 - hyper.beta_2
        v += step
        np.sqrt(v, out=denom)
        denom += hyper.epsilon
        np.multiply(m, -hyper.lr, out=step)
        step /= denom
        p += step

    # -- checks and device --------------------------------------------------------------
    def all_finite(self, x):
        return bool(np.isfinite(x).all())

    def read_scalar(self, acc):
        return float(acc[0])

    def synchronize(self):
        pass

    def device_info(self):
        import platform

        info = {"device": f"CPU ({platform.processor() or platform.machine()})"}
        try:
            from threadpoolctl import threadpool_info

            blas = [p for p in threadpool_info() if p.get("user_api") == "blas"]
            if blas:
                info["blas"] = f"{blas[0]['internal_api']} {blas[0]['version']}"
                info["threads"] = blas[0]["num_threads"]
        except ImportError:
            pass
        info["numpy"] = np.__version__
        info["cpu kernels"] = cpu_kernels.load()[1] if self.compiled else "NumPy (compiled=False)"
        return info


#: machine epsilon per dtype (``np.finfo`` costs a microsecond per call)
_EPS = {np.dtype(t): float(np.finfo(t).eps) for t in (np.float32, np.float64)}

#: below this many float32 elements one ``expit`` call beats the four-call tanh form
#: (measured: 1.5 vs 2.1 us at 512 elements, 5.0 vs 2.5 us at 2048)
TANH_LOGISTIC_MIN_SIZE = 1024

#: the fewest elements for which the compiled bias + activation beats NumPy's calls: a
#: compiled call costs ~2 us (its pointers cached), NumPy's ~0.6-1 us a call plus the
#: pass. Measured (NumPy vs compiled, float32): ReLU 2.5 vs 2.1 us at 32 x 32, identity
#: (one np.add) 3.0 vs 2.7 at 128 x 64; the float32 logistic switches to the tanh form,
#: which the compiled code computes, where the NumPy code does.
BIAS_ACT_MIN_SIZE = {"relu": 1024, "identity": 8192, "logistic": TANH_LOGISTIC_MIN_SIZE}

#: the row gather's checks are not cached (~6 us a call): compiled for batches of X only
TAKE_ROWS_MIN_SIZE = 1 << 14


def _logistic(z: np.ndarray, out: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-z). Large float32 arrays: 0.5 + 0.5 tanh(z / 2), ~7x faster than expit
    (NumPy's tanh is SIMD) with an absolute error within an ulp of 1 (what the next
    GEMM and the clipped loss see; tiny outputs for z << 0 lose relative precision).
    Otherwise SciPy's expit, exactly as scikit-learn computes it (so float64 training
    matches it to the bit)."""
    if out.dtype != np.float32 or out.size < TANH_LOGISTIC_MIN_SIZE:
        return expit(z, out=out)
    np.multiply(z, 0.5, out=out)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


def _apply_activation(activation: str, x: np.ndarray) -> np.ndarray:
    """Elementwise activation in place, with the same NumPy/SciPy calls scikit-learn uses."""
    if activation == "identity":
        pass
    elif activation == "logistic":
        _logistic(x, x)
    elif activation == "tanh":
        np.tanh(x, out=x)
    elif activation == "relu":
        np.maximum(x, 0, out=x)
    elif activation == "exp":
        np.exp(x, out=x)
    else:
        raise ValueError(f"unknown activation {activation!r}; expected one of {list(ACTIVATIONS)}")
    return x


def _numpy_backend_of(compiled: bool) -> NumpyBackend:
    """gpunn's shared NumPy backend (so a model on it need not move), or one without the
    compiled kernels."""
    if compiled:
        from . import get_backend

        return get_backend("numpy")
    return NumpyBackend(compiled=False)
