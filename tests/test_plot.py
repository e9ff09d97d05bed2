"""gpunn.plot draws what it says (Agg backend, no screen)."""

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from sklearn.datasets import make_moons  # noqa: E402

import gpunn  # noqa: E402
from gpunn.plot import decision_boundary, loss_curves  # noqa: E402


def test_loss_curves_with_validation():
    X, y = make_moons(200, noise=0.2, random_state=0)
    est = gpunn.MLPClassifier((8,), max_iter=5, early_stopping=True, random_state=0).fit(X, y)
    fig = loss_curves(est)
    lines = [line.get_label() for ax in fig.axes for line in ax.get_lines()]
    assert {"training loss", "validation loss", "validation score"} <= set(lines)
    assert len(fig.axes[0].get_lines()[0].get_ydata()) == est.n_iter_


def test_decision_boundary_and_errors():
    X, y = make_moons(100, noise=0.2, random_state=0)
    est = gpunn.MLPClassifier((8,), solver="lbfgs", random_state=0).fit(X, y)
    fig = decision_boundary(est, X, y, resolution=50)
    ax = fig.axes[0]
    assert ax.collections  # filled regions and the scattered data
    with pytest.raises(ValueError, match="2-D inputs"):
        decision_boundary(est, np.ones((3, 3)), [0, 1, 0])
    with pytest.raises(ValueError, match="no loss_curve_"):
        loss_curves(est)  # lbfgs keeps no curve
    with pytest.raises(ValueError, match="50 labels for 100 rows"):
        decision_boundary(est, X, y[:50])
    with pytest.raises(ValueError, match=r"not trained on: \[5, 6\]"):
        decision_boundary(est, X, y + 5)
