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


# -- loading onto another backend --------------------------------------------------------
def test_load_onto_a_backend_makes_it_the_estimators_backend(tmp_path, data):
    X, y = data
    _fit(X, y).save(tmp_path / "m.npz")
    _rewrite(tmp_path / "m.npz", tmp_path / "gpu.npz", lambda a, m: m["params"].update(backend="cupy"))
    est = gpunn.load(tmp_path / "gpu.npz", backend="numpy")
    assert est.backend == "numpy" and est.get_params()["backend"] == "numpy"
    assert est.predict(X).shape == (len(X),)  # runs on this machine, GPU or not
    if not gpunn.backends.cupy_status()[0]:  # loaded as saved, where no GPU is: say how
        with pytest.raises(gpunn.BackendUnavailableError, match="gpu.npz', backend='numpy'\\)"):
            gpunn.load(tmp_path / "gpu.npz")
    with pytest.raises(ValueError, match="Unknown backend 'tpu'") as exc:
        gpunn.load(tmp_path / "m.npz", backend="tpu")  # the caller's mistake, not the file's
    assert not isinstance(exc.value, ModelFileError)


# -- damaged archives ---------------------------------------------------------------------
def _patch_central_directory(src, dst, offset, value: bytes):
    """Copy a zip file, overwriting bytes at ``offset`` of its first central directory entry."""
    raw = bytearray(src.read_bytes())
    at = raw.index(b"PK\x01\x02") + offset
    raw[at:at + len(value)] = value
    dst.write_bytes(bytes(raw))


@pytest.mark.parametrize("offset, value", [
    (8, b"\x01\x00"),  # "encrypted" flag: zipfile raised RuntimeError
    (8, b"\x41\x00"),  # "strong encryption" flag: NotImplementedError
    (10, b"\x63\x00"),  # unknown compression method: NotImplementedError
    (10, b"\x08\x00"),  # "deflated" (but stored): zlib.error
    (6, b"\x6d\x00"),  # needs zip version 10.9: NotImplementedError
], ids=["encrypted", "strong-encryption", "compression-99", "deflate", "zip-version"])
def test_damaged_zip_structure_is_a_model_file_error(tmp_path, data, offset, value):
    X, y = data
    _fit(X, y).save(tmp_path / "good.npz")
    _patch_central_directory(tmp_path / "good.npz", tmp_path / "bad.npz", offset, value)
    with pytest.raises(ModelFileError, match="bad.npz"):
        gpunn.load(tmp_path / "bad.npz")


def test_every_bit_flip_in_a_zip_directory_entry_loads_or_is_refused(tmp_path, data):
    X, y = data
    good = tmp_path / "good.npz"
    _fit(X, y).save(good)
    raw = good.read_bytes()
    start = raw.index(b"PK\x01\x02")
    for bit in range(8 * 60):  # the entry's fixed fields and name
        flipped = bytearray(raw)
        flipped[start + bit // 8] ^= 1 << (bit % 8)
        (tmp_path / "bad.npz").write_bytes(bytes(flipped))
        try:
            gpunn.load(tmp_path / "bad.npz")
        except ModelFileError:  # anything else (RuntimeError, MemoryError, ...) fails the test
            pass


def test_npy_header_claiming_a_huge_array_allocates_nothing(tmp_path, data):
    X, y = data
    _fit(X, y).save(tmp_path / "good.npz")
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False,
                                                  "shape": (10**12,)})
    with zipfile.ZipFile(tmp_path / "good.npz") as src, \
            zipfile.ZipFile(tmp_path / "huge.npz", "w") as dst:
        for info in src.infolist():
            body = src.read(info)
            dst.writestr(info.filename, header.getvalue() + b"\0" * 64 if info.filename == "params.npy"
                         else body)
    with pytest.raises(ModelFileError, match="params.npy.*shape \\(1000000000000,\\)"):
        gpunn.load(tmp_path / "huge.npz")


# -- crafted or inconsistent metadata -----------------------------------------------------
def _set_fitted(key, value):
    return lambda a, m: m["fitted"].update({key: value})


def _logistic_output(arrays, meta):
    """A known output, consistently recorded, that a multiclass classifier cannot use."""
    meta["output"] = meta["fitted"]["out_activation_"] = "logistic"


