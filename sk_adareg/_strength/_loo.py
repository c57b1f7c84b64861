"""``reg_lambda="loo"``: the priors' overall strength by approximate leave-one-out.

``reg_lambda="evidence"`` sets the strength of every prior by the Laplace evidence
(:mod:`sk_adareg._strength._evidence`). On targets with heavy tails the evidence asks for far
weaker priors than cross-validation picks (user guide, "Learning the strength"). With ``"loo"``
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
error of the ridge fit. For a network the KFAC leverages are larger than those of the
exact Gauss-Newton posterior, and PRESS with them asks for stronger priors
(user guide, "Learning the strength"): what cross-validation picks on heavy-tailed targets.
The leverages of one point's targets are taken one at a time (the diagonal of its
k x k block): leaving a point out with all its targets at once, as K-fold
cross-validation does, is exact for correlated targets too, but it asked for stronger
priors and scored lower on the benchmark sets.
A linear layer's Jacobian at one point is the outer product of its output gradient and
its input, so no per-point matrix is formed: the search (:func:`press_scale`) costs
about ``32 n P`` multiply-adds (``P`` regularized weights) per update, for small data
sets.
"""

# SPDX-License-Identifier: BSD-3-Clause

import math

import numpy as np
import torch

from .._data import INFERENCE_BYTES
from .._kfac import output_gradients
from ._evidence import curvature_batches, in_prior_units, prior_scale
from ._linearized import data_gradients, eigen_layers, mode_step, split_batch

__all__ = ["SCALES", "press_scale", "press_values", "rescale_strengths"]

#: The factors on the evidence's strengths that ``reg_lambda="loo"`` chooses from.
SCALES = np.logspace(-3, 6, 37)
# The mapped Jacobians of all the data are kept between the two passes of the search
# up to this size (64 MiB: the benchmark sets take 1-12 MiB).
_CACHE_BYTES = 4 * INFERENCE_BYTES


