"""The speed engine behind its switch: the same fit to the last bit with it off.

``sk_adareg.config_context(fast_engine=False)`` trains through torch's DataLoader,
autograd, ``Optimizer.step()`` and skorch's own epoch loop; the engine must give
exactly what they give. The private torch and skorch names it needs are listed in
:mod:`sk_adareg._private_api`; without them it turns itself off.
"""

import math

import numpy as np
import pytest
import scipy.sparse
import torch
from skorch.callbacks import Callback
from torch import nn

import sk_adareg
from sk_adareg import AdaRegClassifier, AdaRegMultiTaskRegressor, _private_api
from sk_adareg._engine import _epoch
from sk_adareg._kfac import _padding
from sk_adareg.net import AdaRegNeuralNetRegressor
from sk_adareg.prior import _cached_on


def _data(kind, n=70, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    if kind == "classifier":
        return X, (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)
    return X, np.column_stack([X[:, 0] - X[:, 1], np.sin(X[:, 2]), X[:, 3] ** 2])


def _fitted_state(est):
    return {
        **{name: p.detach().clone() for name, p in est.net_.module_.named_parameters()},
        **{f"row {k}": torch.as_tensor(v) for k, v in est.row_precisions_.items()},
        **{f"column {k}": torch.as_tensor(v) for k, v in est.column_precisions_.items()},
        "train_loss": torch.tensor(est.history_[:, "train_loss"]),
        "train_data_loss": torch.tensor(est.history_[:, "train_data_loss"]),
    }


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


CASES = [
    (AdaRegClassifier, {"reg_lambda": "evidence"}, {}),
    (AdaRegClassifier, {"reg_lambda": "auto", "class_weight": "balanced", "max_epochs": 10,
                        "cv": 2}, {}),
    (AdaRegMultiTaskRegressor, {"reg_lambda": 1e-2}, {}),
    (AdaRegMultiTaskRegressor, {"reg_lambda": "evidence", "adareg_layers": "all"},
     {"sample_weight": True}),
    (AdaRegMultiTaskRegressor, {"reg_lambda": "auto", "max_epochs": 10, "cv": 2}, {}),
    (AdaRegMultiTaskRegressor, {"reg_lambda": "loo", "hidden_layer_sizes": (8, 6),
                                "validation_fraction": 0.2}, {}),
    (AdaRegMultiTaskRegressor, {"reg_lambda": 0.0}, {"sparse": True}),
]


@pytest.mark.parametrize(("Estimator", "params", "options"), CASES)
def test_the_switch_turns_the_engine_off_and_the_fit_is_the_same_to_the_last_bit(
        Estimator, params, options, monkeypatch):
    X, y = _data("classifier" if Estimator is AdaRegClassifier else "regressor")
    if options.get("sparse"):
        X = scipy.sparse.csr_matrix(np.where(np.abs(X) > 0.5, X, 0.0))
    fit_params = ({"sample_weight": np.random.default_rng(1).integers(0, 3, X.shape[0])}
                  if options.get("sample_weight") else {})
    kwargs = {"hidden_layer_sizes": (12,), "max_epochs": 8, "batch_size": 16,
              "cov_update_every": 3, "random_state": 0, **params}
    engine_epochs = []
    run = _epoch.EngineMixin.run_single_epoch

    def counted(self, iterator, training, *args, **kw):
        if training:
            engine_epochs.append(self._quiet_batch_listeners(training, iterator) is not None)
        return run(self, iterator, training, *args, **kw)

    monkeypatch.setattr(_epoch.EngineMixin, "run_single_epoch", counted)
    fast = Estimator(**kwargs).fit(X, y, **fit_params)
    epochs = kwargs["max_epochs"]
    if fast.cv_scores_ is not None:  # reg_lambda="auto": its candidates on 2 folds' fits,
        candidates = 3 if Estimator is AdaRegClassifier else 2
        assert [len(v) for v in fast.cv_scores_.values()] == [2] * candidates
        epochs += candidates * 2 * math.ceil(0.15 * kwargs["max_epochs"])  # of 15 %
    assert engine_epochs == [True] * epochs  # the engine's loop ran every epoch
    engine_epochs.clear()
    with sk_adareg.config_context(fast_engine=False):
        plain = Estimator(**kwargs).fit(X, y, **fit_params)
    assert engine_epochs == [False] * epochs  # skorch's loop ran every epoch
    assert sk_adareg.get_config()["fast_engine"]  # restored after the block
    _assert_same(_fitted_state(fast), _fitted_state(plain))
    np.testing.assert_array_equal(fast.predict(X), plain.predict(X))
    assert fast.strength_method_ == plain.strength_method_
    if fast.cv_scores_ is not None:  # the folds' fits are the same to the last bit too
        for method, scores in fast.cv_scores_.items():
            np.testing.assert_array_equal(scores, plain.cv_scores_[method])


def test_with_the_engine_off_the_batches_come_from_torchs_dataloader():
    X, y = _data("regressor")
    with sk_adareg.config_context(fast_engine=False):
        est = AdaRegMultiTaskRegressor(max_epochs=1, random_state=0).fit(X, y)
        dataset = est.net_.get_dataset(X.astype(np.float32), y.astype(np.float32))
        loader = est.net_.get_iterator(dataset, training=True)
    assert isinstance(loader, torch.utils.data.DataLoader)
    loader = est.net_.get_iterator(dataset, training=True)
    assert not isinstance(loader, torch.utils.data.DataLoader)


class _FailOnce(Callback):
    """Raises at the end of the first epoch of the first fit: skorch skips on_train_end."""

    def __init__(self):
        self.failed = False

    def on_epoch_end(self, net, **kwargs):
        if not self.failed:
            self.failed = True
            raise RuntimeError("interrupted")


class _Small(nn.Sequential):
    def __init__(self):
        super().__init__(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3))


