"""Global settings of sk-adareg, as scikit-learn's ``set_config``/``config_context``.

One setting for now, ``fast_engine``: whether training uses the package's speed
engine (:mod:`sk_adareg._engine`). It changes how fast a fit runs, never what it
computes, so it is a global switch like scikit-learn's ``assume_finite``, not an
estimator parameter that ``GridSearchCV`` would clone.
"""

# SPDX-License-Identifier: BSD-3-Clause

import contextlib
import threading

__all__ = ["config_context", "get_config", "set_config"]

_DEFAULTS = {"fast_engine": True}
_local = threading.local()


def _settings():
    if not hasattr(_local, "settings"):
        _local.settings = dict(_DEFAULTS)
    return _local.settings


def get_config():
    """The current values of sk-adareg's global settings.

    Returns
    -------
    config : dict
        ``{"fast_engine": bool}``; see :func:`set_config`.

    Examples
    --------
    >>> import sk_adareg
    >>> sk_adareg.get_config()
    {'fast_engine': True}
    """
    return dict(_settings())


def set_config(fast_engine=None):
    """Set sk-adareg's global settings (for the current thread).

    Parameters
    ----------
    fast_engine : bool, default=None
        Whether the nets and estimators train with the speed engine: batches
        cut from in-memory arrays, the default network's training step
        without autograd, torch's fused Adam called directly, and an epoch
        loop that reads the losses once per epoch. It gives the same weights
        to the last bit as the stock path (torch's ``DataLoader``, autograd,
        ``Optimizer.step()`` and skorch's epoch loop), which ``False``
        selects: for debugging, or where a new torch or skorch changed the
        internals the engine relies on (the engine then turns itself off).
        None leaves the setting as it is.

    Examples
    --------
    >>> import sk_adareg
    >>> sk_adareg.set_config(fast_engine=False)
    >>> sk_adareg.get_config()["fast_engine"]
    False
    >>> sk_adareg.set_config(fast_engine=True)
    """
    if fast_engine is not None:
        if not isinstance(fast_engine, bool):
            raise TypeError(f"fast_engine must be a bool, got {fast_engine!r}.")
        _settings()["fast_engine"] = fast_engine


@contextlib.contextmanager
def config_context(*, fast_engine=None):
    """Change sk-adareg's global settings inside a ``with`` block.

    Parameters
    ----------
    fast_engine : bool, default=None
        As in :func:`set_config`.

    Examples
    --------
    >>> import numpy as np
    >>> import sk_adareg
    >>> from sk_adareg import AdaRegMultiTaskRegressor
    >>> X = np.random.default_rng(0).normal(size=(40, 3))
    >>> with sk_adareg.config_context(fast_engine=False):  # torch's and skorch's own path
    ...     reg = AdaRegMultiTaskRegressor(max_epochs=2, random_state=0).fit(X, X[:, :2])
    """
    old = get_config()
    set_config(fast_engine=fast_engine)
    try:
        yield
    finally:
        set_config(**old)