CRAFTED = {
    "fitted is a list": (lambda a, m: m.update(fitted=[1, 2]), r"'fitted'\] must be an object"),
    "short rng key": (lambda a, m: a.update(rng_key=a["rng_key"][:10]), "rng_key must be 624 uint32"),
    "rng key of int64": (lambda a, m: a.update(rng_key=a["rng_key"].astype(np.int64)), "rng_key"),
    "rng position": (lambda a, m: m["rng"].update(pos=10**6), r"'pos'\] must be an integer from 0"),
    "huge float layers": (lambda a, m: m.update(layer_units=[6, 1e6, 1e6, 3]), "positive integers"),
    "huge layers": (lambda a, m: m.update(layer_units=[6, 10**6, 10**6, 3]), "do not fit layers"),
    "one layer": (lambda a, m: m.update(layer_units=[6]), "input and an output layer"),
    "n_outputs_": (_set_fitted("n_outputs_", 2), r"'n_outputs_'\] is 2, but layers"),
    "n_features_in_": (_set_fitted("n_features_in_", 5), r"'n_features_in_'\] is 5"),
    "n_layers_": (_set_fitted("n_layers_", "3"), r"'n_layers_'\] must be an integer"),
    "loss curve": (_set_fitted("loss_curve_", ["a"]), "must be a list of numbers"),
    "no n_features_in_": (lambda a, m: m["fitted"].pop("n_features_in_"), "no 'n_features_in_'"),
    "feature names": (_set_fitted("feature_names_in_", ["a"]), "1 feature names for 6"),
    "integer dtype": (lambda a, m: m.update(dtype="int64"), r"'dtype'\] must be one of"),
    "activation": (lambda a, m: m.update(activation="swish"), r"'activation'\] must be one of"),
    "output": (lambda a, m: m.update(output="softplus"), r"'output'\] must be one of"),
    "wrong output": (_logistic_output, "needs 'softmax'"),
    "too few classes": (lambda a, m: a.update(classes=a["classes"][:2]), "2 classes .* 3 output"),
    "binary with 3 classes": (lambda a, m: m["label_binarizer"].update(y_type_="binary"),
                              r"3 classes \(binary\)"),
    "2-D classes": (lambda a, m: a.update(classes=a["classes"].reshape(3, 1)), "classes must be"),
    "no label binarizer": (lambda a, m: m.pop("label_binarizer"), "no 'label_binarizer'"),
    "estimator": (lambda a, m: m.update(estimator="os.system"), r"'estimator'\] must be one of"),
    "unknown parameter": (lambda a, m: m["params"].update(evil=1), r"unknown parameters \['evil'\]"),
    "bad parameter value": (lambda a, m: m["params"].update(alpha=-1), "'alpha' parameter"),
    "NaN class": (lambda a, m: a.update(classes=np.array([0.0, np.nan, 2.0])), "classes must be finite"),
    "no weights": (lambda a, m: a.pop("params"), "no 'params' array"),
    "best_params dtype": (lambda a, m: a.update(best_params=a["best_params"].astype(np.float32)),
                          "best_params has shape"),
    "optimizer buffer": (lambda a, m: a.update(optimizer_1=a["optimizer_1"][:5]), "optimizer_1"),
    "optimizer rule": (lambda a, m: m["optimizer"].update(rule="rmsprop"), r"'rule'\] must be"),
    "shuffle order": (lambda a, m: a.update(sample_idx=a["sample_idx"] * 0.5), "sample_idx must be"),
    "half a split": (lambda a, m: a.pop("val_idx"), "both train_idx and val_idx"),
    "planted method": (_set_fitted("predict", 1), r"unknown attributes \['predict'\]"),
    "planted private": (_set_fitted("_model", None), r"unknown attributes \['_model'\]"),
}


@pytest.mark.parametrize("case", list(CRAFTED))
def test_crafted_metadata_is_refused_naming_the_problem(tmp_path, data, case):
    change, message = CRAFTED[case]
    X, y = data
    good = tmp_path / "good.npz"
    _fit(X, y, early_stopping=True).save(good)
    _rewrite(good, tmp_path / "bad.npz", change)
    with pytest.raises(ModelFileError, match=message):
        gpunn.load(tmp_path / "bad.npz")


@pytest.mark.parametrize("kind", ["binary", "multilabel", "regressor", "int hidden size",
                                  "one class", "one string class"])
def test_every_kind_of_model_passes_the_checks(tmp_path, kind):
    X, y = make_classification(60, 4, n_informative=3, n_redundant=0, n_classes=3, random_state=0)
    targets = {"binary": y == 1, "multilabel": np.eye(3, dtype=int)[y] | (X[:, :1] > 0),
               "one class": np.zeros(60), "one string class": np.array(["only"] * 60)}
    if kind == "regressor":
        est = gpunn.MLPRegressor(hidden_layer_sizes=(3,), max_iter=3, backend="numpy", loss="poisson").fit(X, y)
    else:
        est = _fit(X, targets.get(kind, y), hidden_layer_sizes=5 if kind == "int hidden size" else (4,))
    est.save(tmp_path / "m.npz")
    loaded = gpunn.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
    assert type(loaded.loss_) is type(est.loss_) is np.float64
    assert loaded.loss_curve_ == est.loss_curve_ and type(loaded.loss_curve_[0]) is np.float64


# -- where a model can be saved -----------------------------------------------------------
def test_save_to_a_bad_path_is_refused_before_writing_anything(tmp_path, monkeypatch, data):
    X, y = data
    est = _fit(X, y)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="output path is empty"):
        est.save("")
    with pytest.raises(IsADirectoryError, match="is a folder"):
        est.save(tmp_path)
    with pytest.raises(FileNotFoundError, match="folder .*nowhere does not exist"):
        est.save(tmp_path / "nowhere" / "m.npz")
    (tmp_path / "file").write_text("")
    with pytest.raises(NotADirectoryError, match="is not a folder"):
        est.save(tmp_path / "file" / "m.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
