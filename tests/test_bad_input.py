"""The bad-input gauntlet: each user mistake gets the right exception and a clear message."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning, NotFittedError

import gpunn
from gpunn import MLPClassifier as C
from gpunn import MLPRegressor as R
from gpunn.backends import BackendUnavailableError, cupy_status

rng = np.random.RandomState(0)
X = rng.normal(size=(30, 3))
y = np.arange(30) % 3
yr = rng.normal(size=30)


def fitted(cls=C, **kw):
    target = y if cls is C else yr
    return cls(hidden_layer_sizes=(4,), max_iter=2, backend="numpy", **kw).fit(X, target)


def with_value(value, at=(0, 0)):
    bad = X.copy()
    bad[at] = value
    return bad


# (id, action, exception, message pattern)
CASES = [
    ("empty X", lambda: C(backend="numpy").fit(np.empty((0, 3)), []), ValueError, "0 sample"),
    ("empty y", lambda: C(backend="numpy").fit(X, []), ValueError, "0 sample"),
    ("1-D X", lambda: C(backend="numpy").fit(X[:, 0], y), ValueError, "(?s)Expected 2D array.*Reshape your data"),
    ("3-D X", lambda: C(backend="numpy").fit(X.reshape(30, 3, 1), y), ValueError, "dim 3"),
    ("no features", lambda: C(backend="numpy").fit(np.empty((30, 0)), y), ValueError, "0 feature"),
    ("string X", lambda: C(backend="numpy").fit(np.array([["a", "b"]] * 30), y), ValueError, "could not convert|convert"),
    ("object X", lambda: C(backend="numpy").fit(np.array([[object()]] * 30), y), (ValueError, TypeError), "float|number"),
    ("complex X", lambda: C(backend="numpy").fit(X + 1j, y), ValueError, "Complex data not supported"),
    ("NaN in X", lambda: C(backend="numpy").fit(with_value(np.nan), y), ValueError, "Input X contains NaN"),
    ("+inf in X", lambda: C(backend="numpy").fit(with_value(np.inf), y), ValueError, "Input X contains infinity"),
    ("-inf in X", lambda: C(backend="numpy").fit(with_value(-np.inf), y), ValueError, "infinity"),
    ("NaN in y", lambda: R(backend="numpy").fit(X, np.where(np.arange(30) == 3, np.nan, yr)), ValueError, "Input y contains NaN"),
    ("inf in y", lambda: R(backend="numpy").fit(X, np.where(np.arange(30) == 3, np.inf, yr)), ValueError, "Input y contains infinity"),
    ("string y for regression", lambda: R(backend="numpy").fit(X, np.array(["a"] * 30)), ValueError, "could not convert|numeric"),
    ("y wrong length", lambda: C(backend="numpy").fit(X, y[:-1]), ValueError, "inconsistent numbers of samples: \\[30, 29\\]"),
    ("labels of mixed types", lambda: C(backend="numpy").fit(X, np.array([1, "a", 2] * 10, dtype=object)), ValueError, "y mixes label types \\(int, str\\)"),
    ("NumPy strings among numbers", lambda: C(backend="numpy").fit(X, np.array([np.str_("a"), 1, 2] * 10, dtype=object)), ValueError, "y mixes label types"),
    ("None among labels", lambda: C(backend="numpy").fit(X, np.array([1, None, 2] * 10, dtype=object)), ValueError, "y mixes label types"),
    ("regression y with fewer outputs", lambda: R(backend="numpy", max_iter=2).fit(X, np.c_[yr, yr]).partial_fit(X, yr), ValueError, "y has 1 output\\(s\\), but this MLPRegressor was fitted with 2"),
    ("regression y with more outputs", lambda: R(backend="numpy", max_iter=2, warm_start=True).fit(X, yr).fit(X, np.c_[yr, yr]), ValueError, "y has 2 output"),
    ("unseen label in partial_fit", lambda: fitted(solver="sgd").partial_fit(X, y + 5), ValueError, "classes not in `self.classes_`"),
    ("unseen label between classes", lambda: C(backend="numpy").partial_fit(X, 2 * y, classes=[0, 2, 4]).partial_fit(X, np.where(y == 1, 3, 0)), ValueError, "classes not in .*'y' has \\[0 3\\]"),
    ("unseen label below classes", lambda: fitted(solver="sgd").partial_fit(X, (y - 1).astype(np.int32)), ValueError, "classes not in `self.classes_`"),
    ("unseen string label", lambda: C(backend="numpy").partial_fit(X, np.array(["a", "b", "c"])[y], classes=["a", "b", "c"]).partial_fit(X, np.array(["a", "b", "d"])[y]), ValueError, "classes not in `self.classes_`"),
    ("partial_fit without classes", lambda: C(backend="numpy").partial_fit(X, y), ValueError, "classes must be passed on the first call"),
    ("wrong n_features at predict", lambda: fitted().predict(X[:, :2]), ValueError, "has 2 features, but MLPClassifier is expecting 3"),
    ("wrong n_features at predict_proba", lambda: fitted().predict_proba(np.ones((2, 5))), ValueError, "expecting 3"),
    ("NaN at predict", lambda: fitted().predict(with_value(np.nan)), ValueError, "contains NaN"),
    ("predict before fit", lambda: C().predict(X), Exception, "not fitted yet.*Call 'fit'"),
    ("score with wrong y length", lambda: fitted().score(X, y[:5]), ValueError, "inconsistent numbers of samples"),
    ("zero hidden size", lambda: C(hidden_layer_sizes=(5, 0), backend="numpy").fit(X, y), ValueError, "hidden_layer_sizes must be > 0"),
    ("negative hidden size", lambda: C(hidden_layer_sizes=-3, backend="numpy").fit(X, y), ValueError, "hidden_layer_sizes"),
    ("unknown activation", lambda: C(activation="swish").fit(X, y), ValueError, "'activation' parameter.*'relu'"),
    ("unknown solver", lambda: C(solver="rmsprop").fit(X, y), ValueError, "'solver' parameter"),
    ("unknown learning_rate", lambda: C(learning_rate="cosine").fit(X, y), ValueError, "'learning_rate' parameter"),
    ("unknown backend", lambda: C(backend="tpu").fit(X, y), ValueError, "'backend' parameter.*'numpy'"),
    ("unknown loss", lambda: R(loss="huber").fit(X, yr), ValueError, "'loss' parameter"),
    ("batch_size 0", lambda: C(batch_size=0).fit(X, y), ValueError, "'batch_size' parameter"),
    ("batch_size negative", lambda: C(batch_size=-4).fit(X, y), ValueError, "'batch_size' parameter"),
    ("batch_size string", lambda: C(batch_size="big").fit(X, y), ValueError, "'batch_size' parameter"),
    ("learning_rate_init 0", lambda: C(learning_rate_init=0).fit(X, y), ValueError, "'learning_rate_init' parameter"),
    ("learning_rate_init negative", lambda: C(learning_rate_init=-1e-3).fit(X, y), ValueError, "'learning_rate_init'"),
    ("validation_fraction 0", lambda: C(validation_fraction=0.0, early_stopping=True).fit(X, y), ValueError, "'validation_fraction'"),
    ("validation_fraction 1", lambda: C(validation_fraction=1.0, early_stopping=True).fit(X, y), ValueError, "'validation_fraction'"),
    ("validation split too small", lambda: C(early_stopping=True, validation_fraction=0.01, backend="numpy").fit(X, y), ValueError, "validation set is too small"),
    ("sample_weight wrong length", lambda: C(backend="numpy").fit(X, y, sample_weight=np.ones(3)), ValueError, "sample_weight.shape == \\(3,\\), expected \\(30,\\)"),
    ("negative sample_weight", lambda: C(backend="numpy").fit(X, y, sample_weight=-np.ones(30)), ValueError, "Negative values in data passed to `sample_weight`"),
    ("all-zero sample_weight", lambda: C(backend="numpy").fit(X, y, sample_weight=np.zeros(30)), ValueError, "at least one non-zero"),
    ("poisson with negative y", lambda: R(loss="poisson", backend="numpy").fit(X, yr), ValueError, "non-negative targets"),
    ("momentum above 1", lambda: C(momentum=1.5).fit(X, y), ValueError, "'momentum' parameter"),
    ("set_params unknown name", lambda: C().set_params(learning_rat=0.1), ValueError, "Invalid parameter 'learning_rat'"),
    ("set_params bad value then fit", lambda: C().set_params(alpha=-1).fit(X, y), ValueError, "'alpha' parameter"),
    ("bad value between partial_fit calls", lambda: fitted(solver="sgd").partial_fit(X, y).set_params(alpha=-1.0).partial_fit(X, y), ValueError, "'alpha' parameter"),
    ("bad attribute between partial_fit calls", lambda: setattr(est := fitted(solver="adam"), "beta_1", 1.5) or est.partial_fit(X, y), ValueError, "'beta_1' parameter"),
    ("bad dtype", lambda: C(dtype="float16", backend="numpy").fit(X, y), ValueError, "dtype"),
    ("callbacks not callable", lambda: C(callbacks=[3], backend="numpy").fit(X, y), TypeError, "callbacks must be callables"),
    ("partial_fit with lbfgs", lambda: C(solver="lbfgs").partial_fit(X, y, classes=[0, 1, 2]), AttributeError, "has no attribute 'partial_fit'"),
    ("partial_fit with early stopping", lambda: C(early_stopping=True, backend="numpy").partial_fit(X, y, classes=[0, 1, 2]), ValueError, "partial_fit does not support early_stopping"),
    ("huge values in float32 X", lambda: C(backend="numpy", dtype="float32").fit(with_value(1e30, at=slice(None)), y), ValueError, "values up to 1e\\+30, too large.*Scale the features.*or use dtype='float64'"),
    ("huge values in float64 X", lambda: C(backend="numpy").fit(with_value(1e200, at=slice(None)), y), ValueError, "too large to train on in float64.*StandardScaler\\.$"),
    ("load a missing file", lambda: gpunn.load("/nonexistent/model.npz"), FileNotFoundError, "model file not found"),
    ("load not a model", lambda: gpunn.load(__file__), gpunn.ModelFileError, "not a gpunn model file"),
    ("unknown GPUNN_BACKEND", lambda: gpunn.get_backend("opencl"), ValueError, "Unknown backend 'opencl'"),
    ("Checkpoint every 0", lambda: gpunn.Checkpoint("x.npz", every=0), ValueError, "positive whole number of epochs"),
]
if not cupy_status()[0]:
    CASES.append(("cupy backend unavailable", lambda: C(backend="cupy").fit(X, y),
                  BackendUnavailableError, "cannot run here.*backend='numpy'"))


@pytest.mark.parametrize("action, exc, message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_refused_clearly(action, exc, message):
    with pytest.raises(exc, match=message):
        action()


def test_gauntlet_is_large_enough():
    assert len(CASES) >= 40


def test_accepted_inputs_lists_and_dataframes():
    pd = pytest.importorskip("pandas")
    as_lists = C(hidden_layer_sizes=(4,), max_iter=2, random_state=0, backend="numpy").fit(X.tolist(), y.tolist())
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    as_frame = C(hidden_layer_sizes=(4,), max_iter=2, random_state=0, backend="numpy").fit(frame, pd.Series(y))
    np.testing.assert_array_equal(as_lists.coefs_[0], as_frame.coefs_[0])
    assert list(as_frame.feature_names_in_) == ["a", "b", "c"]
    bool_X = C(hidden_layer_sizes=(4,), max_iter=2, backend="numpy").fit(X > 0, y)  # bools become floats
    assert bool_X.coefs_[0].dtype == np.float64


def _state(est):
    """What a user sees of a fitted estimator: its fitted attributes and predictions."""
    return ([w.copy() for w in est.coefs_ + est.intercepts_], est.n_iter_, list(est.loss_curve_),
            est.n_features_in_, est.predict(X).tolist())


def _wider(value=np.nan):
    wide = np.hstack([X, X])
    wide[0, 0] = value
    return wide


# (id, estimator factory, the failing call on it): each must leave the estimator unchanged
FAILING_CALLS = [
    ("NaN in wider X", fitted, lambda e: e.fit(_wider(), y)),
    ("NaN in X with new labels", fitted, lambda e: e.fit(with_value(np.nan), y + 10)),
    ("bad sample_weight with wider X", fitted, lambda e: e.fit(_wider(0.0), y, sample_weight=np.ones(3))),
    ("negative sample_weight with new labels", fitted, lambda e: e.fit(X, y + 10, sample_weight=-np.ones(30))),
    ("continuous labels", fitted, lambda e: e.fit(X, yr)),
    ("multilabel-indicator y", fitted, lambda e: e.fit(X, np.c_[y, y])),
    ("validation split too small", fitted,
     lambda e: e.set_params(early_stopping=True, validation_fraction=0.01).fit(X, y)),
    ("refit diverges", lambda: fitted(R, solver="sgd"),
     lambda e: e.set_params(learning_rate_init=1e30, max_iter=5).fit(X * 100, yr * 1e6)),
    ("warm start diverges after good epochs", lambda: fitted(R, solver="sgd", warm_start=True),
     lambda e: e.set_params(learning_rate_init=1e30, max_iter=5).fit(X * 100, yr * 1e6)),
    ("partial_fit diverges", lambda: fitted(R, solver="sgd"), lambda e: e.partial_fit(X * 1e100, yr)),
    ("partial_fit with NaN", lambda: fitted(solver="adam"), lambda e: e.partial_fit(with_value(np.nan), y)),
]


@pytest.mark.parametrize("make, call", [c[1:] for c in FAILING_CALLS], ids=[c[0] for c in FAILING_CALLS])
def test_a_failing_call_leaves_the_estimator_as_it_was(make, call):
    est = make()
    before = _state(est)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError):
            call(est)
    after = _state(est)
    for a, b in zip(before[0], after[0]):
        np.testing.assert_array_equal(a, b)
    assert before[1:] == after[1:]


def test_training_goes_on_normally_after_a_diverged_partial_fit():
    """The optimizer's state is restored too: its NaN momentum would diverge every later call."""
    est, twin = fitted(R, solver="sgd", random_state=0), fitted(R, solver="sgd", random_state=0)
    with pytest.raises(gpunn.DivergenceError, match="left as it was before this call"):
        est.partial_fit(X * 1e100, yr)
    est.partial_fit(X, yr)
    twin.partial_fit(X, yr)
    for a, b in zip(est.coefs_, twin.coefs_):
        np.testing.assert_array_equal(a, b)


