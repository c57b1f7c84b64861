"""A ``fit``, warm-started fit or ``partial_fit`` that raises leaves the estimator as it was.

Whatever the call raises (divergence, bad data, an error or an interrupt from a
callback), the estimator keeps its predictions, ``n_iter_``, history, strengths,
weights, optimizer state and precisions, and the next call trains as if the failed
one had never been made. A last step that overflows the network's outputs fails the
call that took it (issue 39, case 1).
"""

import copy

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

from sk_adareg import AdaRegClassifier, AdaRegMultiTaskRegressor
from sk_adareg.exceptions import TrainingDivergedError

ESTIMATORS = [AdaRegClassifier, AdaRegMultiTaskRegressor]
KW = {"hidden_layer_sizes": (8,), "max_epochs": 10, "random_state": 0}


def data(Estimator, n=40):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 3))
    y = (X[:, 0] > 0).astype(int) if Estimator is AdaRegClassifier else X[:, :2]
    return X, y


def partial(est, X, y, **kwargs):
    if isinstance(est, AdaRegClassifier):
        return est.partial_fit(X, y, classes=[0, 1], **kwargs)
    return est.partial_fit(X, y, **kwargs)


def state(est, X):
    """Everything a failed call must leave alone, copied."""
    net = est.net_
    return {
        "predict": est.predict(X),
        "n_iter_": est.n_iter_,
        "loss_curve_": list(est.loss_curve_),
        "history": len(est.history_),
        "reg_lambda_": dict(est.reg_lambda_),
        "noise_variance_": copy.deepcopy(getattr(est, "noise_variance_", None)),
        "weights": copy.deepcopy(net.module_.state_dict()),
        "optimizer": copy.deepcopy(net.optimizer_.state_dict()),
        "priors": copy.deepcopy(net.priors_.state_dict()),
        "attributes": sorted(k for k in vars(est) if k.endswith("_")),
    }


def assert_same(a, b, where="state"):
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b, err_msg=where)
    else:
        assert a == b, where


class Fail(Callback):
    """Raises ``error`` at the end of the epoch ``epoch`` of a fit, while ``armed``.

    A class attribute: the estimator's own copy of the net's callbacks sees it too.
    """

    armed = False

    def __init__(self, error=RuntimeError, when="on_epoch_end"):
        self.error, self.when = error, when

    def on_train_begin(self, net, **kwargs):
        if Fail.armed and self.when == "on_train_begin":
            raise self.error("injected")

    def on_epoch_end(self, net, **kwargs):
        if Fail.armed and self.when == "on_epoch_end":
            raise self.error("injected")


@pytest.fixture
def armed():
    Fail.armed = False
    yield
    Fail.armed = False


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_a_warm_refit_that_diverges_leaves_the_model_as_it_was(Estimator):
    X, y = data(Estimator)
    est = Estimator(warm_start=True, **KW).fit(X, y)
    before = state(est, X)
    with pytest.raises(TrainingDivergedError):
        if Estimator is AdaRegMultiTaskRegressor:
            est.fit(X * 1e20, y)
        else:  # the cross-entropy saturates on huge inputs; a huge step does not
            est.set_params(lr=1e30).fit(X, y)
    assert_same(state(est, X), before)


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_a_partial_fit_whose_last_step_overflows_raises_and_changes_nothing(Estimator):
    X, y = data(Estimator)
    est = Estimator(**KW, reg_lambda=3e-3)
    partial(est, X, y)
    before = state(est, X)
    est.set_params(lr=1e30)
    # The weights stay finite (huge): only the outputs overflow.
    with pytest.raises(TrainingDivergedError, match=r"outputs on the training data.*lr=1e\+30"):
        partial(est, X, y)
    assert_same(state(est, X), before)
    # The next call trains as if the failed one had never been made.
    est.set_params(lr=1e-3)
    twin = Estimator(**KW, reg_lambda=3e-3)
    partial(twin, X, y)
    assert_same(state(partial(est, X, y), X), state(partial(twin, X, y), X))


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_a_fresh_refit_that_fails_keeps_the_earlier_fit(Estimator):
    X, y = data(Estimator)
    est = Estimator(**KW).fit(X, y)
    before, net = state(est, X), est.net_
    with pytest.raises(TrainingDivergedError):
        est.set_params(lr=1e30, optimizer=torch.optim.SGD).fit(X, y)
    assert est.net_ is net
    assert_same(state(est, X), before)


@pytest.mark.parametrize("Estimator", ESTIMATORS)
@pytest.mark.parametrize("error, when", [
    (RuntimeError, "on_epoch_end"),        # mid-training, after steps were taken
    (KeyboardInterrupt, "on_train_begin"),  # an interrupt that makes the call raise
])
@pytest.mark.parametrize("call", ["partial_fit", "warm_start"])
def test_any_exception_restores_weights_optimizer_and_history(Estimator, error, when, call,
                                                              armed):
    X, y = data(Estimator)
    est = Estimator(**KW, reg_lambda=3e-3, callbacks=[Fail(error, when)],
                    warm_start=call == "warm_start")
    est.fit(X, y)
    partial(est, X, y)  # optimizer state and a history to keep
    before = state(est, X)
    Fail.armed = True
    with pytest.raises(error, match="injected"):
        est.fit(X, y) if call == "warm_start" else partial(est, X, y)
    Fail.armed = False
    assert_same(state(est, X), before)
    twin = Estimator(**KW, reg_lambda=3e-3, callbacks=[Fail(error, when)],
                     warm_start=call == "warm_start")
    partial(twin.fit(X, y), X, y)
    after = est.fit(X, y) if call == "warm_start" else partial(est, X, y)
    expected = twin.fit(X, y) if call == "warm_start" else partial(twin, X, y)
    assert_same(state(after, X), state(expected, X))


def test_the_users_callbacks_stay_the_objects_the_user_holds(armed):
    X, y = data(AdaRegMultiTaskRegressor)
    callback = Fail()
    est = AdaRegMultiTaskRegressor(**KW, reg_lambda=3e-3, callbacks=[("fail", callback)])
    partial(est, X, y)
    Fail.armed = True
    with pytest.raises(RuntimeError, match="injected"):
        partial(est, X, y)
    assert dict(est.net_.callbacks_)["fail"] is callback
