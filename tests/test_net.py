"""The skorch side: AdaRegMixin and the public nets."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from sklearn.exceptions import NotFittedError
from skorch.callbacks import Callback
from torch import nn

from sk_adareg import AdaRegClassifier, AdaRegNeuralNet, AdaRegNeuralNetClassifier
from sk_adareg.exceptions import CollapseWarning, TrainingDivergedError


def regression_data(n=64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 5, generator=gen)
    return X, X @ torch.randn(5, 3, generator=gen)


class RecordPrecision(Callback):
    """A user callback: what does it see of the precisions at the end of an epoch?"""

    def initialize(self):
        self.seen_ = []
        return self

    def on_epoch_end(self, net, **kwargs):
        self.seen_.append(net.priors_["weight"].row_precision.clone())


def test_precisions_are_updated_before_user_callbacks_run():
    torch.manual_seed(0)
    recorder = RecordPrecision()
    net = AdaRegNeuralNet(nn.Linear(5, 3), nn.MSELoss, max_epochs=6, cov_update_every=3,
                          train_split=None, verbose=0, callbacks=[recorder])
    net.fit(*regression_data())
    eye = torch.eye(3, dtype=torch.float64)
    seen = recorder.seen_
    assert torch.equal(seen[0], eye) and torch.equal(seen[1], eye)
    assert not torch.equal(seen[2], eye)  # epoch 3 updates, before the callback runs
    assert torch.equal(seen[3], seen[2]) and torch.equal(seen[4], seen[2])
    assert not torch.equal(seen[5], seen[2])
    assert net.history[:, "cov_update"] == [False, False, True, False, False, True]


def test_priors_are_a_registered_module_of_the_net():
    net = AdaRegNeuralNet(nn.Linear(5, 3), nn.MSELoss, train_split=None, verbose=0)
    net.initialize()
    assert "priors" in net._modules
    assert "priors_" in net.cuda_dependent_attributes_
    # the priors hold no trainable parameter: the optimizer sees only the module's
    assert len(list(net.get_all_learnable_params())) == 2


def test_penalty_enters_training_loss_only():
    net = AdaRegNeuralNet(nn.Linear(5, 3), nn.MSELoss, reg_lambda=0.5, train_split=None,
                          verbose=0).initialize()
    X, y = regression_data()
    y_pred = net.infer(X)
    data = nn.functional.mse_loss(y_pred, y)
    weight = net.module_.weight
    torch.testing.assert_close(net.get_loss(y_pred, y, training=False), data)
    torch.testing.assert_close(net.get_loss(y_pred, y, training=True),
                               data + 0.5 * (weight**2).sum())


def test_set_params_changes_the_bounds_for_the_next_fit():
    net = AdaRegNeuralNet(nn.Linear(5, 3), nn.MSELoss, max_epochs=2, cov_update_every=1,
                          u=0.1, v=10.0, precision_scale="learned", train_split=None,
                          verbose=0)
    net.fit(*regression_data())
    net.set_params(u=0.5, v=2.0)
    net.partial_fit(*regression_data())
    eig = net.priors_["weight"].column_eigenvalues
    assert eig.min() >= 0.5 and eig.max() <= 2.0
    net.set_params(u=3.0, v=2.0)
    with pytest.raises(ValueError, match="u must be <= v"):
        net.partial_fit(*regression_data())


def test_divergence_raises_naming_the_epoch():
    X, y = regression_data()
    net = AdaRegNeuralNet(nn.Linear(5, 3), nn.MSELoss, lr=1e30, optimizer=torch.optim.SGD,
                          max_epochs=5, train_split=None, verbose=0)
    with pytest.raises(TrainingDivergedError, match=r"epoch 1\b.*lr=1e\+30.*reg_lambda"):
        net.fit(X, y * 1e20)


# The default (learned strengths) updates the prior after steps within the short fit, before
# the epoch's divergence check: the divergence must still be reported as one.
@pytest.mark.parametrize("params", [{}, {"reg_lambda": 3e-3}])
def test_divergence_leaves_the_estimator_unfitted(params):
    X, y = make_classification(n_samples=60, n_features=5, random_state=0)
    clf = AdaRegClassifier(lr=1e30, optimizer=torch.optim.SGD, max_epochs=3, random_state=0,
                           **params)
    with pytest.raises(TrainingDivergedError, match="NaN or infinite"):
        clf.fit(X * 1e15, y)
    assert not [k for k in vars(clf) if k.endswith("_") and not k.startswith("__")]
    with pytest.raises(NotFittedError):
        clf.predict(X)


def test_classifier_net_with_cross_entropy():
    X, y = make_classification(n_samples=80, n_features=5, random_state=0)
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 2))
    net = AdaRegNeuralNetClassifier(module, criterion=nn.CrossEntropyLoss, max_epochs=50,
                                    optimizer=torch.optim.Adam, lr=0.01, train_split=None,
                                    verbose=0)
    net.fit(X.astype(np.float32), y.astype(np.int64))
    assert (net.predict(X.astype(np.float32)) == y).mean() > 0.8
    assert net.priors_.names == ["2.weight"]
    np.testing.assert_allclose(net.predict_proba(X.astype(np.float32)).sum(axis=1), 1,
                               rtol=1e-5)


class Shrink(Callback):
    """Scales the last layer down at every epoch: a collapse, without waiting for one."""

    def __init__(self, factor):
        self.factor = factor

    def on_epoch_begin(self, net, **kwargs):
        with torch.no_grad():
            net.module_[2].weight.mul_(self.factor)


def shrinking_net(factor, **params):
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(5, 32), nn.ReLU(), nn.Linear(32, 3))
    # lr=0: only the callback moves the weights
    return AdaRegNeuralNet(module, nn.MSELoss, lr=0.0, max_epochs=12, cov_update_every=2,
                           train_split=None, verbose=0, callbacks=[Shrink(factor)], **params)


def test_a_collapsing_layer_is_warned_about_once():
    net = shrinking_net(0.5, u=1e-3, v=1e3, precision_scale="learned")
    with pytest.warns(CollapseWarning, match=r"collapsing '2.weight'.*row precision.*v=1000"
                      ) as record:
        net.fit(*regression_data())
    assert len([w for w in record if w.category is CollapseWarning]) == 1


@pytest.mark.parametrize("factor, params", [
    (0.5, {"u": 1e-3, "v": 1e3}),  # the default unit-mean precisions cannot pin at v
    (0.7, {"u": 1e-3, "v": 1e9, "precision_scale": "learned"}),  # shrinks, not yet pinned
    (1.0, {"u": 1.0, "v": 1.0, "precision_scale": "learned"}),  # pinned, not shrinking
])
def test_healthy_fits_are_not_warned_about(factor, params):
    net = shrinking_net(factor, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CollapseWarning)
        net.fit(*regression_data())


@pytest.mark.parametrize("conv", [False, True])
@pytest.mark.parametrize("layers", ["all", ["2.weight"]])
@pytest.mark.parametrize("reg_lambda", [0.3, "evidence"])
def test_penalty_gradient_after_backward_is_autograd_through_the_penalty(reg_lambda, layers,
                                                                         conv):
    # train_step_single adds 2 c Omega_r W Omega_c after backward(); get_loss's
    # autograd path (used by nets whose own train_step_single comes first) must agree,
    # for a convolution's kernel (a matrix of its rows) too.
    torch.manual_seed(0)
    if conv:
        module = nn.Sequential(nn.Conv2d(1, 4, 2), nn.Flatten(), nn.Linear(16, 3))
        X = torch.randn(32, 1, 3, 3)
    else:
        module = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3))
        X = torch.randn(32, 5)
    y = torch.randn(32, 3)
    net = AdaRegNeuralNet(module, nn.MSELoss, reg_lambda=reg_lambda, adareg_layers=layers,
                          train_split=None, verbose=0, max_epochs=1)
    net.fit(X, y)  # precisions away from the identity, strengths learned for "evidence"
    net.priors_.update(module)
    if reg_lambda == "evidence":
        net.priors_.set_strengths({"0.weight": 0.7, "2.weight": 0.02}
                                  if layers == "all" else {"2.weight": 0.02})
    module.zero_grad()
    step = net.train_step_single((X, y))
    fast = [p.grad.clone() for p in module.parameters()]
    module.zero_grad()
    loss = net.get_loss(net.infer(X), y, X=X, training=True)
    loss.backward()
    for got, expected in zip(fast, [p.grad for p in module.parameters()], strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-7)
    assert float(step["loss"]) == pytest.approx(float(loss), rel=1e-6)
    # and the penalty is really in it
    module.zero_grad()
    nn.MSELoss()(net.infer(X), y).backward()
    assert not torch.allclose(module[2].weight.grad, fast[2])


class CountingSGD(torch.optim.SGD):
    """An optimizer with its own zero_grad: the net must call it."""

    calls = 0

    def zero_grad(self, set_to_none=True):
        CountingSGD.calls += 1
        super().zero_grad(set_to_none)


def test_gradients_are_cleared_as_torchs_zero_grad_clears_them(monkeypatch):
    # The mixin sets the gradients to None itself for torch's own zero_grad; a fit
    # through skorch's call (optimizer.zero_grad()) is the same to the last bit.
    from skorch import NeuralNet

    from sk_adareg.net import AdaRegMixin

    def fitted(**params):
        torch.manual_seed(0)
        module = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3))
        net = AdaRegNeuralNet(module, nn.MSELoss, reg_lambda=0.3, adareg_layers="all",
                              train_split=None, verbose=0, max_epochs=3, batch_size=16,
                              **params)
        return net.fit(*regression_data())

    ours = fitted()  # skorch's default optimizer, SGD
    for p in ours.module_.parameters():
        p.grad = torch.ones_like(p)
    ours._zero_grad_optimizer()
    assert [p.grad for p in ours.module_.parameters()] == [None] * 4
    with monkeypatch.context() as patch:
        patch.setattr(AdaRegMixin, "_zero_grad_optimizer", NeuralNet._zero_grad_optimizer)
        theirs = fitted()
    for a, b in zip(ours.module_.parameters(), theirs.module_.parameters(), strict=True):
        assert torch.equal(a, b)
    # set_to_none=False zeroes them, through torch
    for p in ours.module_.parameters():
        p.grad = torch.ones_like(p)
    ours._zero_grad_optimizer(set_to_none=False)
    assert all(torch.equal(p.grad, torch.zeros_like(p)) for p in ours.module_.parameters())
    # an optimizer with a zero_grad of its own gets it called, once per step
    CountingSGD.calls = 0
    counted = fitted(optimizer=CountingSGD)
    assert CountingSGD.calls == 3 * 4  # 3 epochs of 64 rows in batches of 16
    for a, b in zip(ours.module_.parameters(), counted.module_.parameters(), strict=True):
        assert torch.equal(a, b)


def test_the_fits_own_state_is_not_among_the_parameters():
    # skorch lists every __dict__ entry not ending in "_" as a parameter; the state the
    # mixin keeps there during a fit (listeners, step plans) is not one.
    from sklearn.base import clone

    from sk_adareg.net import _FIT_STATE

    X, y = regression_data()
    net = AdaRegNeuralNet(nn.Linear(5, 3), nn.MSELoss, reg_lambda=0.1, max_epochs=2,
                          train_split=None, verbose=0).fit(X, y)
    assert _FIT_STATE <= set(vars(net))  # the fit kept them
    assert not _FIT_STATE & set(net.get_params())
    assert net.get_params()["reg_lambda"] == 0.1
    clone(net).fit(X, y)
