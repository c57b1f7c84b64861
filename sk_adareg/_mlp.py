"""The default network of the estimators: a multilayer perceptron."""

# SPDX-License-Identifier: BSD-3-Clause

from torch import nn

__all__ = ["MLP"]


class MLP(nn.Module):
    """Fully connected ReLU network with optional batch norm and dropout.

    Each hidden block is ``Linear -> [BatchNorm1d] -> ReLU -> [Dropout]``; the
    last layer, ``output``, is linear, so it returns logits (classification)
    or values (regression). ``hidden`` maps the input to the penultimate
    activations, where DeCov acts.

    Parameters
    ----------
    n_features : int
        Input size.
    n_outputs : int
        Output size (classes or tasks).
    hidden_layer_sizes : tuple of int, default=(100,)
        Width of each hidden layer; ``()`` gives a linear model.
    dropout : float, default=0.0
        Dropout probability after each hidden activation.
    batch_norm : bool, default=False
        Whether to add batch normalization before each activation.

    Examples
    --------
    >>> import torch
    >>> from sk_adareg._mlp import MLP
    >>> MLP(21, 7, (256, 100))(torch.zeros(2, 21)).shape
    torch.Size([2, 7])
    """

    def __init__(self, n_features, n_outputs, hidden_layer_sizes=(100,), dropout=0.0,
                 batch_norm=False):
        super().__init__()
        layers = []
        width = n_features
        for size in hidden_layer_sizes:
            layers.append(nn.Linear(width, size))
            if batch_norm:
                layers.append(nn.BatchNorm1d(size))
            layers.append(nn.ReLU())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = size
        self.hidden = nn.Sequential(*layers)
        self.output = nn.Linear(width, n_outputs)

    def forward(self, X):
        return self.output(self.hidden(X))
