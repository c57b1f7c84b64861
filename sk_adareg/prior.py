"""The matrix-variate normal prior of AdaReg and its closed-form updates.

The prior of one weight (:class:`MatrixNormalPrior`) and of several
(:class:`PriorCollection`) are plain PyTorch modules: they regularize any
PyTorch model, with or without skorch (scikit-learn only checks their
hyperparameters).
"""

# SPDX-License-Identifier: BSD-3-Clause

import functools
import math

import numpy as np
import torch
from torch import nn

from ._params import PAPER_DEFAULTS, check_params

__all__ = ["MatrixNormalPrior", "PriorCollection", "inv_threshold"]

def _clipped_inverse(r, m, u, v, shift=0.0):
    """T[u,v](m / (r + shift)), with a non-positive denominator mapped to v.

    A zero (or negative) curvature ``r + shift`` means the subproblem's
    objective decreases without bound along that eigenvector, so the
    constrained minimiser sits at the upper bound ``v``. ``r`` is a tensor
    or a numpy array.
    """
    xp = np if isinstance(r, np.ndarray) else torch
    denom = r + shift
    positive = denom > 0
    return xp.where(positive, (m / xp.where(positive, denom, 1.0)).clip(u, v), v)


def _unit_mean_eigenvalues(r, m, u, v):
    """Scale-free eigenvalues T[u,v](m / (r' + mu)) whose mean is 1.

    ``r' = r * m / mean(r)`` is the spectrum of the scatter normalized so that
    ``Delta' / m`` has unit mean eigenvalue: the result no longer depends on
    the scale of the weights, only on the shape of their spectrum. The values
    are then the exact minimiser of ``Tr(Omega Delta') - m log det Omega``
    over ``u I <= Omega <= v I`` with the extra linear constraint
    ``Tr(Omega) = size``, whose multiplier ``mu`` shifts every eigenvalue of
    ``Delta'``. The mean of the clipped values is continuous and
    non-increasing in ``mu``, equal to ``v`` at the smallest of the shifts
    where a value leaves a bound and to ``u`` at the largest. A bisection over
    those sorted shifts finds the interval of the root, where the set of
    values inside ``(u, v)`` is fixed; there the mean is convex and
    decreasing in ``mu``, and Newton's method from the interval's left end
    converges to the root monotonically. A zero ``Delta`` (no information)
    gives the identity.

    The search runs on the host in float64 (a few dozen operations on a
    vector of the size of the layer, once per precision update): it costs a
    small fraction of the eigendecomposition, where a search in tensor
    operations cost more than it.
    """
    x = r.detach().cpu().numpy().astype(np.float64)
    mean = x.mean()
    if mean > 0:
        x = x * m / mean
    size = len(x)
    shifts = np.sort(np.concatenate([m / v - x, m / u - x]))

    def excess(shift):  # size * (mean - 1) at the shift
        return _clipped_inverse(x, m, u, v, shift).sum() - size

    lo, hi = 0, len(shifts) - 1  # excess >= 0 at shifts[lo], <= 0 at shifts[hi]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if excess(shifts[mid]) >= 0:
            lo = mid
        else:
            hi = mid
    left, right = shifts[lo], shifts[hi]
    inside = (m / v - x <= left) & (m / u - x >= right)
    shift = left
    if inside.any():
        free = x[inside]
        # The values at a bound stay there on the interval; the free ones must make up the rest.
        target = size - v * np.count_nonzero(m / v - x >= right) \
            - u * np.count_nonzero(m / u - x <= left)
        for _ in range(100):
            terms = m / (free + shift)
            step = (terms.sum() - target) / (terms ** 2).sum() * m
            if not step > 4 * np.finfo(np.float64).eps * max(abs(shift), m / v):
                break
            shift = min(shift + step, right)
    values = _clipped_inverse(x, m, u, v, shift)
    return torch.as_tensor(values, dtype=torch.float64).to(r.device)


