"""Adam's fused step called directly: the parameters and state of ``step()``, or ``step()``."""

import copy
import warnings

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback, LRScheduler
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook

import sk_adareg._engine._epoch
from sk_adareg import AdaRegClassifier, AdaRegMultiTaskRegressor
from sk_adareg._engine._adam import FusedAdamStep, adam_plan

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs CUDA"))]


def network(device="cpu"):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3)).to(device)


def two_groups(module, **kwargs):
    # Different hyperparameters per group; the output bias is left without a gradient.
    first, second = module[0], module[2]
    return [{"params": list(first.parameters()), "lr": 3e-2, **kwargs},
            {"params": list(second.parameters()), "lr": 1e-2, "eps": 1e-6}]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(("optimizer", "kwargs"), [
    (torch.optim.Adam, {}),
    (torch.optim.Adam, {"weight_decay": 0.1, "maximize": True, "betas": (0.8, 0.99)}),
    (torch.optim.AdamW, {"weight_decay": 0.1}),
])
def test_steps_equal_the_optimizers_to_the_last_bit(optimizer, kwargs, device):
    reference = network(device)
    direct = copy.deepcopy(reference)
    optimizers = [optimizer(two_groups(m, **kwargs), fused=True) for m in (reference, direct)]
    plan = adam_plan(optimizers[1])
    assert isinstance(plan, FusedAdamStep)
    generator = torch.Generator().manual_seed(1)
    for step in range(12):
        X = torch.randn(16, 5, generator=generator).to(device)
        for module, opt in zip((reference, direct), optimizers, strict=True):
            opt.zero_grad()
            module(X).square().mean().backward()
            module[2].bias.grad = None
        if step == 6:  # a schedule changes the learning rate between steps
            for opt in optimizers:
                opt.param_groups[0]["lr"] = 5e-3
        optimizers[0].step()
        plan()
        for a, b in zip(reference.parameters(), direct.parameters(), strict=True):
            assert torch.equal(a, b)
    states = [opt.state_dict()["state"] for opt in optimizers]
    assert states[0].keys() == states[1].keys() and len(states[0]) == 3  # not the bias
    for key, values in states[0].items():
        for name, value in values.items():
            assert torch.equal(value, states[1][key][name]), (key, name)


@pytest.fixture
def adam_steps(monkeypatch):
    """The calls of ``Adam.step``, counted."""
    calls = []
    original = torch.optim.Adam.step
    monkeypatch.setattr(torch.optim.Adam, "step",
                        lambda self, *a: calls.append(1) or original(self, *a))
    return calls


def planned_steps(n_steps, tensor_lr=False):
    """``n_steps`` direct steps of a fused Adam; after the first, maybe a tensor lr."""
    module = network()
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-2, fused=True)
    plan = adam_plan(optimizer)
    for _ in range(n_steps):
        optimizer.zero_grad()
        module(torch.ones(2, 5)).sum().backward()
        plan()
        if tensor_lr:
            optimizer.param_groups[0]["lr"] = torch.tensor(1e-2)
    return optimizer


def test_a_step_without_state_is_the_optimizers(adam_steps):
    optimizer = planned_steps(3)
    assert adam_steps == [1]  # the first step creates the state; the others are direct
    assert all(float(state["step"]) == 3 for state in optimizer.state.values())


def test_a_tensor_learning_rate_takes_the_optimizers_step(adam_steps):
    planned_steps(3, tensor_lr=True)
    assert adam_steps == [1, 1, 1]


def test_optimizers_it_does_not_take():
    module = network()
    params = list(module.parameters())

    class Subclass(torch.optim.Adam):
        def step(self, closure=None):
            return super().step(closure)

    assert adam_plan(torch.optim.Adam(params, fused=True)) is not None
    assert adam_plan(torch.optim.Adam(params)) is None  # not fused
    assert adam_plan(torch.optim.SGD(params, lr=0.1)) is None
    assert adam_plan(Subclass(params, fused=True)) is None
    assert adam_plan(torch.optim.Adam(params, amsgrad=True, fused=True)) is None
    betas = (torch.tensor(0.9), torch.tensor(0.999))
    assert adam_plan(torch.optim.Adam(params, betas=betas, fused=True)) is None
    mixed = [{"params": params[:2]}, {"params": [nn.Parameter(torch.zeros(2).double())]}]
    assert adam_plan(torch.optim.Adam(mixed, fused=True)) is None
    hooked = torch.optim.Adam(params, fused=True)
    handle = hooked.register_step_pre_hook(lambda *args: None)
    assert adam_plan(hooked) is None
    handle.remove()
    assert adam_plan(hooked) is not None
    handle = register_optimizer_step_post_hook(lambda *args: None)
    try:
        assert adam_plan(hooked) is None
    finally:
        handle.remove()
    hooked.grad_scale = torch.ones(())  # what GradScaler sets
    assert adam_plan(hooked) is None


