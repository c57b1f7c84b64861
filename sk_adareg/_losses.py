"""The training criteria the package defines, and the likelihood a criterion stands for."""

# SPDX-License-Identifier: BSD-3-Clause

import torch
from torch import nn

__all__ = ["TargetWeightedMSELoss", "likelihood_of"]


class TargetWeightedMSELoss(nn.Module):
    """Mean squared error with a weight per target: the Gaussian likelihood of learned strengths.

    With weights ``beta_k / mean(beta)`` (the noise precisions relative to
    their mean) it is, up to a constant factor, the negative log likelihood
    of targets with a noise variance each. The weights start at 1 (plain
    mean squared error) and are set when the strengths are learned
    (``reg_lambda="evidence"``, ``"loo"``, ``"auto"``).

    Parameters
    ----------
    n_outputs : int, default=1
        Number of targets.
    reduction : {"mean", "none"}, default="mean"
        ``"none"`` returns the weighted squared errors, of the shape of the
        targets (how sample weights are applied).

    Examples
    --------
    >>> import torch
    >>> from sk_adareg.net import TargetWeightedMSELoss
    >>> loss = TargetWeightedMSELoss(n_outputs=2)
    >>> float(loss(torch.ones(3, 2), torch.zeros(3, 2)))
    1.0
    """

    def __init__(self, n_outputs=1, reduction="mean"):
        super().__init__()
        self.reduction = reduction
        self.register_buffer("target_weights", torch.ones(int(n_outputs)))

    def forward(self, y_pred, y_true):
        losses = (y_pred - y_true) ** 2 * self.target_weights
        return losses if self.reduction == "none" else losses.mean()


def likelihood_of(criterion):
    """``"gaussian"`` or ``"categorical"``: the likelihood a net's criterion stands for.

    Parameters
    ----------
    criterion : torch.nn.Module
        The net's ``criterion_``.

    Returns
    -------
    likelihood : {"gaussian", "categorical"}

    Raises
    ------
    ValueError
        For a criterion that is neither a squared error nor a cross-entropy.
    """
    if isinstance(criterion, TargetWeightedMSELoss | nn.MSELoss):
        return "gaussian"
    if isinstance(criterion, nn.CrossEntropyLoss):
        return "categorical"
    raise ValueError(
        "Learned strengths and the predictive uncertainty need the criterion MSELoss "
        "(regression) or CrossEntropyLoss (classification), got "
        f"{type(criterion).__name__}.")
