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


@pytest.fixture
def cuda_starts(monkeypatch):
    """A GPU machine on which every start of the CuPy backend is recorded (and made the
    NumPy one, so nothing actually starts)."""
    started = []
    make = gpunn.backends._make
    monkeypatch.delenv("GPUNN_BACKEND", raising=False)
    monkeypatch.setattr(gpunn.backends, "cupy_status", lambda: (True, "a GPU"))
    monkeypatch.delitem(gpunn.backends._instances, "cupy", raising=False)
    monkeypatch.setattr(gpunn.backends, "_make", lambda name: started.append(name) or make(
        "numpy" if name == "cupy" else name))
    return started


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_tiny_network_never_starts_the_gpu(cuda_starts):
    """Starting CUDA takes a context's memory and a fraction of a second: a network that
    trains on the CPU anyway must not pay it (nor should its labels or predictions)."""
    X, y = _xy(100, 3)
    gpunn.MLPClassifier(**TINY).fit(X, y).predict(X)
    gpunn.MLPClassifier(**TINY).partial_fit(X, y, classes=[0, 1]).predict_proba(X)
    gpunn.MLPRegressor(**TINY).fit(X, y.astype(float)).predict(X)
    assert "cupy" not in cuda_starts


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_cpu_model_loads_on_the_cpu_without_starting_the_gpu(cuda_starts, tmp_path):
    X, y = _xy(100, 3)
    for solver in ("lbfgs", "adam"):  # full batch too: its step size is no longer guessed
        gpunn.MLPClassifier(**TINY, solver=solver).fit(X, y).save(tmp_path / "m.npz")
        for backend in (None, "auto"):
            assert gpunn.load(tmp_path / "m.npz", backend=backend).backend_ == "numpy"
    assert "cupy" not in cuda_starts


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_pickle_copy_and_files_keep_the_backend_a_model_trained_on(gpu_here, tmp_path):
    import copy
    import pickle

    X, y = _xy(100, 3)
    on_cpu = gpunn.MLPClassifier(**TINY, solver="lbfgs").fit(X, y)
    on_gpu = gpunn.MLPClassifier(**TINY).fit(gpu_here.asarray(X), y)
    for est, where in ((on_cpu, "numpy"), (on_gpu, "cupy")):
        est.save(tmp_path / "m.npz")
        for twin in (pickle.loads(pickle.dumps(est)), copy.deepcopy(est),
                     gpunn.load(tmp_path / "m.npz")):
            assert twin.backend_ == where


