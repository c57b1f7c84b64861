"""Every private name of torch and skorch that sk-adareg uses, and what happens without it.

A private name may change in any release. Each one is listed here once, with where it
is used and the fallback that keeps training correct if a new version removes it;
``tests/test_private_api.py`` fails, naming the missing ones, when this torch or skorch
lacks any. The speed engine (:mod:`sk_adareg._engine`) asks :func:`engine_available`
before it plans anything, and steps aside (torch's and skorch's stock path) when a name
it needs is gone.
"""

# SPDX-License-Identifier: BSD-3-Clause

import functools
import importlib

import skorch
import torch
from torch import nn

__all__ = ["ENGINE", "OTHER", "engine_available", "missing"]


def _linear():
    return nn.Linear(1, 1)


def _adam():
    return torch.optim.Adam([nn.Parameter(torch.zeros(1))])


def _module_attribute(path):
    """A probe: the attribute ``path`` (dotted) of a module, or of a class in one."""
    def probe():
        parts = path.split(".")
        for cut in range(len(parts) - 1, 0, -1):  # the longest importable module first
            try:
                value = importlib.import_module(".".join(parts[:cut]))
            except ImportError:
                continue
            for part in parts[cut:]:
                value = getattr(value, part)
            return value
        raise AttributeError(path)
    return probe


def _instance_attribute(make, name):
    """A probe: the attribute ``name`` of a fresh object from ``make()``."""
    return lambda: getattr(make(), name)


def _aten(name):
    return _module_attribute(f"torch.ops.aten.{name}")


# name -> (probe, where it is used, what happens without it)
_STEP = ("sk_adareg._engine._step: the training step without autograd",
         "the step goes through autograd")
_ADAM = ("sk_adareg._engine._adam: torch's fused Adam called directly",
         "optimizer.step()")
_EPOCH = ("sk_adareg._engine._epoch: the engine's overrides of skorch's epoch loop",
          "skorch's own methods run")

