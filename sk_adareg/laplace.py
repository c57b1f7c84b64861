"""Laplace approximation of a network under the matrix-normal prior, with KFAC curvature.

Pure PyTorch. For each regularized weight ``W`` (p x d, ``theta = vec(W)``
column-stacked) the prior is ``N(0, (lambda Omega_c kron Omega_r)^{-1})``:
the :class:`~sk_adareg.prior.MatrixNormalPrior` with a strength ``lambda > 0``
per layer. With the Kronecker-factored Gauss-Newton curvature ``A kron G`` of
the data term (see :func:`kfac`), the layer's posterior precision is

    P = A kron G + lambda Omega_c kron Omega_r.

With ``Omega_r = L_r L_r^T`` and ``Omega_c = L_c L_c^T`` (Cholesky), and
``a_i``, ``g_j`` the eigenvalues of ``L_c^{-1} A L_c^{-T}`` and
``L_r^{-1} G L_r^{-T}``,
``P = (L_c kron L_r) (Ã kron G̃ + lambda I) (L_c kron L_r)^T``, so

    log det P = p log det Omega_c + d log det Omega_r + sum_ij log(a_i g_j + lambda),

and ``P^{-1}`` is diagonal, ``1 / (a_i g_j + lambda)``, in a known basis: no
(pd x pd) matrix is ever formed. The Laplace log marginal likelihood
(evidence) at the mode ``theta*`` is

    log p(D | theta*) + sum_layers [ -lambda/2 Tr(Omega_r W Omega_c W^T)
                                     - 1/2 sum_ij log(1 + a_i g_j / lambda) ],

the ``log det Omega`` and ``2 pi`` terms cancelling between the prior and the
posterior. It is exact for a linear model with a Gaussian likelihood at its
posterior mode. Biases and any parameter without a prior are held at their
values: they are neither integrated out nor counted in the predictive
variance.

For a Gaussian likelihood with noise variance ``sigma2_k`` per target,
``G = sum_k G_k / sigma2_k`` and
``log p(D | theta) = -1/2 sum_k [SSE_k / sigma2_k + n log(2 pi sigma2_k)]``.
At fixed ``theta*`` the evidence is jointly concave in ``(log lambda_l,
log sigma2_k)`` (the log-determinant of a positive combination of positive
semi-definite matrices is convex in the logarithms of the weights), and its
stationary point satisfies MacKay's fixed points
``lambda_l = gamma_l / Tr(Omega_r W Omega_c W^T)`` and
``sigma2_k = SSE_k / (n - gamma_k)`` with ``gamma`` the effective numbers of
parameters; :func:`fit_hyperparameters` finds it by Newton's method.

References
----------
.. [1] A. Immer, M. Bauer, V. Fortuin, G. Rätsch and M. E. Khan, "Scalable
   Marginal Likelihood Estimation for Model Selection in Deep Learning",
   ICML 2021.
.. [2] R. Grosse and J. Martens, "A Kronecker-factored approximate Fisher
   matrix for convolution layers", ICML 2016.
.. [3] D. J. C. MacKay, "Bayesian interpolation", Neural Computation, 1992.
"""

# SPDX-License-Identifier: BSD-3-Clause

import math
from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Real

import numpy as np
import torch

from ._kfac import KFACCurvature, LayerFactors, kfac, output_gradients

__all__ = [
    "Eigenbasis",
    "KFACCurvature",
    "KroneckerLaplace",
    "LayerFactors",
    "fit_hyperparameters",
    "fit_tied_noise",
    "kfac",
    "kron_log_det",
]

#: Default bounds on the strengths; the lower one is the smallest strength that counts as a
#: prior (the evidence needs ``lambda > 0``).
LAMBDA_BOUNDS = (1e-8, 1e8)
#: Default bounds on the noise variances (also those of :func:`fit_tied_noise`).
NOISE_BOUNDS = (1e-10, 1e10)
# Armijo constant and smallest step of the line search of the Newton ascent.
_ARMIJO = 1e-4
_MIN_STEP = 1e-10


def _whiten(M, L):
    """``L^{-1} M L^{-T}`` for a symmetric ``M`` (or a batch of them)."""
    X = torch.linalg.solve_triangular(L, M, upper=False)
    X = torch.linalg.solve_triangular(L, X.mT, upper=False)
    return (X + X.mT) / 2