def test_a_failed_first_call_leaves_an_unfitted_estimator_that_can_be_retried():
    est = C(hidden_layer_sizes=(4,), max_iter=2, backend="numpy")
    with pytest.raises(ValueError, match="contains NaN"):
        est.fit(with_value(np.nan), y)
    with pytest.raises(NotFittedError, match="not fitted yet"):
        est.predict(X)
    with pytest.raises(ValueError):
        est.partial_fit(X, y, classes=[0])  # a typo in classes...
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.partial_fit(X, y, classes=[0, 1, 2])  # ...is corrected on the next call
    assert list(est.classes_) == [0, 1, 2]


def test_large_values_below_the_limit_are_accepted():
    """The one-pass check's sum of squares overflows here, yet every value is legal."""
    big = np.full((40_000, 3), 1e18, np.float32)  # 1e18 < sqrt(float32 max) ~ 1.8e19
    big[::2] *= -1
    labels = np.arange(len(big)) % 2
    est = C(hidden_layer_sizes=(2,), max_iter=1, backend="numpy", dtype="float32")
    with pytest.warns(ConvergenceWarning):  # one epoch does not converge, but it trains
        est.fit(big, labels)
    assert est.n_iter_ == 1


def _inputs_to_validate():
    """(name, X, y) for a model fitted on float64 X with three features and int labels."""
    pd = pytest.importorskip("pandas")
    return [
        ("plain", X, y), ("int32 labels", X, y.astype(np.int32)),
        ("Fortran order", np.asfortranarray(X), y), ("float32 X", X.astype(np.float32), y),
        ("list X", X.tolist(), y), ("list y", X, y.tolist()), ("frame", pd.DataFrame(X), y),
        ("too wide", np.hstack([X, X]), y), ("2-D y", X, y[:, None]),
        ("float labels", X, y.astype(float)), ("string labels", X, y.astype(str)),
        ("short y", X, y[:-1]), ("no rows", X[:0], y[:0]),
    ]


def test_partial_fit_skips_validate_data_only_where_it_would_change_nothing():
    """The shortcut for plain arrays returns (X, y) exactly as ``validate_data`` would,
    and leaves everything else (conversions, errors, warnings) to ``validate_data``."""
    from sklearn.utils.validation import validate_data

    from gpunn.estimators import _validated_already

    est = fitted(solver="sgd")
    taken = []
    for name, X_in, y_in in _inputs_to_validate():
        if not _validated_already(est, X_in, y_in, np.float64):
            continue
        taken.append(name)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            X_out, y_out = validate_data(est, X_in, y_in, multi_output=True, reset=False,
                                         ensure_all_finite=False, dtype=np.float64)
        assert X_out is X_in and y_out is y_in
    assert taken == ["plain", "int32 labels"]


def test_feature_names_still_checked_between_partial_fit_calls():
    pd = pytest.importorskip("pandas")
    est = C(hidden_layer_sizes=(4,), solver="sgd", backend="numpy")
    est.partial_fit(pd.DataFrame(X, columns=["a", "b", "c"]), y, classes=[0, 1, 2])
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        est.partial_fit(X, y)
