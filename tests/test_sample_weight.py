"""Sample and class weights: what they mean, and how they are checked."""

import numpy as np
import pytest
import sklearn
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.validation import check_is_fitted

from sk_adareg import AdaRegClassifier, AdaRegMultiTaskRegressor

# One batch per epoch: a weighted batch mean then equals the mean over repeated rows.
ONE_BATCH = {"hidden_layer_sizes": (8,), "max_epochs": 20, "batch_size": 512,
             "cov_update_every": 5, "random_state": 0}


def data(n=60, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    Y = np.column_stack([X[:, 0] + 0.5 * X[:, 1], X[:, 1] - X[:, 2]]) + 0.1 * rng.normal(
        size=(n, 2))
    y = np.digitize(X[:, 0] + X[:, 1], [-0.5, 0.5])
    return X, y, Y


def outputs(est, X):
    return est.predict_proba(X) if hasattr(est, "predict_proba") else est.predict(X)


@pytest.mark.parametrize("Estimator", [AdaRegClassifier, AdaRegMultiTaskRegressor])
# Not reg_lambda="auto": its cross-validation splits rows, and a row repeated lands in
# several folds.
@pytest.mark.parametrize("reg_lambda", [0.1, "evidence"])
def test_integer_weights_are_repeated_rows(Estimator, reg_lambda):
    X, y, Y = data()
    target = y if Estimator is AdaRegClassifier else Y
    weights = np.random.default_rng(1).integers(0, 4, size=len(X))
    # The rows of weight 0 include the extremes of some inputs: they are no training data,
    # and the range predict clips to is without them, as without the rows.
    assert any(X[weights > 0, j].max() < X[:, j].max() for j in range(X.shape[1]))
    weighted = Estimator(reg_lambda=reg_lambda, **ONE_BATCH).fit(X, target,
                                                                  sample_weight=weights)
    repeated = Estimator(reg_lambda=reg_lambda, **ONE_BATCH).fit(
        np.repeat(X, weights, axis=0), np.repeat(target, weights, axis=0))
    # Equal to float32 rounding, and the prior (and learned strength) with them.
    np.testing.assert_allclose(outputs(weighted, X), outputs(repeated, X), rtol=1e-4,
                               atol=1e-5)
    np.testing.assert_allclose(weighted.row_precision_, repeated.row_precision_, rtol=1e-4)
    for a, b in zip(weighted._input_bounds_, repeated._input_bounds_, strict=True):
        np.testing.assert_array_equal(a, b)
    for name, value in weighted.reg_lambda_.items():
        assert value == pytest.approx(repeated.reg_lambda_[name], rel=1e-3)
    if Estimator is AdaRegMultiTaskRegressor:
        np.testing.assert_allclose(weighted.noise_variance_, repeated.noise_variance_,
                                   rtol=1e-3)
        np.testing.assert_allclose(weighted.predict(X, return_std=True)[1],
                                   repeated.predict(X, return_std=True)[1], rtol=1e-3)


def test_zero_weights_remove_rows_in_expectation_over_seeds():
    # Many batches per epoch: the batches differ, the fits agree on average.
    X, _, Y = data(n=160)
    poisoned = np.arange(len(X)) >= 110
    Y_bad = Y.copy()
    Y_bad[poisoned] = -3 * Y[poisoned] + 2
    weights = (~poisoned).astype(float)
    params = {"hidden_layer_sizes": (16,), "max_epochs": 40, "batch_size": 16, "lr": 3e-3}
    grid = np.random.default_rng(5).normal(size=(200, 4))
    removed, zero, unweighted = [], [], []
    for seed in range(4):
        est = AdaRegMultiTaskRegressor(random_state=seed, **params)
        removed.append(clone(est).fit(X[~poisoned], Y[~poisoned]).predict(grid))
        zero.append(clone(est).fit(X, Y_bad, sample_weight=weights).predict(grid))
        unweighted.append(clone(est).fit(X, Y_bad).predict(grid))
    removed, zero, unweighted = (np.mean(p, axis=0) for p in (removed, zero, unweighted))
    gap = np.sqrt(np.mean((zero - removed) ** 2))
    assert gap < 0.15 * np.sqrt(np.mean((unweighted - removed) ** 2))
    assert gap < 0.1 * removed.std()


@pytest.mark.parametrize("Estimator", [AdaRegClassifier, AdaRegMultiTaskRegressor])
@pytest.mark.parametrize("weights, message", [
    (lambda n: np.ones(n - 1), r"sample_weight.shape"),
    (lambda n: -np.ones(n), "Negative values in data passed to `?sample_weight"),
    (lambda n: np.full(n, np.nan), "sample_weight"),
    (lambda n: np.full(n, np.inf), "sample_weight"),
    (lambda n: np.zeros(n), "sample_weight must have a positive sum"),
])
def test_bad_weights_are_rejected_before_training(Estimator, weights, message):
    X, y, Y = data()
    est = Estimator(**ONE_BATCH)
    with pytest.raises(ValueError, match=message):
        est.fit(X, y if Estimator is AdaRegClassifier else Y, sample_weight=weights(len(X)))
    with pytest.raises(sklearn.exceptions.NotFittedError):
        check_is_fitted(est)


def test_weights_reach_fit_through_pipelines_and_metadata_routing():
    X, y, _ = data(n=90)
    w = np.random.default_rng(2).uniform(0, 2, size=len(X))
    clf = AdaRegClassifier(**ONE_BATCH)
    direct = clone(clf).fit(StandardScaler().fit_transform(X), y, sample_weight=w)
    pipe = make_pipeline(StandardScaler(), clone(clf)).fit(X, y, adaregclassifier__sample_weight=w)
    np.testing.assert_array_equal(pipe.predict_proba(X), direct.predict_proba(
        StandardScaler().fit(X).transform(X)))
    with sklearn.config_context(enable_metadata_routing=True):
        search = GridSearchCV(clone(clf).set_fit_request(sample_weight=True)
                              .set_score_request(sample_weight=True),
                              {"reg_lambda": [0.01]}, cv=2).fit(X, y, sample_weight=w)
    refit = clone(clf).set_params(reg_lambda=0.01).fit(X, y, sample_weight=w)
    np.testing.assert_array_equal(search.best_estimator_.predict_proba(X),
                                  refit.predict_proba(X))
    unweighted = clone(clf).set_params(reg_lambda=0.01).fit(X, y)
    assert not np.allclose(unweighted.predict_proba(X), refit.predict_proba(X))


def test_validation_score_is_weighted():
    X, y, _ = data(n=100)
    w = np.random.default_rng(3).uniform(0, 2, size=len(X))
    clf = AdaRegClassifier(validation_fraction=0.3, **ONE_BATCH).fit(X, y, sample_weight=w)
    valid = clf.net_.train_split.keywords["valid_ds"]
    assert clf.validation_scores_[-1] == pytest.approx(clf.score(
        valid.X, clf.classes_[valid.y], sample_weight=valid.sample_weight))


# --------------------------------------------------------------------------- class_weight


def imbalanced(n=200):
    rng = np.random.default_rng(4)
    X = rng.normal(size=(n, 3))
    y = np.where(X[:, 0] + 0.5 * rng.normal(size=n) > 1.2, "rare", "common")
    return X, y


def test_balanced_class_weight_is_its_sample_weight():
    X, y = imbalanced()
    w = np.random.default_rng(0).uniform(0.5, 1.5, size=len(y))
    balanced = AdaRegClassifier(class_weight="balanced", **ONE_BATCH).fit(X, y, sample_weight=w)
    manual = AdaRegClassifier(**ONE_BATCH).fit(
        X, y, sample_weight=w * compute_sample_weight("balanced", y))
    np.testing.assert_allclose(balanced.predict_proba(X), manual.predict_proba(X), rtol=1e-6)
    as_dict = AdaRegClassifier(class_weight={"rare": 3.0}, **ONE_BATCH).fit(X, y)
    manual = AdaRegClassifier(**ONE_BATCH).fit(X, y, sample_weight=np.where(y == "rare", 3, 1))
    np.testing.assert_allclose(as_dict.predict_proba(X), manual.predict_proba(X), rtol=1e-6)


def test_balanced_class_weight_raises_the_rare_class():
    X, y = imbalanced()
    params = {**ONE_BATCH, "max_epochs": 60, "lr": 1e-2}
    plain = AdaRegClassifier(**params).fit(X, y)
    balanced = AdaRegClassifier(class_weight="balanced", **params).fit(X, y)
    rare = list(plain.classes_).index("rare")
    assert balanced.predict_proba(X)[:, rare].mean() > 1.5 * plain.predict_proba(X)[:, rare].mean()
    assert (balanced.predict(X) == "rare").sum() > (plain.predict(X) == "rare").sum()


def test_class_weight_errors():
    X, y = imbalanced()
    with pytest.raises(ValueError, match=r"class_weight names classes \['unknown'\]"):
        AdaRegClassifier(class_weight={"unknown": 2.0}, **ONE_BATCH).fit(X, y)
    with pytest.raises(ValueError, match="class_weight"):
        AdaRegClassifier(class_weight="balance", **ONE_BATCH).fit(X, y)
    clf = AdaRegClassifier(class_weight="balanced", **ONE_BATCH)
    with pytest.raises(ValueError, match=r"class_weight='balanced'.*partial_fit"):
        clf.partial_fit(X, y, classes=["common", "rare"])