def _inv_threshold_eigh(delta, m, u, v, unit_mean=False):
    """Return ``(Omega, eigenvalues of Omega)``, both float64."""
    delta = delta.detach().to(torch.float64)
    # The eigendecomposition of NaN fails with an opaque LinAlgError.
    if not torch.isfinite(delta).all():
        raise ValueError(
            "The scatter matrix has NaN or infinite entries (a weight is NaN or infinite, "
            "or too large for float64); the precisions cannot be updated from it."
        )
    delta = (delta + delta.T) / 2
    r, q = torch.linalg.eigh(delta)
    # Eigenvalues within round-off of zero are zero (the rank-deficient case
    # of a last layer): without this, a null direction of a large-scale Delta
    # could get a finite eigenvalue below v. Same tolerance as numpy's
    # matrix_rank.
    tol = r.abs().max() * max(delta.shape) * torch.finfo(torch.float64).eps
    r = torch.where(r > tol, r, torch.zeros_like(r))
    if unit_mean:
        eigenvalues = _unit_mean_eigenvalues(r, m, u, v)
    else:
        eigenvalues = _clipped_inverse(r, m, u, v)
    omega = (q * eigenvalues) @ q.T
    return (omega + omega.T) / 2, eigenvalues


def inv_threshold(delta, m, u, v, *, unit_mean=False):
    """Closed-form precision update of AdaReg (Algorithm 1, ``INVTHRESHOLD``).

    For a symmetric positive semi-definite ``delta = Q diag(r) Q^T``, returns
    ``Q diag(T[u,v](m / r)) Q^T`` with ``T[u,v](x) = min(v, max(u, x))``. By
    Corollary 1 of the paper this is the minimiser of
    ``Tr(Omega delta) - m log det Omega`` over ``u I <= Omega <= v I``.

    Parameters
    ----------
    delta : torch.Tensor of shape (k, k)
        Symmetric positive semi-definite matrix, e.g. ``W Omega_c W^T``. Any
        floating dtype and device; the eigendecomposition runs in float64 on
        that device.
    m : float
        The count in the numerator (the exponent of ``det Sigma`` in the
        matrix-normal density: ``d`` for the row precision, ``p`` for the
        column precision).
    u, v : float
        Bounds ``0 < u <= v`` on the eigenvalues of the result.
    unit_mean : bool, default=False
        If True (a variant beyond the paper, see :class:`MatrixNormalPrior`),
        first rescale ``delta`` so that ``delta / m`` has unit mean
        eigenvalue, then also constrain the mean eigenvalue of the result to
        1: the eigenvalues become ``T[u,v](m / (r' + mu))`` with ``r'`` the
        rescaled spectrum and the scalar ``mu`` the root of the mean (found exactly). The result
        is invariant to the scale of ``delta``. Needs ``u <= 1 <= v``.

    Returns
    -------
    omega : torch.Tensor of shape (k, k), float64
        The symmetric precision matrix, on ``delta``'s device.

    Notes
    -----
    Eigenvalues of ``delta`` equal to zero, within round-off, map to ``v``:
    a rank-deficient ``delta`` is the normal case for a last layer with fewer
    outputs than inputs.

    Examples
    --------
    >>> import torch
    >>> from sk_adareg.prior import inv_threshold
    >>> inv_threshold(torch.diag(torch.tensor([4.0, 0.0])), m=2, u=0.1, v=10)
    tensor([[ 0.5000,  0.0000],
            [ 0.0000, 10.0000]], dtype=torch.float64)
    """
    check_params({"u": u, "v": v, "precision_scale": "unit_mean" if unit_mean else "learned"},
                 "inv_threshold")
    if delta.ndim != 2 or delta.shape[0] != delta.shape[1]:
        raise ValueError(f"delta must be a square matrix, got shape {tuple(delta.shape)}.")
    if not m > 0:
        raise ValueError(f"m must be > 0, got m={m!r}.")
    return _inv_threshold_eigh(delta, m, u, v, unit_mean)[0]


def _cached(module, slot, names, compute, extra=None):
    """``compute(buffers)`` of the buffers ``names`` of ``module``, once per change.

    The value is kept under ``slot`` until a buffer is replaced (``.to(device)``,
    loading), written in place (its version counter moves) or given other
    storage, or ``extra`` (a hashable that ``compute`` depends on) changes; it
    is never pickled. The entry holds the buffers it was computed from, so
    that a replaced buffer is never mistaken for a new one at the same address.
    """
    # Buffers live in the module's _buffers: read there, not through nn.Module.__getattr__.
    return _cached_on(module, slot, [module._buffers[name] for name in names], compute, extra)


