"""Each input's range in the training data, and inputs clipped to it (``clip_inputs``).

A ReLU network extrapolates linearly: far outside the training inputs its predictions
run away. Clipping each input to its training range before the network keeps them at
what the network learned at the edge of the data, as tree ensembles effectively do.
"""

# SPDX-License-Identifier: BSD-3-Clause

import numpy as np
import scipy.sparse

__all__ = ["clip_to", "input_bounds", "union_bounds"]


def input_bounds(X):
    """``(low, high)``: each input's smallest and largest value in ``X``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, ...) or scipy sparse matrix
        Validated inputs; a sparse matrix's implicit zeros count.

    Returns
    -------
    bounds : tuple of ndarray of shape ``X.shape[1:]``
    """
    if scipy.sparse.issparse(X):
        return (X.min(axis=0).toarray().ravel().astype(X.dtype),
                X.max(axis=0).toarray().ravel().astype(X.dtype))
    return X.min(axis=0), X.max(axis=0)


def union_bounds(first, second):
    """The bounds of two sets of inputs together (``partial_fit``, ``warm_start``)."""
    return np.minimum(first[0], second[0]), np.maximum(first[1], second[1])


def clip_to(X, bounds):
    """``X`` with each input clipped to ``bounds``: a new array, or a new CSR matrix.

    Parameters
    ----------
    X : ndarray or scipy sparse CSR matrix
    bounds : tuple of ndarray
        From :func:`input_bounds`.

    Returns
    -------
    X : ndarray or scipy sparse CSR matrix
    """
    low, high = bounds
    if scipy.sparse.issparse(X):
        X = X.tocsr(copy=True)
        # The implicit zeros lie within the bounds (they count in input_bounds).
        X.data = np.clip(X.data, low[X.indices], high[X.indices])
        return X
    return np.clip(X, low, high)
