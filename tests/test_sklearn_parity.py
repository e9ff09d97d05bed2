"""Same model as scikit-learn: float64 fits must equal the installed scikit-learn's.

Each case fits scikit-learn's estimator and gpunn's with identical parameters and
``random_state`` and compares ``coefs_``, ``intercepts_`` and ``loss_curve_`` to a
relative 1e-10 (in practice they agree bitwise for the stochastic solvers).
"""

import warnings

import numpy as np
import pytest
import sklearn
from sklearn import neural_network as sk
from sklearn.datasets import make_classification, make_multilabel_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import LabelBinarizer

import gpunn
from gpunn.estimators import _class_positions, _one_hot

RTOL = 1e-10


def _data(task, n=60, seed=0):
    if task == "binary":
        return make_classification(n, 6, n_informative=4, n_classes=2, random_state=seed)
    if task == "multiclass":
        return make_classification(n, 6, n_informative=4, n_classes=3, random_state=seed)
    if task == "multilabel":
        return make_multilabel_classification(n, 6, n_classes=3, random_state=seed)
    X, y = make_regression(n, 6, n_targets=1 if task == "regression" else 2, random_state=seed)
    return X, y / np.std(y)


def _pair(task, **params):
    cls = "MLPRegressor" if task.startswith("regression") else "MLPClassifier"
    return getattr(sk, cls)(**params), getattr(gpunn, cls)(backend="numpy", **params)


def _assert_same_model(theirs, ours):
    assert ours.n_iter_ == theirs.n_iter_
    for a, b in zip(theirs.coefs_ + theirs.intercepts_, ours.coefs_ + ours.intercepts_):
        assert b.dtype == a.dtype
        np.testing.assert_allclose(b, a, rtol=RTOL, atol=1e-300)
    if hasattr(theirs, "loss_curve_"):
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=RTOL)
    np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=RTOL)
    assert type(ours.loss_) is type(theirs.loss_)
    for name in ("best_loss_", "best_validation_score_", "validation_scores_", "t_"):
        expected = getattr(theirs, name, None)
        if expected is None:
            assert getattr(ours, name, None) is None
        else:
            assert getattr(ours, name) == pytest.approx(expected, rel=RTOL)


CASES = [
    # (task, parameters): every activation, solver variant, schedule, output and batch mode
    ("multiclass", dict(activation="relu", solver="adam")),
    ("multiclass", dict(activation="logistic", solver="sgd", momentum=0.0)),
    ("multiclass", dict(activation="tanh", solver="sgd", momentum=0.9, nesterovs_momentum=False)),
    ("multiclass", dict(activation="identity", solver="sgd", momentum=0.9, nesterovs_momentum=True)),
    ("binary", dict(activation="logistic", solver="adam", batch_size=1)),
    ("binary", dict(activation="relu", solver="sgd", learning_rate="invscaling", batch_size=1)),
    ("binary", dict(activation="tanh", solver="sgd", learning_rate="adaptive", tol=1e-1,
                    n_iter_no_change=2, learning_rate_init=0.5)),
    ("multilabel", dict(activation="tanh", solver="adam", batch_size="full")),
    ("multilabel", dict(activation="relu", solver="sgd", batch_size="full")),
    ("regression", dict(activation="relu", solver="adam")),
    ("regression", dict(activation="logistic", solver="sgd", learning_rate_init=0.01)),
    ("regression2", dict(activation="tanh", solver="sgd", learning_rate="invscaling",
                         learning_rate_init=0.05, batch_size=1)),
    ("multiclass", dict(activation="relu", solver="adam", early_stopping=True,
                        validation_fraction=0.2)),
    ("binary", dict(activation="tanh", solver="sgd", early_stopping=True, n_iter_no_change=3)),
    ("regression", dict(activation="relu", solver="adam", early_stopping=True)),
    ("multiclass", dict(activation="tanh", solver="adam", shuffle=False, alpha=0.0)),
    ("multiclass", dict(activation="logistic", solver="lbfgs")),
    ("regression", dict(activation="tanh", solver="lbfgs", alpha=1e-2)),
]


@pytest.mark.parametrize("task, params", CASES, ids=[f"{t}-{'-'.join(map(str, p.values()))}" for t, p in CASES])
def test_fit_equals_sklearn(task, params):
    X, y = _data(task)
    params = {"hidden_layer_sizes": (7, 5), "random_state": 3, "max_iter": 15,
              "batch_size": 16, **params}
    batch = params["batch_size"]
    theirs, ours = _pair(task, **{**params, "batch_size": len(X) if batch == "full" else batch})
    ours.set_params(batch_size=batch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs.fit(X, y)
        ours.fit(X, y)
    _assert_same_model(theirs, ours)
    if task.startswith("regression"):
        np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-9)
    else:
        np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
        np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-9)


