"""Run gpunn's CUDA kernels on the CPU, for tests: ``launch("bias_act<float>", grid, block, args)``.

The same ``.cu`` files the GPU compiles are built with g++ and ``cuda_emu.h`` (each GPU
thread a fiber; real barriers, warp shuffles and atomics; selectable schedules) into a
shared library, cached under ``_build/`` by a hash of the sources. ``args`` are NumPy
arrays (passed as pointers; ``None`` is a null pointer) and NumPy scalars whose type must
match the kernel parameter exactly (np.int32 for int, np.int64 for long long, the element
type for T, np.float64 for double): a Python float is refused, as it would be a silent
bug on a real GPU.
"""

from __future__ import annotations

import ctypes
import hashlib
import re
import subprocess
from functools import lru_cache
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
KERNEL_DIR = REPO / "kernels"
SCHEDULES = {"inorder": 0, "reversed": 1, "random": 2}
CTYPES = {"float": np.float32, "double": np.float64}
_SIGNATURE = re.compile(r"template\s*<typename T>\s*__global__\s+void\s+(\w+)\s*\(([^)]*)\)", re.S)
_POINTEES = {"double": np.float64, "long long": np.int64}  # besides T
_SCALARS = {"int": (np.int32, ctypes.c_int), "long long": (np.int64, ctypes.c_longlong),
            "double": (np.float64, ctypes.c_double), "unsigned": (np.uint32, ctypes.c_uint)}


class KernelLaunchError(RuntimeError):
    """The emulator found a deadlock or another launch failure."""


def _parse(files: list[Path]) -> dict[str, list[str]]:
    """kernel name -> parameter type strings (``const T*``, ``int``, ...)."""
    kernels = {}
    for f in files:
        for name, params in _SIGNATURE.findall(f.read_text()):
            kernels[name] = [p.rsplit(None, 1)[0].replace(" *", "*").strip()
                             for p in params.replace("\n", " ").split(",")]
    return kernels


def _c_param(ptype: str, ctype: str) -> str:
    return ptype.replace("T", ctype) if ptype in ("T", "T*", "const T*") else ptype


def _wrappers(files: list[Path], kernels: dict[str, list[str]]) -> str:
    lines = ['#include "cuda_emu.h"'] + [f'#include "{f}"' for f in files] + ["#include <string>"]
    for name, params in kernels.items():
        for ctype in CTYPES:
            decl = ", ".join(f"{_c_param(p, ctype)} a{i}" for i, p in enumerate(params))
            call = ", ".join(f"a{i}" for i in range(len(params)))
            lines.append(
                f'extern "C" const char* emu_{name}_{ctype}(unsigned grid, unsigned block, '
                f"int schedule, unsigned seed, {decl}) {{\n"
                f"  static std::string err;\n"
                f"  err = emu::launch(grid, block, schedule, seed, [=] {{ {name}<{ctype}>({call}); }});\n"
                f"  return err.c_str();\n}}")
    return "\n".join(lines) + "\n"


class Library:
    """A set of .cu files built for the emulator (optionally with AddressSanitizer)."""

    def __init__(self, files: list[Path], sanitize: bool = False):
        self.files = [Path(f).resolve() for f in files]
        self.kernels = _parse(self.files)
        source = _wrappers(self.files, self.kernels)
        flags = ["-std=c++17", "-O1", "-g", "-shared", "-fPIC", f"-I{KERNEL_DIR}", f"-I{HERE}"]
        if sanitize:
            flags += ["-fsanitize=address", "-fno-omit-frame-pointer"]
        headers = sorted(KERNEL_DIR.glob("*.cuh"))  # the .cu files include them
        digest = hashlib.sha256("".join([source, *(f.read_text() for f in self.files + headers),
                                         (HERE / "cuda_emu.h").read_text(), *flags]).encode())
        build = HERE / "_build"
        build.mkdir(exist_ok=True)
        lib = build / f"emu_{digest.hexdigest()[:16]}.so"
        if not lib.exists():
            src = build / f"{lib.stem}.cpp"
            src.write_text(source)
            tmp = lib.with_suffix(".tmp.so")
            subprocess.run(["g++", *flags, str(src), "-o", str(tmp)], check=True,
                           capture_output=True, text=True)
            tmp.replace(lib)
        self.path = lib
        self.dll = ctypes.CDLL(str(lib))

    def launch(self, name_expression: str, grid, block, args, shared_mem: int = 0,
               schedule: str = "inorder", seed: int = 0) -> None:
        name, ctype = re.fullmatch(r"(\w+)<(\w+)>", name_expression).groups()
        params = self.kernels[name]
        if len(args) != len(params):
            raise TypeError(f"{name_expression} takes {len(params)} arguments, got {len(args)}")
        element = CTYPES[ctype]
        c_args, argtypes = [], [ctypes.c_uint, ctypes.c_uint, ctypes.c_int, ctypes.c_uint]
        for i, (ptype, arg) in enumerate(zip(params, args)):
            if ptype.endswith("*"):
                pointee = ptype.removeprefix("const ").removesuffix("*").strip()
                want = _POINTEES.get(pointee, element)
                if arg is not None:
                    if not isinstance(arg, np.ndarray) or arg.dtype != want or not arg.flags.c_contiguous:
                        raise TypeError(f"{name_expression} argument {i} ({ptype}) needs a contiguous "
                                        f"{np.dtype(want)} array, got {type(arg).__name__} "
                                        f"{getattr(arg, 'dtype', '')}")
                c_args.append(None if arg is None else arg.ctypes.data)
                argtypes.append(ctypes.c_void_p)
            else:
                want, ctype_of = (element, ctypes.c_float if element == np.float32 else ctypes.c_double) \
                    if ptype == "T" else _SCALARS[ptype]
                if type(arg) is not want:
                    raise TypeError(f"{name_expression} argument {i} ({ptype}) must be a "
                                    f"{want.__name__} scalar, got {type(arg).__name__} {arg!r}")
                c_args.append(arg.item())
                argtypes.append(ctype_of)
        fn = getattr(self.dll, f"emu_{name}_{ctype}")
        fn.argtypes, fn.restype = argtypes, ctypes.c_char_p
        grid = grid[0] if isinstance(grid, tuple) else grid
        block = block[0] if isinstance(block, tuple) else block
        error = fn(int(grid), int(block), SCHEDULES[schedule], int(seed), *c_args)
        if error:
            raise KernelLaunchError(f"{name_expression}: {error.decode()}")


@lru_cache(maxsize=None)
def kernels_library(sanitize: bool = False) -> Library:
    """gpunn's own kernels (every file the GPU module is built from)."""
    from gpunn.kernels import KERNEL_FILES

    return Library([KERNEL_DIR / f for f in KERNEL_FILES], sanitize)


def launch(name_expression: str, grid, block, args, shared_mem: int = 0,
           schedule: str = "inorder", seed: int = 0) -> None:
    """Run one of gpunn's kernels on the CPU (see the module docstring)."""
    kernels_library().launch(name_expression, grid, block, args, shared_mem, schedule, seed)
