"""Adam's fused step, called without ``Optimizer.step``'s per-call bookkeeping.

For a small network on a CPU, ``torch.optim.Adam(fused=True).step()`` costs
about three times its two kernels: the profiler record and hook loop of
``Optimizer.step``'s wrapper, the grad-mode decorator, ``_init_group``'s
per-parameter checks and the grouping of the tensors by device and dtype
(about 45 µs against 15 µs on the (50, 100, 7) network of
the user guide's Speed section, a tenth of its training step). :func:`adam_plan`
recognizes an optimizer whose step is torch's fused Adam (or AdamW) with
nothing that the direct call would skip (hooks, a step set on the instance
other than a learning-rate scheduler's wrapper, a gradient scaler, AMSGrad,
capturable or differentiable mode, tensor hyperparameters, parameters of
more than one device or dtype), and :class:`FusedAdamStep` calls the same
two kernels with the same arguments: the parameters and the optimizer's
state are the same to the last bit (``tests/test_fast_optim.py``). The
optimizer's state is read from ``optimizer.state`` at every step, so
``state_dict()``, ``load_state_dict()`` and learning-rate schedules work
as before; a step before the state exists, or with a sparse gradient, is
``optimizer.step()``'s.
"""

# SPDX-License-Identifier: BSD-3-Clause

import torch
from torch.optim import optimizer as _optimizer

__all__ = ["FusedAdamStep", "adam_plan"]

_ADAMS = (torch.optim.Adam, torch.optim.AdamW)
_GLOBAL_HOOKS = ("_global_optimizer_pre_hooks", "_global_optimizer_post_hooks")
_HOOKS = ("_optimizer_step_pre_hooks", "_optimizer_step_post_hooks")


def adam_plan(optimizer):
    """The direct fused step for ``optimizer``, or None where it would not be torch's.

    Parameters
    ----------
    optimizer : torch.optim.Optimizer

    Returns
    -------
    step : FusedAdamStep or None
    """
    # AdamW's step is Adam's (decoupled_weight_decay) since torch 2.6; before, it has its own.
    if type(optimizer) not in _ADAMS or type(optimizer).step is not torch.optim.Adam.step:
        return None
    if any(getattr(_optimizer, name, None) for name in _GLOBAL_HOOKS) or any(
            getattr(optimizer, name, None) for name in _HOOKS):
        return None
    # A step set on the instance replaces the class's: only torch's LR schedulers' wrapper,
    # which records the call and then runs the class's step, is the same step.
    own = vars(optimizer).get("step")
    if own is not None and not (getattr(own, "_wrapped_by_lr_sched", False) and getattr(
            own, "__wrapped__", None) is torch.optim.Adam.step):
        return None
    # Set by torch's GradScaler: the kernel would unscale and skip steps.
    if getattr(optimizer, "grad_scale", None) is not None or getattr(
            optimizer, "found_inf", None) is not None:
        return None
    tensors = set()
    for group in optimizer.param_groups:
        if not group.get("fused") or group["amsgrad"] or group["capturable"] or group[
                "differentiable"] or "decoupled_weight_decay" not in group:
            return None
        if any(isinstance(group[key], torch.Tensor) for key in ("eps", "weight_decay")) or any(
                isinstance(beta, torch.Tensor) for beta in group["betas"]):
            return None
        tensors.update((p.device, p.dtype) for p in group["params"])
    # One device and dtype: the one group that Adam's grouping makes.
    return FusedAdamStep(optimizer) if len(tensors) == 1 else None


class FusedAdamStep:
    """``optimizer.step()`` of a fused Adam or AdamW, as its two kernels.

    Parameters
    ----------
    optimizer : torch.optim.Adam or torch.optim.AdamW
        With ``fused=True``, as :func:`adam_plan` checks.
    """

    def __init__(self, optimizer):
        self.optimizer = optimizer
        self._own_step = vars(optimizer).get("step")  # None, or an LR scheduler's wrapper

    def __call__(self):
        """One step from the parameters' ``.grad``, as ``optimizer.step()`` takes it."""
        optimizer, state = self.optimizer, self.optimizer.state
        if vars(optimizer).get("step") is not self._own_step:  # set since the plan was made
            optimizer.step()
            return
        calls = []
        for group in optimizer.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            states = [state.get(p) for p in params]
            # Adam initializes its state, or raises for a sparse gradient.
            if isinstance(group["lr"], torch.Tensor) or not all(states) or any(
                    p.grad.is_sparse for p in params):
                optimizer.step()
                return
            calls.append((group, params, states))
        with torch.no_grad():
            for group, params, states in calls:
                if not params:
                    continue
                steps = [s["step"] for s in states]
                torch._foreach_add_(steps, 1)
                kernel = (torch._fused_adamw_ if group["decoupled_weight_decay"]
                          else torch._fused_adam_)
                beta1, beta2 = group["betas"]
                kernel(params, [p.grad for p in params], [s["exp_avg"] for s in states],
                       [s["exp_avg_sq"] for s in states], [], steps, amsgrad=False,
                       lr=group["lr"], beta1=beta1, beta2=beta2,
                       weight_decay=group["weight_decay"], eps=group["eps"],
                       maximize=group["maximize"], grad_scale=None, found_inf=None)
        if self._own_step is not None:
            optimizer._opt_called = True  # what the LR scheduler's wrapper records
