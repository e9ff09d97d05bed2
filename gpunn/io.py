"""Model files without pickle, atomic writes, and checkpoints during training.

A model file is one ``.npz`` read with ``allow_pickle=False``: NumPy arrays (weights,
optimizer state, RNG key, shuffle order, classes) plus a JSON document (format version,
architecture, hyper-parameters, counters and curves). Loading one executes nothing from
the file, so a model received from someone else is safe to open.

Writes go to a temporary file in the target folder, are flushed and fsynced, then
renamed over the target, so a file on disk is always a complete model, even if the
process is killed in the middle of a save.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.preprocessing import LabelBinarizer

FORMAT = "gpunn-model"
VERSION = 1

_META_KEY = "meta_json"
_COUNTERS = ("n_iter_", "t_", "n_outputs_", "n_layers_", "out_activation_", "loss_",
             "best_loss_", "loss_curve_", "validation_scores_", "validation_loss_curve_",
             "best_validation_score_", "_no_improvement_count", "n_features_in_")


class ModelFileError(ValueError):
    """A file is not a gpunn model this version can read; nothing in it was executed."""


# -- estimator <-> (meta, arrays) ------------------------------------------------------
def estimator_state(est) -> tuple[dict, dict[str, np.ndarray]]:
    """Everything needed to rebuild ``est`` exactly: JSON-able metadata and host arrays."""
    est._load_model(est._model.backend)  # edits made to coefs_ since training are saved too
    model = est._model
    be = model.backend
    params = est.get_params()
    params.pop("callbacks")  # code is never saved; pass callbacks again after loading
    if not isinstance(params["backend"], str):
        params["backend"] = "auto"
    if params["dtype"] is not None:
        params["dtype"] = np.dtype(params["dtype"]).name
    params["hidden_layer_sizes"] = _jsonable(params["hidden_layer_sizes"])
    meta: dict[str, Any] = {
        "format": FORMAT, "version": VERSION, "estimator": type(est).__name__,
        "params": params,
        "layer_units": model.layer_units, "activation": model.activation,
        "output": model.output, "dtype": model.dtype.name,
        "fitted": {k: _jsonable(getattr(est, k)) for k in _COUNTERS if hasattr(est, k)},
    }
    arrays = {"params": be.to_numpy(model.params), "best_params": be.to_numpy(est._best_params)}
    if hasattr(est, "feature_names_in_"):
        meta["fitted"]["feature_names_in_"] = [str(n) for n in est.feature_names_in_]
    if hasattr(est, "_label_binarizer"):
        lb = est._label_binarizer
        meta["label_binarizer"] = {"y_type_": lb.y_type_, "sparse_input_": bool(lb.sparse_input_),
                                   "object_classes": lb.classes_.dtype == object}
        classes = lb.classes_
        if classes.dtype == object:
            if not all(isinstance(c, str) for c in classes):
                raise ValueError("only numeric, boolean or string class labels can be saved")
            classes = classes.astype(str)
        arrays["classes"] = classes
    optimizer = getattr(est, "_optimizer", None)
    if optimizer is not None:
        meta["optimizer"] = {"rule": optimizer.rule, "t": getattr(optimizer, "t", 0),
                             "learning_rate": optimizer.schedule.learning_rate}
        for i, buf in enumerate(optimizer.state):
            arrays[f"optimizer_{i}"] = be.to_numpy(buf)
    rng = getattr(est, "_rng", None)
    if rng is not None:
        kind, key, pos, has_gauss, cached = rng.get_state()
        meta["rng"] = {"kind": kind, "pos": int(pos), "has_gauss": int(has_gauss),
                       "cached_gaussian": float(cached)}
        arrays["rng_key"] = key
    if getattr(est, "_sample_idx", None) is not None:
        arrays["sample_idx"] = est._sample_idx
    train_idx, val_idx = getattr(est, "_split", (None, None))
    if val_idx is not None:
        arrays["train_idx"], arrays["val_idx"] = train_idx, val_idx
    return meta, arrays


def restore_estimator(meta: dict, arrays: dict[str, np.ndarray], backend=None):
    """Rebuild an estimator from ``estimator_state``'s output, onto ``backend``."""
    from . import estimators
    from .backends import get_backend
    from .mlp import MLP

    cls = {"MLPClassifier": estimators.MLPClassifier,
           "MLPRegressor": estimators.MLPRegressor}[meta["estimator"]]
    params = dict(meta["params"])
    params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
    est = cls(**params)
    for key, value in meta["fitted"].items():
        setattr(est, key, np.asarray(value, dtype=object) if key == "feature_names_in_" else value)
    be = get_backend(backend if backend is not None else est.backend)
    model = MLP(meta["layer_units"], meta["activation"], meta["output"], be, meta["dtype"])
    if arrays["params"].shape != (model.n_params,) or arrays["params"].dtype != model.dtype:
        raise ModelFileError(
            f"weights of shape {arrays['params'].shape} and dtype {arrays['params'].dtype} do not "
            f"fit layers {meta['layer_units']} ({model.n_params} {model.dtype} parameters)")
    model.params[...] = be.asarray(arrays["params"])
    est._model = model
    est._best_params = be.asarray(_same_shape(arrays["best_params"], arrays["params"], "best_params"))
    if "label_binarizer" in meta:
        info = meta["label_binarizer"]
        classes = arrays["classes"]
        lb = LabelBinarizer()
        lb.classes_ = classes.astype(object) if info["object_classes"] else classes
        lb.y_type_, lb.sparse_input_ = info["y_type_"], info["sparse_input_"]
        est._label_binarizer, est.classes_ = lb, lb.classes_
    if "optimizer" in meta:
        est._optimizer = est._make_optimizer(model)
        opt = meta["optimizer"]
        if opt["rule"] != est._optimizer.rule:
            raise ModelFileError(f"optimizer {opt['rule']!r} does not match solver {est.solver!r}")
        for i, buf in enumerate(est._optimizer.state):
            buf[...] = be.asarray(_same_shape(arrays[f"optimizer_{i}"], arrays["params"], "optimizer"))
        if hasattr(est._optimizer, "t"):
            est._optimizer.t = int(opt["t"])
        est._optimizer.schedule.learning_rate = float(opt["learning_rate"])
    if "rng" in meta:
        rng = np.random.RandomState()
        r = meta["rng"]
        rng.set_state((r["kind"], arrays["rng_key"], r["pos"], r["has_gauss"], r["cached_gaussian"]))
        est._rng = rng
    if "sample_idx" in arrays:
        est._sample_idx = arrays["sample_idx"]
    est._split = (arrays.get("train_idx"), arrays.get("val_idx"))
    est._invalidate_host_weights()
    return est


