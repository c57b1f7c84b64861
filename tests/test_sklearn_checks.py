"""scikit-learn's own estimator checks."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sk_adareg import AdaRegClassifier, AdaRegMultiTaskRegressor

ESTIMATORS = [
    AdaRegClassifier(max_epochs=50, random_state=0),
    AdaRegMultiTaskRegressor(max_epochs=50, random_state=0),
]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible(estimator, check):
    check(estimator)