def _cholesky(precision, what):
    L, info = torch.linalg.cholesky_ex(precision.to(torch.float64))
    if info.item() != 0:
        raise ValueError(f"The {what} is not symmetric positive definite.")
    return L


def _identity(n, like):
    return torch.eye(n, dtype=torch.float64, device=like.device)


def kron_log_det(A, G, reg_lambda, row_precision=None, column_precision=None):
    """``log det(A kron G + reg_lambda * Omega_c kron Omega_r)`` from the small factors.

    Parameters
    ----------
    A : torch.Tensor of shape (d, d)
        Symmetric positive semi-definite (the input factor).
    G : torch.Tensor of shape (p, p)
        Symmetric positive semi-definite (the output-gradient factor).
    reg_lambda : float
        The prior strength, > 0.
    row_precision : torch.Tensor of shape (p, p), optional
        ``Omega_r``, symmetric positive definite; the identity if None.
    column_precision : torch.Tensor of shape (d, d), optional
        ``Omega_c``, symmetric positive definite; the identity if None.

    Returns
    -------
    log_det : torch.Tensor
        A float64 scalar: ``p log det Omega_c + d log det Omega_r +
        sum_ij log(a_i g_j + reg_lambda)``, with ``a``, ``g`` the eigenvalues
        of the factors whitened by the precisions' Cholesky factors.

    Examples
    --------
    >>> import torch
    >>> from sk_adareg.laplace import kron_log_det
    >>> A, G = torch.diag(torch.tensor([1.0, 3.0])), torch.tensor([[2.0]])
    >>> float(kron_log_det(A, G, 1.0))  # log(1*2 + 1) + log(3*2 + 1)
    3.044522437723423
    """
    _check_lambda(reg_lambda, "reg_lambda")
    A, G = A.to(torch.float64), G.to(torch.float64)
    p, d = G.shape[0], A.shape[0]
    Lr = _identity(p, G) if row_precision is None else _cholesky(row_precision, "row precision")
    Lc = (_identity(d, A) if column_precision is None
          else _cholesky(column_precision, "column precision"))
    a = torch.linalg.eigvalsh(_whiten(A, Lc)).clamp_min(0)
    g = torch.linalg.eigvalsh(_whiten(G, Lr)).clamp_min(0)
    log_det_r = 2 * Lr.diagonal().log().sum()
    log_det_c = 2 * Lc.diagonal().log().sum()
    return p * log_det_c + d * log_det_r + torch.log(a[:, None] * g[None, :] + reg_lambda).sum()


def _check_lambda(value, what):
    if isinstance(value, bool) or not isinstance(value, Real) or not (
            math.isfinite(value) and value > 0):
        raise ValueError(f"{what} must be a finite number > 0, got {value!r}.")
    return float(value)


class _Layer:
    """One weight's factors whitened by its prior, and the spectra they need."""

    def __init__(self, name, factors, row_precision, column_precision):
        W = factors.weight
        p, d = W.shape
        for what, M, size in (("row precision", row_precision, p),
                              ("column precision", column_precision, d)):
            if M is not None and tuple(M.shape) != (size, size):
                raise ValueError(
                    f"The {what} of {name!r} has shape {tuple(M.shape)}, but its weight is "
                    f"{p} x {d}."
                )
        omega_r = _identity(p, W) if row_precision is None else row_precision.to(W)
        omega_c = _identity(d, W) if column_precision is None else column_precision.to(W)
        self.shape = (p, d)
        self.omega_r, self.omega_c = omega_r, omega_c
        self.Lr = _cholesky(omega_r, f"row precision of {name!r}")
        self.Lc = _cholesky(omega_c, f"column precision of {name!r}")
        a, Qa = torch.linalg.eigh(_whiten(factors.A, self.Lc))
        self.a = a.clamp_min(0)  # round-off can make a null direction slightly negative
        # Qa^T L_c^{-1}: maps an input a to the whitened eigenbasis of the column side.
        self.Ma = torch.linalg.solve_triangular(self.Lc.T, Qa, upper=True).T
        self.Gt = _whiten(factors.G, self.Lr)  # (m, p, p)
        self.penalty = ((omega_r @ W) * (W @ omega_c)).sum()
        self._cache = None

    def spectrum(self, beta):
        """Eigenvalues ``g`` and eigenvectors ``Q_g`` of ``sum_k beta_k G̃_k``."""
        if self._cache is not None and torch.equal(self._cache[0], beta):
            return self._cache[1]
        g, Qg = torch.linalg.eigh((beta[:, None, None] * self.Gt).sum(0))
        result = (g.clamp_min(0), Qg)
        self._cache = (beta.clone(), result)
        return result

    def rotated_factors(self, beta):
        """``H_k = Q_g^T G̃_k Q_g`` (m, p, p), with ``sum_k beta_k H_k = diag(g)``."""
        Qg = self.spectrum(beta)[1]
        return Qg.T @ self.Gt @ Qg

    def row_map(self, beta):
        """``Q_g^T L_r^{-1}``: maps an output gradient ``b`` to the row eigenbasis."""
        Qg = self.spectrum(beta)[1]
        return torch.linalg.solve_triangular(self.Lr.T, Qg, upper=True).T

    def variances(self, beta, lam):
        """``1 / (a_i g_j + lambda)``, (d, p): the posterior variances in the eigenbasis."""
        g = self.spectrum(beta)[0]
        return 1.0 / (self.a[:, None] * g[None, :] + lam)


