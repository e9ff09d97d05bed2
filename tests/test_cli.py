"""The gpunn command: train, predict, evaluate, info; one-line errors for user mistakes."""

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
    out = subprocess.run([sys.executable, "-m", "gpunn", "info"], capture_output=True, text=True)
    assert out.returncode == 0
    assert "numpy  usable" in out.stdout and "cupy" in out.stdout and "threads" in out.stdout
    helps = subprocess.run([sys.executable, "-m", "gpunn", "train", "--help"], capture_output=True, text=True)
    assert "--hidden" in helps.stdout
