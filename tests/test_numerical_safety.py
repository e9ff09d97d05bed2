"""No NaN or inf from softmax, logistic and the log-losses for finite logits up to +-1e4."""

import numpy as np
import pytest


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("output", ["softmax", "logistic"])
def test_extreme_logits_stay_finite(backend, dtype, output):
    z = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [1e4, 1e4, -3.0], [0.0, 0.0, 0.0]], dtype)
    y = np.array([[0, 1, 0], [1, 0, 0], [0, 0, 1], [1, 0, 0]], dtype)
    delta = backend.empty(z.shape, dtype)
    acc = backend.zeros(1, np.float64)
    backend.loss_grad(output, backend.asarray(z), backend.asarray(y), delta, acc)
    loss = backend.read_scalar(acc)
    assert np.isfinite(loss) and loss > 0
    assert np.isfinite(backend.to_numpy(delta)).all()
    out = backend.empty(z.shape, dtype)
    backend.softmax(backend.asarray(z), out=out)
    assert np.isfinite(backend.to_numpy(out)).all()
    backend.sigmoid(backend.asarray(z), out=out)
    probs = backend.to_numpy(out)
    assert np.isfinite(probs).all() and probs.min() >= 0 and probs.max() <= 1
