"""The training step of the default MLP with its backward pass written out.

For the small networks this package is for, a training step on a CPU costs
the per-operation overhead of autograd (recording the graph, then running
it), not arithmetic: on a (50, 100, 7) network at batch 64, forward and
backward through autograd take about 1.5 times as long as the same
operations called directly. :func:`step_plan` recognizes the case where the
backward pass is short to write, the estimators' :class:`~sk_adareg._estimators._mlp.MLP`
of ``Linear`` and ``ReLU`` layers under ``CrossEntropyLoss``, ``MSELoss`` or
:class:`~sk_adareg.net.TargetWeightedMSELoss`, and
:meth:`FastStep.__call__` runs that step with the kernels that autograd's
backward calls, in its order and memory layouts: the gradients are the
same to the last bit (``tests/test_fast_step.py`` checks it). Anything
else (other modules or criteria, hooks, frozen weights, dropout, batch
norm, autocast, inputs of more than two dimensions) goes through autograd as
before. Batches with sample weights take it too, with the weighted mean of
``AdaRegMixin.get_loss``.
"""

# SPDX-License-Identifier: BSD-3-Clause

import torch
from torch import nn
from torch.nn.modules import module as _module

from .._estimators._mlp import MLP
from .._losses import TargetWeightedMSELoss

__all__ = ["FastStep", "step_plan"]

_aten = torch.ops.aten
# torch's global module hooks; the by-hand step would skip them.
_GLOBAL_HOOKS = ("_global_forward_hooks", "_global_forward_pre_hooks",
                 "_global_backward_hooks", "_global_backward_pre_hooks")
_MODULE_HOOKS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks",
                 "_backward_pre_hooks")


def _hooked(module):
    """Whether ``module`` or a parameter of it has a hook that a step without autograd skips."""
    for sub in module.modules():
        if any(getattr(sub, name, None) for name in _MODULE_HOOKS):
            return True
    return any(p._backward_hooks or getattr(p, "_post_accumulate_grad_hooks", None)
               for p in module.parameters())


def _criterion_kind(criterion):
    """``"cross_entropy"``, ``"mse"``, ``"weighted_mse"``, or None if not supported."""
    if _hooked(criterion):
        return None
    if type(criterion) is nn.CrossEntropyLoss:
        plain = (criterion.weight is None and criterion.label_smoothing == 0.0
                 and criterion.reduction == "mean")
        return "cross_entropy" if plain else None
    if type(criterion) is nn.MSELoss:
        return "mse" if criterion.reduction == "mean" else None
    if type(criterion) is TargetWeightedMSELoss:
        return "weighted_mse" if criterion.reduction == "mean" else None
    return None


def step_plan(module, criterion):
    """The by-hand training step for ``module`` and ``criterion``, or None if it does not apply.

    Parameters
    ----------
    module : torch.nn.Module
        The network (not a data-parallel or compiled wrapper).
    criterion : torch.nn.Module
        The loss.

    Returns
    -------
    step : FastStep or None
    """
    if type(module) is not MLP or _hooked(module):
        return None
    if any(getattr(_module, name, None) for name in _GLOBAL_HOOKS):
        return None
    kind = _criterion_kind(criterion)
    blocks = list(module.hidden)
    # Linear, ReLU, Linear, ReLU, ...: no batch norm, no dropout.
    if kind is None or len(blocks) % 2 or any(
            type(layer) is not (nn.Linear if k % 2 == 0 else nn.ReLU)
            for k, layer in enumerate(blocks)):
        return None
    linears = [*blocks[0::2], module.output]
    if any(layer.bias is None for layer in linears):
        return None
    if not all(p.requires_grad for p in module.parameters()):
        return None
    return FastStep(linears, criterion, kind)