@dataclass(frozen=True)
class Eigenbasis:
    """A weight's posterior in the eigenbasis of its precision (``KroneckerLaplace.eigenbasis``).

    Attributes
    ----------
    a : torch.Tensor of shape (d,)
        Eigenvalues of the whitened input factor.
    g : torch.Tensor of shape (p,)
        Eigenvalues of the whitened output factor at the noise precisions.
    row_map : torch.Tensor of shape (p, p)
        ``Q_g^T L_r^{-1}``: maps an output gradient to the row eigenbasis.
    column_map : torch.Tensor of shape (d, d)
        ``Q_a^T L_c^{-1}``: maps a layer input to the column eigenbasis.
    weight : torch.Tensor of shape (p, d)
        The weight in that basis, ``Q_g^T L_r^T W L_c Q_a``.
    """

    a: torch.Tensor
    g: torch.Tensor
    row_map: torch.Tensor
    column_map: torch.Tensor
    weight: torch.Tensor


class KroneckerLaplace:
    """The Kronecker-factored Laplace posterior of the weights under matrix-normal priors.

    Holds the whitened factors and their eigendecompositions for given
    hyperparameters: the strength per layer and, for a Gaussian likelihood,
    the noise variance per target. Changing ``reg_lambda`` or
    ``noise_variance`` afterwards is allowed (assign a new dict or tensor).

    Parameters
    ----------
    curvature : KFACCurvature
        From :func:`kfac` at the trained weights (the mode).
    priors : mapping of str to MatrixNormalPrior, or None
        The prior of each weight in ``curvature`` (a dict or a
        :class:`~sk_adareg.prior.PriorCollection`), read now: its
        ``row_precision`` and ``column_precision``. None: identity precisions.
    reg_lambda : float or mapping of str to float, default=1.0
        The strength ``lambda`` of each layer's prior ``lambda Omega_c kron
        Omega_r``, one for all or per weight name.
    noise_variance : float or array-like of shape (k,), optional
        Gaussian likelihood only: ``sigma2`` per target, in the units of the
        targets seen by the network. Default: ``SSE_k / n``.

    Attributes
    ----------
    reg_lambda : dict of str to float
    noise_variance : torch.Tensor of shape (k,), float64, or None
    curvature : KFACCurvature

    Examples
    --------
    >>> import torch
    >>> from sk_adareg.laplace import KroneckerLaplace, kfac
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> net = torch.nn.Linear(3, 2, bias=False)
    >>> X, y = torch.randn(20, 3), torch.randn(20, 2)
    >>> la = KroneckerLaplace(kfac(net, [(X, y)], ["weight"]), reg_lambda=1.0,
    ...                       noise_variance=[1.0, 1.0])
    >>> la.predictive_variance(net, X[:4]).shape
    torch.Size([4, 2])
    """

    def __init__(self, curvature, priors=None, reg_lambda=1.0, noise_variance=None):
        if not isinstance(curvature, KFACCurvature):
            raise ValueError(
                f"curvature must be a KFACCurvature (from kfac), got {type(curvature).__name__}."
            )
        self.curvature = curvature
        self.names = list(curvature.layers)
        self.reg_lambda = _lambda_dict(reg_lambda, self.names)
        self.noise_variance = _noise_tensor(noise_variance, curvature)
        self._layers = {}
        for name, factors in curvature.layers.items():
            tensors = (factors.A, factors.G, factors.weight)
            if not all(torch.isfinite(t).all() for t in tensors):
                raise FloatingPointError(
                    f"The weight or curvature of {name!r} has NaN or infinite entries.")
            row, column = _precisions(priors, name)
            self._layers[name] = _Layer(name, factors, row, column)

    @property
    def _beta(self):
        if self.curvature.likelihood == "gaussian":
            return 1.0 / self.noise_variance
        return torch.ones(1, dtype=torch.float64, device=self.curvature.nll.device)

    def _lambdas(self):
        device = next(iter(self._layers.values())).a.device
        return torch.tensor([self.reg_lambda[n] for n in self.names], dtype=torch.float64,
                            device=device)

    def log_evidence(self):
        """The Laplace approximation of the log marginal likelihood of the data.

        Returns
        -------
        log_evidence : float
            ``log p(D | theta*) + sum_layers [-lambda/2 Tr(Omega_r W Omega_c W^T)
            - 1/2 sum_ij log(1 + a_i g_j / lambda)]``, with all constants (it
            is the exact log evidence of a linear-Gaussian model at its mode).
        """
        return float(self._evidence(self._lambdas(), self._beta)[0])

    def effective_parameters(self):
        """The effective number of parameters ``gamma`` of each layer.

        Returns
        -------
        gamma : dict of str to float
            ``sum_ij a_i g_j / (a_i g_j + lambda)``, between 0 and ``p d``: how
            many directions of the weight the data determine.
        """
        beta = self._beta
        result = {}
        for name, layer in self._layers.items():
            lam = self.reg_lambda[name]
            result[name] = float((1 - lam * layer.variances(beta, lam)).sum())
        return result

    def _evidence(self, lam, beta, derivatives=False):
        """Value, and gradient and Hessian in ``(log lambda, log beta)``, of the evidence.

        The derivatives use the eigenbasis of ``sum_k beta_k G̃_k``, in which
        ``H_k`` is the rotated ``G̃_k``: with ``r_ij = 1 / (a_i g_j +
        lambda)`` and ``D = sum_ij log(a_i g_j + lambda)``,
        ``dD/dlog lambda = lambda sum r``, ``dD/dlog beta_k = beta_k sum_ij a_i
        H_k[j,j] r_ij``, and the second derivatives follow from
        ``d2 log det M = -tr(M^-1 dM M^-1 dM) + tr(M^-1 d2M)``.
        """
        curv = self.curvature
        m = beta.shape[0]
        if curv.likelihood == "gaussian":
            n = curv.n_samples
            value = (-0.5 * beta * curv.sse + 0.5 * n * beta.log()).sum()
            value = value - 0.5 * n * m * math.log(2 * math.pi)
            grad_b = -0.5 * beta * curv.sse + 0.5 * n
            hess_bb = torch.diag(-0.5 * beta * curv.sse)
        else:
            value = -curv.nll
            grad_b = torch.zeros_like(beta)
            hess_bb = torch.zeros((m, m), dtype=beta.dtype, device=beta.device)
        n_layers = len(self.names)
        grad_l = torch.zeros_like(lam)
        hess_ll = torch.zeros_like(lam)
        hess_lb = torch.zeros((n_layers, m), dtype=lam.dtype, device=lam.device)
        for i, name in enumerate(self.names):
            layer = self._layers[name]
            p, d = layer.shape
            g = layer.spectrum(beta)[0]
            a, lam_i = layer.a, lam[i]
            ag = a[:, None] * g[None, :]
            value = value - 0.5 * lam_i * layer.penalty - 0.5 * torch.log1p(ag / lam_i).sum()
            if not derivatives:
                continue
            r = 1.0 / (ag + lam_i)
            s_lam = lam_i * r.sum()
            grad_l[i] = -0.5 * lam_i * layer.penalty + 0.5 * p * d - 0.5 * s_lam
            hess_ll[i] = -0.5 * lam_i * layer.penalty - 0.5 * (s_lam - lam_i**2 * (r**2).sum())
            H = layer.rotated_factors(beta)  # only the derivatives need it
            h_diag = H.diagonal(dim1=-2, dim2=-1)  # (m, p)
            s_b = beta * (h_diag @ (a @ r))
            grad_b = grad_b - 0.5 * s_b
            hess_lb[i] = 0.5 * lam_i * beta * (h_diag @ (a @ r**2))
            C = r.T @ (a[:, None] ** 2 * r)  # (p, p)
            # sum_ab H_k[a,b] H_m[a,b] C[a,b], as one product (2x faster than the einsum).
            cross = (H * C).flatten(1) @ H.flatten(1).T
            hess_bb = hess_bb - 0.5 * torch.diag(s_b) + 0.5 * torch.outer(beta, beta) * cross
        if not derivatives:
            return value, None, None
        grad = torch.cat([grad_l, grad_b])
        hess = torch.cat([
            torch.cat([torch.diag(hess_ll), hess_lb], dim=1),
            torch.cat([hess_lb.T, hess_bb], dim=1),
        ])
        return value, grad, hess

    def eigenbasis(self, name, noise_precision=None):
        """The eigenbasis in which the posterior precision of one weight is diagonal.

        With the prior-whitened factors ``Ã = L_c^{-1} A L_c^{-T} = Q_a diag(a) Q_a^T``
        and ``G̃ = sum_k beta_k L_r^{-1} G_k L_r^{-T} = Q_g diag(g) Q_g^T``, the
        posterior precision of ``vec(W)`` is ``diag(a_i g_j + lambda)`` in the basis
        ``(L_c^{-T} Q_a) kron (L_r^{-T} Q_g)``.

        Parameters
        ----------
        name : str
            A weight name of the curvature.
        noise_precision : torch.Tensor of shape (k,), optional
            ``beta``, one per target; by default the inverse of ``noise_variance``
            (ones for a categorical likelihood).

        Returns
        -------
        basis : Eigenbasis
        """
        if name not in self._layers:
            raise ValueError(f"{name!r} is not a weight of the curvature: {self.names}.")
        beta = self._beta if noise_precision is None else noise_precision
        layer = self._layers[name]
        g, Qg = layer.spectrum(beta)
        Qa = (layer.Ma @ layer.Lc).T  # Ma = Qa^T Lc^{-1}
        W = self.curvature.layers[name].weight
        return Eigenbasis(a=layer.a, g=g, row_map=layer.row_map(beta), column_map=layer.Ma,
                          weight=Qg.T @ layer.Lr.T @ W @ layer.Lc @ Qa)

    def predictive_variance(self, module, X, *, observation_noise=False):
        """Variance of each output under the linearized (GLM) Laplace posterior.

        ``Var f_k(x) = sum_layers vec(J)^T P^{-1} vec(J)`` with ``J = d f_k(x)
        / d W`` the exact per-point Jacobian (``sum_t b_t a_t^T``), computed in
        the eigenbasis of each ``P`` in ``O(n T p d)`` per output. Only the
        weights in the curvature are uncertain.

        Parameters
        ----------
        module : torch.nn.Module
            The network at the mode (the weights the curvature was computed at).
        X : torch.Tensor
            A batch of inputs; pass large sets in batches.
        observation_noise : bool, default=False
            Gaussian likelihood: add ``noise_variance``, giving the predictive
            variance of ``y`` instead of ``f``.

        Returns
        -------
        variance : torch.Tensor of shape (n, k), float64
        """
        if observation_noise and self.noise_variance is None:
            raise ValueError("observation_noise=True needs a Gaussian likelihood.")
        beta = self._beta
        _, factors = output_gradients(module, X, self.names)
        # Per layer, once: the maps to the eigenbasis of P and its variances there.
        bases = {name: (layer.Ma, layer.row_map(beta),
                        layer.variances(beta, self.reg_lambda[name]))  # r: (d, p)
                 for name, layer in self._layers.items()}
        variance = 0.0
        for name, (Ma, Mb, r) in bases.items():
            # A layer's inputs are the same for every output: mapped once.
            a = factors[0][name][0]
            if a.shape[-1] != Ma.shape[0] or factors[0][name][1].shape[-1] != Mb.shape[0]:
                raise ValueError(f"The layer of {name!r} changed shape since kfac.")
            a_t = a @ Ma.T
            if a.shape[1] == 1:
                # J = b a^T: the quadratic form factorizes, no (p x d) per point.
                weighted = a_t[:, 0] ** 2 @ r  # (n, p)
                columns = [torch.einsum("nj,nj->n", weighted, (b[:, 0] @ Mb.T) ** 2)
                           for b in (per_layer[name][1] for per_layer in factors)]
            else:
                columns = [(torch.einsum("ntj,nti->nij", per_layer[name][1] @ Mb.T, a_t) ** 2
                            * r).sum((1, 2)) for per_layer in factors]
            variance = variance + torch.stack(columns, dim=1)
        if observation_noise:
            variance = variance + self.noise_variance
        return variance

    def expected_scatter(self, name, side="row", precision=None):
        """Posterior expectation of ``W M W^T`` (``side="row"``) or ``W^T M W`` (``"column"``).

        The exact expectation under the Laplace posterior ``N(W*, P^{-1})``:
        ``W* M W*^T`` plus the posterior-covariance term, computed in the
        eigenbasis of ``P``. With the default ``M`` (``Omega_c`` for rows,
        ``Omega_r`` for columns) it is the scatter matrix of the closed-form
        precision update, averaged over the posterior.

        Parameters
        ----------
        name : str
            A weight name of the curvature.
        side : {"row", "column"}, default="row"
            ``"row"``: ``E[W M W^T]`` (p x p), ``M`` is d x d.
            ``"column"``: ``E[W^T M W]`` (d x d), ``M`` is p x p.
        precision : torch.Tensor, optional
            ``M``; by default the prior's column (``"row"``) or row
            (``"column"``) precision.

        Returns
        -------
        scatter : torch.Tensor, float64, symmetric
        """
        if name not in self._layers:
            raise ValueError(f"{name!r} is not a weight of the curvature: {self.names}.")
        if side not in ("row", "column"):
            raise ValueError(f"side must be 'row' or 'column', got {side!r}.")
        layer = self._layers[name]
        W = self.curvature.layers[name].weight
        beta = self._beta
        Mb = layer.row_map(beta)
        r = layer.variances(beta, self.reg_lambda[name])  # (d, p)
        # theta - theta* = (U kron V) z with independent z_ij ~ N(0, r_ij),
        # U = L_c^{-T} Q_a = Ma^T and V = L_r^{-T} Q_g = Mb^T.
        U, V = layer.Ma.T, Mb.T
        if side == "row":
            M = layer.omega_c if precision is None else precision.to(W)
            weights = ((U.T @ M @ U).diagonal() @ r)  # (p,)
            spread = (V * weights) @ V.T
            scatter = W @ M @ W.T + spread
        else:
            M = layer.omega_r if precision is None else precision.to(W)
            weights = r @ (V.T @ M @ V).diagonal()  # (d,)
            spread = (U * weights) @ U.T
            scatter = W.T @ M @ W + spread
        return (scatter + scatter.T) / 2


