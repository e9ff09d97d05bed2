"""Backpropagation against central finite differences, for every activation x output."""

import numpy as np
import pytest

from gpunn.backends.base import UpdateHyper
from gpunn.mlp import MLP, Workspace

HIDDEN = ["identity", "logistic", "tanh", "relu"]
OUTPUTS = ["softmax", "logistic", "identity", "exp"]


def _problem(output, rng, n=7, k=3):
    X = rng.normal(size=(n, 4))
    if output == "softmax":
        Y = np.eye(k)[rng.randint(k, size=n)]
    elif output == "logistic":
        Y = rng.randint(2, size=(n, k)).astype(float)
    elif output == "exp":
        Y = rng.poisson(1.5, size=(n, k)).astype(float)
    else:
        Y = rng.normal(size=(n, k))
    return X, Y


@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("activation", HIDDEN)
@pytest.mark.parametrize("weighted", [False, True])
def test_gradient_matches_finite_differences(backend, activation, output, weighted):
    rng = np.random.RandomState(0)
    X, Y = _problem(output, rng)
    n, k = Y.shape
    sw = rng.uniform(0.5, 2.0, n) if weighted else None
    alpha = 0.3
    model = MLP([4, 5, 3, k], activation, output, backend, np.float64)
    model.init_weights(rng)
    x, y = backend.asarray(X), backend.asarray(Y)
    sw_dev = None if sw is None else backend.asarray(sw)
    weight = n if sw is None else sw.sum()
    workspace = Workspace(backend, model.layer_units, n, np.float64)
    acc = backend.zeros(1, np.float64)
    # scikit-learn's squared error is averaged over outputs but its gradient is not:
    # the gradient is that of k times the reported loss.
    loss_factor = k if output == "identity" else 1.0

    def loss_at(flat):
        model.params[...] = backend.asarray(flat)
        acc[0] = 0
        model.loss_grad(x, y, workspace, acc, loss_factor / weight, sw_dev)
        backend.sum_squares(model.params[: model.n_weights], acc, 0.5 * alpha / weight)
        return backend.read_scalar(acc)

    theta = backend.to_numpy(model.params).copy()
    loss_at(theta)
    backend.finish_grad(model.params, model.grads,
                        UpdateHyper(lr=0, grad_scale=weight, l2=alpha, n_weights=model.n_weights))
    analytic = backend.to_numpy(model.grads).copy()

    h = 1e-6
    numeric = np.empty_like(theta)
    for i in range(theta.size):
        step = np.zeros_like(theta)
        step[i] = h
        numeric[i] = (loss_at(theta + step) - loss_at(theta - step)) / (2 * h)
    rel = np.linalg.norm(analytic - numeric) / max(np.linalg.norm(numeric), 1e-12)
    assert rel < 1e-7, f"relative gradient error {rel:.2e}"
