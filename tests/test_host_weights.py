"""``coefs_``/``intercepts_``: read from the model's buffer when asked for, edits honoured.

On a GPU backend the weights cross to the host only when a user reads them, so a stream
of ``partial_fit`` calls or predictions moves none; a handed-out copy edited in place (or
replaced) is what the next prediction, fit or saved file uses. Runs on every backend.
"""

import warnings

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning

import gpunn
from gpunn.mlp import MLP


@pytest.fixture
def data():
    X, y = make_classification(90, 5, n_informative=3, n_classes=3, random_state=0)
    return X.astype(np.float32), y


@pytest.fixture
def transfers(monkeypatch):
    """Counts of the model's weight copies: device -> host and host -> device."""
    counts = {"to_host": 0, "to_model": 0}
    host_weights, set_weights = MLP.host_weights, MLP.set_weights

    def counting_host_weights(model):
        counts["to_host"] += 1
        return host_weights(model)

    def counting_set_weights(model, coefs, intercepts):
        counts["to_model"] += 1
        return set_weights(model, coefs, intercepts)

    monkeypatch.setattr(MLP, "host_weights", counting_host_weights)
    monkeypatch.setattr(MLP, "set_weights", counting_set_weights)
    return counts


def _classifier(backend, **params):
    return gpunn.MLPClassifier((6,), max_iter=3, random_state=0, backend=backend, **params)


def _fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


def _output(est, X):
    """The network's output computed from the public weights, as the seed notes write it."""
    a = X.astype(np.float64)
    for i, (W, b) in enumerate(zip(est.coefs_, est.intercepts_)):
        a = a @ W + b
        if i < len(est.coefs_) - 1:
            a = np.maximum(a, 0)
    return a


def test_partial_fit_stream_and_predictions_move_no_weights(backend, data, transfers):
    X, y = data
    est = _fit(_classifier(backend), X, y)
    transfers.update(to_host=0, to_model=0)  # the initial weights were drawn on the host
    for _ in range(4):
        est.partial_fit(X, y)
        est.predict(X)
    assert transfers == {"to_host": 0, "to_model": 0}
    assert est.coefs_[0].shape == (5, 6) and transfers["to_host"] == 1
    est.coefs_, est.intercepts_  # noqa: B018  (a second read fetches nothing)
    assert transfers["to_host"] == 1


def test_weights_read_after_training_are_the_trained_ones(backend, data):
    X, y = data
    est = _fit(_classifier(backend), X, y)
    before = [W.copy() for W in est.coefs_]
    est.partial_fit(X, y)
    assert not np.array_equal(est.coefs_[0], before[0])  # the step is seen, not a stale copy
    np.testing.assert_array_equal(est.predict(X), est.classes_[_output(est, X).argmax(1)])


def test_in_place_edit_is_used_by_predict_fit_and_save(backend, data, tmp_path):
    X, y = data
    est = _fit(_classifier(backend), X, y)
    est.coefs_[1][:] = 0
    est.intercepts_[1][:] = [0, 5, 0]  # every sample now goes to class 1
    assert (est.predict(X) == est.classes_[1]).all()
    est.save(tmp_path / "edited.npz")
    assert (gpunn.load(tmp_path / "edited.npz").predict(X) == est.classes_[1]).all()
    est.set_params(warm_start=True, max_iter=1)
    _fit(est, X, y)  # continues from the edit: one epoch cannot undo a margin of 5
    assert (est.predict(X) == est.classes_[1]).mean() > 0.9


def test_assigned_weights_replace_the_model_s(backend, data):
    X, y = data
    est = _fit(_classifier(backend), X, y)
    est.coefs_ = [np.zeros_like(W) for W in est.coefs_]
    est.intercepts_ = [np.zeros_like(b) for b in est.intercepts_[:-1]] + [np.array([0., 0, 5])]
    assert (est.predict(X) == est.classes_[2]).all()