def _lambda_dict(reg_lambda, names):
    if isinstance(reg_lambda, Mapping):
        missing = [n for n in names if n not in reg_lambda]
        if missing:
            raise ValueError(f"reg_lambda has no value for {missing}.")
        return {n: _check_lambda(reg_lambda[n], f"reg_lambda[{n!r}]") for n in names}
    value = _check_lambda(reg_lambda, "reg_lambda")
    return dict.fromkeys(names, value)


def _noise_tensor(noise_variance, curvature):
    if curvature.likelihood != "gaussian":
        if noise_variance is not None:
            raise ValueError("noise_variance is for a Gaussian likelihood only.")
        return None
    k = curvature.n_outputs
    if noise_variance is None:
        noise = curvature.sse / curvature.n_samples
        if not (noise > 0).all():
            raise ValueError(
                "The training residuals of a target are zero, so the default noise variance "
                "SSE / n is zero: pass noise_variance (or use fit_hyperparameters, which "
                "clips it to noise_bounds)."
            )
    else:
        noise = torch.as_tensor(noise_variance, dtype=torch.float64,
                                device=curvature.sse.device).reshape(-1)
        if noise.numel() == 1:
            noise = noise.expand(k)
        if noise.shape != (k,):
            raise ValueError(
                f"noise_variance must be a scalar or have one value per target ({k}), got "
                f"{noise.numel()} values."
            )
    if not (torch.isfinite(noise).all() and (noise > 0).all()):
        raise ValueError(f"noise_variance must be finite and > 0, got {noise.tolist()}.")
    return noise.clone()