@pytest.fixture
def count_direct(monkeypatch):
    calls = []
    original = FusedAdamStep.__call__
    monkeypatch.setattr(FusedAdamStep, "__call__",
                        lambda self: calls.append(1) or original(self))
    return calls


class StepHook(Callback):
    """Registers an optimizer step hook when training begins; counts its calls."""

    def initialize(self):
        self.calls = []
        return self

    def on_train_begin(self, net, **kwargs):
        net.optimizer_.register_step_post_hook(lambda *args: self.calls.append(1))


def data(task):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 4)).astype(np.float32)
    if task == "classifier":
        return X, (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)
    return X, np.column_stack([X[:, 0] - X[:, 1], X[:, 2] ** 2])


@pytest.mark.parametrize(("Estimator", "params"), [
    (AdaRegClassifier, {"reg_lambda": "evidence"}),
    (AdaRegMultiTaskRegressor, {"reg_lambda": "evidence", "adareg_layers": "all"}),
    # (numbers of steps: no reg_lambda="auto", whose folds' fits take steps too)
    (AdaRegMultiTaskRegressor, {"optimizer": torch.optim.AdamW, "weight_decay": 0.1,
                                "reg_lambda": 3e-3, "adareg_layers": "last"}),
    (AdaRegClassifier, {"reg_lambda": 3e-3, "callbacks": [("lr", LRScheduler(
        "StepLR", step_size=5, gamma=0.5, step_every="batch"))]}),
])
def test_estimators_fit_the_same_weights_with_it(Estimator, params, count_direct,
                                                  monkeypatch):
    X, y = data("classifier" if Estimator is AdaRegClassifier else "regressor")
    kwargs = {"hidden_layer_sizes": (16,), "max_epochs": 6, "batch_size": 32,
              "cov_update_every": 2, "random_state": 0, **params}
    direct = Estimator(**kwargs).fit(X, y)
    assert len(count_direct) == 3 * 6  # every training step took it
    monkeypatch.setattr(sk_adareg._engine._epoch, "adam_plan", lambda optimizer: None)
    reference = Estimator(**kwargs).fit(X, y)
    assert len(count_direct) == 18
    for (name, a), b in zip(direct.net_.module_.named_parameters(),
                            reference.net_.module_.parameters(), strict=True):
        assert torch.equal(a, b), name
    for a, b in zip(direct.net_.optimizer_.state.values(),
                    reference.net_.optimizer_.state.values(), strict=True):
        assert all(torch.equal(a[key], b[key]) for key in a)
    np.testing.assert_array_equal(direct.net_.history[:, "train_loss"],
                                  reference.net_.history[:, "train_loss"])


def test_a_step_hook_and_other_optimizers_get_the_optimizers_step(count_direct):
    X, y = data("regressor")
    hook = StepHook()
    AdaRegMultiTaskRegressor(hidden_layer_sizes=(8,), max_epochs=2, batch_size=45,
                             callbacks=[hook]).fit(X, y)
    assert count_direct == [] and len(hook.calls) == 4
    AdaRegMultiTaskRegressor(hidden_layer_sizes=(8,), max_epochs=2, batch_size=45,
                             optimizer=torch.optim.SGD).fit(X, y)
    assert count_direct == []


def test_a_learning_rate_scheduler_sees_the_direct_step():
    module = network()
    for p in module.parameters():
        p.grad = torch.ones_like(p)
    trained = torch.optim.Adam(module.parameters(), fused=True)
    trained.step()
    # A state loaded before the schedule starts (skorch's LoadInitState): no first step
    # through optimizer.step() tells the scheduler that the optimizer stepped.
    optimizer = torch.optim.Adam(module.parameters(), fused=True)
    optimizer.load_state_dict(trained.state_dict())
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1)
    plan = adam_plan(optimizer)
    assert plan is not None  # the scheduler's wrapper runs Adam's own step
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "lr_scheduler.step() before optimizer.step()"
        plan()
        scheduler.step()


def test_a_step_set_on_the_instance_is_called():
    module = network()
    optimizer = torch.optim.Adam(module.parameters(), fused=True)
    plan = adam_plan(optimizer)
    calls = []
    optimizer.step = lambda closure=None: calls.append(1)
    assert adam_plan(optimizer) is None
    plan()  # set after the plan was made
    assert calls == [1]
