"""``MLPClassifier`` and ``MLPRegressor``: scikit-learn's estimators, on gpunn's engine.

Same constructor parameters, fitted attributes and methods as scikit-learn 1.9's classes
(so swapping the import gives the same model for the same ``random_state``), plus:

* ``backend``: ``"auto"`` (GPU through CuPy when present, else CPU; a network whose
  training steps are too small to pay for a GPU's kernel launches trains on the CPU),
  ``"numpy"``, ``"cupy"``;
* ``dtype``: ``None`` follows X like scikit-learn (float32 stays float32, everything else
  becomes float64), or ``"float32"`` / ``"float64"`` to choose;
* ``batch_size="full"``: full-batch gradient descent;
* ``callbacks``: callables called after each epoch with a metrics dict; one that returns
  True stops training;
* ``validation_loss_curve_``: the validation loss per epoch when ``early_stopping=True``;
* ``backend_``: where the fitted model is, ``"numpy"`` or ``"cupy"``.
"""

from __future__ import annotations

import copy
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.metrics import accuracy_score, r2_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import assert_all_finite, check_random_state, column_or_1d
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import _check_partial_fit_first_call, type_of_target, unique_labels
from sklearn.utils.validation import (
    _check_sample_weight,
    _num_features,
    _num_samples,
    check_array,
    check_is_fitted,
    validate_data,
)

from . import backends
from .backends import follows_auto, get_backend, on_gpu
from .backends.base import Backend
from .mlp import MLP, training_flops
from .optim import SGD, Adam
from .rollback import CallRollback
from .schedules import LearningRateSchedule
from .trainer import fit_lbfgs, fit_stochastic

_STOCHASTIC_SOLVERS = ("sgd", "adam")
_DTYPES = {"float32": np.float32, "float64": np.float64}


