"""CPU fits with the same random_state are identical: in one process, across processes,
and inside GridSearchCV with n_jobs=2; different seeds give different fits.

Every source of randomness is on: weight initialization, shuffling, dropout and the
early-stopping split.
"""

import importlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold

from sk_adareg import AdaRegClassifier, AdaRegMultiTaskRegressor

# The same module runs as a script in the fresh process.
TESTS_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS_DIR))
_fit = importlib.import_module("_determinism_fit")
X, y, Y, PARAMS = _fit.X, _fit.y, _fit.Y, _fit.PARAMS
fit_both, outputs = _fit.fit_both, _fit.outputs


def assert_same_fit(a, b):
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_same_seed_same_fit_in_this_process_and_in_a_fresh_one(tmp_path):
    first = [outputs(est) for est in fit_both(_fit.SEED)]
    second = [outputs(est) for est in fit_both(_fit.SEED)]
    for a, b in zip(first, second, strict=True):
        assert_same_fit(a, b)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    script = TESTS_DIR / "_determinism_fit.py"
    result = subprocess.run([sys.executable, str(script), str(tmp_path)], env=env,
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
