"""Every example runs (small sizes) and writes its picture, so none rots."""

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _run(tmp_path, script, *args):
    result = subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True,
                            text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_neuron(tmp_path):
    out = _run(tmp_path, "neuron.py", str(tmp_path))
    assert "= 2.6" in out and "sigmoid(z) = 0.93" in out and "100.0%" in out
    assert (tmp_path / "neuron.png").stat().st_size > 1000


def test_perceptron_vs_mlp(tmp_path):
    out = _run(tmp_path, "perceptron_vs_mlp.py", str(tmp_path))
    neuron, mlp = (float(line.split()[-1]) for line in out.splitlines()[:2])
    assert neuron < 0.9 < mlp
    assert (tmp_path / "perceptron_vs_mlp.png").exists()


def test_gradient_descent_modes(tmp_path):
    out = _run(tmp_path, "gradient_descent_modes.py", str(tmp_path))
    finals = {line.split(" final")[0].strip(): line for line in out.splitlines() if "final" in line}
    assert "b1 =   2.9" in finals["stochastic (n=1), lr 0.1"]  # reaches the minimum (b1 = 3)
    assert (tmp_path / "gradient_descent_modes.png").exists()


def test_forward_propagation(tmp_path):
    out = _run(tmp_path, "forward_propagation.py", str(tmp_path))
    assert "W1 is (3, 4)" in out and (tmp_path / "forward_propagation.png").exists()


def test_mnist(tmp_path, mnist_dir):
    out = _run(tmp_path, "mnist.py", str(mnist_dir), "--limit", "3000", "--epochs", "3", "--out", str(tmp_path))
    accuracy = float(out.split("test accuracy:")[1].split()[0])
    assert accuracy > 0.85 and (tmp_path / "mnist_curves.png").exists()
