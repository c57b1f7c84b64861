"""``reg_lambda="auto"`` and predictive uncertainty: the Laplace evidence of a net's priors.

A net trains on the mean data loss plus ``sum_l c_l Tr(Omega_r W_l Omega_c
W_l^T)``. Under a Gaussian likelihood with noise variance ``sigma2_k`` per
target (precision ``beta_k``) and a prior ``lambda_l Omega_c kron Omega_r``
per weight, the negative log joint is ``1/2 sum_k beta_k SSE_k + 1/2 sum_l
lambda_l pen_l``; divided by ``n K mean(beta) / 2`` it is the mean squared
error with target weights ``beta_k / mean(beta)`` plus ``sum_l c_l pen_l``
with ``c_l = lambda_l / (n K mean(beta))``. Under the categorical likelihood
(cross-entropy) the mean loss corresponds to ``c_l = lambda_l / (2 n)``. This
module converts between the two and runs the evidence fit of
:mod:`sk_adareg.laplace`.
"""

# SPDX-License-Identifier: BSD-3-Clause

import dataclasses
import math

import numpy as np
import torch
from skorch.utils import to_tensor
from torch import nn

from ._batches import WeightedTarget, batch_loader, chunk_rows
from .laplace import (
    _NOISE_BOUNDS,
    KroneckerLaplace,
    _projected_newton,
    fit_hyperparameters,
    kfac,
)

__all__ = ["TargetWeightedMSELoss"]

# Strengths below this count as no prior (the evidence needs lambda > 0).
_LAMBDA_FLOOR = 1e-8


class TargetWeightedMSELoss(nn.Module):
    """Mean squared error with a weight per target: the Gaussian likelihood of ``"auto"``.

    With weights ``beta_k / mean(beta)`` (the noise precisions relative to
    their mean) it is, up to a constant factor, the negative log likelihood
    of targets with a noise variance each. The weights start at 1 (plain
    mean squared error) and are set by ``reg_lambda="auto"``.

    Parameters
    ----------
    n_outputs : int, default=1
        Number of targets.
    reduction : {"mean", "none"}, default="mean"
        ``"none"`` returns the weighted squared errors, of the shape of the
        targets (how sample weights are applied).
    """

    def __init__(self, n_outputs=1, reduction="mean"):
        super().__init__()
        self.reduction = reduction
        self.register_buffer("target_weights", torch.ones(int(n_outputs)))

    def forward(self, y_pred, y_true):
        losses = (y_pred - y_true) ** 2 * self.target_weights
        return losses if self.reduction == "none" else losses.mean()


def likelihood_of(criterion):
    """``"gaussian"`` or ``"categorical"``: the likelihood a net's criterion stands for."""
    if isinstance(criterion, TargetWeightedMSELoss | nn.MSELoss):
        return "gaussian"
    if isinstance(criterion, nn.CrossEntropyLoss):
        return "categorical"
    raise ValueError(
        'reg_lambda="auto" and the predictive uncertainty need the criterion MSELoss '
        "(regression) or CrossEntropyLoss (classification), got "
        f"{type(criterion).__name__}.")


def _scale(likelihood, n_samples, noise_variance):
    """``lambda_l / c_l``: the factor from the loss's strengths to the prior's."""
    if likelihood == "categorical":
        return 2.0 * n_samples
    beta = 1.0 / torch.as_tensor(noise_variance, dtype=torch.float64)
    return n_samples * len(beta) * float(beta.mean())


def _chunk(net, dataset):
    """Rows per batch of the curvature pass: memory-sized, not the training batch size.

    The pass keeps each layer's inputs and output gradients in float64 and runs
    one backward pass per output, so a row costs about ``2 (k + 1)`` copies.
    """
    X = getattr(dataset, "X", None)
    if not hasattr(X, "shape"):
        return net.batch_size
    module = net._adareg_module
    linear = [m for m in module.modules() if isinstance(m, nn.Linear)]
    n_outputs = linear[-1].out_features if linear else 1
    return max(net.batch_size, chunk_rows(module, X.shape[1:], copies=2 * (n_outputs + 1)))


