"""scikit-learn's own estimator checks, run against both gpunn estimators."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from gpunn import MLPClassifier, MLPRegressor

# Small nets and few epochs keep the ~50 checks per estimator fast; the checks' own
# accuracy thresholds still need a working model.
ESTIMATORS = [
    MLPClassifier(hidden_layer_sizes=(20,), max_iter=300, random_state=0, backend="numpy"),
    MLPRegressor(hidden_layer_sizes=(20,), max_iter=300, random_state=0, backend="numpy"),
]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