class _BaseMLP(BaseEstimator):
    """Shared fitting and prediction; the subclasses add targets, outputs and scores."""

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions({"identity", "logistic", "tanh", "relu"})],
        "solver": [StrOptions({"lbfgs", "sgd", "adam"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto", "full"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), Options(Real, {np.inf})],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        "backend": [StrOptions({"auto", "numpy", "cupy"}), Backend],
        "dtype": [None, StrOptions(set(_DTYPES)), type, np.dtype],
        "callbacks": [None, list, tuple],
    }

    _is_classifier = False

    def _validate_params(self) -> None:
        """scikit-learn's parameter validation, skipped while every parameter is the very
        object last validated: ``partial_fit`` runs it at each call, and it costs ~0.1 ms.
        The validated values are kept, so none of their ids can be reused meanwhile."""
        values = tuple(getattr(self, name) for name in self._parameter_constraints)
        last = self.__dict__.get("_validated_params")
        if last is not None and all(a is b for a, b in zip(last, values)):
            return
        super()._validate_params()
        self._validated_params = values

    # -- fitting ------------------------------------------------------------------------
    def fit(self, X, y, sample_weight=None):
        """Fit the model to data matrix X and targets y.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : the fitted estimator.
        """
        self._validate_params()
        return self._fit(X, y, sample_weight, incremental=False)

    def resume(self, X, y, sample_weight=None):
        """Continue an interrupted ``fit`` (e.g. one loaded from a ``Checkpoint``) to ``max_iter``.

        Pass the same data the run was started with: the saved optimizer state, random
        state, shuffle order and early-stopping split make the result equal (bitwise on
        the CPU backend) to the run that was never interrupted.
        """
        check_is_fitted(self)
        if self.solver not in _STOCHASTIC_SOLVERS or getattr(self, "_rng", None) is None:
            raise ValueError("resume needs a model saved during or after a sgd/adam fit.")
        return self._fit(X, y, sample_weight, incremental=False, resume=True)

    def save(self, path) -> None:
        """Save to one ``.npz`` file, atomically and without pickle; read with ``gpunn.load``."""
        from .io import save

        save(self, path)

    def __getstate__(self):
        """Pickle device buffers as host arrays (through the same state as ``save``)."""
        state = dict(super().__getstate__())  # object.__getstate__ may return __dict__ itself
        if "_model" in state:
            from .model_state import estimator_state

            state["_gpunn_state"] = estimator_state(self)
            for key in ("_model", "_optimizer", "_best_params", "_rng", "_sample_idx", "_split",
                        "_host_coefs", "_host_intercepts"):
                state.pop(key, None)
        return state

    def __setstate__(self, state):
        saved = state.pop("_gpunn_state", None)
        super().__setstate__(state)
        if saved is not None:
            from .model_state import restore_estimator

            restored = restore_estimator(*saved)
            for key in ("_model", "_optimizer", "_best_params", "_rng", "_sample_idx", "_split",
                        "_host_coefs", "_host_intercepts"):
                if key in restored.__dict__:
                    setattr(self, key, restored.__dict__[key])

    def _fit(self, X, y, sample_weight, incremental: bool, resume: bool = False):
        """``_train``; if it raises (bad input, divergence), the estimator is as before."""
        with CallRollback(self):
            return self._train(X, y, sample_weight, incremental, resume)

    def _train(self, X, y, sample_weight, incremental: bool, resume: bool):
        hidden = self._hidden_layers()
        callbacks = list(self.callbacks or [])
        for cb in callbacks:
            if not callable(cb):
                raise TypeError(f"callbacks must be callables taking a metrics dict; got {cb!r}.")
        first_pass = not resume and (
            not hasattr(self, "_model") or (not self.warm_start and not incremental))
        backend = self._backend_for(X, first_pass, y, sample_weight, incremental)
        X, Y = self._validate_input(X, y, backend, incremental or resume, reset=first_pass)
        _check_finite_and_magnitude(X, backend)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(_host(sample_weight, backend),
                                                 _host_shape_of(X, backend),
                                                 ensure_non_negative=True)
            if not sample_weight.sum() > 0:
                raise ValueError("sample_weight must not be all zeros: nothing would be learnt.")
        random_state = self._rng if resume else _fresh_random_state(self)
        if first_pass:
            self._initialize(Y, [X.shape[1], *hidden, Y.shape[1]], X.dtype, backend, random_state)
        else:
            self._load_model(backend)
        self._invalidate_host_weights()  # the model holds the weights until training ends

        model = self._model
        self._training = True
        try:
            if self.solver in _STOCHASTIC_SOLVERS:
                if not resume and (not incremental or not hasattr(self, "_optimizer")):
                    self._optimizer = self._make_optimizer(model)
                try:
                    fit_stochastic(self, model, self._optimizer, X, Y, sample_weight, random_state,
                                   incremental, callbacks, resume=resume)
                finally:
                    for cb in callbacks:
                        getattr(cb, "close", lambda: None)()
                    if not incremental:  # partial_fit keeps them for the next call
                        model.release_buffers()
            else:
                fit_lbfgs(self, model, X, Y, sample_weight)
        finally:
            self._training = False
        return self

    def _initialize(self, Y, layer_units, dtype, backend: Backend, random_state) -> None:
        """First fit: set the architecture attributes and draw the initial weights."""
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = Y.shape[1]
        self.n_layers_ = len(layer_units)
        self.out_activation_ = self._output_activation()
        self._model = MLP(layer_units, self.activation, self.out_activation_, backend, dtype)
        self._model.init_weights(random_state)
        self._best_params = self._model.params.copy()
        if self.solver in _STOCHASTIC_SOLVERS:
            self.loss_curve_ = []
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_ = []
                self.validation_loss_curve_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.validation_loss_curve_ = None
                self.best_validation_score_ = None

    def _make_optimizer(self, model: MLP):
        if self.solver == "sgd":
            schedule = LearningRateSchedule(self.learning_rate, self.learning_rate_init, self.power_t)
            return SGD(model.backend, model.params, schedule, self.momentum, self.nesterovs_momentum)
        return Adam(model.backend, model.params, self.learning_rate_init,
                    self.beta_1, self.beta_2, self.epsilon)

    @property
    def backend_(self) -> str:
        """The backend the fitted model is on, ``"numpy"`` or ``"cupy"``: where it trained
        (``backend="auto"`` may have chosen either), or where it was moved since (by
        another ``backend``, or under "auto" by data on the GPU)."""
        check_is_fitted(self)
        return self._model.backend.name

    # -- weights: the model's buffer holds them; coefs_/intercepts_ are read from it ------
    @property
    def coefs_(self) -> list:
        """Weight matrices, one per layer (NumPy arrays: views of the model's buffer on the
        CPU, a copy fetched from the GPU when first read after training)."""
        return self._host_weights()[0]

    @coefs_.setter
    def coefs_(self, coefs: list) -> None:
        self._hand_in_weights(coefs, self._host_weights()[1])

    @property
    def intercepts_(self) -> list:
        """Bias vectors, one per layer (NumPy arrays, as ``coefs_``)."""
        return self._host_weights()[1]

    @intercepts_.setter
    def intercepts_(self, intercepts: list) -> None:
        self._hand_in_weights(self._host_weights()[0], intercepts)

    def _host_weights(self) -> tuple[list, list]:
        """``coefs_`` and ``intercepts_``, fetched from the model once after each training.

        Fetched only when read, so a stream of ``partial_fit`` calls or predictions on the
        GPU moves no weights between host and device. Once handed out they may be edited
        in place, and ``_load_model`` copies them back before the model is used again.
        Read during training (from a callback), they are the weights of that moment, and
        on the GPU a copy whose edits training does not see.
        """
        if self.__dict__.get("_host_coefs") is not None:
            return self._host_coefs, self._host_intercepts
        if "_model" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__} has no weights before fit.")
        weights = self._model.host_weights()
        if not self.__dict__.get("_training"):
            self._host_coefs, self._host_intercepts = weights
        return weights

    def _hand_in_weights(self, coefs, intercepts) -> None:
        """Assigned weights, checked now (count, shapes, real numbers), used from the next call."""
        if self.__dict__.get("_training"):
            raise RuntimeError("coefs_ and intercepts_ cannot be assigned during training; "
                               "assign them before fit (with warm_start=True) or after it.")
        self._host_coefs, self._host_intercepts = self._checked_host_weights(coefs, intercepts)

    def _checked_host_weights(self, coefs, intercepts) -> tuple[list, list]:
        """Weights for the model, as NumPy arrays, once their count, shapes and dtypes fit
        (a ValueError naming the first that does not, e.g. after ``coefs_[0] = ...``)."""
        model = self._model
        return tuple(_checked_weights(name, arrays, [w.shape for w in layers], model.backend)
                     for name, arrays, layers in (("coefs_", coefs, model.coefs),
                                                  ("intercepts_", intercepts, model.intercepts)))

    def _invalidate_host_weights(self) -> None:
        """The model's weights are the ones to use: fetch them again when read."""
        self._host_coefs = self._host_intercepts = None

    def _hidden_layers(self) -> list[int]:
        hidden = self.hidden_layer_sizes
        hidden = list(hidden) if hasattr(hidden, "__iter__") else [hidden]
        if any(h <= 0 for h in hidden):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {hidden}.")
        return hidden

    def _backend_for(self, X, new_model: bool, y=None, sample_weight=None,
                     incremental: bool = False) -> Backend:
        """Where a call on X runs: ``get_backend(self.backend)``, except under plain "auto"
        (no backend named, here or in ``GPUNN_BACKEND``), where data on the GPU runs there,
        a trained model stays where it is, and a new model whose training steps are too
        small to pay for a GPU's kernel launches trains on the CPU
        (``gpunn.backends.GPU_MIN_STEP_FLOPS``)."""
        if not follows_auto(self.backend) or any(map(on_gpu, (X, y, sample_weight))):
            return get_backend(self.backend)
        if not new_model:
            return self._model.backend
        if not backends.cupy_status()[0]:  # no GPU: nothing to weigh
            return get_backend(self.backend)
        try:
            n_samples, n_features = _num_samples(X), _num_features(X)
            flops = self._step_flops(n_samples, n_features, 1)
            if flops < backends.GPU_MIN_STEP_FLOPS:  # unless the outputs make it a GPU's step
                flops = self._step_flops(n_samples, n_features, self._output_units(y, incremental))
        except Exception:  # X's size unreadable: host data, which validation will check
            return get_backend("numpy")
        return get_backend(self.backend, step_flops=flops)

    def _step_flops(self, n_samples: int, n_features: int, n_outputs: int) -> int:
        """The arithmetic of one training step (``training_flops`` x the batch's rows)."""
        full_batch = self.solver == "lbfgs" or self.batch_size == "full"
        rows = n_samples if full_batch else 200 if self.batch_size == "auto" else self.batch_size
        return min(rows, n_samples) * training_flops(
            [n_features, *self._hidden_layers(), n_outputs])

    def _output_units(self, y, incremental: bool) -> int:
        """The output layer's width for targets y, read before y is validated."""
        return np.shape(y)[1] if np.ndim(y) == 2 else 1

    def _load_model(self, backend: Backend) -> None:
        """Bring the model onto ``backend`` with the ``coefs_``/``intercepts_`` handed out
        (and possibly edited); nothing moves when they were not read since training. An
        ``activation`` set since training is used from now on, as scikit-learn does."""
        model = self._model
        if model.backend is not backend or model.activation != self.activation:
            weights = self._checked_host_weights(*self._host_weights())
            if model.backend is not backend and "_optimizer" in self.__dict__:
                self._optimizer = _moved_optimizer(self._optimizer, backend)  # the stream goes on
            model = MLP(model.layer_units, self.activation, model.output, backend, model.dtype)
            self._model = model
            model.set_weights(*weights)
        elif self.__dict__.get("_host_coefs") is not None:  # checked first: the model stays whole
            model.set_weights(*self._checked_host_weights(self._host_coefs, self._host_intercepts))

    def _resolve_dtype(self, incremental_fit: bool):
        """The float dtypes X may be converted to, as scikit-learn's ``validate_data`` takes them."""
        if incremental_fit:
            return self._model.dtype
        if self.dtype is None:
            return (np.float64, np.float32)
        try:
            dtype = np.dtype(_DTYPES.get(self.dtype, self.dtype))
        except TypeError:
            dtype = None
        if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise ValueError(f"dtype must be None, 'float32' or 'float64'; got {self.dtype!r}.")
        return dtype

    # -- prediction ---------------------------------------------------------------------
    def _forward(self, X) -> np.ndarray:
        """Output activations for X (on the host), validated like scikit-learn's ``predict``.

        X may be a device array of the backend: it is checked and used where it is.
        """
        check_is_fitted(self)
        backend = self._backend_for(X, new_model=False)
        if backend.holds(X):
            X = _device_X(self, X, backend, reset=False, dtype=(np.float64, np.float32))
            if not backend.all_finite(X):
                raise ValueError("Input X contains NaN or infinity.")
        else:
            _refuse_other_devices(X, "X", backend)
            X = validate_data(self, X, reset=False, dtype=(np.float64, np.float32))
        self._load_model(backend)
        model = self._model
        output = model.predict_output(model.backend.asarray(X, model.dtype))
        return model.backend.to_numpy(output)

    def _like_input(self, result: np.ndarray, X):
        """``result`` as a device array when X was one (labels that are strings stay here)."""
        backend = self._model.backend
        if backend.holds(X) and result.dtype.kind in "biuf":
            return backend.asarray(result)
        return result

    def _score(self, X, y, sample_weight) -> float:
        """Accuracy or R^2 on the host; X and y may be device arrays."""
        output = self._forward(X)
        backend = self._model.backend
        return self._score_function(_host(y, backend), self._decode_output(output),
                                    sample_weight=_host(sample_weight, backend))

    def _score_output(self, output: np.ndarray, targets, sample_weight) -> float:
        """Score of output activations against targets; NaN when the output is not finite."""
        if not np.isfinite(output).all():
            return np.nan
        return self._score_function(targets, self._decode_output(output), sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        return tags


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier, a drop-in for ``sklearn.neural_network.MLPClassifier``.

    Optimizes the log-loss with L-BFGS, SGD or Adam. Outputs are softmax for multiclass
    problems and logistic for binary and multilabel ones. Parameters and attributes are
    scikit-learn's (see its documentation for each), plus ``backend``, ``dtype``,
    ``callbacks``, ``batch_size="full"``, ``validation_loss_curve_`` and ``backend_``: see
    ``gpunn.estimators``' module docs. With the same parameters and ``random_state`` and
    float64 data, the fitted ``coefs_``, ``intercepts_`` and ``loss_curve_`` equal
    scikit-learn's to rounding, quirks included (e.g. probabilities clipped to
    ``[eps, 1 - eps]`` in the loss; only binary problems are stratified in the
    early-stopping split).

    Examples
    --------
    >>> from gpunn import MLPClassifier
    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MLPClassifier(hidden_layer_sizes=(5, 2), activation="logistic",
    ...                     solver="lbfgs", random_state=0).fit(X, y)
    >>> clf.predict(X[:3])
    array([0, 0, 0])
    """

    _is_classifier = True
    loss = "log_loss"  # scikit-learn's classifier has this attribute, fixed to its one loss

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        backend="auto",
        dtype=None,
        callbacks=None,
    ):
        _store_params(self, locals())

    _score_function = staticmethod(accuracy_score)

    def _output_units(self, y, incremental: bool) -> int:
        """One unit per class (one for two), read before y is validated: the classes a
        first ``partial_fit`` was given, the columns of multilabel y, or y's labels."""
        if incremental:
            n_classes = len(self.classes_)
        elif np.ndim(y) == 2 and np.shape(y)[1] > 1:
            return np.shape(y)[1]
        else:
            n_classes = len(np.unique(np.asarray(y)))
        return 1 if n_classes <= 2 else n_classes

    def _output_activation(self) -> str:
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _validate_input(self, X, y, backend, incremental, reset):
        X, y = _validate_xy(self, X, y, backend, reset, y_numeric=False,
                            dtype=self._resolve_dtype(not reset and hasattr(self, "_model")))
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        _check_one_label_type(y)
        if (not hasattr(self, "classes_")) or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
            positions = _class_positions(y, self._label_binarizer)
        else:
            positions = _class_positions(y, self._label_binarizer)
            if self.warm_start:
                classes = unique_labels(y)
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same classes as in "
                        f"the previous call to fit. Previously got {self.classes_}, "
                        f"`y` has {classes}"
                    )
            elif _has_unseen_labels(y, positions, self.classes_):
                raise ValueError(
                    f"`y` has classes not in `self.classes_`. `self.classes_` has "
                    f"{self.classes_}. 'y' has {unique_labels(y)}."
                )
        if positions is None:
            return X, self._label_binarizer.transform(y).astype(X.dtype)
        return X, _one_hot(positions, len(self.classes_), X.dtype)

    def _decode_targets(self, Y: np.ndarray):
        return self._label_binarizer.inverse_transform(Y)

    def _decode_output(self, output: np.ndarray):
        if self.n_outputs_ == 1:
            output = output.ravel()
        return self._label_binarizer.inverse_transform(output)

    def predict(self, X):
        """Predict class labels (or label-indicator rows for multilabel problems)."""
        return self._like_input(self._decode_output(self._forward(X)), X)

    def _proba(self, X) -> np.ndarray:
        output = self._forward(X)
        return np.hstack([1 - output, output]) if self.n_outputs_ == 1 else output

    def predict_proba(self, X):
        """Class probabilities, columns ordered as ``classes_``."""
        return self._like_input(self._proba(X), X)

    def predict_log_proba(self, X):
        """Log of ``predict_proba``."""
        proba = self._proba(X)
        return self._like_input(np.log(proba, out=proba), X)

    def score(self, X, y, sample_weight=None) -> float:
        """Mean accuracy on (X, y), as scikit-learn's classifiers define it."""
        return self._score(X, y, sample_weight)

    def _check_solver(self) -> bool:
        if self.solver not in _STOCHASTIC_SOLVERS:
            raise AttributeError(
                f"partial_fit is only available for stochastic optimizers. {self.solver} "
                "is not stochastic."
            )
        return True

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over (X, y); ``classes`` is required on the first call.

        The training buffers stay allocated for the next call (``fit`` frees them)."""
        self._validate_params()
        with CallRollback(self):  # a bad first call must not keep its classes
            if _check_partial_fit_first_call(self, classes):
                self._label_binarizer = LabelBinarizer()
                reader = get_backend("numpy" if follows_auto(self.backend) else self.backend)
                labels = _host(y, reader)  # no GPU started to read host labels
                if type_of_target(labels).startswith("multilabel"):
                    self._label_binarizer.fit(labels)
                else:
                    self._label_binarizer.fit(classes)
            return self._train(X, y, sample_weight, incremental=True, resume=False)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor, a drop-in for ``sklearn.neural_network.MLPRegressor``.

    Optimizes the half squared error (``loss="squared_error"``, identity output) or the
    half Poisson deviance (``loss="poisson"``, exponential output; needs ``y >= 0``).
    Parameters and attributes are scikit-learn's plus gpunn's ``backend``, ``dtype``,
    ``callbacks``, ``batch_size="full"``, ``validation_loss_curve_`` and ``backend_``
    (``gpunn.estimators``' module docs). scikit-learn's quirk is kept: the reported
    squared-error loss is averaged over the outputs while its gradient is not.

    Examples
    --------
    >>> from gpunn import MLPRegressor
    >>> import numpy as np
    >>> X = np.linspace(-1, 1, 50).reshape(-1, 1); y = 3 * X.ravel() + 1
    >>> reg = MLPRegressor(hidden_layer_sizes=(), solver="lbfgs").fit(X, y)
    >>> round(float(reg.predict([[0.5]])[0]), 3)
    2.5
    """

    def __init__(
        self,
        loss="squared_error",
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        backend="auto",
        dtype=None,
        callbacks=None,
    ):
        _store_params(self, locals())

    _parameter_constraints: dict = {
        **_BaseMLP._parameter_constraints,
        "loss": [StrOptions({"squared_error", "poisson"})],
    }
    _score_function = staticmethod(r2_score)

    def _output_activation(self) -> str:
        return "exp" if self.loss == "poisson" else "identity"

    def _validate_input(self, X, y, backend, incremental, reset):
        X, y = _validate_xy(self, X, y, backend, reset, y_numeric=True,
                            dtype=self._resolve_dtype(not reset and hasattr(self, "_model")))
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if self.loss == "poisson" and np.any(y < 0):
            raise ValueError("loss='poisson' needs non-negative targets; y has negative values.")
        Y = np.ascontiguousarray(y.reshape(len(y), -1), dtype=X.dtype)
        if not reset and Y.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {Y.shape[1]} output(s), but this {type(self).__name__} was "
                             f"fitted with {self.n_outputs_}; fit anew for another number.")
        return X, Y

    def _decode_targets(self, Y: np.ndarray):
        return Y.ravel() if Y.shape[1] == 1 else Y

    _decode_output = _decode_targets

    def predict(self, X):
        """Predicted values, shape (n_samples,) or (n_samples, n_outputs)."""
        return self._like_input(self._decode_output(self._forward(X)), X)

    def score(self, X, y, sample_weight=None) -> float:
        """Coefficient of determination R^2 on (X, y), as scikit-learn's regressors define it."""
        return self._score(X, y, sample_weight)

    @available_if(lambda est: est.solver in _STOCHASTIC_SOLVERS)
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, y); the training buffers stay allocated for the next call."""
        self._validate_params()
        return self._fit(X, y, sample_weight, incremental=True)


def _fresh_random_state(est: BaseEstimator) -> np.random.RandomState:
    """``check_random_state(est.random_state)``, drawn afresh at every ``fit`` and
    ``partial_fit`` call as scikit-learn draws it. Seeding from an int costs ~100 us, as
    much as a small ``partial_fit``'s training: the first seeded state is kept, and later
    calls with the same seed copy it into the kept generator (~35 us)."""
    seed = est.random_state
    if not isinstance(seed, Integral):
        return check_random_state(seed)
    kept = est.__dict__.get("_seeded")
    if kept is None or kept[0] != seed:
        generator = check_random_state(seed)
        est._seeded = (seed, generator.get_state(), generator)
        return generator
    kept[2].set_state(kept[1])
    return kept[2]


def _class_positions(y, label_binarizer: LabelBinarizer) -> np.ndarray | None:
    """Each label's index in ``label_binarizer.classes_`` (-1 for a label not there), for
    1-D integer labels of a single-label problem; None for any other labels, which
    ``LabelBinarizer`` encodes. A sorted search: 60,000 labels in a fraction of the time
    ``unique_labels`` and ``transform`` take, which ``partial_fit`` pays every call."""
    classes = label_binarizer.classes_
    if (label_binarizer.y_type_ not in ("binary", "multiclass") or y.ndim != 1
            or np.result_type(y, classes).kind not in "iu"):
        return None
    positions = np.searchsorted(classes, y)
    positions[positions == len(classes)] = 0
    positions[classes[positions] != y] = -1
    return positions


def _has_unseen_labels(y, positions: np.ndarray | None, classes: np.ndarray) -> bool:
    """Whether ``y`` holds a label outside ``classes``: read off the class positions
    where ``_class_positions`` gave them, else by comparing the label sets."""
    if positions is not None:
        return bool((positions < 0).any())
    return len(np.setdiff1d(unique_labels(y), classes, assume_unique=True)) > 0


def _check_one_label_type(y: np.ndarray) -> None:
    """Labels of an object array: strings only, or no strings; never None. (NumPy cannot
    sort 1 and "a" together, and fails deep inside ``np.unique`` otherwise.)"""
    if y.dtype == object:
        labels = y.ravel()
        n_strings = sum(isinstance(label, str) for label in labels)  # np.str_ included
        if 0 < n_strings < len(labels) or any(label is None for label in labels):
            kinds = sorted({type(label).__name__ for label in labels})
            raise ValueError(f"y mixes label types ({', '.join(kinds)}): use labels of one "
                             "type, e.g. all strings or all numbers.")


def _one_hot(positions: np.ndarray, n_classes: int, dtype) -> np.ndarray:
    """``LabelBinarizer.transform``'s encoding from class positions: one column per class,
    or a single 0/1 column for two classes."""
    if n_classes == 2:
        return (positions == 1).astype(dtype)[:, None]
    encoded = np.zeros((len(positions), n_classes), dtype)
    encoded[np.arange(len(positions)), positions] = 1
    return encoded


def _moved_optimizer(optimizer, backend: Backend):
    """``optimizer`` with its state on ``backend``'s device: the same optimizer otherwise
    (rule, hyper-parameters, step count, schedule), as a model that stays put keeps it."""
    moved = copy.copy(optimizer)
    moved.backend = backend
    moved.state = tuple(backend.asarray(optimizer.backend.to_numpy(buf)) for buf in optimizer.state)
    return moved


def _host(x, backend: Backend):
    """``x`` on the host: an array on ``backend``'s device or on the GPU is copied there
    (used for y and weights, never X: a model on the CPU may be given GPU labels)."""
    if backend.holds(x):
        return backend.to_numpy(x)
    return get_backend("cupy").to_numpy(x) if on_gpu(x) else x


def _checked_weights(name: str, arrays, shapes: list[tuple], backend: Backend) -> list[np.ndarray]:
    """``arrays`` as NumPy arrays, one of each of ``shapes``, of real numbers; else ValueError."""
    if isinstance(arrays, (str, bytes)) or not hasattr(arrays, "__len__"):
        raise ValueError(f"{name} must be a list of {len(shapes)} arrays; got {type(arrays).__name__}.")
    if len(arrays) != len(shapes):
        raise ValueError(f"{name} must hold {len(shapes)} arrays, one per layer; got {len(arrays)}.")
    checked = []
    for i, (array, shape) in enumerate(zip(arrays, shapes)):
        array = np.asarray(_host(array, backend))
        if array.dtype.kind not in "biuf" or array.shape != tuple(shape):
            raise ValueError(f"{name}[{i}] must be a real array of shape {tuple(shape)}; got "
                             f"shape {array.shape} and dtype {array.dtype}.")
        checked.append(array)
    return checked


def _host_shape_of(X, backend: Backend):
    """What scikit-learn's ``_check_sample_weight`` reads of X (length, dtype), on the host."""
    return np.empty((X.shape[0], 0), X.dtype) if backend.holds(X) else X


