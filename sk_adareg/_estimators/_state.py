"""A call of ``fit`` or ``partial_fit`` that raises leaves the estimator as it was."""

# SPDX-License-Identifier: BSD-3-Clause

import contextlib
import copy

__all__ = ["restored_on_failure"]


@contextlib.contextmanager
def restored_on_failure(estimator, net_changes):
    """Put ``estimator`` back as it was if the block raises, whatever it raises.

    Parameters
    ----------
    estimator : BaseAdaReg
        Its attributes are kept (a shallow copy: a call replaces them, never
        changes them in place).
    net_changes : bool
        Whether the block trains the fitted net further (``partial_fit``,
        ``warm_start``): its state (weights, optimizer, priors, criterion,
        callbacks, strengths) is copied first and put back on failure, and its
        history loses the rows the block added. A fresh fit builds a new net and
        leaves the fitted one alone. The callbacks the user passed stay the
        objects the user holds (with whatever state the call left in them).
    """
    attributes = dict(vars(estimator))
    net = attributes.get("net_") if net_changes else None
    saved = None if net is None else _snapshot(net, _user_callbacks(estimator.callbacks))
    try:
        yield
    except BaseException:
        if net is not None:
            _restore(net, *saved)
        vars(estimator).clear()
        vars(estimator).update(attributes)
        raise


def _user_callbacks(callbacks):
    """The callback objects the user passed (instances, or classes)."""
    return [item[1] if isinstance(item, tuple | list) else item for item in callbacks or []]


def _snapshot(net, keep):
    """A deep copy of the net's state without its history, and the history's length.

    The objects of ``keep`` (the user's callbacks) are not copied: they stay the
    objects the user holds.
    """
    history = net.history
    # The history only grows (truncated on failure): copying it would cost every
    # partial_fit call as much as all the epochs so far.
    state = {name: value for name, value in vars(net).items() if value is not history}
    memo = {id(item): item for item in (net, history, *keep)}
    return copy.deepcopy(state, memo), len(history)


def _restore(net, state, n_rows):
    history = net.history
    del history[n_rows:]
    kept = {name: value for name, value in vars(net).items() if value is history}
    vars(net).clear()
    vars(net).update(state, **kept)
