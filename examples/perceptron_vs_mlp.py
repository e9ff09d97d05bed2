"""A single neuron draws a straight boundary; an MLP bends it (notes 1.2, end).

Usage: python examples/perceptron_vs_mlp.py [OUT_DIR]
"""

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from sklearn.datasets import make_moons  # noqa: E402

import gpunn  # noqa: E402
from gpunn.plot import decision_boundary  # noqa: E402

X, y = make_moons(400, noise=0.2, random_state=0)
neuron = gpunn.MLPClassifier(hidden_layer_sizes=(), solver="lbfgs", random_state=0).fit(X, y)
mlp = gpunn.MLPClassifier(hidden_layer_sizes=(16, 16), activation="tanh", solver="lbfgs",
                          max_iter=3000, random_state=0).fit(X, y)
print(f"single neuron accuracy: {neuron.score(X, y):.3f}")
print(f"MLP (16, 16) accuracy:  {mlp.score(X, y):.3f}")

fig, axes = plt.subplots(1, 2, figsize=(10, 4))
for ax, model, title in [(axes[0], neuron, "one neuron: a straight line"),
                         (axes[1], mlp, "MLP (16, 16): a curved boundary")]:
    decision_boundary(model, X, y, ax=ax)
    ax.set_title(f"{title} (accuracy {model.score(X, y):.2f})")
fig.tight_layout()
out = Path(sys.argv[1] if len(sys.argv) > 1 else "examples/out")
out.mkdir(parents=True, exist_ok=True)
fig.savefig(out / "perceptron_vs_mlp.png", dpi=110)
print(f"picture: {out / 'perceptron_vs_mlp.png'}")
