"""Same data, parameters and seed: bitwise-identical models, in one process and across processes."""

import subprocess
import sys

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import gpunn

SCRIPT = """
import numpy as np, gpunn, warnings
from sklearn.datasets import make_classification
warnings.simplefilter("ignore")
X, y = make_classification(300, 10, n_informative=6, n_classes=3, random_state=1)
est = gpunn.MLPClassifier((16, 8), max_iter=5, random_state=7, backend="numpy",
                          dtype="float32").fit(X, y)
print(np.concatenate([c.ravel() for c in est.coefs_ + est.intercepts_]).tobytes().hex())
"""


def test_bitwise_identical_across_processes():
    runs = [subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                           check=True).stdout for _ in range(2)]
    assert runs[0] == runs[1] and len(runs[0]) > 100


def _fit(X, y):
    est = gpunn.MLPClassifier((32,), max_iter=5, random_state=3, backend="numpy", dtype="float32")
    with pytest.warns(Warning):
        est.fit(X, y)
    return np.concatenate([c.ravel() for c in est.coefs_ + est.intercepts_])


def test_thread_count_changes_results_at_most_by_rounding():
    """BLAS may split sums differently with more threads: float tolerance, not bitwise."""
    from sklearn.datasets import make_classification

    X, y = make_classification(400, 50, n_informative=10, random_state=0)
    X = X.astype(np.float32)
    assert np.array_equal(_fit(X, y), _fit(X, y))
    with threadpool_limits(1):
        one = _fit(X, y)
    with threadpool_limits(2):
        two = _fit(X, y)
    np.testing.assert_allclose(one, two, rtol=1e-4, atol=1e-5)