def _precisions(priors, name):
    if priors is None:
        return None, None
    try:
        prior = priors[name]
    except (KeyError, ValueError, IndexError):
        raise ValueError(f"priors has no prior for the weight {name!r}.") from None
    return prior.row_precision, prior.column_precision


def _projected_newton(evaluate, t, lo, hi, max_iter, tol):
    """Maximize ``evaluate`` over ``lo <= t <= hi`` by Newton's method; the maximizer.

    ``evaluate(t, derivatives)`` returns the value and, with ``derivatives``, the
    gradient and Hessian. Coordinates that the gradient holds at a bound stay out of
    the Newton system; an Armijo backtracking line search keeps every step an ascent.
    """
    value, grad, hess = evaluate(t, True)
    for _ in range(max_iter):
        free = ~(((t <= lo) & (grad < 0)) | ((t >= hi) & (grad > 0)))
        if not free.any():
            break
        # Where the value is concave -hess is positive definite and the floor only
        # guards round-off; elsewhere the absolute eigenvalues keep the step an
        # ascent direction (the step is then a scaled gradient step there).
        w, Q = torch.linalg.eigh(-hess[free][:, free])
        w = w.abs().clamp_min(1e-12 * max(float(w.abs().max()), 1.0))
        step = torch.zeros_like(t)
        step[free] = Q @ ((Q.T @ grad[free]) / w)
        if float(grad @ step) <= tol:
            break
        alpha = 1.0
        while alpha >= _MIN_STEP:
            t_new = torch.minimum(torch.maximum(t + alpha * step, lo), hi)
            value_new = evaluate(t_new, False)[0]
            if value_new >= value + _ARMIJO * (grad @ (t_new - t)):
                break
            alpha /= 2
        else:
            break  # no ascent left at round-off level
        t = t_new
        value, grad, hess = evaluate(t, True)
    return t


