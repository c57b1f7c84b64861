"""The network's penalized squared error linearized at its weights, in each prior's eigenbasis.

In the eigenbasis of a regularized weight's prior-whitened KFAC posterior, with
``h`` the curvature's eigenvalues (``a_i g_j``), ``C`` the weight and ``G`` the
gradient of half the (target-weighted) squared error, all in that basis, the
linearized network's penalized squared error with strength ``lambda`` is least at
the weight moved by ``-(G + lambda C) / (h + lambda)`` (:func:`mode_step`). PRESS
(:mod:`._loo`) reads the residuals there; the noise fitted at the end of training
(:mod:`._evidence`) the prior's penalty there (:func:`mode_penalties`).
"""

# SPDX-License-Identifier: BSD-3-Clause

import torch

from .._data import first_output
from .._kfac import eval_mode

__all__ = ["data_gradients", "eigen_layers", "mode_penalties", "mode_step", "split_batch"]


def split_batch(batch):
    """``(X, y, sample_weight)`` of a curvature batch; the weight None when it has none."""
    X, y, *rest = batch
    return X, y, rest[0] if rest else None


def data_gradients(module, names, batches, target_weights=None):
    """The gradient of half the weighted squared error per weight, and the total weight.

    Parameters
    ----------
    module : torch.nn.Module
    names : list of str
        The weights.
    batches : callable
        Returns a fresh iterable of ``(X, y)`` or ``(X, y, sample_weight)`` tensors.
    target_weights : torch.Tensor of shape (k,), optional
        A weight per target (ones: the targets alike).

    Returns
    -------
    grads : list of torch.Tensor, float64
    total : float
        The total sample weight.
    """
    weights = [module.get_parameter(name) for name in names]
    total, grads = 0.0, [torch.zeros(w.shape, dtype=torch.float64, device=w.device)
                         for w in weights]
    with eval_mode(module), torch.enable_grad():
        for batch in batches():
            X, y, w = split_batch(batch)
            f = first_output(module(X))
            f = f.reshape(f.shape[0], -1)
            r = f.double() - y.double().reshape(f.shape)
            w = torch.ones(len(r), dtype=torch.float64, device=r.device) if w is None else (
                w.double())
            squares = w[:, None] * r**2
            if target_weights is not None:
                squares = squares * target_weights.to(squares)
            parts = torch.autograd.grad(0.5 * squares.sum(), weights)
            for grad, part in zip(grads, parts, strict=True):
                grad += part.double()
            total += float(w.sum())
    return grads, total


def eigen_layers(names, laplace, strengths, grads, target_weights=None):
    """Per weight, what the linearized objective needs in its eigenbasis.

    Parameters
    ----------
    names : list of str
    laplace : KroneckerLaplace
        At the current weights (its strengths and noise are not read).
    strengths : dict of str to float
        ``lambda`` per weight, in the units of half the squared error weighted by
        ``target_weights``.
    grads : list of torch.Tensor
        From :func:`data_gradients`, with the same ``target_weights``.
    target_weights : torch.Tensor of shape (k,), optional
        The noise precisions of the eigenbasis (ones: the targets alike).

    Returns
    -------
    layers : list of dict
        ``row_map``, ``column_map`` (the maps of an output gradient and of an input to
        the basis), ``lambda``, ``h``, ``C`` and ``G``.
    """
    if target_weights is None:
        target_weights = torch.ones(laplace.curvature.n_outputs, dtype=torch.float64,
                                    device=laplace.curvature.sse.device)
    layers = []
    for name, grad in zip(names, grads, strict=True):
        basis = laplace.eigenbasis(name, target_weights)
        layers.append({
            "row_map": basis.row_map, "column_map": basis.column_map,
            "lambda": float(strengths[name]), "h": basis.g[:, None] * basis.a[None, :],
            "C": basis.weight,
            "G": basis.row_map @ grad.reshape(basis.weight.shape) @ basis.column_map.T})
    return layers


def mode_step(layer, lams):
    """The mode's move in the eigenbasis at each strength of ``lams``: (p, d, factors)."""
    h, C, G = layer["h"], layer["C"], layer["G"]
    return -(G[..., None] + lams * C[..., None]) / (h[..., None] + lams)


def mode_penalties(module, names, laplace, batches, strengths, target_weights=None):
    """Each prior's penalty ``Tr(Omega_r W Omega_c W^T)`` at the linearized network's mode.

    Parameters
    ----------
    module, names, batches, target_weights
        As for :func:`data_gradients`.
    laplace, strengths
        As for :func:`eigen_layers`.

    Returns
    -------
    penalties : dict of str to float
        In the whitened eigenbasis the penalty is the squared norm of the weight.
    """
    grads, _ = data_gradients(module, names, batches, target_weights)
    penalties = {}
    for name, layer in zip(names, eigen_layers(names, laplace, strengths, grads,
                                               target_weights), strict=True):
        lam = torch.tensor([layer["lambda"]], dtype=layer["h"].dtype, device=layer["h"].device)
        penalties[name] = float(((layer["C"] + mode_step(layer, lam)[..., 0]) ** 2).sum())
    return penalties
