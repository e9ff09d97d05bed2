"""Choosing a backend: ``get_backend("auto" | "numpy" | "cupy")`` and ``GPUNN_BACKEND``.

Nothing here touches CUDA at import time: CuPy is imported and the device probed only
when a backend is first asked for, and ``"auto"`` never raises.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from .base import Backend, UpdateHyper
from .numpy_backend import NumpyBackend

BACKEND_NAMES = ("auto", "numpy", "cupy")
ENV_VAR = "GPUNN_BACKEND"
#: "auto" leaves a training step of fewer floating-point operations than this to the CPU
#: even where there is a GPU: a GPU step costs its host a few hundred microseconds of
#: kernel launches however small the network. (Run G5, bench/RESULTS.md: a 3-5-2-2 net at
#: batch 32, ~4.6 kFLOP a step, trained 3-5x faster on the CPU than on an H100; the
#: 784-256-128-10 net at batch 256, ~258 MFLOP a step, 4x faster on the GPU.)
GPU_MIN_STEP_FLOPS = 1e6

_instances: dict[str, Backend] = {}
_last_choice: dict[str, str] = {}


class BackendUnavailableError(RuntimeError):
    """A backend was asked for by name but cannot run on this machine."""


@functools.lru_cache(maxsize=1)
def cupy_status() -> tuple[bool, str]:
    """Whether the CuPy backend can run here, and why (or why not). Never raises.

    Asked once a process (a failed ``import cupy`` costs ~37 us each time it is retried,
    and every ``fit``/``predict`` on "auto" asks)."""
    try:
        import cupy
    except ImportError as exc:
        return False, (
            f"CuPy is not installed ({exc}); install gpunn[cuda13] or gpunn[cuda12] "
            "to match your CUDA driver"
        )
    except Exception as exc:  # a broken CUDA install can fail in many ways at import
        return False, f"CuPy failed to import: {exc}"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        return False, f"CuPy {cupy.__version__} found no usable CUDA driver or device: {exc}"
    if count < 1:
        return False, f"CuPy {cupy.__version__} is installed but no CUDA device is visible"
    return True, f"CuPy {cupy.__version__} with {count} CUDA device(s)"


def _make(name: str) -> Backend:
    if name not in _instances:
        if name == "numpy":
            _instances[name] = NumpyBackend()
        else:
            from .cupy_backend import CupyBackend

            _instances[name] = CupyBackend()
    return _instances[name]


def get_backend(name: str | Backend | None = None, step_flops: float | None = None) -> Backend:
    """Return a backend instance.

    Parameters
    ----------
    name : {"auto", "numpy", "cupy"}, Backend instance or None
        ``"auto"`` (and None) follow the ``GPUNN_BACKEND`` environment variable where it
        is set, so that one variable moves every estimator left on ``"auto"``; else they
        pick CuPy when it imports and sees a CUDA device, and NumPy otherwise. Asking for
        ``"cupy"`` where it cannot run raises ``BackendUnavailableError`` saying why and
        how to fix it.
    step_flops : float, optional
        The arithmetic of one training step, where the caller knows it: ``"auto"`` then
        picks NumPy for steps under ``gpunn.backends.GPU_MIN_STEP_FLOPS``, which run
        faster on the CPU.
    """
    if isinstance(name, Backend):
        return name
    requested, source = ("auto" if name is None else name), "backend"
    if str(requested).strip().lower() == "auto" and os.environ.get(ENV_VAR, "").strip():
        requested, source = os.environ[ENV_VAR], f"environment variable {ENV_VAR}"
    key = str(requested).strip().lower()
    if key not in BACKEND_NAMES:
        raise ValueError(
            f"Unknown {source} {requested!r}; expected one of {', '.join(BACKEND_NAMES)}."
        )
    asked = "asked for by name" if source == "backend" else f"set by {ENV_VAR}"
    if key == "numpy":
        _last_choice.update(name="numpy", reason=asked)
        return _make("numpy")
    ok, why = cupy_status()
    if key == "cupy":
        if not ok:
            fix = (f"Unset {ENV_VAR} or set it to 'numpy'" if source != "backend"
                   else "Use backend='numpy' (or 'auto')")
            raise BackendUnavailableError(
                f"The 'cupy' backend cannot run here: {why}. {fix} to train on the CPU."
            )
        _last_choice.update(name="cupy", reason=f"{asked}; {why}")
        return _make("cupy")
    if ok and step_flops is not None and step_flops < GPU_MIN_STEP_FLOPS:
        _last_choice.update(name="numpy", reason=(
            f"auto: a training step of ~{step_flops:,.0f} FLOPs runs faster on the CPU than "
            f"a GPU's kernel launches ({why})"))
        return _make("numpy")
    if ok:
        try:
            backend = _make("cupy")
        except Exception as exc:  # "auto" must never raise
            _last_choice.update(name="numpy", reason=f"CuPy backend failed to start: {exc}")
            return _make("numpy")
        _last_choice.update(name="cupy", reason=f"auto: {why}")
        return backend
    _last_choice.update(name="numpy", reason=f"auto: {why}")
    return _make("numpy")


def follows_auto(name: str | Backend | None) -> bool:
    """Whether ``name`` leaves the choice to "auto" itself: no backend named, and no
    ``GPUNN_BACKEND`` naming one."""
    own = name is None or (isinstance(name, str) and name.strip().lower() == "auto")
    return own and os.environ.get(ENV_VAR, "").strip().lower() in ("", "auto")


def on_gpu(x: Any) -> bool:
    """Whether ``x`` is an array on the GPU backend's device (CuPy's, where it runs).
    Answered without starting CUDA when nothing has run on the GPU and x is no CuPy array."""
    if "cupy" not in _instances and type(x).__module__.split(".")[0] != "cupy":
        return False
    if not cupy_status()[0]:
        return False
    try:
        return _make("cupy").holds(x)
    except Exception:  # a CuPy that cannot start holds nothing
        return False


def info() -> dict[str, Any]:
    """What "auto" picks here for a network big enough for the GPU (a smaller one trains
    on the CPU; a fitted estimator's ``backend_`` says where it is), why, and each
    backend's status."""
    chosen = get_backend()
    ok, why = cupy_status()
    return {
        "backend": chosen.name,
        "reason": _last_choice.get("reason", ""),
        "device": chosen.device_info(),
        "backends": {
            "numpy": (True, "always available"),
            "cupy": (ok, why),
        },
    }


def available_backends() -> list[str]:
    """Names of the backends that can run on this machine."""
    return ["numpy"] + (["cupy"] if cupy_status()[0] else [])


__all__ = [
    "GPU_MIN_STEP_FLOPS",
    "Backend",
    "BackendUnavailableError",
    "NumpyBackend",
    "UpdateHyper",
    "available_backends",
    "cupy_status",
    "follows_auto",
    "get_backend",
    "info",
    "on_gpu",
]
