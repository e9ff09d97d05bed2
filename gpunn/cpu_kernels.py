"""The fused optimizer step compiled for this machine's CPU (``kernels/cpu_optim.cpp``).

NumPy runs an Adam step as about fourteen passes over the parameters; this is one. The
C++ holds no maths of its own: it loops over the CUDA kernels' per-parameter rules
(``kernels/optim_rules.cuh``). It is built at first use with the system C++ compiler
(``$CXX``, else ``c++`` or ``g++``) for this CPU (``-O3 -march=native``, with
``-ffp-contract=off`` so that no fused multiply-add changes a rounding: the results equal
NumPy's bitwise), cached in ``$GPUNN_CACHE_DIR`` (default ``~/.cache/gpunn``) under a
hash of the sources, compiler, flags and CPU, and called through ctypes.

Without a compiler gpunn runs the same step in NumPy, only slower; setting
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
import weakref
from functools import lru_cache
from pathlib import Path

import numpy as np

from .kernels import kernel_dir

SOURCES = ("cpu_optim.cpp", "optim_rules.cuh")
NATIVE_FLAGS = ("-march=native",)
FLAGS = ("-std=c++17", "-O3", "-ffp-contract=off", "-fno-math-errno", "-shared", "-fPIC")
_C_FLOAT = {np.dtype(np.float32): ctypes.c_float, np.dtype(np.float64): ctypes.c_double}
_POINTERS = {"sgd": 3, "adam": 4}  # params, grads and the rule's state buffers
_SCALARS = {"sgd": 4, "adam": 8}  # the element-type scalars after (n, n_weights)


class CompiledStep:
    """ctypes bindings of ``gpunn_<rule>_<dtype>`` from a built library."""

    def __init__(self, path: Path) -> None:
        dll = ctypes.CDLL(str(path))
        self._functions = {}
        for dtype, c_float in _C_FLOAT.items():
            for rule in _POINTERS:
                fn = getattr(dll, f"gpunn_{rule}_{dtype.name}")
                fn.restype = None
                fn.argtypes = ([ctypes.c_void_p] * _POINTERS[rule] + [ctypes.c_longlong] * 2
                               + [c_float] * _SCALARS[rule]
                               + ([ctypes.c_int] if rule == "sgd" else []))
                self._functions[rule, dtype] = fn
        # The last buffers seen and their data pointers: training passes the same buffers
        # every step, and asking NumPy for pointers costs more than the step of a small
        # network. Weak references clear the cache as soon as any of them is freed, so an
        # id can never be reused while it is cached.
        self._ids: tuple[int, ...] | None = None
        self._pointers: list[int] = []
        self._refs: list[weakref.ref] = []

    def _forget(self, _dead: weakref.ref) -> None:
        self._ids = None

    def pointers(self, buffers: tuple) -> list[int] | None:
        """Data pointers of ``buffers``, or None unless all are contiguous arrays of one
        float dtype and one size (then the NumPy code must do the step)."""
        ids = tuple(map(id, buffers))
        if ids == self._ids:
            return self._pointers
        dtype, size = buffers[0].dtype, buffers[0].size
        if dtype not in _C_FLOAT or not all(
                isinstance(b, np.ndarray) and b.dtype == dtype and b.size == size
                and b.flags.c_contiguous for b in buffers):
            return None
        self._refs = [weakref.ref(b, self._forget) for b in buffers]
        self._ids, self._pointers = ids, [b.ctypes.data for b in buffers]
        return self._pointers

    def step(self, rule: str, pointers: list[int], params: np.ndarray, hyper) -> None:
        """One optimizer step in place on the buffers ``pointers`` came from."""
        fn = self._functions[rule, params.dtype]
        if rule == "sgd":
            fn(*pointers, params.size, hyper.n_weights, hyper.lr, hyper.momentum, hyper.l2,
               hyper.grad_scale, int(hyper.nesterov))
        else:  # 1 - beta is rounded once from double, as NumPy rounds a Python float
            fn(*pointers, params.size, hyper.n_weights, hyper.lr, hyper.beta_1,
               1 - hyper.beta_1, hyper.beta_2, 1 - hyper.beta_2, hyper.epsilon, hyper.l2,
               hyper.grad_scale)


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
        library = cache_dir() / f"cpu_optim_{hashlib.sha256(key.encode()).hexdigest()[:16]}.so"
        if library.exists():
            return library
        library.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".so.tmp", dir=library.parent)
        os.close(fd)
        try:
            result = subprocess.run([compiler, *flags, f"-I{folder}", str(folder / SOURCES[0]),
                                     "-o", tmp], capture_output=True, text=True, timeout=300)
            if result.returncode == 0:
                os.replace(tmp, library)  # atomic: a concurrent build just wins the race
                return library
            last_error = (result.stderr.strip().splitlines() or ["no message"])[-1]
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    raise RuntimeError(f"{compiler} could not compile {SOURCES[0]}: {last_error}")


@lru_cache(maxsize=1)
def load() -> tuple[CompiledStep | None, str]:
    """The compiled step (``None`` when NumPy does it instead) and a line saying why."""
    if os.environ.get("GPUNN_CPU_KERNELS", "1") == "0":
        return None, "NumPy (GPUNN_CPU_KERNELS=0)"
    if platform.system() == "Windows":
        return None, "NumPy (the compiled step is built on Linux and macOS only)"
    compiler = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++")
    if not compiler:
        return None, "NumPy: no C++ compiler found (install g++ or set CXX for a faster step)"
    try:
        library = _build(compiler)
        return CompiledStep(library), f"compiled for this CPU ({library})"
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        return None, f"NumPy: {exc}"