class _Linearized:
    """The network's penalized squared error, linearized, in the eigenbasis of each weight.

    Built once per update from the Laplace posterior's eigenbases at unit noise (the
    column side does not depend on the noise, so the evidence's own posterior serves)
    and the data gradient; :meth:`press` then reads the data once per set of factors.
    """

    def __init__(self, module, names, laplace, batches, strengths):
        self.module, self.names, self.batches = module, list(names), batches
        grads, self.total = data_gradients(module, self.names, batches)
        self._cache = None
        self.layers = eigen_layers(self.names, laplace, strengths, grads)

    def _mapped(self, X):
        """Per layer, each point's Jacobian in the eigenbasis: ``U[i, k] V[i]^T``."""
        f, factors = output_gradients(self.module, X, self.names)
        mapped = []
        for name, layer in zip(self.names, self.layers, strict=True):
            a, _ = factors[0][name]
            if a.shape[1] != 1:
                raise ValueError(
                    f'reg_lambda="loo" needs each regularized weight applied once per data '
                    f"point (an nn.Linear on vectors); {name!r} is applied at {a.shape[1]} "
                    "positions.")
            V = a[:, 0] @ layer["column_map"].T  # (m, d)
            U = torch.stack([f_k[name][1][:, 0] @ layer["row_map"].T for f_k in factors],
                            dim=1)  # (m, k, p)
            mapped.append((U, V, U**2, V**2))
        return f, mapped

    def _chunks(self):
        """Per chunk of the data: residuals, weights and mapped Jacobians.

        Kept for the next call while they fit in ``_CACHE_BYTES`` (small data), computed
        again otherwise.
        """
        if self._cache is not None:
            yield from self._cache
            return
        cache, size = [], 0
        for batch in self.batches():
            X, y, w = split_batch(batch)
            f, mapped = self._mapped(X)
            residuals = f.double() - y.double().reshape(f.shape)
            w = torch.ones(len(f), dtype=torch.float64, device=f.device) if w is None else (
                w.double())
            item = (residuals, w, mapped)
            if cache is not None:
                size += sum(t.numel() * t.element_size() for terms in mapped for t in terms)
                if size <= _CACHE_BYTES:
                    cache.append(item)
                else:
                    cache = None
            yield item
        self._cache = cache

    def loo_terms(self, scales):
        """Per chunk of the data: residuals, leverages and weights at each factor of ``scales``.

        A factor is one number for every layer, or a sequence of one per layer. All
        the factors are taken in one pass over the mapped Jacobians, which a pass per
        factor would read again for each (for small products, the larger cost).
        Gradients stay off while it is being iterated, between its items too.

        Yields
        ------
        residuals, leverages : torch.Tensor of shape (points, targets, factors)
            The linearized residuals at the moved mode and their leverages.
        weights : torch.Tensor of shape (points,)
        """
        factors = np.stack([np.broadcast_to(np.asarray(alpha, dtype=np.float64),
                                            (len(self.layers),)) for alpha in scales])
        steps, variances = [], []
        for j, layer in enumerate(self.layers):
            h = layer["h"]
            lams = torch.as_tensor(factors[:, j] * layer["lambda"], dtype=h.dtype,
                                   device=h.device)
            # Per factor: the mode's step and the posterior variances, as (d, p x factors).
            steps.append(_columns(mode_step(layer, lams)))
            variances.append(_columns(1.0 / (h[..., None] + lams)))
        with torch.no_grad():
            for residuals, w, mapped in self._chunks():
                r = residuals[..., None].expand(*residuals.shape, len(scales)).clone()
                leverage = (w / self.total)[:, None, None].expand_as(r).clone()
                for j, (U, V, U2, V2) in enumerate(mapped):
                    r += torch.bmm(U, (V @ steps[j]).view(*U.shape[::2], -1))
                    leverage += w[:, None, None] * torch.bmm(
                        U2, (V2 @ variances[j]).view(*U.shape[::2], -1))
                yield r, leverage, w

    def press(self, scales):
        """PRESS with the strengths times each factor of ``scales``; inf where h reaches 1.

        ``scales`` as for :meth:`loo_terms`.
        """
        press = torch.zeros(len(scales), dtype=torch.float64)
        for r, leverage, w in self.loo_terms(scales):
            terms = (w[:, None, None] * (r / (1 - leverage)) ** 2).sum((0, 1))
            press += torch.where((leverage >= 1).flatten(0, 1).any(0), math.inf,
                                 terms).cpu()
        return press.numpy()


def _columns(values):
    """(p, d, factors) as (d, p * factors): a point's inputs times it give (p, factors)."""
    return values.permute(1, 0, 2).reshape(values.shape[1], -1)


def press_values(module, names, laplace, batches, strengths, scales=SCALES):
    """PRESS of the linearized network with the strengths ``strengths`` times each factor.

    Parameters
    ----------
    module : torch.nn.Module
        The network, at the weights of ``laplace``.
    names : list of str
        The regularized weights, each the weight of an ``nn.Linear`` applied to
        vectors.
    laplace : KroneckerLaplace
        A Gaussian posterior at the current weights and precisions (its
        strengths and noise are not read).
    batches : callable
        Returns a fresh iterable of ``(X, y)`` or ``(X, y, sample_weight)``
        tensors on the module's device: the training data, in the units the
        network trains on (read once for the gradient and once per call of
        the search).
    strengths : dict of str to float
        ``lambda_l`` per weight, in the units of half the squared error at
        unit noise (``> 0``).
    scales : array-like of float, default=SCALES
        The factors ``alpha``.

    Returns
    -------
    press : ndarray of shape (len(scales),)
        PRESS at each factor; ``inf`` where a leverage reaches 1.

    Raises
    ------
    ValueError
        If a regularized layer is applied to more than one position per data
        point (a convolution, a linear layer on sequences).
    """
    return _Linearized(module, names, laplace, batches, strengths).press(scales)