@pytest.mark.parametrize("name, value, message", [
    ("coefs_", lambda e: [np.zeros((2, 2))] + e.coefs_[1:], r"coefs_\[0\] must be a real array of shape \(5, 6\); got shape \(2, 2\)"),
    ("coefs_", lambda e: e.coefs_[:1], "coefs_ must hold 2 arrays, one per layer; got 1"),
    ("intercepts_", lambda e: e.intercepts_[:1], "intercepts_ must hold 2 arrays"),
    ("intercepts_", lambda e: [b.astype(str) for b in e.intercepts_], "must be a real array.*dtype <U"),
    ("coefs_", lambda e: [w + 1j for w in e.coefs_], "must be a real array.*complex"),
    ("coefs_", lambda e: "weights", "must be a list of 2 arrays; got str"),
])
def test_bad_assigned_weights_are_refused_and_change_nothing(backend, data, name, value, message):
    X, y = data
    est = _fit(_classifier(backend), X, y)
    before = est.predict_proba(X)
    with pytest.raises(ValueError, match=message):
        setattr(est, name, value(est))
    np.testing.assert_array_equal(est.predict_proba(X), before)


def test_a_bad_layer_put_into_coefs_is_refused_before_the_model_changes(backend, data):
    X, y = data
    est = _fit(_classifier(backend), X, y)
    model_weights = backend.to_numpy(est._model.params).copy()
    est.coefs_[1] = np.zeros((6, 3))  # a good last layer...
    est.coefs_[0] = np.zeros((2, 2))  # ...and a bad first one
    with pytest.raises(ValueError, match=r"coefs_\[0\] must be a real array of shape \(5, 6\)"):
        est.predict(X)
    np.testing.assert_array_equal(backend.to_numpy(est._model.params), model_weights)


def test_unfitted_estimator_has_no_weights():
    est = gpunn.MLPClassifier()
    assert not hasattr(est, "coefs_") and not hasattr(est, "intercepts_")


def test_callbacks_read_the_current_weights_and_cannot_swap_them(backend, data):
    X, y = data
    seen = []

    def record(metrics):
        est = metrics["estimator"]
        seen.append([W.copy() for W in est.coefs_])
        assert (est.predict(X) == est.classes_[_output(est, X).argmax(1)]).all()
        with pytest.raises(RuntimeError, match="during training"):
            est.coefs_ = est.coefs_

    est = _fit(_classifier(backend), X, y)
    before = [W.copy() for W in est.coefs_]  # handed out before the next fit...
    _fit(est.set_params(warm_start=True, callbacks=[record]), X, y)
    assert len(seen) == 3 and not np.array_equal(seen[0][0], before[0])
    assert not np.array_equal(seen[1][0], seen[0][0])  # ...and not put back by predict
    np.testing.assert_array_equal(seen[-1][0], est.coefs_[0])


def test_a_callback_predicting_does_not_change_a_warm_start_fit(backend, data):
    """Once, on the GPU, predict in a callback put the previous fit's weights back."""
    X, y = data

    def warm_fit(callbacks):
        est = _fit(_classifier(backend), X, y)
        est.coefs_  # noqa: B018  (handed out before the next fit)
        return _fit(est.set_params(warm_start=True, callbacks=callbacks), X, y).coefs_

    plain = warm_fit([])
    predicting = warm_fit([lambda metrics: metrics["estimator"].predict(X) is None])
    for a, b in zip(plain, predicting):
        np.testing.assert_array_equal(a, b)


def test_bad_weights_stop_a_move_to_another_backend_before_it_starts(data):
    X, y = data
    est = _fit(_classifier("numpy"), X, y)
    model = est._model
    est.coefs_[0] = np.zeros((2, 2))
    est.set_params(backend=gpunn.backends.NumpyBackend())  # another backend object: a move
    with pytest.raises(ValueError, match=r"coefs_\[0\] must be a real array"):
        est.predict(X)
    assert est._model is model
