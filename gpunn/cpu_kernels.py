"""gpunn's CPU kernels, compiled for this machine (``kernels/cpu_kernels.cpp``).

NumPy cannot fuse: an Adam step is about fourteen passes over the parameters, a bias +
ReLU two passes over a layer's activations and a logistic gradient three. These kernels
do each in one. The C++ holds no maths of its own: it loops over the CUDA kernels' rules
(``kernels/activation_rules.cuh``, ``kernels/optim_rules.cuh``), and only for operations
whose arithmetic is exact (the optimizer rules, bias + identity or ReLU, the activation
gradients with their column sums; the float32 logistic and softmax around NumPy's own
tanh and exp) and in NumPy's order of operations, so the results equal NumPy's bitwise;
the one sum, the loss's L2 term, agrees to rounding. A batch's rows are gathered here too.
It is built at first use with the system C++ compiler (``$CXX``, else ``c++`` or
``g++``) for this CPU (``-O3 -march=native``, with ``-ffp-contract=off`` so
that no fused multiply-add changes a rounding), cached in ``$GPUNN_CACHE_DIR`` (default
``~/.cache/gpunn``; builds unused for ``STALE_DAYS`` are removed) under a hash of the
sources, compiler, flags and CPU, and called through ctypes.

Without a compiler gpunn runs the same operations in NumPy, only slower; setting
``GPUNN_CPU_KERNELS=0`` asks for that. ``gpunn.info()`` says which one is in use and why.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import time
import weakref
from pathlib import Path
from typing import Callable

import numpy as np

from .kernels import kernel_dir

SOURCES = ("cpu_kernels.cpp", "activation_rules.cuh", "optim_rules.cuh")
NATIVE_FLAGS = ("-march=native",)
FLAGS = ("-std=c++17", "-O3", "-ffp-contract=off", "-fno-math-errno", "-fopenmp-simd", "-shared",
         "-fPIC")
_C_FLOAT = {np.dtype(np.float32): ctypes.c_float, np.dtype(np.float64): ctypes.c_double}
_POINTERS = {"sgd": 3, "adam": 4}  # params, grads and the rule's state buffers
_SCALARS = {"sgd": 4, "adam": 8}  # the element-type scalars after (n, n_weights)
#: elementwise op -> (array arguments, size arguments)
_ELEMENTWISE = {"bias_relu": (3, 2), "bias_identity": (3, 2), "sub_row_max": (2, 2),
                "div_row_sum": (1, 2),
                **{f"{act}_grad": (3, 2) for act in ("relu", "logistic", "tanh")}}
#: float32 only: the logistic around NumPy's tanh (a float64 one stays SciPy's expit)
_ELEMENTWISE_FLOAT32 = {"bias_halve": (3, 2), "half_plus_half": (1, 2)}
#: a cached build not used for this long is deleted when another one is made
STALE_DAYS = 30
#: how many (op, arrays) pointer lists CpuKernels keeps before starting afresh
_CACHE_ENTRIES = 64


class CpuKernels:
    """ctypes bindings of the ``gpunn_<op>_<dtype>`` functions of a built library."""

    def __init__(self, path: Path) -> None:
        dll = ctypes.CDLL(str(path))
        self._functions = {}
        for dtype, c_float in _C_FLOAT.items():
            for rule in _POINTERS:
                fn = getattr(dll, f"gpunn_{rule}_{dtype.name}")
                fn.restype = None
                fn.argtypes = ([ctypes.c_void_p] * _POINTERS[rule] + [ctypes.c_longlong] * 2
                               + [c_float] * _SCALARS[rule]
                               + ([ctypes.c_int] if rule == "sgd" else [])
                               + [ctypes.c_void_p, ctypes.c_double])  # acc, penalty_scale
                self._functions[rule, dtype] = fn
            only_float32 = _ELEMENTWISE_FLOAT32 if dtype == np.float32 else {}
            for op, (n_arrays, n_sizes) in {**_ELEMENTWISE, **only_float32}.items():
                fn = getattr(dll, f"gpunn_{op}_{dtype.name}")
                fn.restype = None
                fn.argtypes = [ctypes.c_void_p] * n_arrays + [ctypes.c_longlong] * n_sizes
                self._functions[op, dtype] = fn
            fn = getattr(dll, f"gpunn_take_rows_{dtype.name}")
            fn.restype = ctypes.c_longlong
            fn.argtypes = [ctypes.c_void_p, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_void_p,
                           ctypes.c_longlong, ctypes.c_void_p]
            self._functions["take_rows", dtype] = fn
        # (op, ids of its arrays) -> (pointers or None, weak references): see _pointers
        self._cache: dict[tuple, tuple] = {}
        if not self._row_sums_match_numpy():
            for dtype in _C_FLOAT:
                del self._functions["div_row_sum", dtype]

    def _row_sums_match_numpy(self) -> bool:
        """Whether the compiled row sums equal this NumPy's bitwise: its summation order is
        not part of its API, so it is checked once, on rows of mixed signs and scales."""
        rng = np.random.default_rng(0)
        for dtype in _C_FLOAT:
            for n_cols in (3, 10, 37, 300):
                x = rng.standard_normal((4, n_cols)) * np.exp2(rng.integers(-30, 30, (4, n_cols)))
                x = x.astype(dtype)
                expected = x / np.add.reduce(x, axis=1, keepdims=True)
                self._functions["div_row_sum", dtype](x.ctypes.data, *x.shape)
                if not np.array_equal(x, expected):
                    return False
        return True

    def _pointers(self, op: str, arrays: tuple, usable: Callable[[], bool]) -> list | None:
        """Data pointers of ``arrays`` (None for None) if ``usable()``, else None.

        Training hands the kernels the same buffers every step, and asking NumPy for one
        pointer costs ~1 us and checking the arrays ~2 us: more than a small network's
        kernels. So both answers are kept, per op and arrays (by id and shape: a resize
        in place moves the data), for as long as every one of those arrays lives: a weak
        reference drops the entry when one is freed, so that an id reused by a new array
        is never taken for the old one.
        """
        key = (op, *[(id(a), getattr(a, "shape", None)) for a in arrays])
        cached = self._cache.get(key)
        if cached is not None:
            return cached[0]
        pointers = [None if a is None else a.ctypes.data for a in arrays] if usable() else None
        try:
            forget = functools.partial(self._forget, key)
            refs = [weakref.ref(a, forget) for a in arrays if a is not None]
        except TypeError:  # not an array: nothing to keep
            return pointers
        if len(self._cache) >= _CACHE_ENTRIES:  # entries of arrays no longer passed
            self._cache.clear()
        self._cache[key] = (pointers, refs)
        return pointers

    def _forget(self, key: tuple, _dead: weakref.ref) -> None:
        self._cache.pop(key, None)

    def pointers(self, buffers: tuple, acc: np.ndarray | None = None) -> list | None:
        """Data pointers of ``buffers`` and then of ``acc`` (None for no acc), or None
        unless the buffers are contiguous arrays of one float dtype and one size and
        ``acc`` a float64 array (otherwise the NumPy code must do the step)."""
        def usable() -> bool:
            dtype, size = buffers[0].dtype, buffers[0].size
            return dtype in _C_FLOAT and all(
                isinstance(b, np.ndarray) and b.dtype == dtype and b.size == size
                and b.flags.c_contiguous for b in buffers) and (
                acc is None or isinstance(acc, np.ndarray) and acc.dtype == np.float64
                and acc.size > 0)

        return self._pointers("step", (*buffers, acc), usable)

    def bias_act(self, z: np.ndarray, bias: np.ndarray, activation: str, out: np.ndarray) -> bool:
        """``out = f(z + bias)`` for identity and ReLU, and for a float32 logistic in the
        tanh form the NumPy code uses (two passes here, NumPy's tanh between them, where
        NumPy takes five); False (nothing done) otherwise."""
        logistic = activation == "logistic" and z.dtype == np.float32
        fn = self._functions.get(("bias_halve" if logistic else f"bias_{activation}", z.dtype))
        pointers = fn and self._pointers("bias_act", (z, bias, out), lambda: _elementwise_ok(
            z, like_x=(out,), like_row=(bias,)))
        if not pointers:
            return False
        fn(*pointers, *z.shape)
        if logistic:
            np.tanh(out, out=out)
            self._functions["half_plus_half", z.dtype](pointers[2], *z.shape)
        return True

    def act_grad(self, delta: np.ndarray, a: np.ndarray, activation: str,
                 col_sums: np.ndarray | None = None) -> bool:
        """``delta *= f'`` from the output ``a`` for ReLU, logistic and tanh, and with
        ``col_sums`` the column sums of the result there, in one pass; False (nothing
        done) otherwise."""
        fn = self._functions.get((f"{activation}_grad", delta.dtype))
        rows = () if col_sums is None else (col_sums,)
        pointers = fn and self._pointers("act_grad", (delta, a, col_sums), lambda: _elementwise_ok(
            delta, like_x=(a,), like_row=rows))
        if not pointers:
            return False
        fn(*pointers, *delta.shape)
        return True

    def softmax(self, z: np.ndarray, out: np.ndarray) -> bool:
        """``out = softmax(z)`` row by row: the shift by each row's maximum and the division
        by each row's sum compiled, NumPy's exp between them (NumPy reduces a row of ten
        in ~12 us per batch, one call per row); False (nothing done) otherwise."""
        shift = self._functions.get(("sub_row_max", z.dtype))
        scale = self._functions.get(("div_row_sum", z.dtype))
        pointers = shift and scale and self._pointers("softmax", (z, out), lambda: _elementwise_ok(
            z, like_x=(out,)))
        if not pointers:
            return False
        shift(*pointers, *z.shape)
        np.exp(out, out=out)
        scale(pointers[1], *out.shape)
        return True

    def take_rows(self, x: np.ndarray, idx: np.ndarray, out: np.ndarray) -> bool:
        """``out[:] = x[idx]`` for a 2-D ``x`` and an int64 ``idx`` as long as ``out``;
        False (nothing done) for what it cannot take. An index out of range raises
        IndexError, as ``np.take`` does."""
        fn = self._functions.get(("take_rows", x.dtype))
        index_ok = (isinstance(idx, np.ndarray) and idx.dtype == np.int64 and idx.ndim == 1
                    and idx.flags.c_contiguous and len(idx) == len(out))
        if (fn is None or not index_ok or not _elementwise_ok(out) or x.ndim != 2
                or not x.flags.c_contiguous or (out.dtype, out.shape[1]) != (x.dtype, x.shape[1])):
            return False
        bad = fn(x.ctypes.data, x.shape[0], x.shape[1], idx.ctypes.data, len(idx), out.ctypes.data)
        if bad >= 0:
            raise IndexError(f"index {idx[bad]} is out of bounds for axis 0 with size {x.shape[0]}")
        return True

    def step(self, rule: str, pointers: list[int], params: np.ndarray, hyper) -> None:
        """One optimizer step in place on the buffers ``pointers`` came from; with an acc
        among them, the L2 term of the loss is added to it in the same pass."""
        fn = self._functions[rule, params.dtype]
        *buffers, acc = pointers
        if rule == "sgd":
            fn(*buffers, params.size, hyper.n_weights, hyper.lr, hyper.momentum, hyper.l2,
               hyper.grad_scale, int(hyper.nesterov), acc, hyper.penalty_scale)
        else:  # 1 - beta is rounded once from double, as NumPy rounds a Python float
            fn(*buffers, params.size, hyper.n_weights, hyper.lr, hyper.beta_1,
               1 - hyper.beta_1, hyper.beta_2, 1 - hyper.beta_2, hyper.epsilon, hyper.l2,
               hyper.grad_scale, acc, hyper.penalty_scale)


def _elementwise_ok(x: np.ndarray, like_x: tuple = (), like_row: tuple = ()) -> bool:
    """Not empty; every array contiguous and of x's dtype; those of ``like_x`` shaped like
    the 2-D x, those of ``like_row`` like one of its rows (a bias). (Whether a call is
    worth making for so few elements is the caller's choice.)"""
    if x.ndim != 2 or x.size == 0:
        return False
    shaped = [(a, x.shape) for a in (x, *like_x)] + [(a, x.shape[1:]) for a in like_row]
    return all(isinstance(a, np.ndarray) and a.dtype == x.dtype and a.flags.c_contiguous
               and a.shape == shape for a, shape in shaped)


def cache_dir() -> Path:
    """Where built libraries are kept: ``$GPUNN_CACHE_DIR`` or ``~/.cache/gpunn``."""
    if os.environ.get("GPUNN_CACHE_DIR"):
        return Path(os.environ["GPUNN_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gpunn"


def _cpu_identity() -> str:
    """What ``-march=native`` depends on: the CPU's model and instruction-set flags."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return "\n".join(sorted({ln for ln in lines if ln.startswith(("model name", "flags"))}))
    except OSError:
        return f"{platform.machine()} {platform.processor()}"


def _build(compiler: str) -> Path:
    """Compile (once per source, compiler, flags and CPU) and return the library's path."""
    folder = kernel_dir()
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True,
                             timeout=60).stdout
    last_error = None
    for flags in (FLAGS + NATIVE_FLAGS, FLAGS):  # some compilers lack -march=native
        key = "\0".join([*(f.read_text() for f in map(folder.joinpath, SOURCES)), version,
                         *flags, _cpu_identity()])
        library = cache_dir() / f"cpu_kernels_{hashlib.sha256(key.encode()).hexdigest()[:16]}.so"
        if library.exists():
            _touch(library)
            return library
        library.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".so.tmp", dir=library.parent)
        os.close(fd)
        try:
            result = subprocess.run([compiler, *flags, f"-I{folder}", str(folder / SOURCES[0]),
                                     "-o", tmp], capture_output=True, text=True, timeout=300)
            if result.returncode == 0:
                os.replace(tmp, library)  # atomic: a concurrent build just wins the race
                _prune(library)
                return library
            last_error = (result.stderr.strip().splitlines() or ["no message"])[-1]
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    raise RuntimeError(f"{compiler} could not compile {SOURCES[0]}: {last_error}")


def _touch(library: Path) -> None:
    """Mark the library as used now (its mtime is its last use; see ``_prune``)."""
    try:
        os.utime(library)
    except OSError:
        pass


def _prune(keep: Path) -> None:
    """Delete builds unused for ``STALE_DAYS`` (older gpunn versions, other CPUs)."""
    cutoff = time.time() - STALE_DAYS * 86400
    for old in keep.parent.glob("cpu_kernels_*.so"):
        try:
            if old != keep and old.stat().st_mtime < cutoff:
                old.unlink()
        except OSError:
            pass


@functools.lru_cache(maxsize=1)
def load() -> tuple[CpuKernels | None, str]:
    """The compiled kernels (``None`` when NumPy does their work) and a line saying why."""
    if os.environ.get("GPUNN_CPU_KERNELS", "1") == "0":
        return None, "NumPy (GPUNN_CPU_KERNELS=0)"
    if platform.system() == "Windows":
        return None, "NumPy (the CPU kernels are built on Linux and macOS only)"
    compiler = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++")
    if not compiler:
        return None, "NumPy: no C++ compiler found (install g++ or set CXX for faster training)"
    try:
        library = _build(compiler)
        return CpuKernels(library), f"compiled for this CPU ({library})"
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        return None, f"NumPy: {exc}"
