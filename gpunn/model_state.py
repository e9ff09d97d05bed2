"""A fitted estimator as a model file's contents, and back: metadata and arrays.

``estimator_state`` gives a JSON-able document (architecture, hyper-parameters, counters,
curves) and NumPy arrays (weights, optimizer state, RNG key, shuffle order, classes);
``restore_estimator`` rebuilds the estimator from them after checking every field, since
a file may come from anyone: a crafted or inconsistent one raises ``ModelFileError``
naming the problem before anything is allocated or set. ``gpunn.io`` reads and writes
the files themselves.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import numpy as np
from sklearn.base import is_classifier
from sklearn.preprocessing import LabelBinarizer

from .backends.base import ACTIVATIONS, OUTPUT_LOSSES, UPDATE_RULES

FORMAT = "gpunn-model"
VERSION = 1


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
        "output": model.output, "dtype": model.dtype.name, "backend_": be.name,
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
    """Rebuild an estimator from ``estimator_state``'s output, onto ``backend``.

    ``backend`` (when given) becomes the estimator's ``backend`` parameter, so it predicts
    and trains there. Everything is checked before it is allocated or set: a crafted or
    inconsistent file raises ``ModelFileError`` naming the problem, never an error from
    deep inside NumPy later on, nor an allocation its size does not justify.
    """
    from .mlp import MLP

    units, dtype = _architecture(meta, arrays)
    est = _new_estimator(meta, backend)
    _set_fitted(est, _field(meta, "fitted", _DICT), units, meta["output"])
    if is_classifier(est):
        _set_classes(est, meta, arrays, units[-1])
    if meta["output"] != est._output_activation():
        raise ModelFileError(f"meta['output'] is {meta['output']!r}, but this "
                             f"{type(est).__name__} needs {est._output_activation()!r}")
    best_params = _like_params(arrays, "best_params")
    optimizer = _optimizer_state(meta, arrays) if "optimizer" in meta else None
    rng = _random_state(meta, arrays) if "rng" in meta else None
    indices = _index_arrays(arrays)

    be = _backend_to_load_on(est, meta)
    model = MLP(units, meta["activation"], meta["output"], be, dtype)
    model.params[...] = be.asarray(arrays["params"])
    est._model = model
    est._best_params = be.asarray(best_params)
    if optimizer is not None:
        _set_optimizer(est, model, *optimizer)
    if rng is not None:
        est._rng = rng
    if "sample_idx" in indices:
        est._sample_idx = indices["sample_idx"]
    est._split = (indices.get("train_idx"), indices.get("val_idx"))
    est._invalidate_host_weights()
    return est


# -- checking a model file's contents ---------------------------------------------------
class _Kind(NamedTuple):
    """What a JSON value must be: a test and its description for error messages."""

    ok: Callable[[Any], bool]
    what: str


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _or_none(kind: _Kind) -> _Kind:
    return _Kind(lambda v: v is None or kind.ok(v), f"{kind.what} or null")


def _list_of(kind: _Kind, plural: str) -> _Kind:
    return _Kind(lambda v: isinstance(v, list) and all(map(kind.ok, v)), f"a list of {plural}")


def _one_of(*choices: str) -> _Kind:
    return _Kind(lambda v: isinstance(v, str) and v in choices,
                 "one of " + ", ".join(map(repr, choices)))


def _int_in(low: int, high: int) -> _Kind:
    return _Kind(lambda v: _is_int(v) and low <= v <= high, f"an integer from {low} to {high}")


_DICT = _Kind(lambda v: isinstance(v, dict), "an object")
_BOOL = _Kind(lambda v: isinstance(v, bool), "true or false")
_STR = _Kind(lambda v: isinstance(v, str), "a string")
_INT = _Kind(_is_int, "an integer")
_NUMBER = _Kind(_is_number, "a number")
_NUMBERS = _list_of(_NUMBER, "numbers")
_POSITIVE_INTS = _Kind(lambda v: isinstance(v, list) and all(_is_int(k) and k > 0 for k in v),
                       "a list of positive integers")

#: The fitted attributes a model file may set on the estimator, and what each must be.
_FITTED = {
    "n_iter_": _INT, "t_": _INT, "n_outputs_": _INT, "n_layers_": _INT,
    "out_activation_": _STR, "loss_": _or_none(_NUMBER), "best_loss_": _or_none(_NUMBER),
    "loss_curve_": _NUMBERS, "validation_scores_": _or_none(_NUMBERS),
    "validation_loss_curve_": _or_none(_NUMBERS),
    "best_validation_score_": _or_none(_NUMBER), "_no_improvement_count": _INT,
    "n_features_in_": _INT, "feature_names_in_": _list_of(_STR, "strings"),
}
_COUNTERS = tuple(k for k in _FITTED if k != "feature_names_in_")
_FLOAT64 = ("loss_", "best_loss_", "loss_curve_")
_MISSING = object()


def _field(section: dict, key: str, kind: _Kind, where: str = "meta"):
    """``section[key]``, which must be present and of ``kind``."""
    value = section.get(key, _MISSING)
    if value is _MISSING:
        raise ModelFileError(f"{where} has no {key!r} entry")
    if not kind.ok(value):
        raise ModelFileError(f"{where}[{key!r}] must be {kind.what}; got {_short(value)}")
    return value


def _short(value) -> str:
    """``repr(value)``, cut to fit in an error message."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _array(arrays: dict[str, np.ndarray], name: str) -> np.ndarray:
    """``arrays[name]``, which a model file of this kind must have."""
    if name not in arrays:
        raise ModelFileError(f"the file has no {name!r} array")
    return arrays[name]