class FastStep:
    """One training step of an MLP: forward, loss and the gradients, without autograd.

    Parameters
    ----------
    linears : list of torch.nn.Linear
        The layers in order, a ReLU between each two.
    criterion : torch.nn.Module
        The loss, of the kind ``kind``.
    kind : {"cross_entropy", "mse", "weighted_mse"}
    """

    def __init__(self, linears, criterion, kind):
        self.linears, self.criterion, self.kind = linears, criterion, kind

    def applies(self, X, y, sample_weight=None):
        """Whether the batch ``(X, y)`` (with ``sample_weight``) can take this step."""
        weight = self.linears[0].weight
        if not (isinstance(X, torch.Tensor) and isinstance(y, torch.Tensor)
                and X.dim() == 2 and torch.is_grad_enabled()
                and not _autocast(weight.device.type)):
            return False
        if sample_weight is not None and not (
                isinstance(sample_weight, torch.Tensor) and sample_weight.shape == X.shape[:1]):
            return False
        dtype = weight.dtype
        if X.dtype != dtype:
            return False
        if self.kind == "cross_entropy":
            return y.dim() == 1 and y.dtype == torch.long
        return y.dtype == dtype and y.shape == (X.shape[0], self.linears[-1].out_features)

    @torch.no_grad()
    def __call__(self, X, y, sample_weight=None):
        """Forward and backward on one batch; the gradients are added to the parameters' ``.grad``.

        Parameters
        ----------
        X : torch.Tensor of shape (batch, n_features)
        y : torch.Tensor
            Class indices (cross-entropy) or targets of the outputs' shape.
        sample_weight : torch.Tensor of shape (batch,), default=None
            With weights, the loss is the mean of the samples' losses weighted
            by them and divided by their sum, as ``AdaRegMixin.get_loss``
            computes it.

        Returns
        -------
        loss : torch.Tensor
            The loss of the batch, a scalar without gradient.
        y_pred : torch.Tensor
            The network's outputs.
        """
        inputs, h = [], X
        for k, layer in enumerate(self.linears):
            inputs.append(h)
            # What F.linear computes for a 2-d input with a bias.
            h = torch.addmm(layer.bias, h, layer.weight.t())
            if k < len(self.linears) - 1:
                h = torch.relu(h)
        if sample_weight is None:
            loss, grad = self._loss_and_grad(h, y, None)
        else:
            loss, grad = self._weighted_loss_and_grad(h, y, sample_weight)
        for k in range(len(self.linears) - 1, -1, -1):
            layer = self.linears[k]
            # addmm's backward for a transposed (column-major) weight, then t()'s.
            _accumulate(layer.weight, grad.t().mm(inputs[k]))
            _accumulate(layer.bias, grad.sum(0))
            if k:
                grad = _aten.threshold_backward(grad.mm(layer.weight), inputs[k], 0)
        return loss, h

    def _loss_and_grad(self, out, y, grad_losses):
        """The loss and its gradient with respect to ``out``, as autograd computes them.

        With ``grad_losses`` None, the criterion's mean and its gradient; else
        the per-sample losses (``reduction="none"``) and the gradient of
        ``sum(grad_losses * losses)``.
        """
        reduction = 1 if grad_losses is None else 0  # torch's enum: 1 mean, 0 none
        one = (torch.ones((), dtype=out.dtype, device=out.device) if grad_losses is None
               else grad_losses)
        if self.kind == "cross_entropy":
            ignore = self.criterion.ignore_index
            log_p = torch.log_softmax(out, 1)
            loss, total = _aten.nll_loss_forward(log_p, y, None, reduction, ignore)
            grad = _aten.nll_loss_backward(one, log_p, y, None, reduction, ignore, total)
            return loss, _aten._log_softmax_backward_data(grad, log_p, 1, out.dtype)
        if self.kind == "mse":
            return (_aten.mse_loss(out, y, reduction),
                    _aten.mse_loss_backward(one, out, y, reduction))
        weights = self.criterion.target_weights
        diff = out - y
        losses = diff ** 2 * weights
        # mean's, mul's and pow's backward formulas, in autograd's order.
        if grad_losses is None:
            losses, grad = losses.mean(), one.expand(diff.shape) / diff.numel()
        else:
            grad = grad_losses
        return losses, grad * weights * (2.0 * diff.pow(1.0))

    def _weighted_loss_and_grad(self, out, y, sample_weight):
        """``AdaRegMixin._weighted_loss`` and its gradient with respect to ``out``."""
        n = out.shape[0]
        weights = sample_weight.to(out.dtype)
        total = weights.sum()
        denominator = torch.where(total > 0, total, 1.0)
        # The backward of sum(weights * losses) / denominator down to the losses, each
        # formula as autograd's: div's, sum's, mul's, then mean(dim=1)'s.
        per_row = torch.ones((), dtype=out.dtype, device=out.device) / denominator
        per_row = per_row.expand(n) * weights
        width = 1 if self.kind == "cross_entropy" else out.shape[1]
        grad_losses = per_row.unsqueeze(1).expand(n, width) / width
        if self.kind == "cross_entropy":
            grad_losses = grad_losses.reshape(n)
        losses, grad = self._loss_and_grad(out, y, grad_losses)
        losses = losses.reshape(n, -1).mean(dim=1)
        return (weights * losses).sum() / denominator, grad


def _autocast(device_type):
    """Whether autocast is on for ``device_type`` (its kernels would differ from these)."""
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4 takes no device type
        return torch.is_autocast_enabled() or torch.is_autocast_cpu_enabled()


def _accumulate(parameter, grad):
    """What autograd's gradient accumulation does: set ``.grad``, or add to it."""
    if parameter.grad is None:
        parameter.grad = grad
    else:
        parameter.grad.add_(grad)
