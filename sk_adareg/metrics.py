"""Diagnostics of what AdaReg learned: norms of the weights and correlations of the prior.

The paper explains AdaReg's effect on generalization through the stable rank
and the spectral norm of the regularized weights (Section 4, Fig. 4 and
Table 2); :func:`stable_rank`, :func:`spectral_norm` and :func:`weight_norms`
compute them. :func:`covariance_to_correlation` turns the learned row or
column covariance into the correlations it implies (Appendix B.4).

For the per-task explained variance of Table 1, use scikit-learn's
``explained_variance_score(y_true, y_pred, multioutput="raw_values")``.
"""

# SPDX-License-Identifier: BSD-3-Clause

import numpy as np
import torch
from sklearn.utils import check_array

from ._fitted import fitted_model

__all__ = ["covariance_to_correlation", "spectral_norm", "stable_rank", "weight_norms"]


def _to_float64(array, name):
    """``array`` (numpy-like or torch tensor, any device) as a float64 numpy array."""
    if isinstance(array, torch.Tensor):
        if array.is_complex():
            raise TypeError(f"{name} must be real, got a tensor of dtype {array.dtype}.")
        array = array.detach().to(device="cpu", dtype=torch.float64).numpy()
    return check_array(array, ensure_2d=False, allow_nd=True, dtype=np.float64,
                       ensure_min_samples=0, input_name=name)


def _as_matrix(W, name="W"):
    """``W`` as a float64 matrix; a weight of more than 2 dims becomes (shape[0], -1)."""
    W = _to_float64(W, name)
    if W.ndim < 2:
        raise ValueError(
            f"{name} must have at least 2 dimensions (a matrix, or a convolution weight "
            f"(out, in, kh, kw)), got shape {W.shape}."
        )
    if W.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {W.shape}.")
    # As MatrixNormalPrior.as_matrix: one row per output unit (Appendix B.3).
    return W.reshape(W.shape[0], -1)


def _norms(matrix):
    """(stable rank, spectral norm) of a float64 matrix, from one SVD."""
    s = np.linalg.svd(matrix, compute_uv=False)
    if s[0] == 0:
        return 0.0, 0.0
    # Ratios first: no overflow of the squares for huge weights.
    return float(np.sum((s / s[0]) ** 2)), float(s[0])


def stable_rank(W):
    """Stable rank ``||W||_F^2 / ||W||_2^2`` of a weight matrix.

    It lies between 1 and the rank of ``W``, equals the rank when all nonzero
    singular values are equal, is invariant to the scale of ``W``, and unlike
    the rank it is barely affected by tiny singular values. The paper reports
    it for the last layer (Fig. 4, Table 2): AdaReg lowers it.

    Parameters
    ----------
    W : array-like or torch.Tensor of shape (p, d) or (out, in, kh, kw)
        The weight. Tensors may live on any device and have any real dtype;
        the computation runs in float64 on the CPU. A weight with more than
        two dimensions is seen as the matrix ``W.reshape(W.shape[0], -1)``,
        as the prior sees a convolution weight.

    Returns
    -------
    stable_rank : float
        ``0.0`` for the zero matrix (the stable rank of ``t * W`` is
        constant for ``t > 0`` but ``W = 0`` has rank 0: the convention
        follows the rank).

    Raises
    ------
    ValueError
        If ``W`` has fewer than 2 dimensions, is empty, or holds NaN or
        infinite values.

    See Also
    --------
    spectral_norm : The denominator's square root.
    weight_norms : Both, for every regularized weight of a fitted estimator.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_adareg.metrics import stable_rank
    >>> stable_rank(np.eye(3))
    3.0
    >>> stable_rank(np.diag([2.0, 1.0]))
    1.25
    """
    return _norms(_as_matrix(W))[0]