def fit_hyperparameters(curvature, priors=None, reg_lambda=1.0, noise_variance=None, *,
                        fit_noise=True, lambda_bounds=LAMBDA_BOUNDS, noise_bounds=NOISE_BOUNDS,
                        max_iter=100, tol=1e-10, laplace=None):
    """Maximize the Laplace evidence over the strengths (and noise variances) at fixed weights.

    The evidence is jointly concave in ``(log lambda_l, log sigma2_k)`` at
    fixed weights, so Newton's method with the exact gradient and Hessian
    (from the small eigendecompositions), an Armijo backtracking line search
    and the bounds held by projection converges to the maximum from any
    start. Interleaved with training (as in Immer et al., 2021), each call
    moves the hyperparameters to the stationary point of MacKay's fixed-point
    equations for the current weights.

    Parameters
    ----------
    curvature : KFACCurvature
        From :func:`kfac` at the current weights.
    priors : mapping of str to MatrixNormalPrior, or None
        As for :class:`KroneckerLaplace`.
    reg_lambda : float or mapping of str to float, default=1.0
        Starting strengths.
    noise_variance : float or array-like of shape (k,), optional
        Gaussian likelihood: starting (or, with ``fit_noise=False``, fixed)
        noise variances; by default ``SSE_k / n`` clipped to ``noise_bounds``.
    fit_noise : bool, default=True
        Gaussian likelihood: also maximize over the noise variances.
    lambda_bounds, noise_bounds : (float, float)
        Bounds on the strengths and the noise variances. The maximum lies at
        a bound only when the data cannot fix it (a zero weight, or zero
        residuals).
    max_iter : int, default=100
        Most Newton steps.
    tol : float, default=1e-10
        Stop when the predicted increase of the log evidence (the Newton
        decrement) falls below ``tol``.
    laplace : KroneckerLaplace, optional
        A posterior built from this ``curvature`` and ``priors`` before, to
        refit from the given starting values: its whitened factors and their
        eigendecompositions are reused instead of computed again. It is
        updated in place and returned.

    Returns
    -------
    laplace : KroneckerLaplace
        The posterior at the maximizing hyperparameters: read
        ``laplace.reg_lambda``, ``laplace.noise_variance`` and
        ``laplace.log_evidence()``.

    Raises
    ------
    FloatingPointError
        If the curvature, a weight, or the evidence is NaN or infinite.

    Examples
    --------
    >>> import torch
    >>> from sk_adareg.laplace import fit_hyperparameters, kfac
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> net = torch.nn.Linear(3, 1, bias=False)
    >>> X = torch.randn(50, 3)
    >>> y = X @ net.weight.detach().T + 0.1 * torch.randn(50, 1)
    >>> la = fit_hyperparameters(kfac(net, [(X, y)], ["weight"]))
    >>> bool(la.noise_variance < 0.1)
    True
    """
    for what, (lo, hi) in (("lambda_bounds", lambda_bounds), ("noise_bounds", noise_bounds)):
        _check_lambda(lo, f"the lower {what}")
        _check_lambda(hi, f"the upper {what}")
        if lo > hi:
            raise ValueError(f"{what} must be (low, high) with low <= high, got {(lo, hi)}.")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 0:
        raise ValueError(f"max_iter must be an int >= 0, got {max_iter!r}.")
    gaussian = isinstance(curvature, KFACCurvature) and curvature.likelihood == "gaussian"
    if gaussian and noise_variance is None:
        noise_variance = (curvature.sse / curvature.n_samples).clamp(*noise_bounds)
    if laplace is None:
        la = KroneckerLaplace(curvature, priors, reg_lambda, noise_variance)
    elif laplace.curvature is not curvature:
        raise ValueError("laplace must have been built from the same curvature.")
    else:
        la = laplace
        la.reg_lambda = _lambda_dict(reg_lambda, la.names)
        la.noise_variance = _noise_tensor(noise_variance, curvature)
    fit_beta = gaussian and fit_noise
    n_layers = len(la.names)
    lam0 = la._lambdas()
    log_bounds = [(math.log(lambda_bounds[0]), math.log(lambda_bounds[1]))] * n_layers
    t = lam0.log()
    if fit_beta:
        # beta = 1 / sigma2: its bounds are the noise bounds inverted.
        log_bounds += [(-math.log(noise_bounds[1]), -math.log(noise_bounds[0]))] * len(la._beta)
        t = torch.cat([t, la._beta.log()])
    lo = torch.tensor([b[0] for b in log_bounds], dtype=t.dtype, device=t.device)
    hi = torch.tensor([b[1] for b in log_bounds], dtype=t.dtype, device=t.device)
    t = torch.minimum(torch.maximum(t, lo), hi)
    fixed_beta = la._beta

    def evaluate(t, derivatives):
        beta = t[n_layers:].exp() if fit_beta else fixed_beta
        value, grad, hess = la._evidence(t[:n_layers].exp(), beta, derivatives)
        if not torch.isfinite(value):
            raise FloatingPointError("The log evidence is NaN or infinite.")
        if derivatives and not fit_beta:
            grad, hess = grad[:n_layers], hess[:n_layers, :n_layers]
        return value, grad, hess

    t = _projected_newton(evaluate, t, lo, hi, max_iter, tol)
    la.reg_lambda = dict(zip(la.names, t[:n_layers].exp().tolist(), strict=True))
    if fit_beta:
        la.noise_variance = (-t[n_layers:]).exp()
    return la


