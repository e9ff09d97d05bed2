"""Loading data: scikit-learn's bundled sets, CSV files, NumPy files and MNIST-style IDX.

Every loader returns ``(X, y)`` NumPy arrays and raises a ``ValueError`` or
``FileNotFoundError`` whose message names the file and the problem.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from .io import ARCHIVE_ERRORS

BUNDLED = ("digits", "iris", "wine", "breast_cancer", "diabetes")
CLASSIFICATION = ("digits", "iris", "wine", "breast_cancer")

# IDX type codes (the third byte of the magic number) -> big-endian NumPy dtypes
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def load_bundled(name: str) -> tuple[np.ndarray, np.ndarray]:
    """One of scikit-learn's offline data sets by name (see ``BUNDLED``)."""
    import sklearn.datasets

    if name not in BUNDLED:
        raise ValueError(f"unknown bundled data set {name!r}; choose one of {', '.join(BUNDLED)}")
    return getattr(sklearn.datasets, f"load_{name}")(return_X_y=True)


def load_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (gzipped or not): magic, dtype code, dimensions, then the data."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:
        raise ValueError(f"{path} is not a readable IDX file: {exc}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise ValueError(f"{path} is not a valid IDX file (truncated header)")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(
            f"{path} is truncated or corrupt: header says shape {shape} "
            f"({expected} bytes of data) but the file holds {len(raw) - header}"
        )
    return np.frombuffer(raw, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _find_idx(folder: Path, stem: str) -> Path:
    for name in (f"{stem}.gz", stem, f"{stem.replace('.idx', '-idx')}.gz", stem.replace(".idx", "-idx")):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"no {stem}[.gz] in {folder}")


def load_mnist(folder: str | Path, kind: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """MNIST-style images (flattened, scaled to [0, 1], float32) and labels from a folder.

    ``kind`` is ``"train"`` or ``"t10k"`` (the test split), as in the original file names.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"MNIST folder not found: {folder}")
    images = load_idx(_find_idx(folder, f"{kind}-images.idx3-ubyte"))
    labels = load_idx(_find_idx(folder, f"{kind}-labels.idx1-ubyte"))
    if len(images) != len(labels):
        raise ValueError(f"{folder}: {len(images)} images but {len(labels)} labels")
    return (images.reshape(len(images), -1) / np.float32(255)).astype(np.float32), labels.astype(np.int64)


def load_csv(path: str | Path, target: str | None, labelled: bool = True):
    """A CSV with a header row; ``target`` names the label column (default: the last).

    With ``labelled=False`` every column is a feature and only X is returned (for
    predicting on new rows).
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CSV file not found: {path}")
    frame = pd.read_csv(path)
    if labelled:
        target = target if target is not None else frame.columns[-1]
    if target is not None and target not in frame.columns:
        raise ValueError(f"column {target!r} not in {path}; columns are {', '.join(map(str, frame.columns))}")
    features = frame.drop(columns=[target]) if target is not None else frame
    non_numeric = [c for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
    if non_numeric:
        raise ValueError(f"non-numeric feature columns in {path}: {', '.join(map(str, non_numeric))}; "
                         "encode them as numbers first")
    if not labelled:
        return features.to_numpy()
    return features.to_numpy(), frame[target].to_numpy()


def load_numpy(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """An ``.npz`` with arrays ``X`` and ``y``, or ``X.npy`` beside a ``y.npy`` in one folder."""
    path = Path(path)
    if path.suffix == ".npz":
        if not path.is_file():
            raise FileNotFoundError(f"file not found: {path}")
        try:
            with np.load(path, allow_pickle=False) as data:
                files, arrays = data.files, {k: data[k] for k in ("X", "y") if k in data.files}
        except ARCHIVE_ERRORS as exc:
            raise _unreadable(path, exc) from None
        if len(arrays) < 2:
            raise ValueError(f"{path} must hold arrays named 'X' and 'y'; it has {', '.join(files)}")
        return _checked_X(arrays["X"], path), arrays["y"]
    x_path = path if path.suffix == ".npy" else path / "X.npy"
    y_path = x_path.with_name("y.npy")
    for p in (x_path, y_path):
        if not p.is_file():
            raise FileNotFoundError(f"file not found: {p} (expected X.npy and y.npy side by side)")
    return _checked_X(_load_npy(x_path), x_path), _load_npy(y_path)


def _load_npy(path: Path) -> np.ndarray:
    """The array of one ``.npy`` file; a damaged file is a ValueError naming it."""
    try:
        return np.load(path, allow_pickle=False)
    except ARCHIVE_ERRORS as exc:
        raise _unreadable(path, exc) from None


def _unreadable(path: Path, exc: Exception) -> ValueError:
    """What NumPy or zipfile raised on a damaged file, as one ValueError naming the file."""
    return ValueError(f"{path} is not a readable NumPy file (truncated or corrupt?): {exc}")


def _checked_X(X, path: Path) -> np.ndarray:
    """X, which must be a 2-D numeric array (one row per sample), else a ValueError."""
    if isinstance(X, np.ndarray) and X.ndim == 2 and X.dtype.kind in "biuf":
        return X
    got = f"{X.dtype} of shape {X.shape}" if isinstance(X, np.ndarray) else type(X).__name__
    hint = "; for a single feature, save X.reshape(-1, 1)" if np.ndim(X) == 1 else ""
    raise ValueError(f"X in {path} must be a 2-D numeric array, one row per sample; "
                     f"got {got}{hint}")


def load(source: str, target: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Load ``source``: a bundled name, a CSV, ``.npz``/``.npy`` files, or an IDX folder."""
    if source in BUNDLED:
        return load_bundled(source)
    path = Path(source)
    if path.suffix == ".csv":
        return load_csv(path, target)
    if path.suffix in (".npz", ".npy") or (path / "X.npy").is_file():
        return load_numpy(path)
    if path.is_dir():
        return load_mnist(path, "train")
    if not path.exists():
        raise FileNotFoundError(
            f"{source!r} is neither a bundled data set ({', '.join(BUNDLED)}) nor an existing file"
        )
    raise ValueError(f"don't know how to read {source!r}: use .csv, .npz, .npy or an IDX folder")
