"""The per-epoch work as skorch callbacks, the one definition of each hyperparameter,
and what a fitted net keeps."""

import copy
import inspect
import io
import pickle

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from skorch.callbacks import Callback
from torch import nn

from sk_adareg import (
    AdaRegClassifier,
    AdaRegMultiTaskRegressor,
    AdaRegNeuralNet,
    MatrixNormalPrior,
)
from sk_adareg._params import ADAREG_PARAMS, DEFAULTS, NET_DEFAULTS, PAPER_DEFAULTS
from sk_adareg.callbacks import DivergenceCheck, PriorRefresh, PriorUpdate, _all_finite
from sk_adareg.net import AdaRegMixin


def regression_data(n=64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 5, generator=gen)
    return X, X @ torch.randn(5, 3, generator=gen)


class LastEpochPriors(Callback):
    """Keeps a copy of the priors and weights as every epoch ends."""

    def on_epoch_end(self, net, **kwargs):
        self.priors_ = copy.deepcopy(net.priors_)
        self.weight_ = net.module_.weight.detach().clone()


class RestoreInitialWeights(Callback):
    """Restores the weights of the start of training when it ends, as a checkpoint would."""

    def on_train_begin(self, net, **kwargs):
        self.state_ = copy.deepcopy(net.module_.state_dict())

    def on_train_end(self, net, **kwargs):
        net.module_.load_state_dict(self.state_)


def make_net(**kwargs):
    torch.manual_seed(0)
    params = dict(module=nn.Linear(5, 3), criterion=nn.MSELoss, max_epochs=6,
                  cov_update_every=3, precision_scale="learned", train_split=None, verbose=0)
    return AdaRegNeuralNet(**{**params, **kwargs})


def test_the_callbacks_are_among_the_defaults_with_the_refresh_last():
    net = make_net(callbacks=[("restore", RestoreInitialWeights())]).initialize()
    names = [name for name, _ in net.callbacks_]
    assert names[-1] == "prior_refresh"
    assert names.index("divergence_check") < names.index("prior_update") < names.index("restore")
    kinds = dict(net.callbacks_)
    assert isinstance(kinds["divergence_check"], DivergenceCheck)
    assert isinstance(kinds["prior_update"], PriorUpdate)
    assert isinstance(kinds["prior_refresh"], PriorRefresh)


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64])
def test_the_weight_check_agrees_with_isfinite(dtype):
    # Huge finite values, whose sum overflows, are finite; one NaN or infinity in any
    # tensor is not.
    big = torch.finfo(dtype).max
    tensors = [torch.full((3, 4), big, dtype=dtype), -torch.full((5,), big, dtype=dtype),
               torch.zeros(2, 2, dtype=dtype)]
    assert _all_finite(tensors) and _all_finite([])
    for value in (float("nan"), float("inf"), -float("inf")):
        for i, j in ((0, 5), (1, 4), (2, 0)):
            broken = [t.clone() for t in tensors]
            broken[i].view(-1)[j] = value
            assert not _all_finite(broken)
            assert _all_finite(broken) == all(bool(t.isfinite().all()) for t in broken)


def test_restored_weights_get_precisions_made_for_them():
    last = LastEpochPriors()
    net = make_net(callbacks=[("last", last), ("restore", RestoreInitialWeights())])
    net.fit(*regression_data())
    final = net.module_.weight
    assert not torch.equal(final, last.weight_)  # the weights were restored
    # The refresh is one more block of the coordinate descent, for the restored weights.
    expected = copy.deepcopy(last.priors_).update(net.module_)
    for name in ("row_precision", "column_precision"):
        torch.testing.assert_close(getattr(net.priors_["weight"], name),
                                   getattr(expected["weight"], name), rtol=0, atol=0)
        assert not torch.equal(getattr(net.priors_["weight"], name),
                               getattr(last.priors_["weight"], name))


def test_unchanged_weights_keep_the_precisions_of_the_last_update():
    last = LastEpochPriors()
    net = make_net(callbacks=[("last", last)]).fit(*regression_data())
    for name in ("row_precision", "column_precision"):
        assert torch.equal(getattr(net.priors_["weight"], name),
                           getattr(last.priors_["weight"], name))


def test_a_fit_shorter_than_the_update_period_still_updates_once():
    net = make_net(max_epochs=2, cov_update_every=10).fit(*regression_data())
    assert not any(net.history[:, "cov_update"])
    assert not torch.equal(net.priors_["weight"].row_precision, torch.eye(3, dtype=torch.float64))


def test_the_refresh_can_be_disabled_the_skorch_way():
    net = make_net(max_epochs=2, cov_update_every=10, callbacks__prior_refresh=None)
    net.fit(*regression_data())
    assert torch.equal(net.priors_["weight"].row_precision, torch.eye(3, dtype=torch.float64))


