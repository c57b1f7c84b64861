"""Training data with sample weights, and inference in chunks.

The estimators hand skorch a :class:`WeightedDataset` when samples carry weights;
its batches reach ``get_loss`` as ``(X, WeightedTarget(y, w))``. Prediction and the
curvature passes run the network over in-memory data in chunks of about
:data:`INFERENCE_BYTES` (:func:`chunked_forward`, :func:`chunk_rows`).
"""

# SPDX-License-Identifier: BSD-3-Clause

import math

import numpy as np
import scipy.sparse
import torch
from skorch.dataset import Dataset

__all__ = []

# Memory for one chunk of inference: its inputs, outputs and widest activations. Sized
# to stay in a CPU's cache: with 64 MiB chunks the activations no longer fit, and
# predict on 1M x 50 rows (hidden (100,)) ran 1.6-2.3x slower than with 16 MiB.
INFERENCE_BYTES = 16 * 2**20


def dense(X):
    """``X`` as a dense array: a scipy sparse matrix is densified, anything else returned."""
    return X.toarray() if scipy.sparse.issparse(X) else X


class WeightedTarget:
    """The targets of a batch with their sample weights: what ``get_loss`` receives as ``y_true``.

    The nets of :mod:`sk_adareg.net` weigh each sample's loss by it; skorch
    never looks inside.
    """

    __slots__ = ("sample_weight", "y")

    def __init__(self, y, sample_weight):
        self.y, self.sample_weight = y, sample_weight

    def __len__(self):
        return len(self.y)


class WeightedDataset(Dataset):
    """A skorch ``Dataset`` of in-memory arrays whose samples carry weights.

    The estimators' batch loader (:func:`sk_adareg._engine.batch_loader`) cuts it
    into batches ``(X, WeightedTarget(y, w))``.

    Parameters
    ----------
    X, y : array-like
        As for skorch's ``Dataset``.
    sample_weight : ndarray of shape (n_samples,)
        Non-negative weights.
    """

    def __init__(self, X, y, sample_weight):
        super().__init__(X, y)
        self.sample_weight = np.asarray(sample_weight, dtype=np.float64)


def in_memory(dataset):
    """Whether ``dataset`` is a skorch ``Dataset`` (or a WeightedDataset) of arrays.

    An ``X`` that is a numpy array, a tensor or a scipy sparse matrix, and a ``y``
    that is an array, a tensor or None: data that can be indexed by rows.
    """
    arrays = np.ndarray | torch.Tensor
    return (type(dataset) in (Dataset, WeightedDataset)
            and (dataset.y is None or isinstance(dataset.y, arrays))
            and (isinstance(dataset.X, arrays) or scipy.sparse.issparse(dataset.X)))


def first_output(output):
    """The prediction in a module's output: the first element of a tuple, as in skorch.

    A module may return more than its prediction (skorch's convention: a tuple whose
    first element is it); the loss, the prior's curvature and predict use that one.
    """
    return output[0] if isinstance(output, tuple) else output


def chunk_rows(module, row_shape, copies=1):
    """Rows per chunk of :data:`INFERENCE_BYTES`: inputs and linear activations, ``copies`` times.

    Parameters
    ----------
    module : torch.nn.Module
        The network; its ``nn.Linear`` widths estimate the activations per row.
    row_shape : tuple of int
        The shape of one input row.
    copies : int, default=1
        How many float32 copies of a row's inputs and activations a chunk holds.

    Returns
    -------
    rows : int
        At least 1.
    """
    widths = [m.out_features for m in module.modules() if isinstance(m, torch.nn.Linear)]
    per_row = 4 * (max(1, math.prod(row_shape)) + sum(widths))
    return max(1, INFERENCE_BYTES // (copies * per_row))


def chunked_forward(module, X, device, nonlinearity=None, min_rows=1, bounds=None, *,
                    affine=None, check_inputs=False):
    """The outputs of ``module`` on ``X`` in evaluation mode, as a float64 numpy array.

    ``X`` (an array, or a scipy sparse matrix) is cut into chunks of about
    :data:`INFERENCE_BYTES` once dense, each densified and moved to ``device``,
    where everything else happens: the inputs are checked finite
    (``check_inputs``), clipped to ``bounds`` (a pair of arrays of the shape of a
    row; None: not clipped), run through the module without gradients (and
    ``nonlinearity``), mapped by ``affine`` (a pair ``(scale, offset)`` of arrays of
    the shape of an output row, applied in float64: ``out * scale + offset``) and
    checked finite. The outputs come back to the host once per chunk; the checks'
    results once at the end.

    Returns
    -------
    outputs : ndarray of shape (n_samples, ...), float64
    n_nonfinite : int
        The number of samples whose outputs are NaN or infinite.

    Raises
    ------
    ValueError
        With ``check_inputs``, if ``X`` holds NaN or an infinity (scikit-learn's
        message).
    """
    rows = max(min_rows, chunk_rows(module, X.shape[1:]))
    training = module.training
    if bounds is not None:
        low, high = (torch.as_tensor(b, device=device) for b in bounds)
    if affine is not None:
        scale, offset = (torch.as_tensor(a, dtype=torch.float64, device=device)
                         for a in affine)
    finite_inputs = torch.ones((), dtype=torch.bool, device=device)
    bad_rows = torch.zeros((), dtype=torch.int64, device=device)
    module.eval()
    try:
        outputs = []
        with torch.no_grad():
            for start in range(0, X.shape[0], rows):
                chunk = torch.as_tensor(dense(X[start:start + rows]), device=device)
                if check_inputs:  # before clipping, which would hide an infinity
                    finite_inputs &= _all_finite(chunk)
                if bounds is not None:
                    chunk = torch.minimum(torch.maximum(chunk, low), high)
                out = first_output(module(chunk))
                if nonlinearity is not None:
                    out = nonlinearity(out)
                out = out.to(torch.float64)
                if affine is not None:
                    out = out * scale + offset
                bad_rows += torch.isnan((out.reshape(len(out), -1) * 0).sum(dim=1)).sum()
                outputs.append(out.cpu().numpy())
    finally:
        module.train(training)
    if check_inputs and not bool(finite_inputs):
        _raise_non_finite(X)
    if not outputs:
        return np.empty((0,), dtype=np.float64), 0
    return np.concatenate(outputs), int(bad_rows)


def _all_finite(values):
    """Whether every value of a tensor is finite, as a tensor on its device.

    ``values * 0`` is 0 where a value is finite and NaN where it is not, so its sum
    is NaN exactly when one is not: on a CPU a tenth of ``isfinite(values).all()``'s
    cost, which on a large ``predict`` was a third of the forward's.
    """
    return ~torch.isnan((values * 0).sum())


def _raise_non_finite(X):
    """scikit-learn's error for inputs with NaN or an infinity."""
    values = dense(X.data if scipy.sparse.issparse(X) else X)
    if np.isnan(values).any():
        raise ValueError("Input X contains NaN.")
    raise ValueError(f"Input X contains infinity or a value too large for {values.dtype!r}.")
