"""CPU fits with the same random_state are identical: in one process, across processes,
and inside GridSearchCV with n_jobs=2; different seeds give different fits.

Every source of randomness is on: weight initialization, shuffling, dropout and the
early-stopping split.
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold

from sk_adareg import AdaRegClassifier, AdaRegMultiTaskRegressor

# Run in this process and in a fresh one: builds the data and the estimators.
SETUP = textwrap.dedent("""
    import numpy as np
    from sklearn.datasets import make_classification
    from sk_adareg import AdaRegClassifier, AdaRegMultiTaskRegressor

    X, y = make_classification(n_samples=90, n_features=6, n_informative=4, n_classes=3,
                               random_state=0)
    Y = X @ np.random.default_rng(0).normal(size=(6, 3))
    PARAMS = dict(hidden_layer_sizes=(16, 8), dropout=0.2, early_stopping=True,
                  n_iter_no_change=3, adareg_layers="all", max_epochs=6, batch_size=16,
                  reg_lambda=1e-2, u=0.1, v=10.0, precision_scale="learned",
                  cov_update_every=2, lr=1e-3)

    def fit_both(seed):
        return (AdaRegClassifier(**PARAMS, random_state=seed).fit(X, y),
                AdaRegMultiTaskRegressor(**PARAMS, random_state=seed).fit(X, Y))

    def outputs(est):
        out = {"predict": est.predict(X), "loss_curve": np.array(est.loss_curve_)}
        for name in est.adareg_layers_:
            out[f"row {name}"] = est.row_covariances_[name]
            out[f"column {name}"] = est.column_covariances_[name]
        if hasattr(est, "predict_proba"):
            out["predict_proba"] = est.predict_proba(X)
        return out
""")
namespace = {}
exec(SETUP, namespace)  # the same code runs in the fresh process
X, y, Y, PARAMS = (namespace[k] for k in ("X", "y", "Y", "PARAMS"))
fit_both, outputs = namespace["fit_both"], namespace["outputs"]


def assert_same_fit(a, b):
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_same_seed_same_fit_in_this_process_and_in_a_fresh_one(tmp_path):
    first = [outputs(est) for est in fit_both(7)]
    second = [outputs(est) for est in fit_both(7)]
    for a, b in zip(first, second, strict=True):
        assert_same_fit(a, b)
    code = SETUP + textwrap.dedent("""
        import torch
        torch.set_num_threads(1)
        for name, est in zip(("classifier", "regressor"), fit_both(7)):
            np.savez(f"{name}.npz", **outputs(est))
    """)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    for name, here in zip(("classifier", "regressor"), first, strict=True):
        there = np.load(tmp_path / f"{name}.npz")
        assert_same_fit(here, {key: there[key] for key in there.files})


def test_different_seeds_give_different_fits():
    for a, b in zip(fit_both(0), fit_both(1), strict=True):
        out_a, out_b = outputs(a), outputs(b)
        for key in out_a:
            assert not np.array_equal(out_a[key], out_b[key]), key


@pytest.mark.parametrize("Estimator", [AdaRegClassifier, AdaRegMultiTaskRegressor])
def test_a_random_state_instance_is_followed_like_scikit_learn(Estimator):
    target = y if Estimator is AdaRegClassifier else Y
    a = Estimator(**PARAMS, random_state=np.random.RandomState(3)).fit(X, target)
    b = Estimator(**PARAMS, random_state=np.random.RandomState(3)).fit(X, target)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    np.testing.assert_array_equal(a.row_covariance_, b.row_covariance_)
    # the same instance moves on between fits, so a second fit differs
    shared = np.random.RandomState(3)
    est = Estimator(**PARAMS, random_state=shared)
    first = est.fit(X, target).row_covariance_.copy()
    assert not np.array_equal(est.fit(X, target).row_covariance_, first)


@pytest.mark.parametrize("Estimator", [AdaRegClassifier, AdaRegMultiTaskRegressor])
def test_grid_search_with_two_workers_scores_like_one(Estimator):
    target = y if Estimator is AdaRegClassifier else Y
    est = Estimator(**{**PARAMS, "max_epochs": 4}, random_state=0)
    grid = {"reg_lambda": [1e-3, 1e-1], "precision_scale": ["learned", "unit_mean"]}
    cv = KFold(3, shuffle=True, random_state=0)
    # log loss rather than accuracy: it tells barely trained candidates apart
    scoring = "neg_log_loss" if Estimator is AdaRegClassifier else "r2"
    searches = [GridSearchCV(clone(est), grid, cv=cv, scoring=scoring, n_jobs=n_jobs)
                .fit(X, target) for n_jobs in (1, 2)]
    one, two = (search.cv_results_ for search in searches)
    for key in one:
        if key.startswith(("split", "mean_test", "std_test", "rank")):
            np.testing.assert_array_equal(one[key], two[key], err_msg=key)
    assert np.isfinite(one["mean_test_score"]).all()
    assert len(set(one["mean_test_score"])) == 4  # the candidates are told apart
    best = [outputs(search.best_estimator_) for search in searches]
    assert_same_fit(*best)