def spectral_norm(W):
    """Spectral norm ``||W||_2``: the largest singular value of a weight matrix.

    Parameters
    ----------
    W : array-like or torch.Tensor of shape (p, d) or (out, in, kh, kw)
        The weight, as in :func:`stable_rank` (a convolution weight is seen
        as ``W.reshape(W.shape[0], -1)``).

    Returns
    -------
    spectral_norm : float
        Computed in float64; equals ``numpy.linalg.norm(W, 2)`` for a matrix.

    Raises
    ------
    ValueError
        If ``W`` has fewer than 2 dimensions, is empty, or holds NaN or
        infinite values.

    Examples
    --------
    >>> import torch
    >>> from sk_adareg.metrics import spectral_norm
    >>> spectral_norm(torch.tensor([[3.0, 0.0], [0.0, -4.0]]))
    4.0
    """
    return _norms(_as_matrix(W))[1]


def weight_norms(estimator):
    """Stable rank and spectral norm of every regularized weight of a fitted model.

    Parameters
    ----------
    estimator : AdaRegClassifier, AdaRegMultiTaskRegressor, Pipeline or AdaReg skorch net
        A fitted estimator, a fitted pipeline whose last step is one (or an
        initialized net of :mod:`sk_adareg.net`).
        The weights are read from its torch module (``estimator.net_.module_``).

    Returns
    -------
    norms : dict of str to dict
        Keyed by parameter name, in the order of ``adareg_layers_``; each
        value is ``{"stable_rank": float, "spectral_norm": float}`` of the
        weight seen as the prior sees it (conv weights as out x (in*kh*kw)).

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If the estimator is not fitted.
    TypeError
        If ``estimator`` is not an AdaReg estimator or net.

    See Also
    --------
    stable_rank, spectral_norm : The two measures for any weight.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_adareg import AdaRegClassifier
    >>> from sk_adareg.metrics import weight_norms
    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.normal(size=(40, 4)), np.repeat([0, 1], 20)
    >>> clf = AdaRegClassifier(max_epochs=2, random_state=0).fit(X, y)
    >>> norms = weight_norms(clf)
    >>> list(norms), sorted(norms["output.weight"])
    (['hidden.0.weight', 'output.weight'], ['spectral_norm', 'stable_rank'])
    """
    model = fitted_model(estimator)
    norms = {}
    for name in model.layers:
        rank, norm = _norms(model.weight(name))
        norms[name] = {"stable_rank": rank, "spectral_norm": norm}
    return norms


def covariance_to_correlation(covariance):
    """Correlation matrix ``D^-1/2 Sigma D^-1/2`` of a covariance ``Sigma`` (D its diagonal).

    Parameters
    ----------
    covariance : array-like or torch.Tensor of shape (k, k)
        A symmetric matrix with a positive diagonal, e.g. ``row_covariance_``
        of a fitted estimator.

    Returns
    -------
    correlation : ndarray of shape (k, k), float64
        Symmetric, with exact ones on the diagonal and entries clipped to
        ``[-1, 1]`` (round-off only, for a positive semi-definite input).

    Raises
    ------
    ValueError
        If ``covariance`` is not square, not symmetric (up to round-off), has
        a non-positive variance on its diagonal, or holds NaN or infinite
        values.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_adareg.metrics import covariance_to_correlation
    >>> covariance_to_correlation(np.array([[4.0, -3.0], [-3.0, 9.0]]))
    array([[ 1. , -0.5],
           [-0.5,  1. ]])
    """
    cov = _to_float64(covariance, "covariance")
    if cov.ndim != 2 or cov.shape[0] != cov.shape[1] or cov.size == 0:
        raise ValueError(f"covariance must be a non-empty square matrix, got shape {cov.shape}.")
    scale = np.abs(cov).max()
    if not np.allclose(cov, cov.T, rtol=1e-6, atol=1e-10 * scale):
        raise ValueError(
            "covariance must be symmetric; its largest asymmetry |C - C.T| is "
            f"{np.abs(cov - cov.T).max():.3g}."
        )
    variances = np.diag(cov)
    if np.any(variances <= 0):
        i = int(np.argmax(variances <= 0))
        raise ValueError(
            "covariance must have a positive diagonal (variances), got "
            f"covariance[{i}, {i}]={float(variances[i])!r}."
        )
    inv_std = 1.0 / np.sqrt(variances)
    corr = cov * inv_std[:, None] * inv_std[None, :]
    corr = np.clip((corr + corr.T) / 2, -1.0, 1.0)
    np.fill_diagonal(corr, 1.0)
    return corr