#: The private names the speed engine needs; without any of them it is off.
ENGINE = {
    "torch.ops.aten.threshold_backward": (_aten("threshold_backward"), *_STEP),
    "torch.ops.aten.mse_loss": (_aten("mse_loss"), *_STEP),
    "torch.ops.aten.mse_loss_backward": (_aten("mse_loss_backward"), *_STEP),
    "torch.ops.aten.nll_loss_forward": (_aten("nll_loss_forward"), *_STEP),
    "torch.ops.aten.nll_loss_backward": (_aten("nll_loss_backward"), *_STEP),
    "torch.ops.aten._log_softmax_backward_data": (
        _aten("_log_softmax_backward_data"), *_STEP),
    "torch.nn.modules.module._global_forward_hooks": (
        _module_attribute("torch.nn.modules.module._global_forward_hooks"), *_STEP),
    "torch.nn.modules.module._global_forward_pre_hooks": (
        _module_attribute("torch.nn.modules.module._global_forward_pre_hooks"), *_STEP),
    "torch.nn.modules.module._global_backward_hooks": (
        _module_attribute("torch.nn.modules.module._global_backward_hooks"), *_STEP),
    "torch.nn.modules.module._global_backward_pre_hooks": (
        _module_attribute("torch.nn.modules.module._global_backward_pre_hooks"), *_STEP),
    "torch.nn.Module._forward_hooks": (_instance_attribute(_linear, "_forward_hooks"), *_STEP),
    "torch.nn.Module._forward_pre_hooks": (
        _instance_attribute(_linear, "_forward_pre_hooks"), *_STEP),
    "torch.nn.Module._backward_hooks": (_instance_attribute(_linear, "_backward_hooks"), *_STEP),
    "torch.nn.Module._backward_pre_hooks": (
        _instance_attribute(_linear, "_backward_pre_hooks"), *_STEP),
    "torch.Tensor._backward_hooks": (
        _instance_attribute(lambda: nn.Parameter(torch.zeros(1)), "_backward_hooks"), *_STEP),
    "torch._fused_adam_": (_module_attribute("torch._fused_adam_"), *_ADAM),
    "torch._fused_adamw_": (_module_attribute("torch._fused_adamw_"), *_ADAM),
    "torch._foreach_add_": (_module_attribute("torch._foreach_add_"), *_ADAM),
    "torch.optim.optimizer._global_optimizer_pre_hooks": (
        _module_attribute("torch.optim.optimizer._global_optimizer_pre_hooks"), *_ADAM),
    "torch.optim.optimizer._global_optimizer_post_hooks": (
        _module_attribute("torch.optim.optimizer._global_optimizer_post_hooks"), *_ADAM),
    "torch.optim.Optimizer._optimizer_step_pre_hooks": (
        _instance_attribute(_adam, "_optimizer_step_pre_hooks"), *_ADAM),
    "torch.optim.Optimizer._optimizer_step_post_hooks": (
        _instance_attribute(_adam, "_optimizer_step_post_hooks"), *_ADAM),
    "torch.Tensor._base": (_instance_attribute(lambda: torch.zeros(1), "_base"), *_EPOCH),
    "skorch.NeuralNet._set_training": (
        _module_attribute("skorch.NeuralNet._set_training"), *_EPOCH),
    "skorch.NeuralNet._step_optimizer": (
        _module_attribute("skorch.NeuralNet._step_optimizer"), *_EPOCH),
    "skorch.NeuralNet._zero_grad_optimizer": (
        _module_attribute("skorch.NeuralNet._zero_grad_optimizer"), *_EPOCH),
    "skorch.NeuralNet._modules": (
        _instance_attribute(lambda: skorch.NeuralNet(_linear, nn.MSELoss), "_modules"),
        *_EPOCH),
    "skorch.NeuralNet._criteria": (
        _instance_attribute(lambda: skorch.NeuralNet(_linear, nn.MSELoss), "_criteria"),
        *_EPOCH),
    "skorch.NeuralNet._optimizers": (
        _instance_attribute(lambda: skorch.NeuralNet(_linear, nn.MSELoss), "_optimizers"),
        *_EPOCH),
}

#: The private names used outside the engine, each with a fallback of its own.
OTHER = {
    "torch.Tensor._version": (
        _instance_attribute(lambda: torch.zeros(1), "_version"),
        "sk_adareg.prior: caching the precisions cast to the weights' dtype",
        "the cast is recomputed at every batch"),
    "torch.nn.Module._buffers": (
        _instance_attribute(_linear, "_buffers"),
        "sk_adareg.prior: reading the precision buffers without __getattr__",
        "attribute access"),
    "torch.nn.Module._parameters": (
        _instance_attribute(_linear, "_parameters"),
        "sk_adareg.prior: looking up the regularized weights at every batch",
        "attribute access"),
    "torch.nn.Conv2d._reversed_padding_repeated_twice": (
        _instance_attribute(lambda: nn.Conv2d(1, 1, 1), "_reversed_padding_repeated_twice"),
        "sk_adareg._kfac: a convolution's padding for its input patches",
        "the padding computed from the layer's padding argument"),
}


def _present(entry):
    # The probes build small modules: the caller's random state must not move.
    with torch.random.fork_rng(devices=[]):
        try:
            entry[0]()
        except (AttributeError, RuntimeError):  # torch.ops raises RuntimeError for unknown ops
            return False
    return True


def missing(names=None):
    """The private names (of :data:`ENGINE` and :data:`OTHER`) this torch and skorch lack.

    Parameters
    ----------
    names : dict, default=None
        One of the registries; None checks both.

    Returns
    -------
    missing : list of str
    """
    registry = {**ENGINE, **OTHER} if names is None else names
    return [name for name, entry in registry.items() if not _present(entry)]


@functools.cache
def engine_available():
    """Whether every private name the speed engine needs is here (checked once)."""
    return not missing(ENGINE)
