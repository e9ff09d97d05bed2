"""Choosing a backend by name, by environment variable and automatically."""

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