class _StateAtStart(Callback):
    """The engine's per-fit state that the callbacks see as a fit begins."""

    def on_train_begin(self, net, **kwargs):
        self.state_ = {name: net.__dict__.get(name) for name in _epoch.FIT_STATE}


def test_a_failed_fit_leaves_nothing_of_the_engine_to_the_next_one():
    X, y = _data("regressor")
    X, y = X.astype(np.float32), y.astype(np.float32)

    def net(*callbacks):  # a module class: each fit builds a new module
        return AdaRegNeuralNetRegressor(_Small, max_epochs=3, batch_size=16,
                                        callbacks=list(callbacks), verbose=0)

    start = _StateAtStart()
    interrupted = net(_FailOnce(), start)
    with pytest.raises(RuntimeError, match="interrupted"):
        interrupted.fit(X, y)
    left = {k for k, v in interrupted.__dict__.items() if k in _epoch.FIT_STATE and v}
    assert {"_batch_listeners", "_mode_modules", "_optimizer_steps"} <= left
    with sk_adareg.config_context(fast_engine=False):
        torch.manual_seed(1)
        interrupted.fit(X, y)  # a new module, trained by skorch's loop
        torch.manual_seed(1)
        fresh = net().fit(X, y)
    assert start.state_ == dict.fromkeys(_epoch.FIT_STATE) | {"_engine_on": False}
    for (name, a), b in zip(interrupted.module_.named_parameters(),
                            fresh.module_.parameters(), strict=True):
        assert torch.equal(a, b), name


def test_the_engine_steps_aside_where_a_private_name_is_missing(monkeypatch):
    X, y = _data("classifier")
    kwargs = {"hidden_layer_sizes": (12,), "max_epochs": 4, "random_state": 0}
    reference = AdaRegClassifier(**kwargs).fit(X, y)
    monkeypatch.setattr(_private_api, "engine_available", lambda: False)
    monkeypatch.setattr(_epoch, "engine_available", lambda: False)
    plans = []
    monkeypatch.setattr(_epoch, "step_plan", lambda *a: plans.append(a))
    est = AdaRegClassifier(**kwargs).fit(X, y)
    assert plans == []  # the engine planned nothing
    _assert_same(_fitted_state(reference), _fitted_state(est))


def test_every_private_name_the_package_uses_is_here():
    missing = _private_api.missing()
    assert not missing, (
        f"This torch {torch.__version__} or skorch lacks private names sk-adareg uses: "
        f"{missing}. See sk_adareg/_private_api.py for where each is used and its fallback.")
    assert _private_api.engine_available()


def test_missing_names_are_named(monkeypatch):
    registry = {"torch.no_such_kernel_": (lambda: torch.no_such_kernel_, "here", "there"),
                "torch.ops.aten.no_such_op": (
                    lambda: torch.ops.aten.no_such_op, "here", "there"),
                "torch.zeros": (lambda: torch.zeros, "here", "there")}
    assert _private_api.missing(registry) == ["torch.no_such_kernel_",
                                              "torch.ops.aten.no_such_op"]


@pytest.mark.parametrize("kwargs", [
    {"padding": 0}, {"padding": 1}, {"padding": (2, 1)}, {"padding": "same"},
    {"padding": "same", "dilation": (2, 1), "kernel_size": (3, 4)}, {"padding": "valid"}])
def test_the_convolution_padding_without_torchs_private_attribute(kwargs):
    layer = nn.Conv2d(2, 3, **{"kernel_size": 3, **kwargs})
    expected = list(layer._reversed_padding_repeated_twice)
    del layer._reversed_padding_repeated_twice
    assert list(_padding(layer)) == expected


def test_the_cast_cache_recomputes_without_a_version_counter():
    class Owner:
        pass

    class Buffer:  # a tensor-like without torch's private version counter
        def data_ptr(self):
            return 0

    owner, buffers, calls = Owner(), [Buffer()], []
    for _ in range(2):
        _cached_on(owner, "slot", buffers, lambda b: calls.append(1))
    assert len(calls) == 2
    tensors = [torch.zeros(2)]
    for _ in range(2):
        _cached_on(owner, "tensor", tensors, lambda b: calls.append(1))
    assert len(calls) == 3  # with the counter, once


def test_set_config_checks_its_value():
    with pytest.raises(TypeError, match="fast_engine must be a bool"):
        sk_adareg.set_config(fast_engine="no")
    assert sk_adareg.get_config() == {"fast_engine": True}