def _refuse_other_devices(x, name: str, backend: Backend) -> None:
    """A clear error for a GPU array given to a backend that cannot hold it."""
    if type(x).__module__.split(".")[0] == "cupy":
        raise TypeError(
            f"{name} is a CuPy array but this estimator runs on the {backend.name!r} backend. "
            f"Use backend='cupy' (or 'auto') to train where the data is, or pass {name}.get().")


def _device_X(est, X, backend: Backend, reset: bool, dtype):
    """X already on ``backend``'s device, checked as ``validate_data`` checks host arrays."""
    if X.ndim != 2:
        raise ValueError(f"Expected a 2D array of shape (n_samples, n_features); X is {X.ndim}D.")
    if 0 in X.shape:
        raise ValueError(f"Found array with shape {X.shape}: at least one sample and one "
                         "feature are required.")
    if X.dtype.kind == "c":
        raise ValueError(f"Complex data not supported: X has dtype {X.dtype}.")
    allowed = [np.dtype(d) for d in (dtype if isinstance(dtype, tuple) else (dtype,))]
    if reset:
        est.n_features_in_ = X.shape[1]
        est.__dict__.pop("feature_names_in_", None)
    elif X.shape[1] != est.n_features_in_:
        raise ValueError(f"X has {X.shape[1]} features, but {type(est).__name__} is expecting "
                         f"{est.n_features_in_} features as input.")
    return backend.asarray(X, X.dtype if X.dtype in allowed else allowed[0])


