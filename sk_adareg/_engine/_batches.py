"""Minibatches of in-memory arrays by slicing.

torch's ``DataLoader`` over a skorch ``Dataset`` indexes one row at a time and
collates the rows of every batch: for the small tabular data this package is
for, that costs more than the network's own step. The estimators' data are
in-memory arrays, so the engine takes them as tensors once per epoch (no copy)
and cuts them into batches by indexing. A sparse ``X`` (scipy CSR) is densified
batch by batch, never whole. Unlike ``DataLoader``, which draws a seed from
torch's global generator every time it is iterated, the batches draw random
numbers only to shuffle: a net's ``predict`` inside a training callback leaves
the later epochs' shuffling as it was.

With the engine off (:func:`sk_adareg.config_context`), the same arrays go
through torch's ``DataLoader``, with a sampler that draws the same permutation
and a collate function that cuts the same rows: the same batches.
"""

# SPDX-License-Identifier: BSD-3-Clause

import functools
import math

import scipy.sparse
import torch
from torch.utils.data import DataLoader, Sampler

from .._config import get_config
from .._data import WeightedDataset, WeightedTarget, dense, in_memory

__all__ = ["batch_loader"]


class _Arrays:
    """The training arrays as tensors (``X`` may stay scipy CSR), and how to cut a batch."""

    def __init__(self, X, y, sample_weight):
        self.X = X if scipy.sparse.issparse(X) else torch.as_tensor(X)
        self.y = None if y is None else torch.as_tensor(y)
        self.w = None if sample_weight is None else torch.as_tensor(sample_weight)

    def __len__(self):
        return self.X.shape[0]

    def batch(self, rows):
        """``(X[rows], y[rows])``: ``rows`` a slice or a tensor of indices.

        With sample weights the target is ``WeightedTarget(y[rows], w[rows])``;
        without ``y`` (prediction) it is skorch's placeholder, as ``DataLoader``
        collates it: zeros of shape ``(batch, 1)``.
        """
        take = _slice_rows if isinstance(rows, slice) else _select_rows
        if scipy.sparse.issparse(self.X):
            X = torch.from_numpy(dense(self.X[rows if isinstance(rows, slice) else rows.numpy()]))
        else:
            X = take(self.X, rows)
        if self.y is None:
            y = torch.zeros(X.shape[0], 1)
        elif self.w is None:
            y = take(self.y, rows)
        else:
            y = WeightedTarget(take(self.y, rows), take(self.w, rows))
        return X, y


def _slice_rows(tensor, rows):
    return tensor[rows]


def _select_rows(tensor, rows):
    # The rows that tensor[rows] gives, with less overhead per call than advanced indexing.
    return tensor.index_select(0, rows)


class _ArrayBatches:
    """Batches of :class:`_Arrays`, in the order torch's DataLoader uses."""

    def __init__(self, arrays, batch_size, shuffle, drop_last):
        self.arrays = arrays
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last

    def __len__(self):
        n = len(self.arrays)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self):
        # The global torch RNG, as DataLoader's sampler: seeded fits stay reproducible.
        order = torch.randperm(len(self.arrays)) if self.shuffle else None
        for k in range(len(self)):
            rows = slice(k * self.batch_size, (k + 1) * self.batch_size)
            yield self.arrays.batch(rows if order is None else order[rows])


class _Permutation(Sampler):
    """The engine's shuffling as a ``DataLoader`` sampler: ``torch.randperm`` per epoch."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __iter__(self):
        return iter(torch.randperm(self.n).tolist())


class _Rows(torch.utils.data.Dataset):
    """Row indices: the ``DataLoader`` collates the indices, :class:`_Arrays` the rows."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return i


def _collate(arrays, indices):
    return arrays.batch(torch.as_tensor(indices, dtype=torch.int64))


def batch_loader(dataset, batch_size=1, shuffle=False, drop_last=False, **kwargs):
    """skorch's ``iterator_train``/``iterator_valid`` for in-memory arrays.

    A skorch ``Dataset`` of a numpy array, tensor or scipy sparse ``X``, with an
    array target or none (and the weights of a
    :class:`~sk_adareg._data.WeightedDataset`), is cut into batches by indexing
    with the engine on, or through torch's ``DataLoader`` with the same batches
    with it off; anything else (other datasets, DataLoader options such as
    ``num_workers``) goes to torch's ``DataLoader``.
    """
    weighted = type(dataset) is WeightedDataset
    if not kwargs and in_memory(dataset):
        data = _Arrays(dataset.X, dataset.y, dataset.sample_weight if weighted else None)
        if get_config()["fast_engine"]:
            return _ArrayBatches(data, batch_size, shuffle, drop_last)
        # A generator of its own: the DataLoader's seed draw leaves torch's global RNG alone.
        return DataLoader(_Rows(len(data)), batch_size=batch_size, drop_last=drop_last,
                          sampler=_Permutation(len(data)) if shuffle else None,
                          collate_fn=functools.partial(_collate, data),
                          generator=torch.Generator())
    if weighted:
        # torch's DataLoader would collate the rows without their weights.
        raise ValueError(
            "sample_weight needs the estimators' own batching of in-memory arrays; it "
            f"cannot be combined with DataLoader options ({', '.join(sorted(kwargs))}).")
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last,
                      **kwargs)
