"""The gpunn command: train, predict, evaluate, info; one-line errors for user mistakes."""

import os
import re
import subprocess
import sys

import pytest

from gpunn.cli import main


def test_train_save_predict_evaluate(tmp_path, capsys):
    model = tmp_path / "iris.npz"
    assert main(["train", "iris", "--hidden", "16", "--epochs", "30", "--lr", "0.01",
                 "--quiet", "--out", str(model)]) == 0
    out = capsys.readouterr().out
    assert "backend: numpy" in out or "backend: cupy" in out
    assert "test accuracy:" in out and "samples/s" in out and model.exists()
    assert main(["evaluate", str(model), "iris"]) == 0
    assert "confusion matrix" in capsys.readouterr().out
    preds = tmp_path / "p.csv"
    assert main(["predict", str(model), "iris", "-o", str(preds)]) == 0
    assert len(preds.read_text().splitlines()) == 151


def test_regression_from_csv(tmp_path, capsys):
    import numpy as np

    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 3))
    lines = ["x1,x2,x3,price"] + [f"{a},{b},{c},{2 * a - b + 0.5 * c}" for a, b, c in X]
    (tmp_path / "houses.csv").write_text("\n".join(lines))
    assert main(["train", str(tmp_path / "houses.csv"), "--target", "price", "--task", "regress",
                 "--solver", "lbfgs", "--hidden", "8", "--quiet"]) == 0
    assert re.search(r"test R2: (0\.9|1\.0)", capsys.readouterr().out)


@pytest.mark.parametrize("argv, message", [
    (["train", "missing.csv"], "not found|neither a bundled"),
    (["train", "iris", "--batch-size", "lots"], "--batch-size must be an integer"),
    (["train", "iris", "--test-size", "2"], "--test-size must be between 0 and 1"),
    (["predict", "no-model.npz", "iris"], "model file not found"),
    (["train", "iris", "--backend", "cupy"], "cannot run here|error"),
])
def test_user_mistakes_are_one_line_without_traceback(argv, message, capsys):
    import re

    from gpunn.backends import cupy_status

    if "cupy" in argv and cupy_status()[0]:
        pytest.skip("CuPy runs here")
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert re.search(message, err)


def test_bad_option_value_exits_2():
    with pytest.raises(SystemExit) as exc:
        main(["train", "iris", "--hidden", "0,3"])
    assert exc.value.code == 2


def test_python_dash_m_and_info():
    # the CPU backend's report (its threads) even where "auto" would pick a GPU
    out = subprocess.run([sys.executable, "-m", "gpunn", "info"], capture_output=True, text=True,
                         env={**os.environ, "GPUNN_BACKEND": "numpy"})
    assert out.returncode == 0
    assert "numpy  usable" in out.stdout and "cupy" in out.stdout and "threads" in out.stdout
    helps = subprocess.run([sys.executable, "-m", "gpunn", "train", "--help"], capture_output=True, text=True)
    assert "--hidden" in helps.stdout


# -- argparse errors are one line too ----------------------------------------------------------
@pytest.mark.parametrize("argv, prog, message", [
    (["train", "iris", "--solver", "foo"], "gpunn train", "argument --solver: invalid choice: 'foo'"),
    (["train", "iris", "--hidden", "a"], "gpunn train", "expected sizes like 256,128"),
    (["train", "iris", "--bogus"], "gpunn train", "unrecognized arguments: --bogus"),
    (["train"], "gpunn train", "required: data"),
    (["predict", "m.npz", "d.csv", "--backend", "tpu"], "gpunn predict", "invalid choice: 'tpu'"),
    (["fly"], "gpunn", "invalid choice: 'fly'"),
    ([], "gpunn", "required: command"),
])
def test_bad_options_are_one_line_exit_2(argv, prog, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "usage:" not in err
    assert err.startswith(f"{prog}: error: ") and message in err
    assert err.rstrip().endswith(f"(see {prog} --help)")


# -- data files, output paths, backends ------------------------------------------------------
@pytest.fixture
def model(tmp_path):
    """A small iris model file, trained with the API (fast)."""
    import gpunn
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    path = tmp_path / "iris.npz"
    gpunn.MLPClassifier((4,), max_iter=2, backend="numpy").fit(X, y).save(path)
    return path


def _one_line_error(argv, capsys, message):
    assert main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert re.search(message, err), err
    return captured.out


@pytest.mark.parametrize("command", ["train", "predict", "evaluate"])
def test_bad_data_files_are_one_line_errors(tmp_path, model, capsys, command):
    import numpy as np

    flat = tmp_path / "flat.npz"
    np.savez(flat, X=np.arange(20.0), y=np.arange(20) % 2)
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(flat.read_bytes()[:100])
    words = tmp_path / "words.npz"
    np.savez(words, X=np.array([["a", "b"]] * 4), y=np.arange(4))
    for data, message in [(flat, "must be a 2-D numeric array.*float64 of shape \\(20,\\).*reshape"),
                          (corrupt, "corrupt.npz is not a readable NumPy file"),
                          (words, "must be a 2-D numeric array.*<U1")]:
        argv = [command, str(data)] if command == "train" else [command, str(model), str(data)]
        _one_line_error(argv, capsys, message)


@pytest.mark.parametrize("argv, message", [
    (["train", "iris", "--out", "{tmp}"], "--out: .* is a folder"),
    (["train", "iris", "--out", "{tmp}/missing/m.npz"], "--out: folder .*missing does not exist"),
    (["train", "iris", "--out", ""], "--out: the output path is empty"),
    (["train", "iris", "--plot", "{tmp}"], "--plot: .* is a folder"),
    (["predict", "{model}", "iris", "-o", "{tmp}"], "--output: .* is a folder"),
])
def test_unwritable_output_is_refused_before_any_work(tmp_path, model, capsys, argv, message):
    argv = [a.format(tmp=tmp_path, model=model) for a in argv]
    out = _one_line_error(argv, capsys, message)
    assert out == ""  # nothing trained or predicted, so nothing lost


def test_predict_and_evaluate_run_a_gpu_model_where_they_can(tmp_path, model, capsys):
    import json

    import numpy as np

    with np.load(model) as f:
        arrays = dict(f)
    meta = json.loads(arrays["meta_json"].tobytes())
    meta["params"]["backend"] = "cupy"  # as if trained on a GPU
    arrays["meta_json"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(tmp_path / "gpu.npz", **arrays)
    for extra in ([], ["--backend", "auto"], ["--backend", "numpy"]):
        assert main(["predict", str(tmp_path / "gpu.npz"), "iris", *extra]) == 0
        assert len(capsys.readouterr().out.splitlines()) == 150
        assert main(["evaluate", str(tmp_path / "gpu.npz"), "iris", *extra]) == 0
        assert "accuracy:" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    helps = " ".join(capsys.readouterr().out.split())
    assert "--backend {auto,numpy,cupy}" in helps and "keeps a model trained on the CPU there" in helps