def _same_shape(array: np.ndarray, like: np.ndarray, name: str) -> np.ndarray:
    if array.shape != like.shape:
        raise ModelFileError(f"{name} has shape {array.shape}, expected {like.shape}")
    return array


def _jsonable(value):
    """Lists, floats and ints JSON can hold (inf and NaN included, as JSON's extensions)."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    return value


# -- files ------------------------------------------------------------------------------
def save(est, path: str | os.PathLike) -> None:
    """Write ``est`` to ``path`` atomically (temporary file, fsync, rename)."""
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(est)
    meta, arrays = estimator_state(est)
    arrays[_META_KEY] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
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
    """Read a model saved by ``save``; ``backend`` overrides the saved backend choice.

    Raises ``ModelFileError`` for anything that is not a complete gpunn model file of a
    known format version: a truncated or corrupt file, wrong shapes, pickled objects.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    with open(path, "rb") as fh:
        if fh.read(4) != b"PK\x03\x04":
            raise ModelFileError(f"{path} is not a gpunn model file (not an .npz archive)")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except ValueError as exc:  # pickled object arrays are refused, not executed
        raise ModelFileError(f"{path} holds pickled objects, which gpunn never loads: {exc}") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise ModelFileError(f"{path} is not a readable gpunn model file (truncated or corrupt?): {exc}") from None
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
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{path} is an incomplete or inconsistent model file: {exc!r}") from None


class Checkpoint:
    """Training callback: save the model every ``every`` epochs (atomically).

    ``MLPClassifier(callbacks=[gpunn.Checkpoint("run.npz", every=5)])``; after a crash,
    ``gpunn.load("run.npz").resume(X, y)`` finishes the run exactly as if it had not
    been interrupted (bitwise on the CPU backend).
    """

    def __init__(self, path: str | os.PathLike, every: int = 1):
        if int(every) < 1:
            raise ValueError(f"every must be a positive number of epochs; got {every!r}")
        self.path, self.every = Path(path), int(every)

    def __call__(self, metrics: dict) -> None:
        if metrics["epoch"] % self.every == 0:
            est = metrics["estimator"]
            save(est, self.path)
