"""The Laplace evidence of a net's priors, and the one conversion between two units of strength.

A net trains on the mean data loss plus ``sum_l c_l Tr(Omega_r W_l Omega_c
W_l^T)``. Under a Gaussian likelihood with noise variance ``sigma2_k`` per
target (precision ``beta_k``) and a prior ``lambda_l Omega_c kron Omega_r``
per weight, the negative log joint is ``1/2 sum_k beta_k SSE_k + 1/2 sum_l
lambda_l pen_l``; divided by ``n K mean(beta) / 2`` it is the mean squared
error with target weights ``beta_k / mean(beta)`` plus ``sum_l c_l pen_l``
with ``c_l = lambda_l / (n K mean(beta))``. Under the categorical likelihood
(cross-entropy) the mean loss corresponds to ``c_l = lambda_l / (2 n)``.
:func:`prior_scale` is the factor between the two (the loss's ``c_l``, the
prior's ``lambda_l``); :func:`fit_evidence` runs the evidence fit of
:mod:`sk_adareg.laplace` at a net's weights.
"""

# SPDX-License-Identifier: BSD-3-Clause

import numpy as np
import torch
from skorch.dataset import Dataset
from skorch.utils import to_tensor
from torch import nn

from .._data import WeightedDataset, WeightedTarget, chunk_rows, in_memory
from .._engine import batch_loader
from .._losses import likelihood_of
from ..laplace import (
    LAMBDA_BOUNDS,
    NOISE_BOUNDS,
    KroneckerLaplace,
    fit_hyperparameters,
    fit_tied_noise,
    kfac,
)
from ._linearized import mode_penalties

__all__ = ["UPDATE_ROWS", "curvature_batches", "fit_evidence", "in_prior_units", "prior_scale",
           "update_data"]

#: The most training samples one strength update during training reads: above it, a
#: random subset of this size, weighted to stand for all of them. (The posterior at the
#: end of training reads all the data.)
UPDATE_ROWS = 10_000


def prior_scale(likelihood, n_samples, noise_variance=None):
    """``lambda_l / c_l``: the factor from a strength in the loss's units to the prior's.

    Parameters
    ----------
    likelihood : {"gaussian", "categorical"}
    n_samples : int or float
        The number of training samples (their total weight).
    noise_variance : array-like of shape (k,), optional
        Gaussian: the noise variance of each target (ones: the targets alike).

    Returns
    -------
    scale : float
        ``n K mean(beta)`` (Gaussian) or ``2 n`` (categorical).
    """
    if likelihood == "categorical":
        return 2.0 * n_samples
    beta = 1.0 / torch.as_tensor(noise_variance, dtype=torch.float64)
    return n_samples * len(beta) * float(beta.mean())


def in_prior_units(strengths, scale):
    """Strengths in the loss's units ``c_l`` as the prior's ``lambda_l = c_l * scale``.

    Parameters
    ----------
    strengths : dict of str to float
        A strength per regularized weight, in the loss's units.
    scale : float
        From :func:`prior_scale`.

    Returns
    -------
    reg_lambda : dict of str to float
        The prior's strengths, at least ``LAMBDA_BOUNDS[0]`` (a zero strength
        would leave the posterior improper).
    """
    return {name: max(float(c) * scale, LAMBDA_BOUNDS[0]) for name, c in strengths.items()}


def _chunk(net, dataset):
    """Rows per batch of a curvature pass: memory-sized, not the training batch size.

    The pass keeps each layer's inputs and output gradients in float64 and runs
    one backward pass per output, so a row costs about ``2 (k + 1)`` copies.
    """
    X = getattr(dataset, "X", None)
    if not hasattr(X, "shape"):
        return net.batch_size
    module = net.regularized_module
    linear = [m for m in module.modules() if isinstance(m, nn.Linear)]
    n_outputs = linear[-1].out_features if linear else 1
    return max(net.batch_size, chunk_rows(module, X.shape[1:], copies=2 * (n_outputs + 1)))


def _on_device(X, y, device):
    """A batch for :func:`~sk_adareg.laplace.kfac`: ``(X, y)``, or ``(X, y, w)``."""
    if isinstance(y, WeightedTarget):
        return (to_tensor(X, device), to_tensor(y.y, device),
                to_tensor(y.sample_weight, device))
    return to_tensor(X, device), to_tensor(y, device)


def curvature_batches(net, dataset):
    """The training data of ``net`` for a curvature pass, on its device, in large chunks.

    Parameters
    ----------
    net : AdaRegMixin
    dataset : skorch.dataset.Dataset

    Returns
    -------
    batches : callable
        Returns a fresh iterable of ``(X, y)`` or ``(X, y, sample_weight)`` tensors.
    """
    size = _chunk(net, dataset)
    return lambda: (_on_device(X, y, net.device)
                    for X, y in batch_loader(dataset, batch_size=size))