def _cached_on(owner, slot, buffers, compute, extra=None):
    """:func:`_cached` of any ``buffers`` (a list of tensors), kept in ``owner``'s cache."""
    cache = owner.__dict__.setdefault("_cast_cache", {})
    entry = cache.get(slot)
    # A tensor's version counter is private to torch (sk_adareg._private_api): without
    # it, nothing is taken from the cache.
    if entry is not None and entry[0] == extra and all(
            b is held and version is not None and b._version == version
            and b.data_ptr() == pointer
            for b, (held, version, pointer) in zip(buffers, entry[1], strict=True)):
        return entry[2]
    stamps = [(b, getattr(b, "_version", None), b.data_ptr()) for b in buffers]
    value = compute(buffers)
    cache[slot] = (extra, stamps, value)
    return value


_PRECISIONS = ("row_precision", "column_precision")


def _parameter(module, path):
    """``module.get_parameter(".".join(path))`` without its checks: a per-batch lookup.

    Reads the modules' own dictionaries, as ``nn.Module.__getattr__`` does,
    with a fallback to attribute access for anything stored elsewhere.
    """
    owner = module
    try:
        for name in path[:-1]:
            owner = owner._modules[name]
        return owner._parameters[path[-1]]
    except KeyError:
        return functools.reduce(getattr, path, module)


def _cast(module, names, dtype):
    """The buffers ``names`` of ``module`` in ``dtype``, cast once per change, not per batch.

    The float64 precisions change once every ``cov_update_every`` epochs; the
    penalty needs them in the weights' dtype at every batch. One copy is kept
    per dtype, so that float64 readings between batches do not evict the
    float32 copies.
    """
    return _cached(module, (dtype, *names), names,
                   lambda buffers: tuple(b.to(dtype) for b in buffers))


def _without_cast_cache(state):
    """A module's ``__getstate__``: its state without the cached casts."""
    return {k: v for k, v in state.items() if k != "_cast_cache"}


def _quadratic_form(w, omega_r, omega_c):
    """``G = Omega_r W Omega_c`` and ``Tr(Omega_r W Omega_c W^T) = sum(G * W)``."""
    g = omega_r @ w @ omega_c
    return g, (g * w).sum()


class _KroneckerQuadratic(torch.autograd.Function):
    """``Tr(Omega_r W Omega_c W^T)`` for symmetric precisions, differentiable in ``W``.

    ``G = Omega_r W Omega_c`` gives both the value ``sum(G * W)`` and the
    gradient ``2 G``: two matrix products, where autograd through the same
    expression takes four.
    """

    @staticmethod
    def forward(ctx, w, omega_r, omega_c):
        g, value = _quadratic_form(w, omega_r, omega_c)
        ctx.save_for_backward(g)
        return value

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        (g,) = ctx.saved_tensors
        return 2 * grad * g, None, None


