"""Faults during a fit: NaN and infinite losses, weights and outputs, and interruptions.

Each test injects one fault and checks that it never passes silently: the fit
raises :class:`TrainingDivergedError` naming the epoch and the fixes (a lower
``lr`` or ``reg_lambda``) and leaves the estimator as it was (unfitted, or with
its earlier fit), or bad targets are rejected with a ``ValueError`` before
training, or a prediction that would be NaN raises instead. A
``KeyboardInterrupt`` during training stops it and leaves a usable estimator.
"""

import importlib
import math
import re
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from sklearn.exceptions import FitFailedWarning, NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.utils.validation import check_is_fitted
from skorch.callbacks import Callback

from sk_adareg import AdaRegClassifier, AdaRegMultiTaskRegressor, MatrixNormalPrior
from sk_adareg.exceptions import TrainingDivergedError
from sk_adareg.prior import inv_threshold

sys.path.insert(0, str(Path(__file__).resolve().parent))
_modules = importlib.import_module("_modules")

ESTIMATORS = [AdaRegClassifier, AdaRegMultiTaskRegressor]
# Everything the tests rely on is passed explicitly: the defaults are being re-tuned.
SMALL = {"hidden_layer_sizes": (8,), "max_epochs": 4, "batch_size": 16, "reg_lambda": 1e-2,
         "u": 0.1, "v": 10.0, "precision_scale": "unit_mean", "cov_update_every": 2,
         "lr": 1e-3, "random_state": 0}


def data_for(Estimator, n=60, seed=0):
    X, y = make_classification(n_samples=n, n_features=5, n_informative=3, random_state=seed)
    if Estimator is AdaRegMultiTaskRegressor:
        y = X @ np.random.default_rng(seed).normal(size=(5, 2))
    return X, y


def fitted_attributes(est):
    return [k for k in vars(est) if k.endswith("_") and not k.startswith("__")]


def assert_unfitted(est, X):
    assert fitted_attributes(est) == []
    with pytest.raises(NotFittedError):
        check_is_fitted(est)
    with pytest.raises(NotFittedError):
        est.predict(X)


def assert_names_epoch_and_fixes(exc, epoch=None):
    message = str(exc)
    found = re.search(r"at epoch (\d+)\b", message)
    assert found, message
    if epoch is not None:
        assert int(found.group(1)) == epoch, message
    assert "lr=" in message and "reg_lambda=" in message, message
    return int(found.group(1))


# -- fault injectors -------------------------------------------------------------------


class PoisonOutputs(Callback):
    """From epoch ``epoch`` on, the module's outputs are ``value`` (NaN or +-inf)."""

    def __init__(self, epoch, value):
        self.epoch = epoch
        self.value = value

    def on_epoch_begin(self, net, **kwargs):
        if len(net.history) == self.epoch:
            net.module_.poison = self.value


