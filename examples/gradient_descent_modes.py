"""Full-batch, stochastic and mini-batch gradient descent on the notes' J(b0, b1) (1.6).

J(b0, b1) = 1/2 sum_i ((b0 + b1 x_i) - y_i)^2 is a linear regression: a gpunn
MLPRegressor with no hidden layer and plain SGD (momentum 0) minimises exactly its mean.
A callback records (b0, b1) after every epoch; the paths are drawn on J's contour plot,
with a too-large and a too-small learning rate beside them.
Usage: python examples/gradient_descent_modes.py [OUT_DIR]
"""

import sys
import warnings
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

import gpunn  # noqa: E402

rng = np.random.RandomState(0)
x = rng.uniform(-2, 2, size=(200, 1))
y = 1.0 + 3.0 * x.ravel() + rng.normal(scale=0.5, size=200)


def path(batch_size, lr, epochs=25):
    """(b0, b1) at the start and after each epoch of SGD with this batch size and rate."""
    points = []

    def record(metrics):
        est = metrics["estimator"]
        points.append((est._model.intercepts[0][0], est._model.coefs[0][0, 0]))

    reg = gpunn.MLPRegressor(hidden_layer_sizes=(), solver="sgd", momentum=0.0, alpha=0.0,
                             batch_size=batch_size, learning_rate_init=lr, max_iter=epochs,
                             tol=0.0, n_iter_no_change=epochs, random_state=0, dtype="float64",
                             backend="numpy", callbacks=[record])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.partial_fit(x, y)  # draws the initial weights...
        reg.coefs_[0][0, 0], reg.intercepts_[0][0] = -2.0, -3.0  # ...which we move to one start
        points.clear()
        points.append((-3.0, -2.0))
        reg.set_params(warm_start=True).fit(x, y)
    return np.array(points), reg


modes = {"full batch (N=200), lr 0.1": ("full", 0.1), "mini-batch (n=20), lr 0.1": (20, 0.1),
         "stochastic (n=1), lr 0.1": (1, 0.1)}
rates = {"too large: lr 1.6": ("full", 1.6), "too small: lr 0.005": ("full", 0.005)}

b0, b1 = np.meshgrid(np.linspace(-4, 5, 200), np.linspace(-3, 6, 200))
J = 0.5 * ((b0[..., None] + b1[..., None] * x.ravel() - y) ** 2).sum(-1)
fig, axes = plt.subplots(1, 2, figsize=(12, 5))
for ax, runs, title in [(axes[0], modes, "three modes of gradient descent"),
                        (axes[1], rates, "learning rate too large / too small (full batch)")]:
    ax.contour(b0, b1, J, levels=np.geomspace(J.min() + 1, J.max(), 18), cmap="viridis", linewidths=0.7)
    for label, (batch, lr) in runs.items():
        p, reg = path(batch, lr, epochs=12)
        ax.plot(p[:, 0], p[:, 1], marker="o", markersize=3, label=label)
        print(f"{label:32s} final b0 = {p[-1, 0]:7.3f}, b1 = {p[-1, 1]:7.3f}")
    ax.plot([1.0], [3.0], "k*", markersize=12, label="minimum (b0=1, b1=3)")
    ax.set_xlim(-4, 5)
    ax.set_ylim(-3, 6)
    ax.set_xlabel("b0 (intercept)")
    ax.set_ylabel("b1 (slope)")
    ax.set_title(title)
    ax.legend(fontsize=8)
fig.tight_layout()
out = Path(sys.argv[1] if len(sys.argv) > 1 else "examples/out")
out.mkdir(parents=True, exist_ok=True)
fig.savefig(out / "gradient_descent_modes.png", dpi=110)
print(f"picture: {out / 'gradient_descent_modes.png'}")
