"""Forward propagation in matrix form, step by step (notes 1.4), checked against gpunn.

z1 = x W1 + b1, a1 = sigma(z1), z2 = a1 W2 + b2, a2 = sigma(z2), z3 = a2 W3 + b3,
y_hat = softmax(z3), for 3 inputs and two hidden layers of 4 units (W1 is 3 x 4, as in
the notes). The same equations work for one example (a row) or many stacked into X.
Usage: python examples/forward_propagation.py [OUT_DIR]
"""

import sys
import warnings
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning

import gpunn

rng = np.random.RandomState(0)
X = rng.normal(size=(5, 3))  # 5 examples, 3 features each
y = np.array([0, 1, 2, 1, 0])
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    mlp = gpunn.MLPClassifier(hidden_layer_sizes=(4, 4), activation="logistic", max_iter=5,
                              random_state=0).fit(X, y)
(W1, W2, W3), (b1, b2, b3) = mlp.coefs_, mlp.intercepts_
print("W1 is", W1.shape, "W2 is", W2.shape, "W3 is", W3.shape)


def sigma(z):
    return 1 / (1 + np.exp(-z))


z1 = X @ W1 + b1
a1 = sigma(z1)
z2 = a1 @ W2 + b2
a2 = sigma(z2)
z3 = a2 @ W3 + b3
y_hat = np.exp(z3 - z3.max(axis=1, keepdims=True))
y_hat /= y_hat.sum(axis=1, keepdims=True)
for name, value in [("z1", z1), ("a1", a1), ("z3", z3), ("y_hat", y_hat)]:
    print(f"{name} ({value.shape[0]} x {value.shape[1]}):\n{np.round(value, 3)}")

library = mlp.predict_proba(X)
print("max |by hand - gpunn.predict_proba| =", float(np.abs(y_hat - library).max()))
assert np.allclose(y_hat, library, rtol=1e-6, atol=1e-9)

out = Path(sys.argv[1] if len(sys.argv) > 1 else "examples/out")
out.mkdir(parents=True, exist_ok=True)
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

fig, axes = plt.subplots(1, 4, figsize=(11, 3))
for ax, (name, m) in zip(axes, [("X", X), ("a1 = σ(X W1)", a1), ("a2 = σ(a1 W2)", a2), ("ŷ = softmax(a2 W3)", y_hat)]):
    ax.imshow(m, cmap="viridis", aspect="auto")
    ax.set_title(name)
    ax.set_xlabel("unit")
    ax.set_ylabel("example")
fig.tight_layout()
fig.savefig(out / "forward_propagation.png", dpi=110)
print(f"picture: {out / 'forward_propagation.png'}")
