"""Pictures of a model: its loss curves and, for 2-D data, its decision boundary.

Needs matplotlib (``pip install gpunn[plot]``); each function returns the Figure.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.utils.validation import check_is_fitted


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("gpunn.plot needs matplotlib: pip install 'gpunn[plot]'") from None
    return plt


def _axes(ax):
    plt = _pyplot()
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 4))
        return fig, ax
    return ax.figure, ax


def loss_curves(est, ax: Any = None):
    """Training loss per epoch, with validation loss and score when early stopping ran."""
    fig, ax = _axes(ax)
    if not getattr(est, "loss_curve_", None):
        raise ValueError("the model has no loss_curve_: fit it with solver='sgd' or 'adam' first")
    epochs = np.arange(1, len(est.loss_curve_) + 1)
    ax.plot(epochs, est.loss_curve_, label="training loss")
    if getattr(est, "validation_loss_curve_", None):
        ax.plot(epochs, est.validation_loss_curve_, label="validation loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    if getattr(est, "validation_scores_", None):
        twin = ax.twinx()
        twin.plot(epochs, est.validation_scores_, color="tab:green", linestyle="--",
                  label="validation score")
        twin.set_ylabel("validation score")
        twin.legend(loc="center right")
    ax.legend(loc="upper right")
    ax.set_title(f"{type(est).__name__}: loss per epoch")
    fig.tight_layout()
    return fig


def decision_boundary(est, X, y, ax: Any = None, resolution: int = 200):
    """Predicted class regions of a classifier over 2-D inputs, with the data on top."""
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"decision_boundary draws 2-D inputs; X has shape {X.shape}")
    check_is_fitted(est)
    classes = list(est.classes_)
    colours = _class_positions(y, classes, len(X))
    fig, ax = _axes(ax)
    pad = 0.1 * (X.max(axis=0) - X.min(axis=0))
    lo, hi = X.min(axis=0) - pad, X.max(axis=0) + pad
    xx, yy = np.meshgrid(np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution))
    grid = np.c_[xx.ravel(), yy.ravel()].astype(X.dtype if X.dtype.kind == "f" else np.float64)
    proba = est.predict_proba(grid)
    labels = np.array([classes.index(c) for c in est.predict(grid)]).reshape(xx.shape)
    ax.contourf(xx, yy, labels, alpha=0.3, cmap="coolwarm", levels=np.arange(len(classes) + 1) - 0.5)
    if len(classes) == 2:
        ax.contour(xx, yy, proba[:, 1].reshape(xx.shape), levels=[0.5], colors="k", linewidths=1)
    ax.scatter(X[:, 0], X[:, 1], c=colours, cmap="coolwarm", edgecolor="k", s=18)
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    fig.tight_layout()
    return fig


def _class_positions(y, classes: list, n_rows: int) -> list[int]:
    """Each label's position in ``classes`` (its colour), once ``y`` is known to fit."""
    y = np.asarray(y).ravel()
    if len(y) != n_rows:
        raise ValueError(f"y has {len(y)} labels for {n_rows} rows of X")
    unknown = [label for label in dict.fromkeys(y.tolist()) if label not in classes]
    if unknown:
        raise ValueError(f"y has labels the model was not trained on: {unknown[:5]}; "
                         f"its classes_ are {classes}")
    return [classes.index(label) for label in y.tolist()]
