"""Model files: round trips, exact resume, pickling, and refusal of anything else."""

import io
import json
import pickle
import zipfile

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_regression

import gpunn
from gpunn.io import FORMAT, ModelFileError


@pytest.fixture
def data():
    X, y = make_classification(200, 6, n_informative=4, n_classes=3, random_state=0)
    return X, np.array(["ant", "bee", "cow"])[y]


def _fit(X, y, **kw):
    params = dict(hidden_layer_sizes=(8,), max_iter=10, random_state=0, n_iter_no_change=100,
                  backend="numpy")
    return gpunn.MLPClassifier(**{**params, **kw}).fit(X, y)


@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
def test_round_trip_predicts_identically(tmp_path, data, solver):
    X, y = data
    est = _fit(X, y, solver=solver)
    est.save(tmp_path / "m.npz")
    loaded = gpunn.load(tmp_path / "m.npz")
    assert type(loaded) is type(est) and loaded.get_params() == {**est.get_params()}
    np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))
    np.testing.assert_array_equal(loaded.classes_, est.classes_)
    assert loaded.n_iter_ == est.n_iter_ and loaded.loss_ == est.loss_


def test_regressor_with_feature_names_round_trips(tmp_path):
    pd = pytest.importorskip("pandas")
    X, y = make_regression(50, 3, n_targets=2, random_state=0)
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    est = gpunn.MLPRegressor(hidden_layer_sizes=(4,), max_iter=3, backend="numpy").fit(frame, y)
    est.save(tmp_path / "r.npz")
    loaded = gpunn.load(tmp_path / "r.npz")
    assert list(loaded.feature_names_in_) == ["a", "b", "c"]
    np.testing.assert_array_equal(loaded.predict(frame), est.predict(frame))


@pytest.mark.parametrize("early_stopping", [False, True])
@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_resume_from_checkpoint_equals_uninterrupted_run(tmp_path, data, early_stopping, solver):
    X, y = data
    full = _fit(X, y, max_iter=9, early_stopping=early_stopping, solver=solver)
    path = tmp_path / "ckpt.npz"
    _fit(X, y, max_iter=9, early_stopping=early_stopping, solver=solver,
         callbacks=[gpunn.Checkpoint(path, every=2), lambda m: m["epoch"] == 4])
    resumed = gpunn.load(path)
    assert resumed.n_iter_ == 4
    resumed.resume(X, y)
    for a, b in zip(full.coefs_ + full.intercepts_, resumed.coefs_ + resumed.intercepts_):
        np.testing.assert_array_equal(a, b)
    assert resumed.loss_curve_ == full.loss_curve_


def test_pickle_and_joblib(tmp_path, data):
    X, y = data
    est = _fit(X, y)
    clone = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(clone.predict_proba(X), est.predict_proba(X))
    joblib = pytest.importorskip("joblib")
    joblib.dump(est, tmp_path / "m.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "m.joblib").predict(X), est.predict(X))
    assert pickle.loads(pickle.dumps(gpunn.MLPClassifier())).get_params()["backend"] == "auto"


def _rewrite(src, dst, change):
    """Copy a model file, letting ``change(arrays, meta)`` edit its contents."""
    with np.load(src, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(arrays["meta_json"].tobytes())
    change(arrays, meta)
    arrays["meta_json"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(dst, **arrays)


def test_bad_files_are_refused_and_nothing_runs(tmp_path, data):
    X, y = data
    good = tmp_path / "good.npz"
    _fit(X, y).save(good)
    raw = good.read_bytes()

    cases = {}
    cases["truncated"] = raw[: len(raw) // 2]
    cases["not a model"] = b"just some text, not a model\n"
    buf = io.BytesIO()
    np.savez(buf, weights=np.ones(3))
    cases["other npz"] = buf.getvalue()
    for name, data_bytes in cases.items():
        path = tmp_path / f"{name}.npz"
        path.write_bytes(data_bytes)
        with pytest.raises(ModelFileError):
            gpunn.load(path)

    _rewrite(good, tmp_path / "v99.npz", lambda a, m: m.update(version=99))
    with pytest.raises(ModelFileError, match="version 99.*Upgrade gpunn"):
        gpunn.load(tmp_path / "v99.npz")
    _rewrite(good, tmp_path / "shapes.npz", lambda a, m: a.update(params=a["params"][:-3]))
    with pytest.raises(ModelFileError, match="do not fit layers"):
        gpunn.load(tmp_path / "shapes.npz")
    _rewrite(good, tmp_path / "format.npz", lambda a, m: m.update(format="other"))
    with pytest.raises(ModelFileError, match="not a gpunn model"):
        gpunn.load(tmp_path / "format.npz")
    with pytest.raises(FileNotFoundError):
        gpunn.load(tmp_path / "missing.npz")


class _Boom:
    def __reduce__(self):
        return (exec, ("raise SystemExit('pickle payload executed')",))


def test_pickled_object_array_is_never_executed(tmp_path, data):
    X, y = data
    good = tmp_path / "good.npz"
    _fit(X, y).save(good)
    evil = tmp_path / "evil.npz"
    with np.load(good, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["classes"] = np.array([_Boom(), _Boom()], dtype=object)
    np.savez(evil, **arrays)  # np.savez pickles object arrays
    with pytest.raises(ModelFileError, match="pickled objects"):
        gpunn.load(evil)
    assert FORMAT == "gpunn-model"
    with zipfile.ZipFile(evil) as z:  # the payload is really there
        assert "classes.npy" in z.namelist()
