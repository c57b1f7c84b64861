"""The MLP's training step without autograd: the same gradients, bit for bit, or autograd."""

import itertools

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback
from torch import nn

import sk_adareg._engine._epoch
from sk_adareg import AdaRegClassifier, AdaRegMultiTaskRegressor
from sk_adareg._data import WeightedTarget
from sk_adareg._engine._step import FastStep, step_plan
from sk_adareg._estimators._mlp import MLP
from sk_adareg._losses import TargetWeightedMSELoss
from sk_adareg.net import AdaRegNeuralNetRegressor


def criterion(kind, n_outputs):
    if kind == "cross_entropy":
        return nn.CrossEntropyLoss()
    if kind == "mse":
        return nn.MSELoss()
    loss = TargetWeightedMSELoss(n_outputs)
    loss.target_weights.copy_(torch.linspace(0.5, 2.0, n_outputs))
    return loss


def batch(kind, n_outputs, generator, rows=13):
    X = torch.randn(rows, 5, generator=generator)
    if kind == "cross_entropy":
        return X, torch.randint(0, n_outputs, (rows,), generator=generator)
    return X, torch.randn(rows, n_outputs, generator=generator)


DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs CUDA"))]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(("hidden", "kind", "n_outputs"), list(itertools.product(
    [(), (16,), (32, 8)], ["cross_entropy", "mse", "weighted_mse"], [1, 3])))
