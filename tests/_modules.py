"""Torch modules for the reliability tests, importable by name from a fresh process.

A pickled estimator refers to its module class by ``module.qualname``: the class
must live in a module that the process loading the pickle can import. Test files
run under ``--import-mode=importlib`` get synthetic module names, so the classes
that travel through pickles live here, imported as ``_modules`` with ``tests/``
on ``sys.path``.
"""

import torch
from torch import nn


class TinyNet(nn.Module):
    """Linear -> tanh -> Linear, a custom network for 5 features and 3 outputs."""

    def __init__(self, n_features=5, n_outputs=3, width=8):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(n_features, width), nn.Tanh())
        self.head = nn.Linear(width, n_outputs)

    def forward(self, X):
        return self.head(self.body(X))


class PoisonableNet(TinyNet):
    """TinyNet whose outputs turn NaN (or infinite) once ``poison`` is set."""

    def __init__(self, n_features=5, n_outputs=3, width=8):
        super().__init__(n_features, n_outputs, width)
        self.poison = None  # None, or the value every output becomes

    def forward(self, X):
        out = super().forward(X)
        if self.poison is not None:
            # Keeps the graph (and the gradient) connected to the weights.
            out = out + torch.full_like(out, self.poison)
        return out