def test_the_data_loss_is_the_criterion_on_the_training_data():
    # lr=0: the weights stay, so each epoch's data loss is the loss of the whole data,
    # and the training loss exceeds it by the penalty (precisions are I before an update).
    X, y = regression_data()
    net = make_net(optimizer=torch.optim.SGD, lr=0.0, reg_lambda=0.5, batch_size=16,
                   max_epochs=2, cov_update_every=10, callbacks__prior_refresh=None)
    net.fit(X, y)
    with torch.no_grad():
        data_loss = nn.functional.mse_loss(net.module_(X), y).item()
        penalty = (net.module_.weight ** 2).sum().item()
    assert net.history[:, "train_data_loss"] == pytest.approx([data_loss] * 2, rel=1e-6)
    assert net.history[:, "train_loss"] == pytest.approx(
        [data_loss + 0.5 * penalty] * 2, rel=1e-6)


def tensors_in(obj):
    """Number of torch tensors a pickle of ``obj`` carries."""
    found = []

    class Counter(pickle.Pickler):
        def persistent_id(self, item):
            if isinstance(item, torch.Tensor):
                found.append(tuple(item.shape))
            return None

    Counter(io.BytesIO()).dump(obj)
    return found


@pytest.mark.parametrize("Estimator", [AdaRegClassifier, AdaRegMultiTaskRegressor])
def test_a_fitted_estimator_keeps_tensors_only_in_module_priors_and_optimizer(Estimator):
    X, y = make_classification(n_samples=80, n_features=6, random_state=0)
    target = y if Estimator is AdaRegClassifier else np.column_stack([X[:, 0], X[:, 1]])
    est = Estimator(hidden_layer_sizes=(8,), adareg_layers="all", decov_lambda=0.1,
                    early_stopping=True, n_iter_no_change=2, max_epochs=12,
                    cov_update_every=2, random_state=0).fit(X, target)
    # The estimator hands skorch its module instance: `module` is `module_`.
    assert est.net_.module is est.net_.module_
    allowed = {"module", "module_", "priors_", "optimizer_", "criterion_"}
    rest = {k: v for k, v in vars(est.net_).items() if k not in allowed}
    assert "history_" in rest and "callbacks_" in rest
    assert tensors_in(rest) == []
    # The criterion carries only its own buffers: with learned strengths (the default),
    # the regressor's weight of each target.
    criterion = est.net_.criterion_
    assert tensors_in(criterion) == [tuple(b.shape) for b in criterion.buffers()]
    assert len(tensors_in(criterion)) == (Estimator is AdaRegMultiTaskRegressor)
    assert tensors_in({k: v for k, v in vars(est).items() if k != "net_"}) == []
    # the check can fail: the module does carry tensors
    assert tensors_in(est.net_.module_)


def test_defaults_are_defined_once():
    mixin = AdaRegNeuralNet(nn.Linear(2, 2), nn.MSELoss)
    for Estimator in (AdaRegClassifier, AdaRegMultiTaskRegressor):
        params = Estimator().get_params()
        assert {name: params[name] for name in ADAREG_PARAMS} == DEFAULTS
        assert 'reg_lambda : float, "auto", "evidence" or "loo", default="auto"' \
            in Estimator.__doc__
    # The nets keep a fixed strength on the last layer: they cannot refit themselves to
    # choose how to learn it.
    assert {name: getattr(mixin, name) for name in ADAREG_PARAMS} == NET_DEFAULTS
    assert NET_DEFAULTS == {**DEFAULTS, "reg_lambda": 3e-3, "adareg_layers": "last"}
    assert DEFAULTS["reg_lambda"] == "auto" and DEFAULTS["adareg_layers"] == "all"
    assert 'reg_lambda : float, "auto", "evidence" or "loo", default=3e-3' \
        in AdaRegMixin.__doc__
    assert 'or list of str, default="last"' in AdaRegMixin.__doc__
    prior = inspect.signature(MatrixNormalPrior).parameters
    assert {name: prior[name].default for name in ("u", "v", "numerator", "precision_scale")} \
        == {name: PAPER_DEFAULTS[name] for name in ("u", "v", "numerator", "precision_scale")}


def test_every_hyperparameter_reaches_the_net_and_its_priors():
    X, y = make_classification(n_samples=40, n_features=4, random_state=0)
    params = dict(reg_lambda=0.05, u=0.2, v=5.0, precision_scale="learned",
                  numerator="authors", cov_update_every=3, adareg_layers=("output.weight",),
                  decov_lambda=0.01)
    assert set(params) == set(ADAREG_PARAMS)
    clf = AdaRegClassifier(hidden_layer_sizes=(6,), max_epochs=3, random_state=0, **params)
    clf.fit(X, y)
    for name, value in params.items():
        assert getattr(clf.net_, name) == value, name
    prior = clf.net_.priors_["output.weight"]
    assert (prior.u, prior.v, prior.numerator, prior.precision_scale) == (
        0.2, 5.0, "authors", "learned")