def _validate_xy(est, X, y, backend: Backend, reset: bool, y_numeric: bool, dtype):
    """scikit-learn's ``validate_data`` for (X, y), except that X already on ``backend``'s
    device is checked there and kept there (y, small, is brought to the host). NaN and
    inf in X are left to ``_check_finite_and_magnitude``."""
    if not backend.holds(X):
        if not reset and _validated_already(est, X, y, dtype):
            return X, y
        _refuse_other_devices(X, "X", backend)
        return validate_data(est, X, _host(y, backend), multi_output=True, y_numeric=y_numeric,
                             reset=reset, ensure_all_finite=False, dtype=dtype)
    X = _device_X(est, X, backend, reset, dtype)
    y = check_array(_host(y, backend), ensure_2d=False, dtype=None, input_name="y",
                    estimator=est)
    if y_numeric and y.dtype.kind == "O":
        y = y.astype(np.float64)
    if len(y) != X.shape[0]:
        raise ValueError("Found input variables with inconsistent numbers of samples: "
                         f"[{X.shape[0]}, {len(y)}]")
    return X, y


def _validated_already(est, X, y, dtype) -> bool:
    """Whether ``validate_data`` would hand (X, y) back unchanged and silently: NumPy
    arrays, a C-contiguous 2-D X of an accepted float dtype and of the width the
    estimator was fitted on (without feature names), and as many 1-D integer labels.
    ``partial_fit`` on small batches spent ~0.3 ms a call there, mostly on checks for
    dataframes."""
    accepted = dtype if isinstance(dtype, tuple) else (dtype,)
    return (type(X) is np.ndarray and type(y) is np.ndarray and X.ndim == 2 and y.ndim == 1
            and X.dtype in accepted and y.dtype.kind in "iu" and X.flags.c_contiguous
            and 0 < len(X) == len(y) and X.shape[1] == getattr(est, "n_features_in_", -1)
            and not hasattr(est, "feature_names_in_"))


