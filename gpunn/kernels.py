"""Finding, assembling and compiling gpunn's CUDA kernels (``kernels/*.cu``).

The kernels are CUDA C templates on the element type, compiled at first use with NVRTC
through ``cupy.RawModule`` and cached per dtype (CuPy caches compiled modules per device
on disk too). They ship inside the wheel as ``gpunn/_kernels/``; in a source checkout
they are read from ``kernels/`` at the repository root.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

#: the shared headers, in include order, then the kernel files (with their own headers)
HEADER_FILES = ("activation_rules.cuh", "common.cuh", "optim_rules.cuh")
KERNEL_FILES = ("activations.cu", "softmax.cu", "losses.cu", "optim.cu", "gather.cu")
KERNELS = (
    "bias_act", "act_grad", "act_grad_col_sum", "softmax_rows", "loss_grad_softmax", "loss_grad_elementwise",
    "sum_squares", "finish_grad", "fused_sgd", "fused_adam", "take_rows",
)
CTYPES = {"float32": "float", "float64": "double"}
#: NVRTC options for every build; CuPy adds the GPU architecture itself.
NVRTC_OPTIONS = ("--std=c++17",)

_INCLUDE = re.compile(r'^\s*#\s*include\s+"\w+\.cuh"\s*$', re.MULTILINE)


def kernel_dir() -> Path:
    """The folder holding the .cu files: the installed package's, else the source tree's."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_kernels", here.parent / "kernels"):
        if (candidate / "common.cuh").is_file():
            return candidate
    raise FileNotFoundError(
        f"gpunn's CUDA kernels were not found next to {here}; reinstall gpunn "
        "(the wheel ships them in gpunn/_kernels)"
    )


@lru_cache(maxsize=1)
def source() -> str:
    """One translation unit: the shared headers, then every kernel file (no #include left)."""
    folder = kernel_dir()
    parts = [_INCLUDE.sub("", (folder / name).read_text()) for name in HEADER_FILES + KERNEL_FILES]
    return "\n".join(parts)


def name_expressions(dtype_name: str) -> list[str]:
    """The template instantiations for one dtype, e.g. ``["bias_act<float>", ...]``."""
    ctype = CTYPES[dtype_name]
    return [f"{name}<{ctype}>" for name in KERNELS]


class KernelSet:
    """The compiled kernels for one dtype: ``kernels.get("bias_act")`` -> launchable function."""

    def __init__(self, cupy: Any, dtype_name: str):
        self.names = name_expressions(dtype_name)
        self.module = cupy.RawModule(code=source(), options=NVRTC_OPTIONS,
                                     name_expressions=self.names)
        self._ctype = CTYPES[dtype_name]

    def get(self, kernel: str) -> Any:
        """The launchable function (callers keep it: ``CupyBackend._kernel`` does)."""
        return self.module.get_function(f"{kernel}<{self._ctype}>")