class MatrixNormalPrior(nn.Module):
    """Matrix-variate normal prior ``MN(0, Sigma_r, Sigma_c)`` on one weight matrix.

    Holds the row precision ``Omega_r = Sigma_r^{-1}`` (p x p) and the column
    precision ``Omega_c = Sigma_c^{-1}`` (d x d) of a weight ``W`` of shape
    (p, d), both as float64 buffers that start at the identity; they follow
    ``.to(device)``, ``state_dict()`` and pickling. Rows are output units: for
    ``nn.Linear.weight``, p = out_features and d = in_features. A convolution
    weight (out, in, kh, kw) is treated as the matrix out x (in * kh * kw)
    (Appendix B.3 of the paper).

    Training alternates optimizer steps on ``loss + reg_lambda * penalty(W)``
    with :meth:`update`, one block of the coordinate descent of Algorithm 1.

    Parameters
    ----------
    weight_shape : tuple of int
        Shape of the regularized weight, 2-D (p, d) or 4-D (out, in, kh, kw).
    u, v : float, default=1e-3, 1e3
        Bounds ``0 < u <= v`` on the eigenvalues of both precisions (the
        constraint of objective (4)). The prior's strength on ``W`` then lies
        between ``u**2`` and ``v**2`` times the identity (``Omega_c`` kron
        ``Omega_r``). The defaults of this class (these bounds and
        ``precision_scale="learned"``) are the paper's on purpose: it is the
        paper's prior. The nets and estimators default to the values measured
        in the user guide's "The parameters that matter" (0.1, 10,
        ``"unit_mean"``).
    numerator : {"paper", "authors"}, default="paper"
        The count in the closed-form update. ``"paper"`` follows Corollary 1:
        ``d`` for ``Omega_r`` and ``p`` for ``Omega_c``, the exponents of the
        determinants in the matrix-normal density. ``"authors"`` follows the
        authors' public code (``update_covs``), which divides by the size of
        the matrix being updated (``p`` for ``Omega_r``, ``d`` for
        ``Omega_c``); :meth:`objective` then uses the same swapped exponents,
        so that each update still minimises it.
    precision_scale : {"learned", "unit_mean"}, default="learned"
        ``"learned"`` is the paper: the scale of each precision is learned
        within ``[u, v]``. Its joint minimum over ``W`` and the precisions is
        degenerate: as ``W`` shrinks the optimal precisions grow toward ``v``,
        which shrinks ``W`` further. ``"unit_mean"`` (beyond the paper) fixes
        the scale: each update sees the scatter matrix normalized to unit mean
        eigenvalue per count and returns the exact minimiser with mean
        eigenvalue 1. The precisions then depend only on how the rows and
        columns of ``W`` correlate, not on its scale, so the prior learns the
        correlation structure while ``reg_lambda`` sets the overall strength,
        as in weight decay (multilinear relationship networks fix the scale of
        their task covariance the same way). The two block steps then minimise
        two scale-free subproblems, so :meth:`objective` is no longer
        guaranteed to decrease. Needs ``u <= 1 <= v``.

    Attributes
    ----------
    row_precision : torch.Tensor of shape (p, p), float64
        ``Omega_r``.
    column_precision : torch.Tensor of shape (d, d), float64
        ``Omega_c``.
    row_eigenvalues, column_eigenvalues : torch.Tensor, float64
        Eigenvalues of the precisions, kept from the last update so that the
        log-determinants and extreme eigenvalues cost nothing to read.

    See Also
    --------
    inv_threshold : The closed-form update of one precision.

    References
    ----------
    .. [1] H. Zhao, Y.-H. H. Tsai, R. Salakhutdinov and G. J. Gordon,
       "Learning Neural Networks with Adaptive Regularization", NeurIPS 2019.

    Examples
    --------
    >>> import torch
    >>> from sk_adareg.prior import MatrixNormalPrior
    >>> layer = torch.nn.Linear(5, 3)
    >>> prior = MatrixNormalPrior(layer.weight.shape, u=0.1, v=10)
    >>> loss = prior.penalty(layer.weight)   # add reg_lambda * loss to the data loss
    >>> _ = prior.update(layer.weight)       # closed-form step on both precisions
    >>> prior.row_covariance.shape, prior.column_covariance.shape
    (torch.Size([3, 3]), torch.Size([5, 5]))
    """

    def __getstate__(self):
        return _without_cast_cache(super().__getstate__())

    def __init__(self, weight_shape, u=PAPER_DEFAULTS["u"], v=PAPER_DEFAULTS["v"], *,
                 numerator=PAPER_DEFAULTS["numerator"],
                 precision_scale=PAPER_DEFAULTS["precision_scale"]):
        super().__init__()
        weight_shape = tuple(int(s) for s in weight_shape)
        if len(weight_shape) not in (2, 4) or min(weight_shape) < 1:
            raise ValueError(
                "weight_shape must be 2-D (p, d) or 4-D (out, in, kh, kw) with "
                f"positive sizes, got {weight_shape}."
            )
        self.weight_shape = weight_shape
        self.set_hyperparameters(u=u, v=v, numerator=numerator, precision_scale=precision_scale)
        p, d = self.shape
        for name, size in (("row", p), ("column", d)):
            self.register_buffer(f"{name}_precision", torch.eye(size, dtype=torch.float64))
            self.register_buffer(f"{name}_eigenvalues", torch.ones(size, dtype=torch.float64))

    def set_hyperparameters(self, *, u, v, numerator=PAPER_DEFAULTS["numerator"],
                            precision_scale=PAPER_DEFAULTS["precision_scale"]):
        """Check and set the bounds and conventions; the precisions stay as they are.

        Parameters
        ----------
        u, v, numerator, precision_scale
            As in the constructor.

        Returns
        -------
        self : MatrixNormalPrior
        """
        check_params({"u": u, "v": v, "numerator": numerator,
                      "precision_scale": precision_scale}, type(self).__name__)
        self.u = float(u)
        self.v = float(v)
        self.numerator = numerator
        self.precision_scale = precision_scale
        return self

    @property
    def shape(self):
        """(p, d): the shape of the weight seen as a matrix."""
        return self.weight_shape[0], math.prod(self.weight_shape[1:])

    @property
    def counts(self):
        """(m_r, m_c): the counts of the row and column updates and log-determinants."""
        p, d = self.shape
        # Corollary 1 divides by the other dimension (the exponent of det Sigma in
        # the density); the authors' code divides by the updated matrix's size.
        return (d, p) if self.numerator == "paper" else (p, d)

    def extra_repr(self):
        return (
            f"weight_shape={self.weight_shape}, u={self.u:g}, v={self.v:g}, "
            f"numerator={self.numerator!r}, precision_scale={self.precision_scale!r}"
        )

    def as_matrix(self, weight):
        """Return ``weight`` viewed as the (p, d) matrix the prior sits on.

        Parameters
        ----------
        weight : torch.Tensor
            A weight of shape ``weight_shape``.

        Returns
        -------
        matrix : torch.Tensor of shape (p, d)
            A view of ``weight``, same dtype and device.
        """
        if tuple(weight.shape) != self.weight_shape:
            raise ValueError(
                f"weight has shape {tuple(weight.shape)}, but this prior was built "
                f"for weights of shape {self.weight_shape}."
            )
        return weight.reshape(self.shape)

    def penalty(self, weight):
        """The regularizer ``Tr(Omega_r W Omega_c W^T) = ||Omega_r^1/2 W Omega_c^1/2||_F^2``.

        Differentiable in ``weight`` (once) and computed in its dtype, with two
        matrix products and no square roots, so it is cheap enough for every
        batch: the gradient ``2 Omega_r W Omega_c`` is the forward's product.

        Parameters
        ----------
        weight : torch.Tensor
            A weight of shape ``weight_shape``.

        Returns
        -------
        penalty : torch.Tensor
            A scalar in ``weight``'s dtype.
        """
        w = self.as_matrix(weight)
        return _KroneckerQuadratic.apply(w, *_cast(self, _PRECISIONS, w.dtype))

    @torch.no_grad()
    def update(self, weight):
        """One block step of Algorithm 1 (lines 3-4) with ``weight`` fixed.

        ``Omega_r <- inv_threshold(W Omega_c W^T, m_r, u, v)``, then
        ``Omega_c <- inv_threshold(W^T Omega_r W, m_c, u, v)``, in float64.

        Parameters
        ----------
        weight : torch.Tensor
            A weight of shape ``weight_shape``; not modified. A ``ValueError``
            is raised, and the precisions are left as they were, when it has
            NaN or infinite entries.

        Returns
        -------
        self : MatrixNormalPrior
        """
        w = self.as_matrix(weight.detach()).to(torch.float64)
        m_r, m_c = self.counts
        unit_mean = self.precision_scale == "unit_mean"
        # Rows first, then columns with the new Omega_r, as in Algorithm 1 (the
        # authors' code updates the column precision first).
        omega_r, eig_r = _inv_threshold_eigh(
            w @ self.column_precision @ w.T, m_r, self.u, self.v, unit_mean)
        omega_c, eig_c = _inv_threshold_eigh(
            w.T @ omega_r @ w, m_c, self.u, self.v, unit_mean)
        # Copied only once both succeeded: a failed update leaves the prior as it was.
        self.row_precision.copy_(omega_r)
        self.row_eigenvalues.copy_(eig_r)
        self.column_precision.copy_(omega_c)
        self.column_eigenvalues.copy_(eig_c)
        return self

    def reset(self):
        """Set both precisions back to the identity.

        Returns
        -------
        self : MatrixNormalPrior
        """
        with torch.no_grad():
            for name in ("row", "column"):
                precision = getattr(self, f"{name}_precision")
                precision.copy_(torch.eye(precision.shape[0], dtype=precision.dtype))
                getattr(self, f"{name}_eigenvalues").fill_(1.0)
        return self

    def _log_det_term(self):
        # m_r log det Omega_r + m_c log det Omega_c, from the stored eigenvalues.
        m_r, m_c = self.counts
        return m_r * self.row_eigenvalues.log().sum() + m_c * self.column_eigenvalues.log().sum()

    def objective(self, weight):
        """The prior's part of objective (4), without ``reg_lambda``.

        ``Tr(Omega_r W Omega_c W^T) - m_r log det Omega_r - m_c log det Omega_c``
        with ``(m_r, m_c) = (d, p)`` (see ``numerator``). This is
        ``-2 log p(W | Sigma_r, Sigma_c) - p d log(2 pi)``; with ``weight``
        fixed, :meth:`update` never increases it.

        Parameters
        ----------
        weight : torch.Tensor
            A weight of shape ``weight_shape``.

        Returns
        -------
        objective : torch.Tensor
            A float64 scalar, differentiable in ``weight``.
        """
        return self.penalty(weight.to(torch.float64)) - self._log_det_term()

    def diagnostics(self, weight):
        """Cheap per-epoch readings: penalty, objective and extreme eigenvalues.

        The extreme eigenvalues reveal a collapsing layer: as ``W`` shrinks, the
        optimal precisions grow toward ``v``.

        Parameters
        ----------
        weight : torch.Tensor
            A weight of shape ``weight_shape``.

        Returns
        -------
        readings : dict of str to float
            ``penalty``, ``objective``, ``row_precision_min``,
            ``row_precision_max``, ``column_precision_min``,
            ``column_precision_max``.
        """
        with torch.no_grad():
            # The value of penalty(), without the autograd Function's overhead: a reading.
            w = self.as_matrix(weight.detach()).to(torch.float64)
            penalty = _quadratic_form(w, *_cast(self, _PRECISIONS, w.dtype))[1].item()
            # The spectrum changes only at updates: its readings are kept, as floats, until
            # then. The penalty is the one host transfer per epoch.
            log_det, *extremes = _cached(
                self, "spectrum", ("row_eigenvalues", "column_eigenvalues"),
                lambda _: torch.stack([
                    self._log_det_term(),
                    self.row_eigenvalues.min(), self.row_eigenvalues.max(),
                    self.column_eigenvalues.min(), self.column_eigenvalues.max()]).tolist())
        keys = ("penalty", "objective", "row_precision_min", "row_precision_max",
                "column_precision_min", "column_precision_max")
        # float64 subtraction, as the tensors' was.
        return dict(zip(keys, [penalty, penalty - log_det, *extremes], strict=True))

    @property
    def row_covariance(self):
        """``Sigma_r = Omega_r^{-1}`` (p x p, float64), from the eigendecomposition."""
        return _covariance(self.row_precision)

    @property
    def column_covariance(self):
        """``Sigma_c = Omega_c^{-1}`` (d x d, float64), from the eigendecomposition."""
        return _covariance(self.column_precision)


