"""What the estimators pass through to skorch, checked before training.

``callbacks`` and the nested parameters (``criterion__*``, ``iterator_train__*``, ...)
reach skorch's internals, where a bad value fails deep in training with an error
about something else. These checks refuse such values first, naming the parameter.
"""

# SPDX-License-Identifier: BSD-3-Clause

from numbers import Integral

from skorch.callbacks import Callback

__all__ = ["check_callbacks", "check_nested_params"]


def _is_callback(item):
    return isinstance(item, Callback) or (isinstance(item, type) and issubclass(item, Callback))


def check_callbacks(callbacks):
    """Raise a TypeError unless each entry is a skorch callback or a ``(name, callback)`` pair.

    Parameters
    ----------
    callbacks : list or None
        The estimator's ``callbacks``: instances or classes of
        ``skorch.callbacks.Callback``, or pairs of a name and one (or None, which
        skorch skips).
    """
    for item in callbacks or []:
        if isinstance(item, tuple | list):
            if len(item) == 2 and isinstance(item[0], str) and (
                    item[1] is None or _is_callback(item[1])):
                continue
        elif _is_callback(item):
            continue
        raise TypeError(
            "callbacks must be a list of skorch callbacks (instances or classes of "
            "skorch.callbacks.Callback) or (name, callback) pairs; callbacks="
            f"{callbacks!r} holds {item!r}.")


def check_nested_params(nested):
    """Raise a ValueError for a nested parameter that would break training.

    Parameters
    ----------
    nested : dict
        The estimator's nested parameters, by their full names.
    """
    for name in ("iterator_train__batch_size", "iterator_valid__batch_size"):
        size = nested.get(name, 1)
        if isinstance(size, bool) or not isinstance(size, Integral) or size < 1:
            raise ValueError(f"{name} must be an int >= 1, got {name}={size!r}.")
    reduction = nested.get("criterion__reduction", "mean")
    if reduction != "mean":
        # The penalty, the sample weights and the evidence take the loss as a mean.
        raise ValueError(
            f"criterion__reduction={reduction!r} is not supported: the estimators train on "
            "the mean loss (the prior's strength is in its units). Leave "
            "criterion__reduction unset.")
    if "criterion__n_outputs" in nested:
        raise ValueError(
            f"criterion__n_outputs={nested['criterion__n_outputs']!r} cannot be set: the "
            "estimator gives its criterion the number of network outputs itself (the "
            "targets' count, with learned strengths). Leave it unset.")
