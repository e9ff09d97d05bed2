"""The worked examples of the course notes (../shared/seed), through gpunn's public API."""

import warnings

import numpy as np
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.preprocessing import StandardScaler

import gpunn
from gpunn import MLPClassifier, MLPRegressor


def test_single_neuron_net_input_and_sigmoid():
    """Notes 1.2: x=(0.9, 0.2, 0.3), w=(2, 3, -1), b=0.5 -> z=2.6 and sigmoid(z)=0.93."""
    x = np.array([[0.9, 0.2, 0.3]])
    neuron = MLPRegressor(hidden_layer_sizes=(), max_iter=1, backend="numpy")
    neuron.fit(np.zeros((2, 3)), [0.0, 1.0])  # fixes the architecture: 3 inputs, 1 unit
    neuron.coefs_[0][:, 0] = [2, 3, -1]
    neuron.intercepts_[0][:] = 0.5
    z = neuron.predict(x)[0]
    assert np.isclose(z, 2.6)
    backend = gpunn.get_backend("numpy")
    a = backend.sigmoid(np.array([z]), out=np.empty(1))[0]
    assert round(a, 2) == 0.93
    # the same unit with a logistic output is a binary classifier's probability
    unit = MLPClassifier(hidden_layer_sizes=(), max_iter=1, backend="numpy").fit(
        np.zeros((2, 3)), [0, 1]
    )
    unit.coefs_[0][:, 0] = [2, 3, -1]
    unit.intercepts_[0][:] = 0.5
    assert round(unit.predict_proba(x)[0, 1], 2) == 0.93


def test_single_sigmoid_neuron_is_logistic_regression():
    """Notes 1.2: with f = sigmoid, one neuron is logistic regression."""
    X, y = load_iris(return_X_y=True)
    X, y = X[y < 2], y[y < 2]
    neuron = MLPClassifier(hidden_layer_sizes=(), solver="lbfgs", alpha=0.0, max_iter=500,
                           tol=1e-10, backend="numpy").fit(X, y)
    logreg = LogisticRegression(C=1e6, max_iter=5000).fit(X, y)
    agreement = (neuron.predict(X) == logreg.predict(X)).mean()
    assert agreement == 1.0


def test_notes_syntax_runs_and_gives_sklearns_model():
    """Notes 1.3, verbatim: MLPClassifier(hidden_layer_sizes=(5, 2), activation="logistic")."""
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0, stratify=y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp = MLPClassifier(hidden_layer_sizes=(5, 2), activation="logistic", random_state=0)
        predictions = mlp.fit(X_train, y_train).predict(X_test)
        reference = SkMLPClassifier(hidden_layer_sizes=(5, 2), activation="logistic",
                                    random_state=0).fit(X_train, y_train).predict(X_test)
    np.testing.assert_array_equal(predictions, reference)
    # the notes' defaults stop early for this tiny net; given time it learns iris
    longer = MLPClassifier(hidden_layer_sizes=(5, 2), activation="logistic", random_state=0,
                           max_iter=3000, learning_rate_init=0.01).fit(X_train, y_train)
    assert longer.score(X_test, y_test) > 0.9


def test_forward_propagation_in_matrix_form():
    """Notes 1.4: z1 = x W1, a1 = sigma(z1), z2 = a1 W2, a2 = sigma(z2), z3 = a2 W3, softmax."""
    rng = np.random.RandomState(0)
    X, y = rng.normal(size=(10, 3)), np.arange(10) % 3
    mlp = MLPClassifier(hidden_layer_sizes=(4, 4), activation="logistic", max_iter=1,
                        backend="numpy").fit(X, y)
    assert mlp.coefs_[0].shape == (3, 4)  # the notes' W1: 3 inputs x 4 hidden units
    sigma = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    a1 = sigma(X @ mlp.coefs_[0] + mlp.intercepts_[0])
    a2 = sigma(a1 @ mlp.coefs_[1] + mlp.intercepts_[1])
    z3 = a2 @ mlp.coefs_[2] + mlp.intercepts_[2]
    y_hat = np.exp(z3) / np.exp(z3).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(mlp.predict_proba(X), y_hat, rtol=1e-12)


def test_three_modes_of_gradient_descent_on_the_notes_linear_regression():
    """Notes 1.6: full-batch, stochastic and mini-batch descent all find J's minimum."""
    rng = np.random.RandomState(0)
    x = rng.uniform(-1, 1, size=(100, 1))
    y = 1.5 + 2.0 * x.ravel() + rng.normal(scale=0.05, size=100)
    for batch_size in ("full", 1, 10):
        reg = MLPRegressor(hidden_layer_sizes=(), solver="sgd", momentum=0.0, alpha=0.0,
                           learning_rate_init=0.1 if batch_size == "full" else 0.02,
                           batch_size=batch_size, max_iter=300, tol=0, n_iter_no_change=300,
                           random_state=0, backend="numpy")
        reg.fit(x, y)
        assert abs(reg.intercepts_[0][0] - 1.5) < 0.05, batch_size
        assert abs(reg.coefs_[0][0, 0] - 2.0) < 0.05, batch_size