@pytest.mark.parametrize("task", ["multiclass", "binary", "regression"])
def test_sample_weight_equals_sklearn(task):
    X, y = _data(task)
    w = np.random.RandomState(0).uniform(0.1, 3.0, len(X))
    theirs, ours = _pair(task, hidden_layer_sizes=(6,), random_state=0, max_iter=10, batch_size=16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs.fit(X, y, sample_weight=w)
        ours.fit(X, y, sample_weight=w)
    _assert_same_model(theirs, ours)


def test_poisson_equals_sklearn():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(80, 4))
    y = rng.poisson(np.exp(0.3 * X[:, 0]))
    theirs, ours = _pair("regression", loss="poisson", hidden_layer_sizes=(5,), random_state=1,
                         max_iter=10, solver="sgd", learning_rate_init=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs.fit(X, y)
        ours.fit(X, y)
    _assert_same_model(theirs, ours)


def test_partial_fit_and_warm_start_equal_sklearn():
    X, y = _data("multiclass")
    theirs, ours = _pair("multiclass", hidden_layer_sizes=(6,), random_state=0, batch_size=10)
    for _ in range(3):
        theirs.partial_fit(X, y, classes=np.unique(y))
        ours.partial_fit(X, y, classes=np.unique(y))
    _assert_same_model(theirs, ours)
    theirs, ours = _pair("multiclass", hidden_layer_sizes=(6,), random_state=0, max_iter=4,
                         warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(2):
            theirs.fit(X, y)
            ours.fit(X, y)
    _assert_same_model(theirs, ours)


@pytest.mark.parametrize("params", [
    dict(solver="adam", n_iter_no_change=2, tol=1.0),  # stalls: "Stopping."
    dict(solver="sgd", learning_rate="adaptive", n_iter_no_change=1, tol=1.0),  # lowers the rate
    dict(solver="sgd", early_stopping=True, n_iter_no_change=2),  # validation scores
])
def test_verbose_prints_what_sklearn_prints(capsys, params):
    X, y = _data("multiclass", n=120)
    outputs = []
    for est in _pair("multiclass", hidden_layer_sizes=(6,), random_state=0, max_iter=8,
                     verbose=True, **params):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X, y)
        outputs.append(capsys.readouterr().out)
    theirs, ours = outputs
    assert "Iteration 1, loss = " in theirs and ours == theirs


def test_an_activation_set_after_fit_is_used_as_in_sklearn():
    X, y = _data("multiclass")
    theirs, ours = _pair("multiclass", hidden_layer_sizes=(6,), random_state=0, max_iter=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for est in (theirs, ours):
            est.fit(X, y)
            est.set_params(activation="tanh")
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=RTOL)
    for est in (theirs, ours):
        est.partial_fit(X, y)
    _assert_same_model(theirs, ours)


@pytest.mark.parametrize("labels", [np.zeros(60), np.array(["only"] * 60)])
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_a_single_class_trains_as_in_sklearn(labels, solver):
    """One class is legal (a constant column under MultiOutputClassifier, say): scikit-learn
    trains one logistic unit towards 0 and always predicts that class."""
    X, _ = _data("binary")
    theirs, ours = _pair("binary", hidden_layer_sizes=(4,), random_state=0, max_iter=5, solver=solver)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs.fit(X, labels)
        ours.fit(X, labels)
    _assert_same_model(theirs, ours)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=RTOL)


def test_multioutput_classifier_with_a_constant_column_matches_sklearn():
    from sklearn.multioutput import MultiOutputClassifier

    X, Y = _data("multilabel")
    Y[:, 2] = 0
    params = dict(hidden_layer_sizes=(4,), random_state=0, max_iter=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs = MultiOutputClassifier(sk.MLPClassifier(**params)).fit(X, Y)
        ours = MultiOutputClassifier(gpunn.MLPClassifier(backend="numpy", **params)).fit(X, Y)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


@pytest.mark.parametrize("classes, y", [
    (np.arange(10), np.arange(50) % 10),
    ([0, 1], np.array([1, 0, 0, 1])),
    ([-3, 7], np.array([7, -3, 7], np.int32)),
    ([2, 5, 9], np.array([9, 2, 5, 5], np.uint8)),
])
def test_integer_labels_encode_as_label_binarizer(classes, y):
    """partial_fit's direct path for integer labels gives LabelBinarizer's encoding."""
    binarizer = LabelBinarizer().fit(classes)
    positions = _class_positions(y, binarizer)
    np.testing.assert_array_equal(_one_hot(positions, len(binarizer.classes_), np.float32),
                                  binarizer.transform(y).astype(np.float32))
    missing = np.append(y[:3], -100)  # a label of no class: position -1
    np.testing.assert_array_equal(_class_positions(missing, binarizer) < 0, [0, 0, 0, 1])


@pytest.mark.parametrize("classes, y", [
    (np.array(["a", "b"]), np.array(["b", "a"])),  # strings
    (np.arange(3), np.arange(3, dtype=np.uint64)),  # int64 with uint64 compares as floats
    (np.array([1.0, 2.0]), np.array([2.0, 1.0])),  # float labels
    (np.eye(3, dtype=int), np.eye(3, dtype=int)),  # multilabel indicator
])
def test_other_labels_take_label_binarizers_path(classes, y):
    assert _class_positions(y, LabelBinarizer().fit(classes)) is None


def test_string_labels_and_float32_follow_sklearn():
    X, y = _data("multiclass")
    labels = np.array(["cat", "dog", "emu"])[y]
    theirs, ours = _pair("multiclass", hidden_layer_sizes=(6,), random_state=0, max_iter=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs.fit(X.astype(np.float32), labels)
        ours.fit(X.astype(np.float32), labels)
    assert ours.coefs_[0].dtype == np.float32
    np.testing.assert_array_equal(ours.classes_, theirs.classes_)
    # float32 follows a different rounding path (scikit-learn mixes in float64 scalars)
    for a, b in zip(theirs.coefs_, ours.coefs_):
        np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-5)


def test_sklearn_version_is_pinned_in_output():
    """Records which scikit-learn these parity tests ran against (shown with -rA)."""
    assert sklearn.__version__