def fit_evidence(net, dataset, *, fit_strength):
    """Fit the noise (and the strengths) of ``net`` to ``dataset`` by the Laplace evidence.

    The curvature is computed at the net's current weights and precisions.
    With ``fit_strength``, the strength of every prior and the noise
    variances maximize the evidence; otherwise the strengths stay those in
    force (``net.reg_lambda_``, in the loss's units) and only the noise is
    fitted, with the prior's penalty taken at the linearized network's mode
    (:func:`_mode_penalties`). The net's ``reg_lambda_`` (strengths in the loss's units),
    ``noise_variance_`` (training units), the priors' strengths and the
    criterion's target weights are set to the result.

    Returns
    -------
    laplace : KroneckerLaplace
        The posterior at the fitted hyperparameters.
    """
    likelihood = likelihood_of(net.criterion_)
    curvature = kfac(net.regularized_module, curvature_batches(net, dataset)(),
                     net.priors_.names, likelihood)
    fit = curvature.sse if likelihood == "gaussian" else curvature.nll
    if not torch.isfinite(fit).all():
        raise FloatingPointError("the network's outputs on the training data are NaN or "
                                 "infinite in float32")
    n = curvature.n_samples
    gaussian = likelihood == "gaussian"
    noise = net.noise_variance_
    if gaussian and noise is None:
        noise = (curvature.sse / n).clamp_min(NOISE_BOUNDS[0]).tolist()
    strengths = dict(net.reg_lambda_)
    if fit_strength:
        scale = prior_scale(likelihood, n, noise)
        laplace = fit_hyperparameters(curvature, net.priors_,
                                      in_prior_units(strengths, scale),
                                      noise if gaussian else None)
    elif gaussian:
        laplace = fit_tied_noise(curvature, net.priors_, strengths, noise,
                                 penalties=_mode_penalties(net, curvature, dataset, strengths))
    else:
        laplace = KroneckerLaplace(curvature, net.priors_,
                                   in_prior_units(strengths, prior_scale(likelihood, n)))
    if gaussian:
        noise = laplace.noise_variance.tolist()
    scale = prior_scale(likelihood, n, noise)
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


def _mode_penalties(net, curvature, dataset, strengths):
    """The priors' penalties at the mode of the objective the net trained on, linearized.

    The evidence takes the prior's term at the mode. Training under a strong prior
    moves the weights toward it slowly (by about ``lr`` a step), and
    ``lambda * penalty`` at weights short of the mode grows with ``lambda``: the
    noise tied to a fixed strength grew with it, the strongest prior giving the
    widest intervals. At the linearized mode (:mod:`._linearized`) the penalty
    shrinks as the prior strengthens; the data's fit stays that of the weights that
    predict. Where training reached the mode, the two agree.
    """
    weights = getattr(net.criterion_, "target_weights", None)
    weights = (torch.ones(curvature.n_outputs, dtype=torch.float64, device=curvature.sse.device)
               if weights is None else weights.to(curvature.sse))
    # The training loss's strengths in the units of half the target-weighted squared error.
    scale = prior_scale("gaussian", curvature.n_samples, 1.0 / weights)
    lam = in_prior_units(strengths, scale)
    names = net.priors_.names
    return mode_penalties(net.regularized_module, names, KroneckerLaplace(curvature, net.priors_),
                          curvature_batches(net, dataset), lam, weights)


def update_data(dataset, seed):
    """The data of one strength update during training: ``(for the curvature, for PRESS)``.

    Up to :data:`UPDATE_ROWS` samples, both are ``dataset``. Above it, both hold a
    random subset of :data:`UPDATE_ROWS` samples: for the curvature, weighted so
    that the weights sum to the whole set's (an unbiased estimate of its sums);
    for the leave-one-out error, with the samples' own weights (its mean over the
    subset estimates the whole set's).

    Parameters
    ----------
    dataset : skorch.dataset.Dataset
        The training data.
    seed : int
        Seeds the subset (numpy's generator: torch's random state is left alone).

    Returns
    -------
    curvature_data, press_data : skorch.dataset.Dataset
    """
    if len(dataset) <= UPDATE_ROWS or not in_memory(dataset) or dataset.y is None:
        return dataset, dataset
    n = len(dataset)
    rows = np.sort(np.random.default_rng(seed).choice(n, UPDATE_ROWS, replace=False))
    X, y = dataset.X[rows], dataset.y[rows]
    weights = getattr(dataset, "sample_weight", None)
    kept = np.ones(UPDATE_ROWS) if weights is None else weights[rows]
    total = n if weights is None else weights.sum()
    press = Dataset(X, y) if weights is None else WeightedDataset(X, y, kept)
    return WeightedDataset(X, y, kept * (total / kept.sum())), press