@pytest.mark.parametrize("X, y", [([], []), ({"a": [1.0, 2.0]}, [0, 1]), ("abc", [0, 1, 0])])
def test_bad_x_under_auto_gets_the_errors_it_gets_on_the_cpu(cuda_starts, X, y):
    with pytest.raises(Exception) as on_cpu:
        gpunn.MLPClassifier(**TINY, backend="numpy").fit(X, y)
    with pytest.raises(type(on_cpu.value)) as under_auto:
        gpunn.MLPClassifier(**TINY).fit(X, y)
    assert str(under_auto.value) == str(on_cpu.value)
    assert "cupy" not in cuda_starts


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_labels_or_weights_on_the_gpu_train_there_and_score_anywhere(gpu_here):
    from gpunn.estimators import _host

    X, y = _xy(100, 3)
    assert gpunn.MLPClassifier(**TINY).fit(X, gpu_here.asarray(y)).backend_ == "cupy"
    weighted = gpunn.MLPClassifier(**TINY).fit(X, y, sample_weight=gpu_here.asarray(np.ones(100)))
    assert weighted.backend_ == "cupy"
    on_cpu = gpunn.MLPClassifier(**TINY).fit(X, y)
    assert on_cpu.backend_ == "numpy" and 0 <= on_cpu.score(X, gpu_here.asarray(y)) <= 1
    host = _host(gpu_here.asarray(y), gpunn.get_backend("numpy"))  # GPU labels, CPU model
    assert type(host) is np.ndarray and np.array_equal(host, y)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_gpunn_backend_auto_is_the_same_as_unset(gpu_here, monkeypatch):
    monkeypatch.setenv("GPUNN_BACKEND", " Auto ")
    X, y = _xy(100, 3)
    tiny = gpunn.MLPClassifier(**TINY).fit(X, y)
    assert tiny.backend_ == "numpy"
    tiny.predict(X)
    assert tiny.backend_ == "numpy"


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_wide_outputs_count_towards_a_step(gpu_here):
    """No hidden layer, 1,000 features, 100 classes: ~80 MFLOP a step, not ~0.8 counting
    one output unit."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 1000)).astype(np.float32)
    y = np.arange(300) % 100
    assert gpunn.MLPClassifier(hidden_layer_sizes=(), max_iter=1).fit(X, y).backend_ == "cupy"
    assert gpunn.MLPRegressor(hidden_layer_sizes=(), max_iter=1).fit(X, X[:, :100]).backend_ == "cupy"


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_model_moved_to_the_gpu_keeps_its_optimizer_state(gpu_here):
    X, y = _xy(100, 3)
    est = gpunn.MLPClassifier(**TINY).partial_fit(X, y, classes=[0, 1])
    assert est.backend_ == "numpy"
    t, moments = est._optimizer.t, [np.array(m) for m in est._optimizer.state]
    est.predict(gpu_here.asarray(X))  # moves the model, and its Adam state with it
    assert est.backend_ == "cupy" and est._optimizer.t == t
    for moved, kept in zip(est._optimizer.state, moments):
        assert np.array_equal(gpu_here.to_numpy(moved), kept) and np.any(kept != 0)
    est.partial_fit(gpu_here.asarray(X), y)
    assert est._optimizer.t == 2 * t


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_the_cli_prints_where_fit_trains(gpu_here, capsys):
    """digits at 64-17-10, batch 200: ~0.9 MFLOP a step counting one output, ~1.1 with
    the ten classes' outputs: a GPU's step."""
    from gpunn.cli import main

    assert main(["train", "digits", "--hidden", "17", "--epochs", "1", "--quiet"]) == 0
    assert capsys.readouterr().out.startswith("backend: cupy")


def test_load_names_backends_as_get_backend_does(tmp_path, monkeypatch):
    monkeypatch.delenv("GPUNN_BACKEND", raising=False)
    gpunn.MLPClassifier((3,), max_iter=1, backend="numpy").fit([[0.0], [1.0]], [0, 1]).save(
        tmp_path / "m.npz")
    for name in ("AUTO", " Numpy "):
        assert gpunn.load(tmp_path / "m.npz", backend=name).backend == name.strip().lower()
    for name in ("", " ", "tpu"):
        with pytest.raises(ValueError, match="Unknown backend"):
            gpunn.load(tmp_path / "m.npz", backend=name)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_partial_fit_weighs_its_classes_and_gpu_labels(gpu_here):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 1000)).astype(np.float32)
    two_classes = np.arange(200) % 2  # a first chunk with 2 of the 100 classes
    wide = gpunn.MLPClassifier(hidden_layer_sizes=(), max_iter=1)
    assert wide.partial_fit(X, two_classes, classes=np.arange(100)).backend_ == "cupy"
    column = (np.arange(200) % 100)[:, None]  # one column of labels is not multilabel
    with pytest.warns(Warning):  # scikit-learn's DataConversionWarning for a column y
        assert gpunn.MLPClassifier(hidden_layer_sizes=(), max_iter=1).fit(X, column).backend_ == "cupy"
    Xs, ys = _xy(100, 3)
    streamed = gpunn.MLPClassifier(**TINY).partial_fit(Xs, gpu_here.asarray(ys), classes=[0, 1])
    assert streamed.backend_ == "cupy"  # as fit would: the data is on the GPU


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_moved_optimizer_is_the_same_optimizer(gpu_here):
    """As when the model stays put (and in scikit-learn), parameters changed during a
    partial_fit stream do not rebuild the optimizer: moving devices must not either."""
    X, y = _xy(100, 3)
    est = gpunn.MLPClassifier(**TINY).partial_fit(X, y, classes=[0, 1])
    est.set_params(beta_1=0.5, solver="sgd")
    est.predict(gpu_here.asarray(X))
    assert est.backend_ == "cupy" and est._optimizer.rule == "adam" and est._optimizer.beta_1 == 0.9


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_no_gpu_no_weighing(monkeypatch):
    """Where there is no GPU, "auto" does not read y's labels to size a step."""
    X, y = _xy(100, 3)
    est = gpunn.MLPClassifier(**TINY)
    monkeypatch.setattr(gpunn.backends, "cupy_status", lambda: (False, "no GPU"))
    monkeypatch.setattr(est, "_output_units", lambda *a: pytest.fail("labels were read"))
    assert est.fit(X, y).backend_ == "numpy"


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("name", ["numpy", "cupy-standin"])
def test_an_estimator_given_a_backend_instance_pickles(name):
    """Grid searches with n_jobs > 1 pickle the estimator, backend parameter and all."""
    import pickle

    from conftest import BACKEND_FACTORIES

    backend = BACKEND_FACTORIES[name]()
    X, y = _xy(100, 3)
    est = gpunn.MLPClassifier(**TINY, backend=backend).fit(X, y)
    twin = pickle.loads(pickle.dumps(est))
    assert type(twin.backend) is type(backend) and twin.backend.name == backend.name
    assert np.array_equal(twin.predict(X), est.predict(X))
    assert pickle.loads(pickle.dumps(gpunn.backends.NumpyBackend(compiled=False))).compiled is False
    shared = gpunn.get_backend("numpy")
    assert pickle.loads(pickle.dumps(shared)) is shared  # a model on it stays put