class PriorCollection(nn.Module):
    """The priors of a network, one :class:`MatrixNormalPrior` per weight.

    Parameters
    ----------
    module : torch.nn.Module
        The network whose weights carry the priors.
    names : list of str
        Parameter names of ``module``, as in ``module.named_parameters()``.
    **prior_params
        Passed on to :class:`MatrixNormalPrior` (``u``, ``v``, ``numerator``,
        ``precision_scale``).

    Attributes
    ----------
    strengths : torch.Tensor of shape (n_priors,), float64
        A relative strength per prior, 1 to start with: :meth:`penalty` is the
        sum of the priors' penalties weighted by them. A net with learned
        strengths sets them to what it learns (:meth:`set_strengths`).

    Notes
    -----
    Pure PyTorch: it regularizes any model. Add ``reg_lambda *
    priors.penalty(model)`` to the loss of each step, and call
    ``priors.update(model)`` every few epochs.

    Examples
    --------
    >>> from torch import nn
    >>> from sk_adareg.prior import PriorCollection
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> priors = PriorCollection(net, ["2.weight"], u=0.1, v=10)
    >>> priors["2.weight"].shape
    (2, 8)
    """

    def __getstate__(self):
        return _without_cast_cache(super().__getstate__())

    def __init__(self, module, names, **prior_params):
        super().__init__()
        self.names = list(names)
        self.priors = nn.ModuleList(
            MatrixNormalPrior(module.get_parameter(name).shape, **prior_params)
            for name in self.names
        )
        self.register_buffer("strengths", torch.ones(len(self.names), dtype=torch.float64))

    def __getitem__(self, name):
        return self.priors[self.names.index(name)]

    def __len__(self):
        return len(self.names)

    def items(self):
        """Pairs ``(parameter name, prior)``."""
        return zip(self.names, self.priors, strict=True)

    def _paths(self):
        """Each weight's name split at its dots, split once (a per-batch lookup)."""
        paths = self.__dict__.get("_split_names")
        if paths is None:
            paths = self.__dict__["_split_names"] = [name.split(".") for name in self.names]
        return paths

    def set_hyperparameters(self, **prior_params):
        """Set the bounds and conventions of every prior; the precisions stay as they are.

        Parameters
        ----------
        **prior_params
            As for :meth:`MatrixNormalPrior.set_hyperparameters`.

        Returns
        -------
        self : PriorCollection
        """
        for prior in self.priors:
            prior.set_hyperparameters(**prior_params)
        return self

    def set_strengths(self, strengths):
        """Set the relative strength of each prior.

        Parameters
        ----------
        strengths : mapping of str to float
            A finite value >= 0 per parameter name of :attr:`names`.

        Returns
        -------
        self : PriorCollection
        """
        values = [float(strengths[name]) for name in self.names]
        if not all(math.isfinite(v) and v >= 0 for v in values):
            raise ValueError(f"strengths must be finite and >= 0, got {dict(strengths)}.")
        self.strengths.copy_(torch.tensor(values, dtype=torch.float64))
        return self

    def add_penalty_gradients(self, module, scale=1.0, *, use_strengths=True):
        """Add the gradient of ``scale * penalty(module)`` to the weights' ``.grad``.

        The penalty's gradient is ``2 c Omega_r W Omega_c`` for each weight (``c``
        its strength times ``scale``): added after the data loss's backward pass,
        it costs two matrix products and an addition per weight, where autograd
        through :meth:`penalty` adds a graph node, its backward and the loss's
        bookkeeping at every batch. The value comes with it, from the same product.

        Parameters
        ----------
        module : torch.nn.Module
            The network the priors were built for, after ``backward()``.
        scale : float, default=1.0
            A factor of every strength (the net's ``reg_lambda``).
        use_strengths : bool, default=True
            False takes every strength as 1 without reading :attr:`strengths`
            (fewer tensor operations per batch): for strengths known to be 1.

        Returns
        -------
        penalty : torch.Tensor
            ``scale * penalty(module)``, a scalar without gradient.
        """
        return self.penalty_step(module, scale, use_strengths=use_strengths)()

    def penalty_step(self, module, scale=1.0, *, use_strengths=True):
        """:meth:`add_penalty_gradients` bound to the current weights, precisions and strengths.

        Looking up the weights and checking the cast factors for a change cost
        about as much as a small layer's penalty; a training loop in which
        nothing can change the precisions, the strengths or the module's
        parameters between its steps (an epoch without batch callbacks) binds
        them once and calls the result at every step.

        Parameters
        ----------
        module : torch.nn.Module
            The network the priors were built for.
        scale : float, default=1.0
            A factor of every strength (the net's ``reg_lambda``).
        use_strengths : bool, default=True
            As in :meth:`add_penalty_gradients`.

        Returns
        -------
        step : callable
            Called without arguments (after ``backward()``), it adds the
            gradient of ``scale * penalty(module)`` to the weights' ``.grad``
            and returns the penalty, as :meth:`add_penalty_gradients` does,
            with the factors in force when it was made.
        """
        weights = [_parameter(module, path) for path in self._paths()]
        factors = self._penalty_factors(tuple(w.dtype for w in weights), scale, use_strengths)
        return _PenaltyStep([(weight, omega_r, scaled_c, None if weight.shape == shape else shape)
                             for weight, (omega_r, scaled_c, shape) in zip(
                                 weights, factors, strict=True)])

    def _penalty_factors(self, dtypes, scale, use_strengths):
        """Per prior: ``Omega_r`` and ``scale * strength * Omega_c`` in ``dtypes``, and its shape.

        The factors of :meth:`add_penalty_gradients`, computed once per change of
        a precision, a strength, ``scale`` or a dtype (the strengths are read to
        the host then, not at every batch); checking for a change is all the
        per-batch work. The strength rides on ``Omega_c``: no per-batch scaling.
        """
        buffers = [self._buffers["strengths"]]
        for prior in self.priors:
            buffers += [prior._buffers[name] for name in _PRECISIONS]

        def compute(buffers):
            strengths = buffers[0].tolist() if use_strengths else [1.0] * len(self.priors)
            return [(omega_r.to(dtype), (scale * strength * omega_c).to(dtype), prior.shape)
                    for prior, strength, dtype, omega_r, omega_c in zip(
                        self.priors, strengths, dtypes, buffers[1::2], buffers[2::2],
                        strict=True)]

        return _cached_on(self, "penalty factors", buffers, compute,
                          extra=(scale, use_strengths, dtypes))

    def penalty(self, module):
        """The priors' penalties on the weights of ``module``, summed with :attr:`strengths`.

        Parameters
        ----------
        module : torch.nn.Module
            The network the priors were built for.

        Returns
        -------
        penalty : torch.Tensor
            A differentiable scalar.
        """
        penalties = torch.stack([prior.penalty(module.get_parameter(name))
                                 for name, prior in self.items()])
        (strengths,) = _cast(self, ("strengths",), penalties.dtype)
        return penalties @ strengths

    def update(self, module):
        """One closed-form update of every prior from the current weights.

        Parameters
        ----------
        module : torch.nn.Module
            The network the priors were built for.

        Returns
        -------
        self : PriorCollection
        """
        for name, prior in self.items():
            prior.update(module.get_parameter(name))
        return self

    def diagnostics(self, module):
        """Summed penalty and objective, extreme precision eigenvalues over all priors.

        Parameters
        ----------
        module : torch.nn.Module
            The network the priors were built for.

        Returns
        -------
        readings : dict of str to float
            See :meth:`MatrixNormalPrior.diagnostics`.
        """
        readings = [prior.diagnostics(module.get_parameter(name)) for name, prior in self.items()]
        summary = {}
        for key in readings[0]:
            values = [r[key] for r in readings]
            reduce = min if key.endswith("_min") else max if key.endswith("_max") else sum
            summary[key] = reduce(values)
        return summary


class _PenaltyStep:
    """The per-step work of :meth:`PriorCollection.add_penalty_gradients` for fixed factors."""

    __slots__ = ("terms",)

    def __init__(self, terms):
        self.terms = terms  # per weight: the parameter, Omega_r, scaled Omega_c, matrix shape

    def __call__(self):
        total = None
        for weight, omega_r, scaled_c, shape in self.terms:
            # The products are the gradient: on the detached weight, autograd records nothing.
            w = weight.detach()
            if shape is not None:  # a convolution's kernel, as a matrix
                w = w.reshape(shape)
            g = omega_r @ w @ scaled_c
            value = torch.vdot(g.view(-1), w.reshape(-1))
            total = value if total is None else total + value
            if weight.requires_grad:
                if weight.grad is None:
                    weight.grad = torch.zeros_like(weight)
                weight.grad.add_(g if shape is None else g.view(weight.shape), alpha=2.0)
        return total


def _covariance(precision):
    # Q diag(1 / lambda) Q^T: exact for the clipped spectrum, no matrix inverse.
    eigenvalues, q = torch.linalg.eigh(precision)
    cov = (q / eigenvalues) @ q.T
    return (cov + cov.T) / 2
