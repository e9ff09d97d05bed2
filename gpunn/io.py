"""Model files without pickle, atomic writes, and checkpoints during training.

A model file is one ``.npz`` read with ``allow_pickle=False``: NumPy arrays (weights,
optimizer state, RNG key, shuffle order, classes) plus a JSON document (format version,
architecture, hyper-parameters, counters and curves). Loading one executes nothing from
the file, so a model received from someone else is safe to open: each archive member is
checked here before it is read, and its contents by ``gpunn.model_state``.

Writes go to a temporary file in the target folder, are flushed and fsynced, then
renamed over the target, so a file on disk is always a complete model, even if the
process is killed in the middle of a save.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .model_state import FORMAT, VERSION, ModelFileError, estimator_state, restore_estimator

_META_KEY = "meta_json"


# -- files ------------------------------------------------------------------------------
#: What zipfile and ``np.load`` raise on a damaged archive: a flipped bit can make a member
#: look encrypted (RuntimeError) or compressed by an unknown method (NotImplementedError).
#: MemoryError and KeyboardInterrupt are not among them.
ARCHIVE_ERRORS = (OSError, EOFError, ValueError, KeyError, RuntimeError, zipfile.BadZipFile,
                  zlib.error)

_NPY_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0,
                (2, 0): np.lib.format.read_array_header_2_0}


def check_output_path(path: str | os.PathLike) -> Path:
    """``path`` as a ``Path``, once it is clear a file can be written there.

    Called before any work is done, so a typo in an output path costs nothing: raises
    ``ValueError`` for an empty path, ``IsADirectoryError`` for a folder, and
    ``FileNotFoundError``/``NotADirectoryError``/``PermissionError`` for a folder that
    does not exist, is not a folder, or cannot be written.
    """
    if not os.fspath(path):
        raise ValueError("the output path is empty; give a file name")
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give a file name (inside it, perhaps)")
    folder = path.parent
    if not folder.exists():
        raise FileNotFoundError(f"folder {folder} does not exist; create it first")
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} is not a folder, so {path} cannot be written")
    if not os.access(folder, os.W_OK):
        raise PermissionError(f"folder {folder} is not writable")
    return path


def save(est, path: str | os.PathLike) -> None:
    """Write ``est`` to ``path`` atomically (temporary file, fsync, rename)."""
    from sklearn.utils.validation import check_is_fitted

    path = check_output_path(path)
    check_is_fitted(est)
    meta, arrays = estimator_state(est)
    arrays[_META_KEY] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    folder = path.parent
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def load(path: str | os.PathLike, backend=None):
    """Read a model saved by ``save``.

    ``backend`` ("auto", "numpy", "cupy" or a backend instance) replaces the saved choice
    as the estimator's ``backend`` parameter, so it predicts and trains there: a model
    trained on a GPU loads with ``backend="numpy"`` (or "auto") on a CPU-only machine.

    Raises ``ModelFileError`` for anything that is not a complete, consistent gpunn model
    file of a known format version: a truncated or corrupt file, crafted metadata, wrong
    shapes, pickled objects.
    """
    from .backends import BackendUnavailableError, follows_auto, get_backend

    if isinstance(backend, str):
        backend = backend.strip().lower()  # "Numpy" names a backend here, as in get_backend
    if not follows_auto(backend):
        get_backend(backend)  # a bad choice is the caller's mistake: report it as such, first
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    with open(path, "rb") as fh:
        if fh.read(4) != b"PK\x03\x04":
            raise ModelFileError(f"{path} is not a gpunn model file (not an .npz archive)")
    arrays = _read_arrays(path)
    if _META_KEY not in arrays:
        raise ModelFileError(f"{path} is not a gpunn model file (no {_META_KEY} entry)")
    try:
        meta = json.loads(arrays.pop(_META_KEY).tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{path} has unreadable metadata: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError(f"{path} is not a gpunn model file")
    if meta.get("version") != VERSION:
        raise ModelFileError(
            f"{path} has model format version {meta.get('version')!r}; this gpunn reads "
            f"version {VERSION}. Upgrade gpunn to read it.")
    try:
        return restore_estimator(meta, arrays, backend)
    except BackendUnavailableError as exc:  # the backend it was saved with, e.g. a GPU's
        raise BackendUnavailableError(f"{exc} To load this model here: gpunn.load("
                                      f"{str(path)!r}, backend='numpy').") from None
    except ModelFileError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{path} is an incomplete or inconsistent model file: {exc!r}") from None


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array in the archive, each member checked before NumPy allocates anything."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = {_check_member(archive, info, path): info for info in archive.infolist()}
            arrays = {}
            for name, info in members.items():
                with archive.open(info) as fh:
                    arrays[name] = np.lib.format.read_array(fh, allow_pickle=False)
            return arrays
    except ModelFileError:
        raise
    except ARCHIVE_ERRORS as exc:
        raise ModelFileError(f"{path} is not a readable gpunn model file (truncated or corrupt?): "
                             f"{exc}") from None


def _check_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> str:
    """The array name of one archive member, once its header proves it safe to read.

    ``save`` stores uncompressed ``.npy`` members, so a header must account for exactly
    the member's bytes, and those fit in the file: a crafted header cannot make a small
    file allocate much, and an object (pickled) array is refused before it is read.
    """
    if not info.filename.endswith(".npy") or info.compress_type != zipfile.ZIP_STORED:
        raise ModelFileError(f"{path} is not a gpunn model file: member {info.filename!r} is "
                             "not an uncompressed .npy array")
    if info.file_size > path.stat().st_size:
        raise ModelFileError(f"{path} is corrupt: member {info.filename!r} claims "
                             f"{info.file_size} bytes, more than the whole file")
    with archive.open(info) as fh:
        read_header = _NPY_HEADERS.get(np.lib.format.read_magic(fh))
        if read_header is None:
            raise ModelFileError(f"{path}: {info.filename!r} is not in a .npy format version "
                                 "gpunn writes")
        shape, _, dtype = read_header(fh)
        header_size = fh.tell()
    if dtype.hasobject:
        raise ModelFileError(f"{path} holds pickled objects ({info.filename}), which gpunn "
                             "never loads")
    if header_size + math.prod(shape) * dtype.itemsize != info.file_size:
        raise ModelFileError(f"{path} is corrupt: {info.filename!r} declares {dtype} of shape "
                             f"{shape}, which its {info.file_size} bytes do not hold")
    return info.filename[: -len(".npy")]


class Checkpoint:
    """Training callback: save the model every ``every`` epochs (atomically).

    ``MLPClassifier(callbacks=[gpunn.Checkpoint("run.npz", every=5)])``; after a crash,
    ``gpunn.load("run.npz").resume(X, y)`` finishes the run exactly as if it had not
    been interrupted (bitwise on the CPU backend).
    """

    def __init__(self, path: str | os.PathLike, every: int = 1):
        if isinstance(every, bool) or not isinstance(every, numbers.Integral) or every < 1:
            raise ValueError(f"every must be a positive whole number of epochs; got {every!r}")
        # checked now, not at the first save: a typo in the folder costs no training
        self.path, self.every = check_output_path(path), int(every)

    def __call__(self, metrics: dict) -> None:
        if metrics["epoch"] % self.every == 0:
            est = metrics["estimator"]
            save(est, self.path)