def _check_finite_and_magnitude(X, backend: Backend) -> None:
    """Refuse NaN, inf, and features so large that squared gradients overflow the dtype.

    One pass in the common case: sum(x**2) stays within the dtype's range only if every
    x is finite and below sqrt(max) (squares cannot cancel). On the host it is a BLAS dot
    product, 4x faster than the finiteness check and min/max it replaces; device arrays
    get the backend's sum of squares. Only an out-of-range sum runs the slow checks, on
    the host, which say what is wrong. ``ravel(order="K")`` is a view of any contiguous X.
    """
    largest = float(np.finfo(X.dtype).max)
    if backend.holds(X):
        acc = backend.zeros(1, np.float64)
        backend.sum_squares(X.reshape(-1), acc, 1.0)
        if backend.read_scalar(acc) <= largest:
            return
        X = backend.to_numpy(X)
    flat = X.ravel(order="K")
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is the answer, not a fault
        if np.dot(flat, flat) <= largest:
            return
    assert_all_finite(X, input_name="X")
    limit = float(np.sqrt(np.finfo(X.dtype).max))
    peak = max(float(X.max()), -float(X.min()))  # no |X| temporary: X may be most of RAM
    if peak > limit:
        raise ValueError(
            f"X has values up to {peak:.3g}, too large to train on in {X.dtype.name} (squared "
            f"gradients would overflow above {limit:.3g}). Scale the features first, e.g. with "
            "sklearn.preprocessing.StandardScaler"
            + (", or use dtype='float64'." if X.dtype == np.float32 else ".")
        )


def _store_params(estimator: BaseEstimator, init_locals: dict) -> None:
    """Store ``__init__``'s arguments unchanged, as scikit-learn's conventions require."""
    for name, value in init_locals.items():
        if name not in ("self", "__class__"):
            setattr(estimator, name, value)
