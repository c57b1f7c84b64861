"""DeCov (Cogswell et al., ICLR 2016), the decorrelation penalty AdaReg is compared with.

DeCov penalises the off-diagonal covariance of a hidden layer's activations
over a batch: ``0.5 * (||C||_F^2 - ||diag(C)||_2^2)``.
"""

# SPDX-License-Identifier: BSD-3-Clause

import torch
from torch import nn

__all__ = ["InputRecorder", "decov_penalty", "last_linear"]


def decov_penalty(activations):
    """DeCov penalty of a batch of activations.

    Parameters
    ----------
    activations : torch.Tensor of shape (batch_size, n_units)
        Hidden activations; more dimensions are flattened after the first.

    Returns
    -------
    penalty : torch.Tensor
        ``0.5 * (||C||_F^2 - ||diag(C)||^2)`` with ``C`` the (biased) batch
        covariance of the units, differentiable.

    References
    ----------
    .. [1] M. Cogswell, F. Ahmed, R. Girshick, L. Zitnick and D. Batra,
       "Reducing Overfitting in Deep Networks by Decorrelating
       Representations", ICLR 2016.

    Examples
    --------
    >>> import torch
    >>> from sk_adareg.decov import decov_penalty
    >>> h = torch.tensor([[1.0, 1.0], [-1.0, -1.0]])  # two perfectly correlated units
    >>> decov_penalty(h)
    tensor(1.)
    """
    h = activations.flatten(1)
    centred = h - h.mean(dim=0, keepdim=True)
    cov = centred.T @ centred / h.shape[0]
    return 0.5 * ((cov**2).sum() - (torch.diagonal(cov) ** 2).sum())


def last_linear(module):
    """The last ``nn.Linear`` of ``module`` in registration order, or None."""
    linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
    return linears[-1] if linears else None


class InputRecorder:
    """Forward pre-hook that keeps the input of a layer during training.

    Registered on the last linear layer, it gives DeCov the penultimate
    activations of the batch without a second forward pass. It keeps nothing
    in evaluation mode or under ``torch.no_grad()``, and nothing is pickled.
    """

    def __init__(self):
        self.value = None

    def __call__(self, module, args):
        if module.training and torch.is_grad_enabled():
            self.value = args[0]

    def pop(self):
        """Return the recorded input and forget it."""
        value, self.value = self.value, None
        return value

    def __getstate__(self):
        return {"value": None}

    @classmethod
    def attach(cls, layer):
        """The recorder on ``layer``, registered if it has none yet."""
        # A private dict of torch's (sk_adareg._private_api); without it, a new recorder.
        for hook in getattr(layer, "_forward_pre_hooks", {}).values():
            if isinstance(hook, cls):
                return hook
        recorder = cls()
        layer.register_forward_pre_hook(recorder)
        return recorder