def fit_tied_noise(curvature, priors, strengths, noise_variance, *, penalties=None):
    """The noise variances that maximize the evidence at strengths fixed in the loss's units.

    A fixed strength in the loss's units (the nets' numeric ``reg_lambda``),
    ``c_l = lambda_l / (n sum_k beta_k)``, fixes not ``lambda_l`` but its ratio to the
    noise precisions: the prior's strength moves with them. The evidence
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
    penalties : dict of str to float, optional
        Each prior's penalty ``Tr(Omega_r W Omega_c W^T)`` to take in the evidence
        instead of that of the curvature's weights (e.g. at the mode, where
        training stopped short of it). The returned posterior keeps them.

    Returns
    -------
    laplace : KroneckerLaplace
        The posterior at the maximizing noise variances and the strengths they imply.
    """
    names = list(strengths)
    n_layers = len(names)
    n = curvature.n_samples
    device = curvature.sse.device
    floor = LAMBDA_BOUNDS[0]
    rho = torch.tensor([strengths[name] * n for name in names], dtype=torch.float64,
                       device=device)
    beta_sum = float(np.sum(1 / np.asarray(noise_variance)))
    laplace = KroneckerLaplace(
        curvature, priors,
        {name: max(float(r) * beta_sum, floor) for name, r in zip(names, rho, strict=True)},
        noise_variance)
    for name, penalty in (penalties or {}).items():
        layer = laplace._layers[name]
        layer.penalty = torch.as_tensor(penalty, dtype=layer.penalty.dtype,
                                        device=layer.penalty.device)
    lo, hi = (-math.log(b) for b in reversed(NOISE_BOUNDS))  # bounds of log beta

    def strengths_at(beta):
        tied = rho * beta.sum()
        return tied.clamp_min(floor), tied > floor

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