def press_scale(module, names, laplace, batches, strengths):
    """The factor of :data:`SCALES` on ``strengths`` with the smallest PRESS.

    A search from coarse to fine: PRESS at every decade of :data:`SCALES`, then
    at the quarter decades around the best one (16 values instead of 37; the
    same choice where PRESS falls and then rises over the decades).

    Parameters
    ----------
    module, names, laplace, batches, strengths
        As for :func:`press_values`.

    Returns
    -------
    alpha : float
        The factor.
    press : ndarray of shape (len(SCALES),)
        PRESS at the factors searched, NaN at the others.

    Raises
    ------
    ValueError
        As :func:`press_values`.
    FloatingPointError
        If PRESS is NaN, or infinite at every factor of a decade.

    Examples
    --------
    >>> import torch
    >>> from sk_adareg._strength._loo import press_scale
    >>> from sk_adareg.laplace import KroneckerLaplace, kfac
    >>> from sk_adareg.prior import PriorCollection
    >>> torch.manual_seed(0)
    <torch._C.Generator object at ...>
    >>> X, y = torch.randn(30, 3), torch.randn(30, 2)
    >>> module = torch.nn.Linear(3, 2)
    >>> laplace = KroneckerLaplace(kfac(module, [(X, y)], ["weight"]),
    ...                            PriorCollection(module, ["weight"]))
    >>> alpha, press = press_scale(module, ["weight"], laplace, lambda: [(X, y)],
    ...                            {"weight": 1.0})
    >>> alpha > 1  # pure noise: the strongest prior leaves out best
    True
    """
    linearized = _Linearized(module, names, laplace, batches, strengths)
    press = np.full(len(SCALES), np.nan)
    coarse = np.arange(0, len(SCALES), 4)
    press[coarse] = linearized.press(SCALES[coarse])
    best = coarse[int(np.argmin(press[coarse]))]
    fine = [i for i in range(best - 3, best + 4) if 0 <= i < len(SCALES) and i % 4]
    press[fine] = linearized.press(SCALES[fine])
    if np.isnan(press[coarse]).any() or np.isnan(press[fine]).any() or not np.isfinite(
            press[~np.isnan(press)]).any():
        raise FloatingPointError("the leave-one-out error is NaN or infinite")
    return float(SCALES[int(np.nanargmin(press))]), press


def rescale_strengths(net, dataset, laplace):
    """After an evidence update of ``net``: its strengths times the factor PRESS picks.

    The strengths in force (``net.reg_lambda_``, the priors' strengths) become the
    evidence's times ``alpha``, and the criterion's target weights 1: the targets count
    alike, as in PRESS and in the R² that cross-validation would score.

    Parameters
    ----------
    net : AdaRegMixin
        With ``reg_lambda="loo"``, just after :func:`~sk_adareg._strength._evidence.fit_evidence`.
    dataset : skorch.dataset.Dataset
        The training data.
    laplace : KroneckerLaplace
        The posterior that update returned (Gaussian, at the current weights).

    Returns
    -------
    alpha : float
        The factor.
    mse : float
        PRESS at ``alpha`` over the ``n K`` target values (their weighted mean with
        sample weights): the approximate leave-one-out mean squared error, in the
        units the network trains on.
    """
    curvature = laplace.curvature
    names = net.priors_.names
    # From the loss's units c_l with the targets alike: lambda_l = c_l n K at unit noise.
    n_values = prior_scale("gaussian", curvature.n_samples, [1.0] * curvature.n_outputs)
    strengths = in_prior_units({name: net.reg_lambda_[name] for name in names}, n_values)
    alpha, press = press_scale(net.regularized_module, names, laplace,
                               curvature_batches(net, dataset), strengths)
    net.reg_lambda_ = {name: alpha * lam / n_values for name, lam in strengths.items()}
    # PRESS is over the samples of ``dataset`` (a subset of the training data, in a
    # large set's updates during training): its mean is over them.
    weights = getattr(dataset, "sample_weight", None)
    n_press = (len(dataset) if weights is None else float(np.sum(weights))) * curvature.n_outputs
    net.priors_.set_strengths(net.reg_lambda_)
    weights = getattr(net.criterion_, "target_weights", None)
    if weights is not None:
        weights.fill_(1.0)
    return alpha, float(np.nanmin(press)) / n_press
