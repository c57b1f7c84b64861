"""scikit-learn's searches over the AdaReg parameters on a dask.distributed cluster.

joblib's dask backend sends the searches' fits to a ``LocalCluster`` of two worker
processes on 127.0.0.1: the results equal those of ``n_jobs=1`` with the same seeds. Every
wait is bounded: a search that does not end in time fails its test, never hangs it.
"""

import functools
import os
import threading

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.model_selection import GridSearchCV, KFold, RandomizedSearchCV

from sk_adareg import AdaRegClassifier, AdaRegMultiTaskRegressor
from sk_adareg.distributed import register_dask_backend

distributed = pytest.importorskip("distributed")

import dask  # noqa: E402
import joblib  # noqa: E402

TIMEOUT = 180
X, y = make_classification(n_samples=90, n_features=6, n_informative=4, n_classes=3,
                           random_state=0)
Y = X @ np.random.default_rng(0).normal(size=(6, 3))
PARAMS = dict(hidden_layer_sizes=(16,), max_epochs=6, batch_size=16, lr=1e-2,
              cov_update_every=2, random_state=0)


def bounded(fn, timeout=TIMEOUT):
    """``fn()``, run in a daemon thread; the test fails if it takes over ``timeout`` s."""
    result = {}

    def target():
        try:
            result["value"] = fn()
        except BaseException as exc:  # handed to the test's thread
            result["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        pytest.fail(f"did not end within {timeout} s")
    if "error" in result:
        raise result["error"]
    return result["value"]


@pytest.fixture(scope="module")
def client():
    # A task whose worker dies fails at once, instead of killing 3 more workers first.
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = distributed.LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1",
            dashboard_address=None, timeout=TIMEOUT)
    client = distributed.Client(cluster, timeout=TIMEOUT)
    try:
        yield client
    finally:
        client.close(timeout=30)
        cluster.close(timeout=30)


def fit_on_dask(search, *data):
    """``search.fit(*data)`` with joblib's dask backend, bounded in time."""

    def fit():
        # joblib's backend is per thread: set it in the one that fits.
        with joblib.parallel_config(backend="dask"):
            return search.fit(*data)

    return bounded(fit)


def assert_same_results(local, remote):
    keys = [key for key in local.cv_results_ if "time" not in key]
    assert keys == [key for key in remote.cv_results_ if "time" not in key]
    for key in keys:
        a, b = local.cv_results_[key], remote.cv_results_[key]
        if key == "params":
            assert a == b
        else:
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=key)
    assert local.best_params_ == remote.best_params_


def test_grid_search_on_dask_equals_the_serial_one(client):
    grid = {"reg_lambda": [1e-3, 1e-1], "u": [0.1, 0.5], "v": [2.0, 10.0]}
    cv = KFold(3, shuffle=True, random_state=0)
    kwargs = dict(cv=cv, scoring="neg_log_loss")
    local = GridSearchCV(AdaRegClassifier(**PARAMS), grid, n_jobs=1, **kwargs).fit(X, y)
    remote = fit_on_dask(GridSearchCV(AdaRegClassifier(**PARAMS), grid, n_jobs=-1, **kwargs),
                         X, y)
    assert_same_results(local, remote)
    # The fits ran on both workers, in other processes than this one.
    assert len(client.scheduler_info()["workers"]) == 2
    # Different parameters gave different scores: the comparison is not of constants.
    assert len(set(local.cv_results_["mean_test_score"])) > 1
    np.testing.assert_array_equal(local.predict_proba(X), remote.predict_proba(X))
    np.testing.assert_array_equal(local.best_estimator_.row_covariance_,
                                  remote.best_estimator_.row_covariance_)


def test_randomized_search_on_dask_equals_the_serial_one(client):
    distributions = {"reg_lambda": [1e-4, 1e-3, 1e-2, 1e-1], "u": [0.05, 0.1, 0.5],
                     "precision_scale": ["unit_mean", "learned"]}
    est = AdaRegMultiTaskRegressor(**PARAMS)
    kwargs = dict(n_iter=5, cv=3, random_state=0)
    local = RandomizedSearchCV(est, distributions, n_jobs=1, **kwargs).fit(X, Y)
    remote = fit_on_dask(RandomizedSearchCV(est, distributions, n_jobs=-1, **kwargs), X, Y)
    assert_same_results(local, remote)
    assert len(set(local.cv_results_["mean_test_score"])) > 1
    np.testing.assert_array_equal(local.predict(X), remote.predict(X))


def test_a_search_whose_workers_die_raises(client):
    register_dask_backend()
    # Building the network kills the worker process that fits it, every time.
    est = AdaRegClassifier(module=functools.partial(os._exit, 1), **PARAMS)
    search = GridSearchCV(est, {"reg_lambda": [1e-3, 1e-2]}, cv=2, n_jobs=-1)
    with pytest.raises(distributed.scheduler.KilledWorker):
        fit_on_dask(search, X, y)
    # The cluster survives: its nannies restart the workers, and it computes again.
    bounded(lambda: client.wait_for_workers(2, timeout=TIMEOUT))
    assert bounded(lambda: client.submit(sum, [1, 2], pure=False).result(timeout=TIMEOUT)) == 3