def _architecture(meta: dict, arrays: dict[str, np.ndarray]) -> tuple[list[int], np.dtype]:
    """Layer sizes and dtype, checked against the saved weights before anything is built."""
    units = _field(meta, "layer_units", _POSITIVE_INTS)
    if len(units) < 2:
        raise ModelFileError(f"meta['layer_units'] needs an input and an output layer; got {units}")
    dtype = np.dtype(_field(meta, "dtype", _one_of("float32", "float64")))
    _field(meta, "activation", _one_of(*ACTIVATIONS))
    _field(meta, "output", _one_of(*OUTPUT_LOSSES))
    n_params = sum(i * o + o for i, o in zip(units[:-1], units[1:]))
    params = _array(arrays, "params")
    if params.shape != (n_params,) or params.dtype != dtype:
        raise ModelFileError(
            f"weights of shape {params.shape} and dtype {params.dtype} do not fit layers "
            f"{units} ({n_params} {dtype} parameters)")
    return units, dtype


def _backend_to_load_on(est, meta: dict):
    """The estimator's backend, except that under plain "auto" a model that was on the CPU
    when saved stays there, as it would have in the process that trained it (a file
    without ``backend_``, from before gpunn recorded it, follows "auto")."""
    from .backends import follows_auto, get_backend

    saved_on = _field(meta, "backend_", _one_of("numpy", "cupy")) if "backend_" in meta else None
    return get_backend("numpy" if saved_on == "numpy" and follows_auto(est.backend) else est.backend)


def _new_estimator(meta: dict, backend):
    """The estimator with the saved parameters (``backend`` replacing the saved one)."""
    from . import estimators

    classes = {"MLPClassifier": estimators.MLPClassifier, "MLPRegressor": estimators.MLPRegressor}
    cls = classes[_field(meta, "estimator", _one_of(*classes))]
    params = dict(_field(meta, "params", _DICT))
    unknown = set(params) - (set(cls._get_param_names()) - {"callbacks"})
    if unknown:
        raise ModelFileError(f"meta['params'] has unknown parameters {sorted(unknown)}")
    if isinstance(params.get("hidden_layer_sizes"), list):  # JSON has no tuples
        params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
    if backend is not None:
        params["backend"] = backend
    est = cls(**params)
    est._validate_params()  # scikit-learn's checks: a value fit would refuse is refused here
    return est


def _set_fitted(est, fitted: dict, units: list[int], output: str) -> None:
    """Set the saved fitted attributes (only known ones) after checking them against the layers."""
    unknown = set(fitted) - set(_FITTED)
    if unknown:
        raise ModelFileError(f"meta['fitted'] has unknown attributes {sorted(unknown)}")
    needed = {"n_features_in_": units[0], "n_outputs_": units[-1], "n_layers_": len(units),
              "out_activation_": output}
    for key in dict.fromkeys([*needed, *fitted]):
        value = _field(fitted, key, _FITTED[key], "meta['fitted']")
        if key in needed and value != needed[key]:
            raise ModelFileError(f"meta['fitted'][{key!r}] is {value!r}, but layers {units} "
                                 f"with output {output!r} need {needed[key]!r}")
    names = fitted.get("feature_names_in_")
    if names is not None and len(names) != units[0]:
        raise ModelFileError(f"{len(names)} feature names for {units[0]} input features")
    for key, value in fitted.items():
        if key == "feature_names_in_":
            value = np.asarray(value, dtype=object)
        elif key in _FLOAT64 and value is not None:  # as training gives them, like scikit-learn
            value = [np.float64(v) for v in value] if isinstance(value, list) else np.float64(value)
        setattr(est, key, value)


