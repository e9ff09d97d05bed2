"""Whole training runs on every backend follow the NumPy backend's trajectory.

The epoch's shuffle is drawn on the host from the estimator's random_state, so every
backend sees the same batches; results agree within float32 rounding. On a machine with
a GPU the "cupy" backend runs here too; in CI the "cupy-standin" backend runs
CupyBackend's code and our real kernels on the CUDA emulator.
"""

import warnings

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning

import gpunn

CASES = [
    ("multiclass", dict(solver="adam", activation="relu")),
    ("binary", dict(solver="sgd", activation="tanh", momentum=0.9, learning_rate_init=0.05)),
    ("regression", dict(solver="adam", activation="logistic", alpha=1e-3)),
    ("multiclass", dict(solver="adam", activation="tanh", early_stopping=True, validation_fraction=0.2)),
]


@pytest.mark.parametrize("task, params", CASES)
def test_training_trajectory_matches_numpy(backend, reference, task, params):
    if backend.name == "numpy":
        pytest.skip("the NumPy backend is the reference")
    if task == "regression":
        X, y = make_regression(96, 5, random_state=0)
        y = y / y.std()
        make = gpunn.MLPRegressor
    else:
        X, y = make_classification(96, 5, n_informative=3, n_classes=3 if task == "multiclass" else 2,
                                   random_state=0)
        make = gpunn.MLPClassifier
    X = X.astype(np.float32)
    kwargs = dict(hidden_layer_sizes=(12, 6), max_iter=4, batch_size=32, random_state=0, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = make(backend=backend, **kwargs).fit(X, y)
        ref = make(backend=reference, **kwargs).fit(X, y)
    for a, b in zip(ours.coefs_ + ours.intercepts_, ref.coefs_ + ref.intercepts_):
        assert isinstance(a, np.ndarray)  # fitted weights are host arrays, like scikit-learn's
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=1e-5)
    np.testing.assert_allclose(ours.predict(X[:10]) if task == "regression" else ours.predict_proba(X[:10]),
                               ref.predict(X[:10]) if task == "regression" else ref.predict_proba(X[:10]),
                               rtol=1e-4, atol=1e-5)