class PoisonPrecision(Callback):
    """From epoch ``epoch`` on, the first prior's row precision is NaN: the regularizer fails."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_begin(self, net, **kwargs):
        if len(net.history) == self.epoch:
            net.priors_.priors[0].row_precision.fill_(math.nan)


class PoisonWeightsAfterStep(Callback):
    """After the optimizer step of epoch ``epoch``'s last batch, a weight becomes ``value``.

    The losses of that epoch are all finite: only the weights show the fault.
    """

    def __init__(self, epoch, value):
        self.epoch = epoch
        self.value = value

    def on_batch_end(self, net, training=False, **kwargs):
        if training and len(net.history) == self.epoch:
            with torch.no_grad():
                net.module_.head.weight[0, 0] = self.value


class RecordBatchLosses(Callback):
    """(epoch, training loss) of every training batch."""

    def initialize(self):
        self.losses_ = []
        return self

    def on_batch_end(self, net, training=False, loss=None, **kwargs):
        if training:
            self.losses_.append((len(net.history), loss.item()))


# -- divergence: the training loss becomes NaN or infinite ------------------------------


@pytest.mark.parametrize("Estimator", ESTIMATORS)
@pytest.mark.parametrize("params", [
    {"optimizer": torch.optim.SGD, "lr": 1e6},            # huge learning rate
    {"optimizer": torch.optim.SGD, "lr": 1.0, "reg_lambda": 1e30},  # huge prior strength
])
def test_exploding_training_names_the_first_bad_epoch(Estimator, params):
    X, y = data_for(Estimator)
    recorder = RecordBatchLosses()
    est = Estimator(**{**SMALL, "max_epochs": 6, **params}, callbacks=[recorder])
    with pytest.raises(TrainingDivergedError, match="NaN or infinite") as info:
        est.fit(X, y)
    first_bad = min(epoch for epoch, loss in recorder.losses_ if not math.isfinite(loss))
    assert_names_epoch_and_fixes(info.value, epoch=first_bad)
    assert f"lr={params['lr']!r}" in str(info.value)
    assert_unfitted(est, X)


@pytest.mark.parametrize("Estimator", ESTIMATORS)
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("epoch", [1, 3])
@pytest.mark.parametrize("early_stopping", [False, True])
def test_nan_or_inf_outputs_at_epoch_k_raise_naming_k(Estimator, value, epoch, early_stopping):
    X, y = data_for(Estimator)
    n_outputs = 2 if Estimator is AdaRegClassifier else y.shape[1]
    est = Estimator(**{**SMALL, "max_epochs": 5}, early_stopping=early_stopping,
                    module=_modules.PoisonableNet(n_outputs=n_outputs),
                    callbacks=[PoisonOutputs(epoch, value)])
    with pytest.raises(TrainingDivergedError) as info:
        est.fit(X, y)
    assert_names_epoch_and_fixes(info.value, epoch=epoch)
    assert_unfitted(est, X)


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_a_nan_regularizer_is_caught_at_its_epoch(Estimator):
    X, y = data_for(Estimator)
    est = Estimator(**SMALL, callbacks=[PoisonPrecision(2)])
    with pytest.raises(TrainingDivergedError) as info:
        est.fit(X, y)
    assert_names_epoch_and_fixes(info.value, epoch=2)
    assert_unfitted(est, X)


@pytest.mark.parametrize("Estimator", ESTIMATORS)
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("epoch, cov_update_every", [(2, 2), (3, 2)])
def test_nan_weights_after_the_last_step_are_caught(Estimator, value, epoch, cov_update_every):
    # One batch per epoch: the losses of the epoch are finite, the weights after it are
    # not. Epoch 2 is an update epoch (the eigendecomposition would meet NaN); epoch 3
    # is the last epoch and no update (the fit would return a NaN network).
    X, y = data_for(Estimator)
    n_outputs = 2 if Estimator is AdaRegClassifier else y.shape[1]
    est = Estimator(**{**SMALL, "max_epochs": 3, "batch_size": len(X),
                       "cov_update_every": cov_update_every},
                    module=_modules.TinyNet(n_outputs=n_outputs),
                    callbacks=[PoisonWeightsAfterStep(epoch, value)])
    with pytest.raises(TrainingDivergedError, match="weights") as info:
        est.fit(X, y)
    assert_names_epoch_and_fixes(info.value, epoch=epoch)
    assert_unfitted(est, X)


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_a_fitted_estimator_whose_refit_diverges_keeps_its_fit(Estimator):
    X, y = data_for(Estimator)
    est = Estimator(**SMALL).fit(X, y)
    before = {name: getattr(est, name) for name in fitted_attributes(est)}
    prediction = est.predict(X)
    est.set_params(optimizer=torch.optim.SGD, lr=1.0, reg_lambda=1e30)
    with pytest.raises(TrainingDivergedError):
        est.fit(X, y)
    assert {name: getattr(est, name) for name in fitted_attributes(est)}.keys() == before.keys()
    assert all(getattr(est, name) is value for name, value in before.items())
    np.testing.assert_array_equal(est.predict(X), prediction)
    # and it fits again once the cause is fixed
    est.set_params(optimizer=torch.optim.Adam, lr=1e-3, reg_lambda=1e-2)
    assert np.isfinite(est.fit(X, y).predict(X).astype(float)).all()


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_a_fitted_estimator_whose_refit_gets_bad_data_keeps_its_fit(Estimator,
                                                                    training_runs):
    X, y = data_for(Estimator)
    est = Estimator(**SMALL).fit(X, y)
    prediction = est.predict(X)
    assert len(training_runs) == 1
    with pytest.raises(ValueError, match="NaN"):
        est.fit(np.where(X > 1, np.nan, X), y)
    assert len(training_runs) == 1
    np.testing.assert_array_equal(est.predict(X), prediction)


def test_grid_search_survives_a_diverging_candidate():
    # The 37th-fold scenario: one bad candidate must not kill the search, and the
    # warning must say what went wrong, where.
    X, y = data_for(AdaRegMultiTaskRegressor)
    est = AdaRegMultiTaskRegressor(**{**SMALL, "optimizer": torch.optim.SGD, "lr": 1e-2})
    grid = GridSearchCV(est, {"reg_lambda": [1e-2, 1e30]}, cv=2)
    with pytest.warns(FitFailedWarning, match=r"TrainingDivergedError.*at epoch 1\b"):
        grid.fit(X, y)
    scores = grid.cv_results_["mean_test_score"]
    assert np.isfinite(scores[0]) and np.isnan(scores[1])
    assert grid.best_params_ == {"reg_lambda": 1e-2}
    with pytest.raises(TrainingDivergedError):
        GridSearchCV(est, {"reg_lambda": [1e30]}, cv=2, error_score="raise").fit(X, y)


# -- bad targets are rejected before training ----------------------------------------------


@pytest.mark.parametrize("y_change, params, match", [
    (lambda y: np.where(y > 1, np.inf, y), {}, "infinity"),
    (lambda y: np.where(y > 1, -np.inf, y), {"standardize_targets": False}, "infinity"),
    (lambda y: np.where(y > 1, np.nan, y), {}, "NaN"),
    # finite in float64, but not once standardized (the variance overflows) ...
    (lambda y: y * 1e200, {}, "too large"),
    (lambda y: np.where(y > 1, 1e300, y), {}, "too large"),
    # ... or once cast to float32, the network's dtype
    (lambda y: np.where(y > 1, 1e39, y), {"standardize_targets": False}, "too large"),
])
def test_non_finite_targets_are_rejected_before_training(y_change, params, match,
                                                         training_runs):
    X, y = data_for(AdaRegMultiTaskRegressor)
    est = AdaRegMultiTaskRegressor(**SMALL, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's overflow in the scaler
        with pytest.raises(ValueError, match=match):
            est.fit(X, y_change(y))
    assert training_runs == []
    assert_unfitted(est, X)


def test_huge_but_representable_targets_train_when_standardized():
    X, y = data_for(AdaRegMultiTaskRegressor)
    reg = AdaRegMultiTaskRegressor(**SMALL).fit(X, y * 1e150)
    pred = reg.predict(X)
    assert np.isfinite(pred).all()
    reference = AdaRegMultiTaskRegressor(**SMALL).fit(X, y).predict(X)
    np.testing.assert_allclose(pred, reference * 1e150, rtol=1e-6)


# -- NaN never comes out of predict ------------------------------------------------------


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_a_network_broken_by_its_last_step_fails_the_fit_not_predict(Estimator):
    # One huge SGD step: the loss of the only batch was finite, the weights after the
    # step are finite (about 1e29), but the outputs overflow float32.
    X, y = data_for(Estimator, n=20)
    est = Estimator(**{**SMALL, "max_epochs": 1, "batch_size": 20, "cov_update_every": 1,
                       "optimizer": torch.optim.SGD, "lr": 1e30})
    with pytest.raises(TrainingDivergedError, match="outputs on the training data") as info:
        est.fit(X, y)
    assert "lr=1e+30" in str(info.value)
    assert_unfitted(est, X)


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_a_network_with_overflowing_weights_does_not_predict_nan(Estimator):
    X, y = data_for(Estimator, n=20)
    est = Estimator(**SMALL).fit(X, y)
    with torch.no_grad():
        for p in est.net_.module_.parameters():
            p.mul_(1e20)  # finite, but the outputs overflow float32
    with pytest.raises(FloatingPointError, match=r"NaN or infinite for \d+ of 20 samples"):
        est.predict(X)
    if Estimator is AdaRegClassifier:
        with pytest.raises(FloatingPointError, match="lr="):
            est.predict_proba(X)


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_inputs_that_overflow_float32_in_the_network_raise_at_predict(Estimator):
    X, y = data_for(Estimator)
    n_outputs = 2 if Estimator is AdaRegClassifier else y.shape[1]
    est = Estimator(**SMALL, module=lambda: torch.nn.Linear(5, n_outputs),
                    clip_inputs=False).fit(X, y)
    with torch.no_grad():
        est.net_.module_.weight.fill_(1.0)
    assert np.isfinite(est.predict(X[:3]).astype(float)).all()
    # finite in float32, but their sum is not
    huge = np.full((3, 5), 3e38)
    with pytest.raises(FloatingPointError, match=r"NaN or infinite for 3 of 3 samples"):
        est.predict(huge)
    # clipped (the default) to the training range widened by a quarter on each side
    est.set_params(clip_inputs=True)
    low, high = X.min(axis=0).astype(np.float32), X.max(axis=0).astype(np.float32)
    at_edge = np.tile(high + (high - low) * np.float32(0.25), (3, 1))
    np.testing.assert_array_equal(est.predict(huge), est.predict(at_edge))
    if Estimator is AdaRegClassifier:
        proba = est.predict_proba(huge)
        assert np.isfinite(proba).all()
        np.testing.assert_array_equal(proba, est.predict_proba(at_edge))
    else:
        assert np.isfinite(est.predict(huge)).all()


# -- the prior on its own ------------------------------------------------------------


@pytest.mark.parametrize("value", [math.nan, math.inf])
@pytest.mark.parametrize("precision_scale", ["learned", "unit_mean"])
def test_prior_update_rejects_non_finite_weights_and_keeps_its_state(value, precision_scale):
    w = torch.randn(3, 7)
    prior = MatrixNormalPrior(w.shape, 0.1, 10.0, precision_scale=precision_scale).update(w)
    before = {k: t.clone() for k, t in prior.state_dict().items()}
    bad = w.clone()
    bad[1, 2] = value
    with pytest.raises(ValueError, match="NaN or infinite"):
        prior.update(bad)
    for key, tensor in prior.state_dict().items():
        assert torch.equal(tensor, before[key]), key
    with pytest.raises(ValueError, match="NaN or infinite"):
        inv_threshold(bad @ bad.T, m=7, u=0.1, v=10.0)


# -- KeyboardInterrupt -------------------------------------------------------------------


class Interrupt(Callback):
    """Raises KeyboardInterrupt at the end of epoch ``epoch``, or in its batch ``batch``."""

    def __init__(self, epoch, batch=None):
        self.epoch = epoch
        self.batch = batch

    def on_batch_end(self, net, training=False, **kwargs):
        if (self.batch is not None and training and len(net.history) == self.epoch
                and len(net.history[-1, "batches"]) == self.batch):
            raise KeyboardInterrupt

    def on_epoch_end(self, net, **kwargs):
        if self.batch is None and len(net.history) == self.epoch:
            raise KeyboardInterrupt


class InterruptBeforeTraining(Callback):
    def on_train_begin(self, net, **kwargs):
        raise KeyboardInterrupt


def assert_usable(est, X, n_iter, u=0.1, v=10.0):
    assert est.n_iter_ == n_iter
    assert len(est.loss_curve_) == n_iter
    assert all(math.isfinite(loss) for loss in est.loss_curve_)
    pred = est.predict(X)
    assert len(pred) == len(X)
    if isinstance(est, AdaRegClassifier):
        proba = est.predict_proba(X)
        assert np.isfinite(proba).all()
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
        assert set(pred) <= set(est.classes_)
    else:
        assert np.isfinite(pred).all()
    # the covariances are those of the net's priors, and feasible
    prior = est.net_.priors_[est.adareg_layers_[-1]]
    np.testing.assert_array_equal(est.row_precision_, prior.row_precision.numpy())
    np.testing.assert_array_equal(est.column_precision_, prior.column_precision.numpy())
    for cov, prec in ((est.row_covariance_, est.row_precision_),
                      (est.column_covariance_, est.column_precision_)):
        np.testing.assert_allclose(cov, cov.T)
        eig = np.linalg.eigvalsh(cov)
        assert eig.min() >= (1 / v) * (1 - 1e-9) and eig.max() <= (1 / u) * (1 + 1e-9)
        np.testing.assert_allclose(cov @ prec, np.eye(len(cov)), atol=1e-8)


@pytest.mark.parametrize("Estimator", ESTIMATORS)
@pytest.mark.parametrize("early_stopping", [False, True])
@pytest.mark.parametrize("epoch, batch, completed", [
    (3, None, 3),  # at the end of epoch 3: three complete epochs
    (3, 2, 2),     # in the middle of epoch 3: two
    (1, 1, 0),     # after the first batch: none
])
def test_keyboard_interrupt_stops_training_and_keeps_a_usable_model(
        Estimator, early_stopping, epoch, batch, completed):
    X, y = data_for(Estimator)
    # Bounds that exclude 1: the initial identity precisions are not feasible.
    est = Estimator(**{**SMALL, "max_epochs": 10, "precision_scale": "learned",
                       "u": 2.0, "v": 4.0, "cov_update_every": 2},
                    early_stopping=early_stopping, callbacks=[Interrupt(epoch, batch)])
    assert est.fit(X, y) is est  # no exception: the interrupt stops training
    assert_usable(est, X, completed, u=2.0, v=4.0)
    # the interrupted epoch is the last row of the history, complete or not
    assert len(est.history_) == epoch


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_an_interrupted_estimator_refits_like_a_fresh_one(Estimator):
    X, y = data_for(Estimator)
    est = Estimator(**SMALL, callbacks=[Interrupt(2, 1)]).fit(X, y)
    assert est.n_iter_ == 1
    est.set_params(callbacks=None).fit(X, y)
    fresh = Estimator(**SMALL).fit(X, y)
    assert est.n_iter_ == fresh.n_iter_ == SMALL["max_epochs"]
    np.testing.assert_array_equal(est.predict(X), fresh.predict(X))
    np.testing.assert_array_equal(est.row_covariance_, fresh.row_covariance_)


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_keyboard_interrupt_before_training_propagates_and_keeps_the_fit(Estimator):
    X, y = data_for(Estimator)
    est = Estimator(**SMALL).fit(X, y)
    prediction, net = est.predict(X), est.net_
    est.set_params(callbacks=[InterruptBeforeTraining()])
    with pytest.raises(KeyboardInterrupt):
        est.fit(X, y)
    assert est.net_ is net
    np.testing.assert_array_equal(est.predict(X), prediction)
    fresh = Estimator(**SMALL, callbacks=[InterruptBeforeTraining()])
    with pytest.raises(KeyboardInterrupt):
        fresh.fit(X, y)
    assert_unfitted(fresh, X)