def _set_classes(est, meta: dict, arrays: dict[str, np.ndarray], n_outputs: int) -> None:
    """The classifier's labels, checked to fit its ``n_outputs`` output units."""
    info = _field(meta, "label_binarizer", _DICT)
    where = "meta['label_binarizer']"
    y_type = _field(info, "y_type_", _one_of("binary", "multiclass", "multilabel-indicator"), where)
    object_classes = _field(info, "object_classes", _BOOL, where)
    classes = _array(arrays, "classes")
    if classes.ndim != 1 or classes.dtype.kind not in ("U" if object_classes else "biufU"):
        raise ModelFileError(f"classes must be a list of numbers or strings; got {classes.dtype} "
                             f"of shape {classes.shape}")
    if classes.dtype.kind == "f" and not np.isfinite(classes).all():
        raise ModelFileError(f"classes must be finite; got {_short(classes.tolist())}")
    needed = 1 if y_type == "binary" else len(classes)  # one class trains as binary
    if (len(classes) < (1 if y_type == "binary" else 2) or (y_type == "binary" and len(classes) > 2)
            or needed != n_outputs):
        raise ModelFileError(f"{len(classes)} classes ({y_type}) do not fit {n_outputs} output "
                             f"unit(s)")
    lb = LabelBinarizer()
    lb.classes_ = classes.astype(object) if object_classes else classes
    lb.y_type_, lb.sparse_input_ = y_type, _field(info, "sparse_input_", _BOOL, where)
    est._label_binarizer, est.classes_ = lb, lb.classes_


def _like_params(arrays: dict[str, np.ndarray], name: str) -> np.ndarray:
    """Array ``name``, which has the weights' layout (best weights, optimizer state)."""
    array, params = _array(arrays, name), arrays["params"]
    if array.shape != params.shape or array.dtype != params.dtype:
        raise ModelFileError(f"{name} has shape {array.shape} and dtype {array.dtype}, "
                             f"expected {params.shape} and {params.dtype} like the weights")
    return array


def _optimizer_state(meta: dict, arrays: dict[str, np.ndarray]) -> tuple[dict, list[np.ndarray]]:
    """The optimizer's saved scalars and buffers, checked."""
    opt = _field(meta, "optimizer", _DICT)
    rule = _field(opt, "rule", _one_of(*UPDATE_RULES), "meta['optimizer']")
    _field(opt, "t", _INT, "meta['optimizer']")
    _field(opt, "learning_rate", _NUMBER, "meta['optimizer']")
    return opt, [_like_params(arrays, f"optimizer_{i}") for i in range(len(UPDATE_RULES[rule]))]


def _set_optimizer(est, model, opt: dict, buffers: list[np.ndarray]) -> None:
    """Rebuild the optimizer of ``model`` from ``_optimizer_state``'s output."""
    est._optimizer = est._make_optimizer(model)
    if opt["rule"] != est._optimizer.rule:
        raise ModelFileError(f"optimizer {opt['rule']!r} does not match solver {est.solver!r}")
    for buf, saved in zip(est._optimizer.state, buffers):
        buf[...] = model.backend.asarray(saved)
    if hasattr(est._optimizer, "t"):
        est._optimizer.t = opt["t"]
    est._optimizer.schedule.learning_rate = float(opt["learning_rate"])


def _random_state(meta: dict, arrays: dict[str, np.ndarray]) -> np.random.RandomState:
    """The training run's random state: a Mersenne Twister key of 624 words and its position."""
    r, where = _field(meta, "rng", _DICT), "meta['rng']"
    _field(r, "kind", _one_of("MT19937"), where)
    pos = _field(r, "pos", _int_in(0, 624), where)
    has_gauss = _field(r, "has_gauss", _int_in(0, 1), where)
    cached = _field(r, "cached_gaussian", _NUMBER, where)
    key = _array(arrays, "rng_key")
    if key.shape != (624,) or key.dtype != np.uint32:
        raise ModelFileError(f"rng_key must be 624 uint32 words; got {key.dtype} of shape "
                             f"{key.shape}")
    rng = np.random.RandomState()
    rng.set_state(("MT19937", key, pos, has_gauss, float(cached)))
    return rng


def _index_arrays(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The saved shuffle order and early-stopping split: 1-D integer arrays."""
    names = [n for n in ("sample_idx", "train_idx", "val_idx") if n in arrays]
    for name in names:
        if arrays[name].ndim != 1 or arrays[name].dtype.kind not in "iu":
            raise ModelFileError(f"{name} must be a 1-D integer array; got {arrays[name].dtype} "
                                 f"of shape {arrays[name].shape}")
    if ("train_idx" in arrays) != ("val_idx" in arrays):
        raise ModelFileError("the early-stopping split needs both train_idx and val_idx")
    return {name: arrays[name] for name in names}


def _jsonable(value):
    """Lists, floats and ints JSON can hold (inf and NaN included, as JSON's extensions)."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    return value
