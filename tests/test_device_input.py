"""Data already on the GPU: taken as it is (no host copy), predictions come back on it.

Runs on every backend that has device arrays: real CuPy where it works, and in CI the
CuPy stand-in, whose arrays are a type of their own (``fakecupy.ndarray``).
"""

import warnings

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning

import gpunn
from conftest import BACKEND_FACTORIES


@pytest.fixture(params=["cupy", "cupy-standin"])
def device(request):
    return BACKEND_FACTORIES[request.param]()


def _same_memory(a, b) -> bool:
    if isinstance(a, np.ndarray):
        return np.shares_memory(a, b)
    return a.data.ptr == b.data.ptr  # CuPy


def _data(task="multiclass"):
    if task == "regression":
        X, y = make_regression(120, 6, n_targets=2, random_state=0)
        return X.astype(np.float32), (y / y.std()).astype(np.float32)
    X, y = make_classification(120, 6, n_informative=4, n_classes=3, random_state=0)
    return X.astype(np.float32), y


def _fit(est, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(*args, **kw)


@pytest.mark.parametrize("params", [dict(solver="adam"), dict(solver="lbfgs"),
                                    dict(solver="sgd", early_stopping=True)])
def test_device_X_trains_without_a_copy_and_predicts_on_the_device(device, params, monkeypatch):
    X, y = _data()
    X_dev = device.asarray(X)
    seen = []
    asarray = device.asarray

    def recording_asarray(x, dtype=None):
        out = asarray(x, dtype)
        if device.holds(x) and x.shape == X_dev.shape and _same_memory(x, X_dev):
            seen.append(out)  # X itself (or a view of it) was asked for
        return out

    monkeypatch.setattr(device, "asarray", recording_asarray)
    est = _fit(gpunn.MLPClassifier((8,), max_iter=5, random_state=0, backend=device, **params),
               X_dev, device.asarray(y))
    assert len(seen) >= 2  # checked, then handed to the trainer
    assert all(_same_memory(out, X_dev) for out in seen)
    host = _fit(gpunn.MLPClassifier((8,), max_iter=5, random_state=0, backend=device, **params),
                X, y)
    for a, b in zip(est.coefs_, host.coefs_):  # the same model as from host data
        assert isinstance(a, np.ndarray)
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    for method in ("predict", "predict_proba", "predict_log_proba"):
        on_device = getattr(est, method)(X_dev)
        assert device.holds(on_device), method
        np.testing.assert_allclose(device.to_numpy(on_device), getattr(est, method)(X),
                                   rtol=1e-6, atol=1e-7)
    assert est.score(X_dev, device.asarray(y)) == est.score(X, y)


def test_device_X_for_regression_with_device_weights(device):
    X, y = _data("regression")
    weights = np.linspace(0.5, 2, len(X))
    reg = _fit(gpunn.MLPRegressor(hidden_layer_sizes=(8,), max_iter=5, random_state=0, backend=device),
               device.asarray(X), device.asarray(y), sample_weight=device.asarray(weights))
    ref = _fit(gpunn.MLPRegressor(hidden_layer_sizes=(8,), max_iter=5, random_state=0, backend=device),
               X, y, sample_weight=weights)
    prediction = reg.predict(device.asarray(X))
    assert device.holds(prediction) and prediction.shape == (len(X), 2)
    np.testing.assert_allclose(device.to_numpy(prediction), ref.predict(X), rtol=1e-5, atol=1e-6)
    assert reg.score(device.asarray(X), y) == pytest.approx(ref.score(X, y), rel=1e-5)


def test_string_labels_come_back_on_the_host(device):
    X, y = _data()
    labels = np.array(["ant", "bee", "cat"])[y]
    clf = _fit(gpunn.MLPClassifier((8,), max_iter=3, random_state=0, backend=device),
               device.asarray(X), labels)
    predicted = clf.predict(device.asarray(X))
    assert isinstance(predicted, np.ndarray) and set(predicted) <= {"ant", "bee", "cat"}
    assert device.holds(clf.predict_proba(device.asarray(X)))


def test_device_X_of_other_dtypes_is_converted_on_the_device(device):
    X, y = _data()
    clf = _fit(gpunn.MLPClassifier((8,), max_iter=2, random_state=0, backend=device),
               device.asarray(X.astype(np.float64)), y)
    assert clf.coefs_[0].dtype == np.float64  # float64 stays float64, as on the host
    ints = _fit(gpunn.MLPClassifier((8,), max_iter=2, random_state=0, backend=device),
                device.asarray((X * 10).astype(np.int32)), y)
    assert ints.coefs_[0].dtype == np.float64  # like scikit-learn: integers become float64


@pytest.mark.parametrize("make_bad, message", [
    (lambda X, y: (np.where(np.arange(X.size).reshape(X.shape) == 5, np.nan, X), y),
     "Input X contains NaN"),
    (lambda X, y: (np.where(np.arange(X.size).reshape(X.shape) == 5, np.inf, X), y),
     "Input X contains infinity"),
    (lambda X, y: (np.full_like(X, 1e30), y), "values up to 1e\\+30, too large"),
    (lambda X, y: (X[:, 0], y), "Expected a 2D array"),
    (lambda X, y: (X[:0], y[:0]), "at least one sample"),
    (lambda X, y: (X, y[:-1]), "inconsistent numbers of samples"),
    (lambda X, y: (X + 1j, y), "Complex data not supported"),
])
def test_bad_device_input_is_refused_clearly(device, make_bad, message):
    X, y = _data()
    X_bad, y_bad = make_bad(X, y)
    with pytest.raises(ValueError, match=message):
        gpunn.MLPClassifier((4,), max_iter=1, backend=device).fit(device.asarray(X_bad), y_bad)


def test_prediction_checks_device_input(device):
    X, y = _data()
    clf = _fit(gpunn.MLPClassifier((4,), max_iter=1, random_state=0, backend=device),
               device.asarray(X), y)
    with pytest.raises(ValueError, match="X has 5 features, but MLPClassifier is expecting 6"):
        clf.predict(device.asarray(X[:, :5]))
    with pytest.raises(ValueError, match="NaN or infinity"):
        clf.predict(device.asarray(np.full_like(X, np.nan)))
    with pytest.raises(ValueError, match="Complex data not supported"):
        clf.predict(device.asarray(X + 1j))


def test_a_gpu_array_given_to_the_numpy_backend_is_refused_clearly():
    cupy_like = type("ndarray", (np.ndarray,), {"__module__": "cupy._core.core"})
    X, y = _data()
    with pytest.raises(TypeError, match="X is a CuPy array but this estimator runs on the "
                                        "'numpy' backend.*backend='cupy'.*X.get()"):
        gpunn.MLPClassifier((4,), backend="numpy").fit(X.view(cupy_like), y)
    clf = _fit(gpunn.MLPClassifier((4,), max_iter=1, backend="numpy"), X, y)
    with pytest.raises(TypeError, match="X is a CuPy array"):
        clf.predict(X.view(cupy_like))


def test_partial_fit_takes_device_arrays(device):
    X, y = _data()
    clf = gpunn.MLPClassifier((8,), random_state=0, backend=device)
    for _ in range(2):
        clf.partial_fit(device.asarray(X), device.asarray(y), classes=np.unique(y))
    ref = gpunn.MLPClassifier((8,), random_state=0, backend=device)
    for _ in range(2):
        ref.partial_fit(X, y, classes=np.unique(y))
    np.testing.assert_allclose(clf.coefs_[0], ref.coefs_[0], rtol=1e-6, atol=1e-7)
    assert len(clf.loss_curve_) == 2  # (n_iter_ counts per call, as in scikit-learn)


def test_a_diverged_partial_fit_on_the_device_changes_nothing(device):
    """The rollback's copies (weights, optimizer state) live on the device too."""
    X, y = _data("regression")
    est = _fit(gpunn.MLPRegressor(hidden_layer_sizes=(4,), solver="sgd", max_iter=2,
                                  random_state=0, backend=device), X, y)
    weights = device.to_numpy(est._model.params).copy()
    velocity = device.to_numpy(est._optimizer.state[0]).copy()
    n_iter, t = est.n_iter_, est.t_
    with pytest.raises(gpunn.DivergenceError, match="left as it was"):
        est.partial_fit(X / np.abs(X).max() * np.float32(1.5e19), y)  # just below the limit
    np.testing.assert_array_equal(device.to_numpy(est._model.params), weights)
    np.testing.assert_array_equal(device.to_numpy(est._optimizer.state[0]), velocity)
    assert (est.n_iter_, est.t_) == (n_iter, t)
