"""Choosing a backend by name, by environment variable and automatically."""

import numpy as np
import pytest

import gpunn
from gpunn.backends import BackendUnavailableError, cupy_status


def test_numpy_by_name_and_unknown_names(monkeypatch):
    assert gpunn.get_backend("numpy").name == "numpy"
    with pytest.raises(ValueError, match="Unknown backend 'tpu'.*auto, numpy, cupy"):
        gpunn.get_backend("tpu")
    monkeypatch.setenv("GPUNN_BACKEND", "metal")
    with pytest.raises(ValueError, match="environment variable GPUNN_BACKEND 'metal'"):
        gpunn.get_backend()


def test_environment_variable_chooses(monkeypatch):
    monkeypatch.setenv("GPUNN_BACKEND", "numpy")
    assert gpunn.get_backend().name == "numpy"
    assert gpunn.info()["backend"] == "numpy"
    assert gpunn.info()["reason"] == "set by GPUNN_BACKEND"
    assert gpunn.get_backend("numpy").name == "numpy"  # a name given in code wins


def test_environment_variable_moves_estimators_left_on_auto(monkeypatch):
    monkeypatch.setenv("GPUNN_BACKEND", "numpy")
    clf = gpunn.MLPClassifier((3,), max_iter=1).fit([[0.0], [1.0]], [0, 1])
    assert clf._model.backend.name == "numpy"
    if not cupy_status()[0]:
        monkeypatch.setenv("GPUNN_BACKEND", "cupy")
        with pytest.raises(BackendUnavailableError, match="Unset GPUNN_BACKEND or set it to 'numpy'"):
            gpunn.MLPClassifier((3,), max_iter=1).fit([[0.0], [1.0]], [0, 1])


def test_auto_never_raises_and_explains_itself(monkeypatch):
    monkeypatch.delenv("GPUNN_BACKEND", raising=False)
    backend = gpunn.get_backend("auto")
    ok, why = cupy_status()
    assert backend.name == ("cupy" if ok else "numpy")
    report = gpunn.info()
    assert report["reason"].startswith("auto")
    assert report["backends"]["cupy"] == (ok, why)


@pytest.mark.skipif(cupy_status()[0], reason="CuPy runs here, so asking for it succeeds")
def test_cupy_where_it_cannot_run_says_how_to_fix():
    with pytest.raises(BackendUnavailableError, match="cannot run here.*backend='numpy'"):
        gpunn.get_backend("cupy")
    with pytest.raises(BackendUnavailableError):
        gpunn.MLPClassifier(backend="cupy").fit([[0.0], [1.0]], [0, 1])


def test_import_does_not_touch_cuda():
    import subprocess
    import sys

    code = "import sys, gpunn; print('cupy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- "auto" where a GPU is: the CuPy stand-in plays it --------------------------------------
@pytest.fixture
def gpu_here(monkeypatch):
    """A machine where "auto" sees a GPU: CupyBackend's code on the CUDA emulator."""
    from conftest import BACKEND_FACTORIES

    standin = BACKEND_FACTORIES["cupy-standin"]()
    monkeypatch.delenv("GPUNN_BACKEND", raising=False)
    monkeypatch.setattr(gpunn.backends, "cupy_status", lambda: (True, "a stand-in GPU"))
    monkeypatch.setitem(gpunn.backends._instances, "cupy", standin)
    return standin


TINY = dict(hidden_layer_sizes=(5, 2), activation="logistic", max_iter=2)  # the notes' net


def _xy(n_samples, n_features, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_features)).astype(np.float32)
    return X, (X[:, 0] > 0).astype(int)


def test_auto_takes_the_gpu_only_for_steps_that_pay_for_it(gpu_here):
    from gpunn.backends import GPU_MIN_STEP_FLOPS

    assert gpunn.get_backend("auto") is gpu_here
    assert gpunn.get_backend("auto", step_flops=GPU_MIN_STEP_FLOPS) is gpu_here
    assert gpunn.get_backend("auto", step_flops=6e3).name == "numpy"
    assert "~6,000 FLOPs runs faster on the CPU" in gpunn.backends._last_choice["reason"]
    assert gpunn.get_backend("cupy", step_flops=6e3) is gpu_here  # a name is obeyed


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_tiny_network_trains_on_the_cpu_and_a_large_one_on_the_gpu(gpu_here):
    X, y = _xy(100, 3)
    tiny = gpunn.MLPClassifier(**TINY).fit(X, y)  # 3-5-2-1 at batch 100: ~13 kFLOP a step
    assert tiny.backend_ == "numpy"
    assert tiny.predict(X).shape == (100,) and tiny.backend_ == "numpy"  # stays
    X_big, y_big = _xy(64, 400)
    big = gpunn.MLPClassifier((64,), max_iter=1).fit(X_big, y_big)  # 400-64-1 x 64 rows: ~7 MFLOP
    assert big._model.backend is gpu_here
    big.predict(X_big)
    assert big._model.backend is gpu_here


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_data_on_the_gpu_or_a_named_backend_wins_over_the_size_rule(gpu_here, monkeypatch):
    X, y = _xy(100, 3)
    on_device = gpunn.MLPClassifier(**TINY).fit(gpu_here.asarray(X), y)
    assert on_device._model.backend is gpu_here
    tiny = gpunn.MLPClassifier(**TINY).fit(X, y)
    assert tiny._model.backend.name == "numpy"
    tiny.predict(gpu_here.asarray(X))  # predicting on device data moves the model there
    assert tiny._model.backend is gpu_here and tiny.backend_ == "cupy"
    assert gpunn.MLPClassifier(**TINY, backend="cupy").fit(X, y)._model.backend is gpu_here
    monkeypatch.setenv("GPUNN_BACKEND", "cupy")
    assert gpunn.MLPClassifier(**TINY).fit(X, y)._model.backend is gpu_here


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_loaded_tiny_model_predicts_on_the_cpu(gpu_here, tmp_path):
    X, y = _xy(100, 3)
    gpunn.MLPClassifier(**TINY, backend="numpy").fit(X, y).set_params(backend="auto").save(
        tmp_path / "tiny.npz")
    loaded = gpunn.load(tmp_path / "tiny.npz")
    assert loaded.backend == "auto" and loaded._model.backend.name == "numpy"


def test_backend_is_a_fitted_attribute():
    from sklearn.exceptions import NotFittedError

    clf = gpunn.MLPClassifier((3,), max_iter=1, backend="numpy")
    with pytest.raises(NotFittedError):
        clf.backend_
    assert clf.fit([[0.0], [1.0]], [0, 1]).backend_ == "numpy"


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_tiny_network_never_starts_the_gpu(monkeypatch):
    """Starting CUDA takes a context's memory and a fraction of a second: a network that
    trains on the CPU anyway must not pay it (nor should its labels or predictions)."""
    started = []
    make = gpunn.backends._make
    monkeypatch.delenv("GPUNN_BACKEND", raising=False)
    monkeypatch.setattr(gpunn.backends, "cupy_status", lambda: (True, "a GPU"))
    monkeypatch.delitem(gpunn.backends._instances, "cupy", raising=False)
    monkeypatch.setattr(gpunn.backends, "_make", lambda name: started.append(name) or make(
        "numpy" if name == "cupy" else name))
    X, y = _xy(100, 3)
    gpunn.MLPClassifier(**TINY).fit(X, y).predict(X)
    gpunn.MLPClassifier(**TINY).partial_fit(X, y, classes=[0, 1]).predict_proba(X)
    gpunn.MLPRegressor(**TINY).fit(X, y.astype(float)).predict(X)
    assert "cupy" not in started
