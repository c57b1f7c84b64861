"""Minibatches of in-memory arrays by slicing, and inference in large chunks.

torch's ``DataLoader`` over a skorch ``Dataset`` indexes one row at a time and
collates the rows of every batch: for the small tabular data this package is
for, that costs more than the network's own step. The estimators' data are
in-memory arrays, so they are taken as tensors once per epoch (no copy) and
cut into batches by indexing. A sparse ``X`` (scipy CSR) is densified batch
by batch, never whole. Unlike ``DataLoader``, which draws a seed from torch's
global generator every time it is iterated, the batches draw random numbers
only to shuffle: a net's ``predict`` inside a training callback leaves the
later epochs' shuffling as it was.
"""

# SPDX-License-Identifier: BSD-3-Clause

import math

import numpy as np
import scipy.sparse
import torch
from skorch.dataset import Dataset
from torch.utils.data import DataLoader

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

    :func:`batch_loader` cuts it into batches ``(X, WeightedTarget(y, w))``.

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


class _ArrayBatches:
    """Batches ``(X[idx], y[idx])`` of two arrays, in the order torch's DataLoader uses.

    ``X`` may be a scipy sparse matrix (CSR, for fast row indexing): each batch is
    densified on its own. With ``sample_weight``, a batch's target is
    ``WeightedTarget(y[idx], sample_weight[idx])``. Without ``y`` (prediction) it
    is skorch's placeholder, as ``DataLoader`` collates it: zeros of shape
    ``(batch, 1)``.
    """

    def __init__(self, X, y, batch_size, shuffle, drop_last, sample_weight=None):
        self.X = X if scipy.sparse.issparse(X) else torch.as_tensor(X)
        self.y = None if y is None else torch.as_tensor(y)
        self.w = None if sample_weight is None else torch.as_tensor(sample_weight)
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last

    def __len__(self):
        n = self.X.shape[0]
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self):
        n = self.X.shape[0]
        # The global torch RNG, as DataLoader's sampler: seeded fits stay reproducible.
        order = torch.randperm(n) if self.shuffle else None
        for k in range(len(self)):
            rows = slice(k * self.batch_size, (k + 1) * self.batch_size)
            if order is None:
                take = _slice_rows
            else:
                rows, take = order[rows], _select_rows
            if scipy.sparse.issparse(self.X):
                X = torch.from_numpy(dense(self.X[rows.numpy() if order is not None else rows]))
            else:
                X = take(self.X, rows)
            if self.y is None:
                y = torch.zeros(X.shape[0], 1)
            elif self.w is None:
                y = take(self.y, rows)
            else:
                y = WeightedTarget(take(self.y, rows), take(self.w, rows))
            yield X, y


def _slice_rows(tensor, rows):
    return tensor[rows]


def _select_rows(tensor, rows):
    # The rows that tensor[rows] gives, with less overhead per call than advanced indexing.
    return tensor.index_select(0, rows)


def batch_loader(dataset, batch_size=1, shuffle=False, drop_last=False, **kwargs):
    """skorch's ``iterator_train``/``iterator_valid`` for in-memory arrays.

    A skorch ``Dataset`` of a numpy array, tensor or scipy sparse ``X``, with an
    array target or none, is cut into batches by indexing; anything else (other
    datasets, DataLoader options such as ``num_workers``) goes to torch's ``DataLoader``.
    """
    arrays = np.ndarray | torch.Tensor
    weighted = type(dataset) is WeightedDataset
    if (not kwargs and type(dataset) in (Dataset, WeightedDataset)
            and (dataset.y is None or isinstance(dataset.y, arrays))
            and (isinstance(dataset.X, arrays) or scipy.sparse.issparse(dataset.X))):
        return _ArrayBatches(dataset.X, dataset.y, batch_size, shuffle, drop_last,
                             dataset.sample_weight if weighted else None)
    if weighted:
        # torch's DataLoader would collate the rows without their weights.
        raise ValueError(
            "sample_weight needs the estimators' own batching of in-memory arrays; it "
            f"cannot be combined with DataLoader options ({', '.join(sorted(kwargs))}).")
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last,
                      **kwargs)


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


def chunked_forward(module, X, device, nonlinearity=None, min_rows=1):
    """The outputs of ``module`` on ``X`` in evaluation mode, as a float64 numpy array.

    ``X`` (an array, or a scipy sparse matrix) is cut into chunks of about
    :data:`INFERENCE_BYTES` once dense, each densified, moved to ``device`` and
    run without gradients.
    """
    rows = max(min_rows, chunk_rows(module, X.shape[1:]))
    training = module.training
    module.eval()
    try:
        outputs = []
        with torch.no_grad():
            for start in range(0, X.shape[0], rows):
                out = module(torch.as_tensor(dense(X[start:start + rows]), device=device))
                if nonlinearity is not None:
                    out = nonlinearity(out)
                outputs.append(out.to(device="cpu", dtype=torch.float64).numpy())
    finally:
        module.train(training)
    if not outputs:
        return np.empty((0,), dtype=np.float64)
    return np.concatenate(outputs)
