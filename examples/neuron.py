"""The notes' single neuron (1.2): z = b + sum_i x_i w_i, a = sigmoid(z).

x = (0.9, 0.2, 0.3), w = (2, 3, -1), b = 0.5 gives z = 2.6 and sigmoid(z) = 0.93; with a
sigmoid output the neuron *is* logistic regression, which we check against scikit-learn.
Usage: python examples/neuron.py [OUT_DIR]
"""

import sys
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

import gpunn

x = np.array([[0.9, 0.2, 0.3]])
w, b = np.array([2.0, 3.0, -1.0]), 0.5

# A gpunn classifier with no hidden layer is exactly one logistic neuron.
with warnings.catch_warnings():  # one epoch only fixes the shapes; the weights are set below
    warnings.simplefilter("ignore", ConvergenceWarning)
    neuron = gpunn.MLPClassifier(hidden_layer_sizes=(), max_iter=1).fit(np.zeros((2, 3)), [0, 1])
neuron.coefs_[0][:, 0], neuron.intercepts_[0][:] = w, b
z = float((x @ w + b)[0])
a = neuron.predict_proba(x)[0, 1]
print(f"z = {' + '.join(f'{xi}*{wi:g}' for xi, wi in zip(x[0], w))} + {b} = {z:.1f}")
print(f"sigmoid(z) = {a:.2f}")

# Trained on data, the same unit matches scikit-learn's logistic regression.
X, y = load_breast_cancer(return_X_y=True)
X = StandardScaler().fit_transform(X)
# mean log-loss + alpha/(2n) |w|^2 is LogisticRegression's objective / n when alpha = 1/C
unit = gpunn.MLPClassifier(hidden_layer_sizes=(), solver="lbfgs", alpha=1.0, max_iter=2000,
                           tol=1e-10).fit(X, y)
logreg = LogisticRegression(C=1.0, max_iter=5000).fit(X, y)
agree = (unit.predict(X) == logreg.predict(X)).mean()
print(f"one neuron vs LogisticRegression: same prediction on {agree:.1%} of samples")

out = Path(sys.argv[1] if len(sys.argv) > 1 else "examples/out")
out.mkdir(parents=True, exist_ok=True)
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

zs = np.linspace(-6, 6, 200)
fig, ax = plt.subplots(figsize=(5, 3.5))
ax.plot(zs, 1 / (1 + np.exp(-zs)), label=r"$\sigma(z) = 1 / (1 + e^{-z})$")
ax.scatter([z], [a], color="red", zorder=3, label=f"z = {z:.1f}, a = {a:.2f}")
ax.set_xlabel("net input z")
ax.set_ylabel("activation a")
ax.legend()
fig.tight_layout()
fig.savefig(out / "neuron.png", dpi=110)
print(f"picture: {out / 'neuron.png'}")
