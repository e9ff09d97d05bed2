"""The training loop: the three modes of gradient descent, callbacks, divergence, curves."""

import pickle
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits, make_classification
from sklearn.exceptions import ConvergenceWarning

from gpunn import DivergenceError, MLPClassifier, MLPRegressor
from gpunn.trainer import resolve_batch_size


def test_batch_size_resolution():
    assert resolve_batch_size("auto", 1000) == 200
    assert resolve_batch_size("auto", 50) == 50
    assert resolve_batch_size("full", 1234) == 1234
    assert resolve_batch_size(1, 10) == 1
    with pytest.warns(UserWarning, match="clipped"):
        assert resolve_batch_size(64, 10) == 10


@pytest.mark.parametrize("batch_size, steps_per_epoch", [("full", 1), (1, 40), (16, 3)])
def test_modes_take_the_expected_number_of_steps(batch_size, steps_per_epoch):
    X, y = make_classification(40, 4, random_state=0)
    clf = MLPClassifier((3,), solver="adam", batch_size=batch_size, max_iter=2, backend="numpy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    assert clf._optimizer.t == 2 * steps_per_epoch  # Adam counts its steps
    assert clf.t_ == 2 * 40


def test_callbacks_see_metrics_and_can_stop():
    X, y = make_classification(100, 5, random_state=0)
    seen = []

    def stop_after_three(metrics):
        seen.append(metrics)
        return metrics["epoch"] == 3

    clf = MLPClassifier((5,), max_iter=50, early_stopping=True, callbacks=[stop_after_three],
                        random_state=0, backend="numpy").fit(X, y)
    assert clf.n_iter_ == 3 and len(seen) == 3
    assert set(seen[0]) >= {"epoch", "loss", "validation_score", "validation_loss",
                            "samples_per_second", "learning_rate", "n_samples"}
    assert seen[-1]["loss"] == clf.loss_curve_[-1]
    assert len(clf.validation_loss_curve_) == 3
    assert all(np.isfinite(clf.validation_loss_curve_))
    assert seen[0]["n_samples"] == 90  # 10% held out


def test_validation_loss_is_the_loss_on_held_out_rows():
    X, y = make_classification(120, 5, random_state=1)
    clf = MLPClassifier((5,), max_iter=1, early_stopping=True, random_state=0,
                        backend="numpy", validation_fraction=0.25)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    # recompute the validation split exactly as the trainer drew it
    from sklearn.model_selection import train_test_split
    rng = np.random.RandomState(0)
    for c in clf.coefs_ + clf.intercepts_:  # init consumed the RNG first
        rng.uniform(size=c.shape)
    _, val = train_test_split(np.arange(120), random_state=rng, test_size=0.25,
                              stratify=clf._label_binarizer.transform(y))
    p = clf.predict_proba(X[val])[:, 1]
    eps = np.finfo(np.float64).eps
    p = np.clip(p, eps, 1 - eps)
    expected = -np.mean(y[val] * np.log(p) + (1 - y[val]) * np.log(1 - p))
    assert clf.validation_loss_curve_[0] == pytest.approx(expected, rel=1e-10)


def test_divergence_stops_and_leaves_the_estimator_as_it_was():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 5)) * 100
    y = X @ rng.normal(size=5)
    reg = MLPRegressor(hidden_layer_sizes=(20,), solver="sgd", learning_rate_init=10.0, max_iter=50,
                       random_state=0, backend="numpy")
    with pytest.raises(DivergenceError, match=r"epoch \d+.*as it was before this call.*Lower learning_rate_init"):
        reg.fit(X, y)
    assert not hasattr(reg, "coefs_") and not hasattr(reg, "n_iter_")  # unfitted, as before
    reg.set_params(learning_rate_init=1e-6, max_iter=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        assert np.isfinite(reg.fit(X, y).predict(X[:3])).all()


def test_digits_reaches_high_accuracy_in_float32():
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    clf = MLPClassifier((64,), max_iter=60, learning_rate_init=3e-3, random_state=0, backend="numpy").fit(X[:1400], y[:1400])
    assert clf.coefs_[0].dtype == np.float32
    assert clf.score(X[1400:], y[1400:]) > 0.9


def test_dtype_parameter_overrides_input():
    X, y = make_classification(50, 4, random_state=0)
    clf = MLPClassifier((3,), max_iter=2, dtype="float32", backend="numpy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    assert clf.coefs_[0].dtype == np.float32
    with pytest.raises(ValueError, match="dtype must be None, 'float32' or 'float64'"):
        MLPClassifier(dtype=np.int32, backend="numpy").fit(X, y)


def test_partial_fit_keeps_its_buffers_and_fit_frees_them():
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    chunks = [(X[i:i + 300], y[i:i + 300]) for i in range(0, 1500, 300)]
    kept, fresh = (MLPClassifier((32,), batch_size=64, random_state=0, backend="numpy")
                   for _ in range(2))
    for X_part, y_part in chunks:
        kept.partial_fit(X_part, y_part, classes=np.arange(10))
        fresh.partial_fit(X_part, y_part, classes=np.arange(10))
        fresh._model.release_buffers()
    buffers = dict(kept._model._buffers)
    assert {"x", "y", "acc", "workspace"} <= buffers.keys()
    kept.partial_fit(*chunks[0])
    assert all(kept._model._buffers[name] is buf for name, buf in buffers.items())
    fresh.partial_fit(*chunks[0])
    # kept buffers change nothing: the same stream with buffers made anew gives the same bits
    for a, b in zip(kept.coefs_ + kept.intercepts_, fresh.coefs_ + fresh.intercepts_):
        np.testing.assert_array_equal(a, b)
    assert b"_buffers" not in pickle.dumps(kept)
    kept.set_params(batch_size=50).partial_fit(*chunks[1])  # another batch size: new buffers
    assert kept._model._buffers["x"].shape == (50, 64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        kept.set_params(max_iter=2).fit(X, y)
    assert not kept._model._buffers
