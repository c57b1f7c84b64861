"""Checks of the samples' weights that training needs, before it starts."""

# SPDX-License-Identifier: BSD-3-Clause

import numpy as np

__all__ = ["check_weight_total"]

# The network trains in float32: each batch's total weight must be finite there.
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_weight_total(weights, what):
    """Raise a ValueError unless ``weights`` sum to a positive number float32 holds.

    Parameters
    ----------
    weights : ndarray of shape (n_samples,)
        Non-negative, finite weights (float64).
    what : str
        What they are, for the message (e.g. ``"sample_weight"``).
    """
    with np.errstate(over="ignore"):
        total = float(np.sum(weights))
    if not total > 0:
        raise ValueError(f"{what} must have a positive sum; all weights are zero.")
    if not total <= _FLOAT32_MAX:
        raise ValueError(
            f"{what} sums to {total:.3g}, more than float32, in which the network "
            f"trains, can hold ({_FLOAT32_MAX:.3g}). Scale the weights down.")