def _on_device(X, y, device):
    """A batch for :func:`kfac`: ``(X, y)``, or ``(X, y, w)`` with sample weights."""
    if isinstance(y, WeightedTarget):
        return (to_tensor(X, device), to_tensor(y.y, device),
                to_tensor(y.sample_weight, device))
    return to_tensor(X, device), to_tensor(y, device)


def fit_evidence(net, dataset, *, fit_strength):
    """Fit the noise (and the strengths) of ``net`` to ``dataset`` by the Laplace evidence.

    The curvature is computed at the net's current weights and precisions.
    With ``fit_strength``, the strength of every prior and the noise
    variances maximize the evidence; otherwise the strengths stay those of
    ``net.reg_lambda`` (in the loss's units) and only the noise is fitted.
    The net's ``reg_lambda_`` (strengths in the loss's units),
    ``noise_variance_`` (training units), the priors' strengths and the
    criterion's target weights are set to the result.

    Returns
    -------
    laplace : KroneckerLaplace
        The posterior at the fitted hyperparameters.
    """
    likelihood = likelihood_of(net.criterion_)
    batches = (_on_device(X, y, net.device)
               for X, y in batch_loader(dataset, batch_size=_chunk(net, dataset)))
    curvature = kfac(net._adareg_module, batches, net.priors_.names, likelihood)
    fit = curvature.sse if likelihood == "gaussian" else curvature.nll
    if not torch.isfinite(fit).all():
        raise FloatingPointError("the network's outputs on the training data are NaN or "
                                 "infinite in float32")
    n = curvature.n_samples
    gaussian = likelihood == "gaussian"
    noise = net.noise_variance_
    if gaussian and noise is None:
        noise = (curvature.sse / n).clamp_min(_NOISE_BOUNDS[0]).tolist()
    strengths = dict(net.reg_lambda_)
    if fit_strength:
        scale = _scale(likelihood, n, noise)
        start = {name: max(c * scale, _LAMBDA_FLOOR) for name, c in strengths.items()}
        laplace = fit_hyperparameters(curvature, net.priors_, start,
                                      noise if gaussian else None)
    elif gaussian:
        laplace = fit_tied_noise(curvature, net.priors_, strengths, noise)
    else:
        lam = {name: max(c * _scale(likelihood, n, None), _LAMBDA_FLOOR)
               for name, c in strengths.items()}
        laplace = KroneckerLaplace(curvature, net.priors_, lam)
    if gaussian:
        noise = laplace.noise_variance.tolist()
    scale = _scale(likelihood, n, noise)
    if fit_strength:
        strengths = {name: lam / scale for name, lam in laplace.reg_lambda.items()}
        net.priors_.set_strengths(strengths)
    net.reg_lambda_ = strengths
    net.noise_variance_ = noise if gaussian else None
    weights = getattr(net.criterion_, "target_weights", None)
    if gaussian and weights is not None and fit_strength:
        beta = 1.0 / torch.tensor(noise, dtype=torch.float64)
        weights.copy_(beta / beta.mean())
    return laplace