def test_steps_equal_autograd_to_the_last_bit(hidden, kind, n_outputs, device):
    n_outputs = max(n_outputs, 2) if kind == "cross_entropy" else n_outputs
    loss_fn = criterion(kind, n_outputs).to(device)
    torch.manual_seed(0)
    reference = MLP(5, n_outputs, hidden).to(device)
    fast = MLP(5, n_outputs, hidden).to(device)
    fast.load_state_dict(reference.state_dict())
    step = step_plan(fast, loss_fn)
    assert isinstance(step, FastStep)
    optimizers = [torch.optim.Adam(m.parameters(), lr=1e-2) for m in (reference, fast)]
    generator = torch.Generator().manual_seed(1)
    for _ in range(15):  # through Adam, so that a different gradient shows in the weights
        X, y = (t.to(device) for t in batch(kind, n_outputs, generator))
        for optimizer in optimizers:
            optimizer.zero_grad()
        out = reference(X)
        expected = loss_fn(out, y)
        expected.backward()
        assert step.applies(X, y)
        loss, y_pred = step(X, y)
        assert torch.equal(loss, expected.detach())
        assert torch.equal(y_pred, out.detach())
        for a, b in zip(reference.parameters(), fast.parameters(), strict=True):
            assert torch.equal(a.grad, b.grad)
        for optimizer in optimizers:
            optimizer.step()
    for a, b in zip(reference.parameters(), fast.parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("kind", ["cross_entropy", "mse", "weighted_mse"])
def test_weighted_batches_equal_the_nets_weighted_loss(kind):
    torch.manual_seed(0)
    reference, fast = MLP(5, 3, (16,)), MLP(5, 3, (16,))
    fast.load_state_dict(reference.state_dict())
    net = AdaRegNeuralNetRegressor(MLP, module__n_features=5, module__n_outputs=3,
                                   criterion=type(criterion(kind, 3))).initialize()
    net.criterion_ = loss_fn = criterion(kind, 3)
    step = step_plan(fast, loss_fn)
    generator = torch.Generator().manual_seed(3)
    weights = [torch.rand(13, generator=generator, dtype=torch.float64) * 3,
               torch.zeros(13, dtype=torch.float64)]  # a batch of zero weights adds nothing
    for sample_weight in weights:
        X, y = batch(kind, 3, generator)
        reference.zero_grad()
        fast.zero_grad()
        out = reference(X)
        expected = net._weighted_loss(out, WeightedTarget(y, sample_weight), X, True)
        expected.backward()
        assert step.applies(X, y, sample_weight)
        loss, _ = step(X, y, sample_weight)
        assert torch.equal(loss, expected.detach())
        for a, b in zip(reference.parameters(), fast.parameters(), strict=True):
            assert torch.equal(a.grad, b.grad)
    assert not step.applies(X, y, sample_weight[:5])


def test_gradients_add_to_existing_ones_as_autograd_accumulates():
    torch.manual_seed(0)
    reference, fast = MLP(5, 2, (8,)), MLP(5, 2, (8,))
    fast.load_state_dict(reference.state_dict())
    step = step_plan(fast, nn.MSELoss())
    generator = torch.Generator().manual_seed(2)
    for _ in range(2):  # the second batch adds to the first's gradients
        X, y = batch("mse", 2, generator)
        nn.MSELoss()(reference(X), y).backward()
        step(X, y)
    for a, b in zip(reference.parameters(), fast.parameters(), strict=True):
        assert torch.equal(a.grad, b.grad)


class Wrapped(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = MLP(5, 2)

    def forward(self, X):
        return self.inner(X)


def frozen():
    module = MLP(5, 2)
    module.output.bias.requires_grad_(False)
    return module


def hooked():
    module = MLP(5, 2)
    module.output.register_forward_hook(lambda *args: None)
    return module


def tensor_hooked():
    module = MLP(5, 2)
    module.output.weight.register_hook(lambda grad: grad)
    return module


@pytest.mark.parametrize(("make_module", "loss_fn"), [
    (lambda: MLP(5, 2, dropout=0.1), nn.MSELoss()),
    (lambda: MLP(5, 2, batch_norm=True), nn.MSELoss()),
    (Wrapped, nn.MSELoss()),
    (frozen, nn.MSELoss()),
    (hooked, nn.MSELoss()),
    (tensor_hooked, nn.MSELoss()),
    (lambda: MLP(5, 2), nn.L1Loss()),
    (lambda: MLP(5, 2), nn.MSELoss(reduction="sum")),
    (lambda: MLP(5, 2), nn.CrossEntropyLoss(weight=torch.ones(2))),
    (lambda: MLP(5, 2), nn.CrossEntropyLoss(label_smoothing=0.1)),
    (lambda: MLP(5, 2), TargetWeightedMSELoss(2, reduction="none")),
])
def test_anything_else_goes_through_autograd(make_module, loss_fn):
    assert step_plan(make_module(), loss_fn) is None


def test_global_module_hooks_go_through_autograd():
    handle = nn.modules.module.register_module_forward_hook(lambda *args: None)
    try:
        assert step_plan(MLP(5, 2), nn.MSELoss()) is None
    finally:
        handle.remove()
    assert step_plan(MLP(5, 2), nn.MSELoss()) is not None


def test_batches_it_cannot_take():
    step = step_plan(MLP(5, 2), nn.MSELoss())
    X, y = torch.randn(4, 5), torch.randn(4, 2)
    assert step.applies(X, y)
    assert not step.applies(X.double(), y)
    assert not step.applies(X, y[:, :1])  # would broadcast
    assert not step.applies(X.reshape(4, 5, 1), y)
    assert not step.applies(X, WeightedTarget(y, torch.ones(4)))  # the net unpacks it
    with torch.no_grad():
        assert not step.applies(X, y)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not step.applies(X, y)
    step = step_plan(MLP(5, 3), nn.CrossEntropyLoss())
    assert step.applies(X, torch.tensor([0, 2, 1, 0]))
    assert not step.applies(X, torch.randn(4, 3))  # class probabilities


@pytest.fixture
def count_steps(monkeypatch):
    calls = []
    original = FastStep.__call__

    def counted(self, X, y, sample_weight=None):
        calls.append(len(X))
        return original(self, X, y, sample_weight)

    monkeypatch.setattr(FastStep, "__call__", counted)
    return calls


@pytest.mark.parametrize(("Estimator", "params"), [
    (AdaRegClassifier, {"reg_lambda": "evidence"}),
    (AdaRegClassifier, {"reg_lambda": 0.0, "adareg_layers": "all"}),
    (AdaRegMultiTaskRegressor, {"reg_lambda": "evidence", "adareg_layers": "all"}),
    # (numbers of steps: no reg_lambda="auto", whose folds' fits take steps too)
    (AdaRegMultiTaskRegressor, {"hidden_layer_sizes": (8, 4), "reg_lambda": 3e-3,
                                "adareg_layers": "last"}),
    (AdaRegClassifier, {"reg_lambda": 3e-3, "class_weight": "balanced"}),  # sample weights
    (AdaRegMultiTaskRegressor, {"reg_lambda": "evidence", "sample_weight": True}),
])
def test_estimators_fit_the_same_weights_with_it(Estimator, params, count_steps,
                                                  monkeypatch):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)
    if Estimator is AdaRegMultiTaskRegressor:
        y = np.column_stack([X[:, 0] - X[:, 1], X[:, 2] ** 2])
    fit_params = {"sample_weight": rng.integers(0, 3, len(X))} if params.pop(
        "sample_weight", False) else {}
    kwargs = {"hidden_layer_sizes": (16,), "max_epochs": 12, "batch_size": 32,
              "cov_update_every": 4, "random_state": 0, **params}
    fast = Estimator(**kwargs).fit(X, y, **fit_params)
    assert count_steps == [32, 32, 26] * 12  # every training batch took it
    monkeypatch.setattr(sk_adareg._engine._epoch, "step_plan", lambda module, criterion: None)
    slow = Estimator(**kwargs).fit(X, y, **fit_params)
    assert len(count_steps) == 36
    for (name, a), b in zip(fast.net_.module_.named_parameters(),
                            slow.net_.module_.parameters(), strict=True):
        assert torch.equal(a, b), name
    np.testing.assert_array_equal(fast.row_precision_, slow.row_precision_)
    np.testing.assert_array_equal(fast.net_.history[:, "train_loss"],
                                  slow.net_.history[:, "train_loss"])


class ExtraLoss(AdaRegNeuralNetRegressor):
    def get_loss(self, y_pred, y_true, X=None, training=False):
        return super().get_loss(y_pred, y_true, X=X, training=training) + 1.0


@pytest.mark.parametrize(("net_class", "params"), [
    (ExtraLoss, {}),
    (AdaRegNeuralNetRegressor, {"decov_lambda": 0.1}),
])
def test_nets_that_need_get_loss_do_not_take_it(net_class, params, count_steps):
    X = np.random.default_rng(0).normal(size=(40, 5)).astype(np.float32)
    y = X[:, :2].copy()
    net = net_class(MLP, module__n_features=5, module__n_outputs=2, max_epochs=2,
                    batch_size=20, verbose=0, train_split=None, **params).fit(X, y)
    assert count_steps == []
    if net_class is ExtraLoss:  # the override is in the recorded loss
        assert net.history[-1, "train_loss"] > 1.0


class HookFromEpoch(Callback):
    """Registers a forward hook at the start of the second epoch."""

    def initialize(self):
        self.calls = []
        return self

    def on_epoch_begin(self, net, **kwargs):
        if len(net.history) == 2:
            net.module_.output.register_forward_hook(lambda *args: self.calls.append(1))


def test_a_hook_added_during_the_fit_is_honoured_from_that_epoch(count_steps):
    X = np.random.default_rng(0).normal(size=(40, 5)).astype(np.float32)
    hook = HookFromEpoch()
    AdaRegNeuralNetRegressor(MLP, module__n_features=5, module__n_outputs=2, max_epochs=3,
                             batch_size=20, verbose=0, train_split=None,
                             callbacks=[hook]).fit(X, X[:, :2].copy())
    assert count_steps == [20, 20]  # the first epoch only
    assert len(hook.calls) == 4  # the hook saw the batches of the next two epochs
