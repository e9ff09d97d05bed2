"""gpunn's CPU kernels, compiled for this machine (``kernels/cpu_kernels.cpp``).

NumPy cannot fuse: an Adam step is about fourteen passes over the parameters, a bias +
ReLU two passes over a layer's activations and a logistic gradient three. These kernels
do each in one. The C++ holds no maths of its own: it loops over the CUDA kernels' rules
(``kernels/activation_rules.cuh``, ``kernels/optim_rules.cuh``), and only for operations
whose arithmetic is exact (the optimizer rules, bias + identity or ReLU, the activation
gradients, softmax around NumPy's own exp) and in NumPy's order of operations, so the
results equal NumPy's bitwise; the one sum, the loss's L2 term, agrees to rounding. A batch's rows are gathered here too.
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
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import time
import weakref
from functools import lru_cache
from pathlib import Path

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
#: a cached build not used for this long is deleted when another one is made
STALE_DAYS = 30
#: elementwise ops on fewer elements stay in NumPy: fetching pointers costs ~1 us each
ELEMENTWISE_MIN_SIZE = 1 << 14


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
            for op, (n_arrays, n_sizes) in _ELEMENTWISE.items():
                fn = getattr(dll, f"gpunn_{op}_{dtype.name}")
                fn.restype = None
                fn.argtypes = [ctypes.c_void_p] * n_arrays + [ctypes.c_longlong] * n_sizes
                self._functions[op, dtype] = fn
            fn = getattr(dll, f"gpunn_take_rows_{dtype.name}")
            fn.restype = ctypes.c_longlong
            fn.argtypes = [ctypes.c_void_p, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_void_p,
                           ctypes.c_longlong, ctypes.c_void_p]
            self._functions["take_rows", dtype] = fn
        # (ids, pointers, weak references) of the last buffers seen: training passes the
        # same buffers every step, and asking NumPy for pointers costs more than the step
        # of a small network. The weak references clear the cache as soon as one of those
        # buffers is freed, so an id is never reused while cached. One tuple, read and
        # replaced whole, so that threads training side by side never mix two entries.
        self._cache: tuple | None = None
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

    def _forget(self, _dead: weakref.ref) -> None:
        self._cache = None

    def pointers(self, buffers: tuple, acc: np.ndarray | None = None) -> list | None:
        """Data pointers of ``buffers`` and then of ``acc`` (None for no acc), or None
        unless the buffers are contiguous arrays of one float dtype and one size and
        ``acc`` a float64 array (otherwise the NumPy code must do the step)."""
        ids = (*map(id, buffers), id(acc))
        cache = self._cache
        if cache is not None and cache[0] == ids:
            return cache[1]
        dtype, size = buffers[0].dtype, buffers[0].size
        if dtype not in _C_FLOAT or not all(
                isinstance(b, np.ndarray) and b.dtype == dtype and b.size == size
                and b.flags.c_contiguous for b in buffers):
            return None
        if acc is not None and not (isinstance(acc, np.ndarray) and acc.dtype == np.float64
                                    and acc.size):
            return None
        pointers = [b.ctypes.data for b in buffers] + [None if acc is None else acc.ctypes.data]
        tracked = buffers if acc is None else (*buffers, acc)
        self._cache = (ids, pointers, [weakref.ref(b, self._forget) for b in tracked])
        return pointers

    def bias_act(self, z: np.ndarray, bias: np.ndarray, activation: str, out: np.ndarray) -> bool:
        """``out = f(z + bias)`` for identity and ReLU; False (nothing done) otherwise."""
        fn = self._functions.get((f"bias_{activation}", z.dtype))
        if fn is None or not _elementwise_ok(z, like_x=(out,), like_row=(bias,)):
            return False
        fn(z.ctypes.data, bias.ctypes.data, out.ctypes.data, z.shape[0], z.shape[1])
        return True

    def act_grad(self, delta: np.ndarray, a: np.ndarray, activation: str,
                 col_sums: np.ndarray | None = None) -> bool:
        """``delta *= f'`` from the output ``a`` for ReLU, logistic and tanh, and with
        ``col_sums`` the column sums of the result there, in one pass; False (nothing
        done) otherwise."""
        fn = self._functions.get((f"{activation}_grad", delta.dtype))
        rows = () if col_sums is None else (col_sums,)
        if fn is None or not _elementwise_ok(delta, like_x=(a,), like_row=rows):
            return False
        fn(delta.ctypes.data, a.ctypes.data, None if col_sums is None else col_sums.ctypes.data,
           *delta.shape)
        return True

    def softmax(self, z: np.ndarray, out: np.ndarray) -> bool:
        """``out = softmax(z)`` row by row: the shift by each row's maximum and the division
        by each row's sum compiled, NumPy's exp between them (NumPy reduces a row of ten
        in ~12 us per batch, one call per row); False (nothing done) otherwise."""
        shift = self._functions.get(("sub_row_max", z.dtype))
        scale = self._functions.get(("div_row_sum", z.dtype))
        if shift is None or scale is None or not _elementwise_ok(z, like_x=(out,), min_size=1):
            return False
        shift(z.ctypes.data, out.ctypes.data, *z.shape)
        np.exp(out, out=out)
        scale(out.ctypes.data, *out.shape)
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


def _elementwise_ok(x: np.ndarray, like_x: tuple = (), like_row: tuple = (),
                    min_size: int = ELEMENTWISE_MIN_SIZE) -> bool:
    """Large enough to be worth a call; every array contiguous and of x's dtype; those of
    ``like_x`` shaped like the 2-D x, those of ``like_row`` like one of its rows (a bias)."""
    if x.size < min_size or x.ndim != 2:
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


@lru_cache(maxsize=1)
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
