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
    >>> from sk_adareg._estimators._mlp import MLP
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

    def axis_names(self, weight_name):
        """What the columns and rows of a linear weight of this network stand for.

        Parameters
        ----------
        weight_name : str
            Name of an ``nn.Linear`` weight of this network.

        Returns
        -------
        names : tuple of str
            ``(columns, rows)``: ``"input feature"`` or ``"unit of hidden layer
            k"`` (hidden layers count from 1), and ``"output"`` for the rows of
            the last layer.

        Examples
        --------
        >>> from sk_adareg._estimators._mlp import MLP
        >>> MLP(21, 7, (256, 100)).axis_names("hidden.2.weight")
        ('unit of hidden layer 1', 'unit of hidden layer 2')
        """
        names = [f"{name}.weight" for name, sub in self.named_modules()
                 if isinstance(sub, nn.Linear)]
        k = names.index(weight_name)
        columns = "input feature" if k == 0 else f"unit of hidden layer {k}"
        rows = "output" if k == len(names) - 1 else f"unit of hidden layer {k + 1}"
        return columns, rows
