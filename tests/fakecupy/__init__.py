"""A test-only stand-in for the slice of CuPy that ``CupyBackend`` uses.

Memory is NumPy's; ``RawModule`` builds the exact code string it is given with the CUDA
emulator (``tests/cuda_emu``), so ``CupyBackend``'s launch configurations, dtype
dispatch and argument packing run for real in CI, on our real kernels. Its arrays are a
NumPy subclass, ``fakecupy.ndarray``, so code can tell "device" arrays from host ones as
it tells CuPy's. What it does not model: asynchrony, and CuPy's refusal to convert device
arrays to NumPy implicitly (tests check that path's results are device arrays instead).
Lives under tests/ only: users cannot import it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from cuda_emu import HERE as EMU_DIR
from cuda_emu import Library

__version__ = "0.0-standin"
#: thread schedule of every launch: "inorder", "reversed" or "random"
SCHEDULE = "random"


class ndarray(np.ndarray):
    """A "device" array: NumPy memory, a type of its own (results of ops on it keep it)."""


def _device(array: np.ndarray) -> ndarray:
    return array.view(ndarray)


def asarray(x, dtype=None):
    return _device(np.asarray(x, dtype=dtype))


def ascontiguousarray(x, dtype=None):
    return _device(np.ascontiguousarray(x, dtype=dtype))


def empty(shape, dtype=float):
    return _device(np.empty(shape, dtype))


def zeros(shape, dtype=float):
    return _device(np.zeros(shape, dtype))


take, matmul, isfinite = np.take, np.matmul, np.isfinite


def asnumpy(x):
    """A host copy, of the base NumPy type (as ``cupy.asnumpy`` returns ``numpy.ndarray``)."""
    return np.array(x, subok=False)


def sum(x, axis=None, out=None):  # noqa: A001 - CuPy's name
    return np.sum(x, axis=axis, out=out)


class RawModule:
    """Compiles ``code`` for the emulator; ``get_function("k<float>")`` returns a launcher."""

    def __init__(self, code: str, options=(), name_expressions=()):
        assert "--std=c++17" in options, options
        digest = hashlib.sha256(code.encode()).hexdigest()[:16]
        path = EMU_DIR / "_build" / f"module_{digest}.cu"
        path.parent.mkdir(exist_ok=True)
        if not path.exists():
            path.write_text(code)
        self.library = Library([Path(path)])
        self.name_expressions = list(name_expressions)

    def get_function(self, name: str):
        if name not in self.name_expressions:
            raise KeyError(f"{name} was not among the name_expressions given to RawModule")

        def launch(grid, block, args, shared_mem=0):
            assert isinstance(grid, tuple) and isinstance(block, tuple), (grid, block)
            assert block[0] % 32 == 0 and block[0] <= 1024, f"block size {block} is not whole warps"
            self.library.launch(name, grid, block, args, shared_mem, schedule=SCHEDULE)

        return launch


class _Device:
    id = 0
    compute_capability = "90"


cuda = SimpleNamespace(
    Device=_Device,
    runtime=SimpleNamespace(
        getDeviceCount=lambda: 1,
        getDeviceProperties=lambda i: {"name": b"CUDA emulator (tests/cuda_emu)"},
        memGetInfo=lambda: (1 << 30, 1 << 30),
        runtimeGetVersion=lambda: 13000,
        deviceSynchronize=lambda: None,
    ),
)
