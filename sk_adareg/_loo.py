"""``reg_lambda="loo"``: the priors' overall strength by approximate leave-one-out.

``reg_lambda="auto"`` sets the strength of every prior by the Laplace evidence
(:mod:`sk_adareg._evidence`). On targets with heavy tails the evidence asks for far
weaker priors than cross-validation picks (``benchmarks/README.md``). With ``"loo"``
every evidence update is followed by one factor ``alpha`` on all the strengths, the
value of :data:`SCALES` that minimizes the approximate leave-one-out squared error
(PRESS; Allen, 1974) of the network linearized at its current weights: the evidence
decides how the layers compare, PRESS how strong the prior is overall. One factor,
not one per layer: a ReLU network absorbs a strong prior on one layer against a weak
one on the next (a rescaling), which the linearized model cannot see.

In the eigenbasis of the prior-whitened KFAC factors at unit noise (the targets
weighed alike) the linearized model's penalized squared error is diagonal. With
strength ``lambda_l`` on weight ``l``, curvature ``h`` (its eigenvalues), ``C`` the
weight and ``G`` the gradient of half the squared error, all in that basis, the mode
moves by ``-(G + lambda C) / (h + lambda)``; each training residual ``r_ik`` moves by
the Jacobian times that step, and the leverage of target ``k`` at point ``i`` is
``w_i J_ik diag(1 / (h + lambda)) J_ik^T + w_i / sum(w)``, the last term for an
intercept (the output bias; other unregularized parameters are left out). Then

    PRESS = sum_i w_i sum_k (r_ik / (1 - h_ik))^2.

For a linear model with centred inputs, its bias at the optimum and no correlation
between the targets in the prior (``Omega_r = I``), it is the exact leave-one-out
error of the ridge fit. The leverages of one point's targets are taken one at a
time (the diagonal of its k x k block). A linear layer's Jacobian at one point is
the outer product of its output gradient and its input, so no per-point matrix is
formed: one pass over the data costs about ``2 len(SCALES) n P`` multiply-adds (``P``
regularized weights), for small data sets.
"""

# SPDX-License-Identifier: BSD-3-Clause

import math

import numpy as np
import torch

from ._batches import batch_loader
from ._evidence import _LAMBDA_FLOOR, _chunk, _on_device
from ._kfac import _eval_mode, output_gradients
from .laplace import KroneckerLaplace

__all__ = ["SCALES", "press_scale", "rescale_strengths"]

#: The factors on the evidence's strengths that ``reg_lambda="loo"`` chooses from.
SCALES = np.logspace(-3, 6, 37)


def _whitened(curvature, priors, names):
    """Per weight: its eigenbasis maps, curvature ``h``, the weight ``C`` in that basis."""
    ones = torch.ones(curvature.n_outputs, dtype=torch.float64,
                      device=curvature.sse.device)
    laplace = KroneckerLaplace(curvature, priors, 1.0, ones)
    layers = []
    for name in names:
        layer = laplace._layers[name]
        g, Qg = layer.spectrum(ones)
        Qa = (layer.Ma @ layer.Lc).T  # Ma = Qa^T Lc^{-1}
        W = curvature.layers[name].weight
        layers.append({"row_map": layer.row_map(ones), "column_map": layer.Ma,
                       "h": g[:, None] * layer.a[None, :],
                       "C": Qg.T @ layer.Lr.T @ W @ layer.Lc @ Qa})
    return layers


def _split(batch):
    X, y, *rest = batch
    return X, y, rest[0] if rest else None


def _data_gradients(module, names, batches):
    """The gradient of half the (weighted) squared error per weight, and the total weight."""
    weights = [module.get_parameter(name) for name in names]
    total, grads = 0.0, [torch.zeros(w.shape, dtype=torch.float64, device=w.device)
                         for w in weights]
    with _eval_mode(module), torch.enable_grad():
        for batch in batches():
            X, y, w = _split(batch)
            f = module(X)
            f = f.reshape(f.shape[0], -1)
            r = f.double() - y.double().reshape(f.shape)
            w = torch.ones(len(r), dtype=torch.float64, device=r.device) if w is None else (
                w.double())
            parts = torch.autograd.grad(0.5 * (w[:, None] * r**2).sum(), weights)
            for grad, part in zip(grads, parts, strict=True):
                grad += part.double()
            total += float(w.sum())
    return grads, total