def fit_tied_noise(curvature, priors, strengths, noise_variance):
    """The noise variances that maximize the evidence at strengths fixed in the loss's units.

    A numeric ``reg_lambda`` fixes ``c_l = lambda_l / (n sum_k beta_k)`` (see the module),
    not ``lambda_l``: the prior's strength moves with the noise precisions. The evidence
    is maximized over ``log beta`` with ``lambda_l = max(c_l n sum(beta), floor)``, by
    Newton's method on its exact gradient and Hessian (the chain rule through ``lambda``;
    the value need not be concave in ``log beta``, so the step takes the Hessian's
    absolute eigenvalues). Holding ``lambda`` while fitting ``beta`` and alternating has,
    by MacKay's update, the fixed point ``beta SSE = n K - gamma``; with more
    well-determined parameters ``gamma`` than target values ``n K`` (a wide network on a
    small set) there is none, and the noise grows without bound.

    Parameters
    ----------
    curvature : KFACCurvature
        Gaussian, at the trained weights.
    priors : PriorCollection
        The net's priors (their precisions; their strengths are not read).
    strengths : dict of str to float
        ``c_l`` per weight, the strengths in the loss's units.
    noise_variance : list of float
        Starting noise variances, one per target.

    Returns
    -------
    laplace : KroneckerLaplace
        The posterior at the maximizing noise variances and the strengths they imply.
    """
    names = list(strengths)
    n_layers = len(names)
    n = curvature.n_samples
    device = curvature.sse.device
    rho = torch.tensor([strengths[name] * n for name in names], dtype=torch.float64,
                       device=device)
    laplace = KroneckerLaplace(
        curvature, priors, {name: max(float(r) * float(np.sum(1 / np.asarray(noise_variance))),
                                      _LAMBDA_FLOOR) for name, r in zip(names, rho, strict=True)},
        noise_variance)
    lo, hi = (-math.log(b) for b in reversed(_NOISE_BOUNDS))  # bounds of log beta

    def strengths_at(beta):
        tied = rho * beta.sum()
        return tied.clamp_min(_LAMBDA_FLOOR), tied > _LAMBDA_FLOOR

    def evaluate(t, derivatives):
        beta = t.exp()
        lam, moving = strengths_at(beta)
        value, grad, hess = laplace._evidence(lam, beta, derivatives=derivatives)
        if not math.isfinite(float(value)):
            raise FloatingPointError("the Laplace evidence is NaN or infinite")
        if not derivatives:
            return value, None, None
        # log lambda_l = log(c_l n) + log sum(beta) where lambda is above its floor:
        # d/d log beta = w = beta / sum(beta), d2 = diag(w) - w w^T.
        w = beta / beta.sum()
        g_lambda = grad[:n_layers] * moving
        h_lambda_beta = (hess[:n_layers, n_layers:] * moving[:, None]).sum(0)
        h_lambda = (hess[:n_layers, :n_layers] * torch.outer(moving, moving)).sum()
        gradient = grad[n_layers:] + w * g_lambda.sum()
        hessian = (hess[n_layers:, n_layers:] + torch.outer(h_lambda_beta, w)
                   + torch.outer(w, h_lambda_beta) + h_lambda * torch.outer(w, w)
                   + g_lambda.sum() * (torch.diag(w) - torch.outer(w, w)))
        return value, gradient, hessian

    start = np.clip(-np.log(np.asarray(noise_variance, dtype=np.float64)), lo, hi)
    bound = torch.ones(len(start), dtype=torch.float64, device=device)
    t = _projected_newton(evaluate, torch.as_tensor(start, device=device), lo * bound,
                          hi * bound, max_iter=100, tol=1e-10)
    beta = t.exp()
    laplace.noise_variance = 1.0 / beta
    laplace.reg_lambda = dict(zip(names, strengths_at(beta)[0].tolist(), strict=True))
    return laplace


def map_curvature(curvature, convert):
    """A copy of ``curvature`` with ``convert`` applied to each of its arrays.

    The estimators keep the curvature as numpy arrays (``convert=to_numpy``),
    so that a model fitted on a GPU unpickles anywhere, and rebuild tensors
    on the net's device to predict.
    """
    def apply(t):
        return None if t is None else convert(t)

    layers = {name: dataclasses.replace(f, A=apply(f.A), G=apply(f.G), weight=apply(f.weight))
              for name, f in curvature.layers.items()}
    return dataclasses.replace(curvature, layers=layers, sse=apply(curvature.sse),
                               nll=apply(curvature.nll))