@pytest.mark.parametrize("params, match", [
    ({"cov_update_every": 0}, r"'cov_update_every' parameter of AdaRegNeuralNet"),
    ({"reg_lambda": -1.0}, r"'reg_lambda' parameter of AdaRegNeuralNet"),
    ({"decov_lambda": float("nan")}, r"'decov_lambda' parameter of AdaRegNeuralNet"),
    ({"u": 2.0, "v": 1.0, "precision_scale": "learned"}, "u must be <= v"),
])
def test_the_net_validates_its_parameters_at_initialization(params, match):
    net = make_net(**params)
    with pytest.raises(ValueError, match=match):
        net.initialize()


class CountBatchEvents(Callback):
    """Counts the per-batch events it receives; switches the module to eval at a batch's end."""

    def __init__(self, switch_to_eval=False):
        self.switch_to_eval = switch_to_eval

    def initialize(self):
        self.counts_ = {"on_batch_begin": 0, "on_batch_end": 0, "on_grad_computed": 0}
        return self

    def on_batch_begin(self, net, **kwargs):
        self.counts_["on_batch_begin"] += 1

    def on_batch_end(self, net, **kwargs):
        self.counts_["on_batch_end"] += 1
        if self.switch_to_eval:
            net.module_.eval()

    def on_grad_computed(self, net, named_parameters=None, **kwargs):
        self.counts_["on_grad_computed"] += 1
        assert all(p.grad is not None for _, p in named_parameters)


class ModeRecorder(nn.Module):
    """A linear layer that records the training mode of every forward pass."""

    def __init__(self, own_train=False):
        super().__init__()
        self.linear = nn.Linear(5, 3)
        self.modes, self.train_calls, self.own_train = [], 0, own_train

    def forward(self, X):
        self.modes.append(self.training)
        return self.linear(X)


class ModeRecorderWithTrain(ModeRecorder):
    def train(self, mode=True):
        self.train_calls += 1
        return super().train(mode)


@pytest.mark.parametrize("switch_to_eval", [False, True])
@pytest.mark.parametrize("module_class", [ModeRecorder, ModeRecorderWithTrain])
def test_per_batch_events_and_training_mode_as_skorch(switch_to_eval, module_class):
    # The net calls only the callbacks that override a per-batch event, and sets the
    # training mode only when it is not set: the same calls and modes as skorch's loop.
    X, y = regression_data(40)
    counter = CountBatchEvents(switch_to_eval)
    module = module_class()
    net = AdaRegNeuralNet(module, nn.MSELoss, max_epochs=3, batch_size=8, train_split=None,
                          verbose=0, callbacks=[("count", counter)])
    net.fit(X, y)
    assert counter.counts_ == {"on_batch_begin": 15, "on_batch_end": 15,
                               "on_grad_computed": 15}
    assert len(net.history[-1, "batches"]) == 5
    # Every training step ran in training mode, even after a callback switched to eval.
    assert net.module_.modes == [True] * 15
    if module_class is ModeRecorderWithTrain:
        # A module with a train() of its own gets it called at every step, as in skorch.
        assert net.module_.train_calls >= 15


def test_train_data_loss_is_the_batch_size_weighted_mean():
    X, y = regression_data(44)  # batches of 8, 8, 8, 8, 8, 4

    class Losses(Callback):
        def initialize(self):
            self.rows_ = []
            return self

        def on_batch_end(self, net, batch=None, training=False, y_pred=None, **kwargs):
            if training:  # the data loss of the step, from its predictions
                loss = nn.functional.mse_loss(y_pred.detach(), batch[1])
                self.rows_.append((loss.item(), len(batch[0])))

    recorder = Losses()
    net = AdaRegNeuralNet(nn.Linear(5, 3), nn.MSELoss, max_epochs=2, batch_size=8,
                          reg_lambda=0.5, train_split=None, verbose=0,
                          callbacks=[("losses", recorder)])
    net.fit(X, y)
    for epoch in (0, 1):
        rows = recorder.rows_[6 * epoch:6 * (epoch + 1)]
        expected = sum(loss * n for loss, n in rows) / sum(n for _, n in rows)
        assert net.history[epoch, "train_data_loss"] == pytest.approx(expected, rel=1e-6)
        assert net.history[epoch, "train_loss"] > net.history[epoch, "train_data_loss"]


def test_the_epoch_keeps_no_tensor_per_batch():
    # A record per batch kept until the epoch's end would hold a batch's storage each (the
    # losses of torch's reductions share it): the live tensors must not grow with batches.
    import gc

    class LiveTensors(Callback):
        def initialize(self):
            self.counts_ = {}
            return self

        def on_batch_end(self, net, training=False, **kwargs):
            batch = len(net.history[-1, "batches"])
            if training and batch in (5, 95):
                gc.collect()
                self.counts_[batch] = sum(isinstance(o, torch.Tensor) for o in gc.get_objects())

    X, y = regression_data(800)
    counter = LiveTensors()
    net = AdaRegNeuralNet(nn.Linear(5, 3), nn.MSELoss, max_epochs=1, batch_size=8,
                          reg_lambda=0.1, train_split=None, verbose=0,
                          callbacks=[("live", counter)])
    net.fit(X, y)
    assert counter.counts_[95] - counter.counts_[5] < 10, counter.counts_