def press_scale(module, names, curvature, priors, batches, strengths):
    """The factor on ``strengths`` that minimizes PRESS, and PRESS at every factor.

    Parameters
    ----------
    module : torch.nn.Module
        The network, at the weights ``curvature`` was computed at.
    names : list of str
        The regularized weights, each the weight of an ``nn.Linear`` applied to
        vectors.
    curvature : KFACCurvature
        Gaussian, at the current weights.
    priors : PriorCollection
        The priors (their precisions; their strengths are not read).
    batches : callable
        Returns a fresh iterable of ``(X, y)`` or ``(X, y, sample_weight)``
        tensors on the module's device: the training data, in the units the
        network trains on (it is read twice).
    strengths : dict of str to float
        ``lambda_l`` per weight, in the units of half the squared error at
        unit noise (``> 0``).

    Returns
    -------
    alpha : float
        The value of :data:`SCALES` with the smallest PRESS.
    press : ndarray of shape (len(SCALES),)
        PRESS at each factor; ``inf`` where a leverage reaches 1.

    Raises
    ------
    ValueError
        If a regularized layer is applied to more than one position per data
        point (a convolution, a linear layer on sequences).
    FloatingPointError
        If PRESS is NaN, or infinite at every factor.
    """
    layers = _whitened(curvature, priors, names)
    grads, total = _data_gradients(module, names, batches)
    lam = [float(strengths[name]) for name in names]
    for layer, grad, lam_l in zip(layers, grads, lam, strict=True):
        h, C = layer["h"], layer["C"]
        G = layer["row_map"] @ grad.reshape(C.shape) @ layer["column_map"].T
        # Per factor: the mode's step and the posterior variances, both (p, d).
        layer["steps"] = [-(G + alpha * lam_l * C) / (h + alpha * lam_l) for alpha in SCALES]
        layer["variances"] = [1.0 / (h + alpha * lam_l) for alpha in SCALES]
    press = np.zeros(len(SCALES))
    with torch.no_grad():
        for batch in batches():
            X, y, w = _split(batch)
            f, factors = output_gradients(module, X, names)
            residuals = f.double() - y.double().reshape(f.shape)
            w = torch.ones(len(f), dtype=torch.float64, device=f.device) if w is None else (
                w.double())
            mapped = []
            for name, layer in zip(names, layers, strict=True):
                a, _ = factors[0][name]
                if a.shape[1] != 1:
                    raise ValueError(
                        f'reg_lambda="loo" needs each regularized weight applied once per '
                        f"data point (an nn.Linear on vectors); {name!r} is applied at "
                        f"{a.shape[1]} positions.")
                V = a[:, 0] @ layer["column_map"].T  # (m, d)
                U = torch.stack([f_k[name][1][:, 0] @ layer["row_map"].T for f_k in factors],
                                dim=1)  # (m, k, p)
                mapped.append((U, V.T, U**2, (V**2).T))
            for i in range(len(SCALES)):
                r = residuals.clone()
                leverage = (w / total)[:, None].expand_as(r).clone()
                for layer, (U, Vt, U2, V2t) in zip(layers, mapped, strict=True):
                    r += torch.einsum("ikp,pi->ik", U, layer["steps"][i] @ Vt)
                    leverage += w[:, None] * torch.einsum(
                        "ikp,pi->ik", U2, layer["variances"][i] @ V2t)
                if bool((leverage >= 1).any()):
                    press[i] = math.inf
                elif math.isfinite(press[i]):
                    press[i] += float((w[:, None] * (r / (1 - leverage)) ** 2).sum())
    if np.isnan(press).any() or not np.isfinite(press).any():
        raise FloatingPointError("the leave-one-out error is NaN or infinite")
    return float(SCALES[int(np.argmin(press))]), press


def rescale_strengths(net, dataset, curvature):
    """After an evidence update of ``net``: its strengths times the factor PRESS picks.

    The strengths in force (``net.reg_lambda_``, the priors' strengths) become the
    evidence's times ``alpha``, and the criterion's target weights 1: the targets count
    alike, as in PRESS and in the R² that cross-validation would score.

    Parameters
    ----------
    net : AdaRegMixin
        With ``reg_lambda="loo"``, just after :func:`~sk_adareg._evidence.fit_evidence`.
    dataset : skorch.dataset.Dataset
        The training data.
    curvature : KFACCurvature
        The Gaussian curvature of that update, at the current weights.

    Returns
    -------
    alpha : float
        The factor.
    """
    n_values = curvature.n_samples * curvature.n_outputs
    names = net.priors_.names
    # In the loss's units c_l (targets alike): lambda_l = c_l n K at unit noise.
    strengths = {name: max(float(net.reg_lambda_[name]) * n_values, _LAMBDA_FLOOR)
                 for name in names}

    def batches():
        return (_on_device(X, y, net.device)
                for X, y in batch_loader(dataset, batch_size=_chunk(net, dataset)))

    alpha, _ = press_scale(net._adareg_module, names, curvature, net.priors_, batches,
                           strengths)
    net.reg_lambda_ = {name: alpha * lam / n_values for name, lam in strengths.items()}
    net.priors_.set_strengths(net.reg_lambda_)
    weights = getattr(net.criterion_, "target_weights", None)
    if weights is not None:
        weights.fill_(1.0)
    return alpha
