"""Scaling out: searches on a dask cluster, data-parallel training with accelerate.

Searches: scikit-learn's ``GridSearchCV`` and ``RandomizedSearchCV`` over the
estimators' parameters run on a dask.distributed cluster through joblib's
dask backend (``joblib.parallel_config(backend="dask")``).
:func:`register_dask_backend` makes a search whose worker processes die
raise the error instead of waiting forever.

Training:
skorch's :class:`~skorch.hf.AccelerateMixin` trains a skorch net on several
processes (GPUs, or CPU processes with the gloo backend); the AdaReg nets of
:mod:`sk_adareg.net` work with it as they are::

    class Net(AccelerateMixin, AdaRegNeuralNetRegressor):
        pass

The weights are the same on every process after each step (the gradients,
penalty included, are averaged across processes), so each process computes
the same precision update from them; the mixin then broadcasts the
precisions from the first process after each update, so that they are equal
to the last bit even where two machines' linear algebra would round
differently. A training loss or weight that becomes NaN or infinite on any
process fails every process with
:class:`~sk_adareg.exceptions.TrainingDivergedError`.

On CPU processes, accelerate wraps every prepared module in
``DistributedDataParallel``, which refuses a module without trainable
parameters: a criterion such as ``MSELoss``, and the net's ``priors_``. Use
this module's :class:`AccelerateMixin` there (it works on GPUs too): it
prepares only the modules that have trainable parameters and moves the
others to the accelerator's device.
"""

# SPDX-License-Identifier: BSD-3-Clause

import torch
from skorch.callbacks import LRScheduler
from skorch.hf import AccelerateMixin as _SkorchAccelerateMixin
from torch.nn.parallel import DataParallel, DistributedDataParallel

__all__ = ["AccelerateMixin", "register_dask_backend"]


def register_dask_backend(name="dask"):
    """Register joblib's dask backend, made to fail when a worker dies.

    joblib's :class:`~joblib._dask.DaskDistributedBackend` hands a task that
    dask gave up on (its worker process died more than
    ``distributed.scheduler.allowed-failures`` times: ``KilledWorker``) to
    nobody, so ``joblib.Parallel`` -- and a search inside
    ``joblib.parallel_config(backend="dask")`` -- waits for it forever (as of
    joblib 1.6). The backend registered here is joblib's, with that error
    handed on: the search raises ``distributed.scheduler.KilledWorker``.
    Call it once, before the searches; it needs ``distributed``.

    Parameters
    ----------
    name : str, default="dask"
        The backend's name in ``joblib.parallel_config(backend=name)``.
        ``"dask"`` replaces joblib's own.

    Returns
    -------
    backend : type
        The registered backend class.

    Examples
    --------
    >>> import joblib
    >>> from sk_adareg.distributed import register_dask_backend
    >>> register_dask_backend()  # doctest: +ELLIPSIS
    <class '...DaskBackend'>
    >>> # with distributed.Client(...), joblib.parallel_config(backend="dask"):
    >>> #     GridSearchCV(AdaRegClassifier(), grid, n_jobs=-1).fit(X, y)
    """
    import joblib
    from joblib._dask import DaskDistributedBackend

    class DaskBackend(DaskDistributedBackend):
        """joblib's dask backend; a task that fails in dask fails the joblib call."""

        def submit(self, func, callback=None):
            future = super().submit(func, callback=callback)
            if callback is not None:
                # joblib's backend completes the future with dask's error but never
                # calls back: joblib would wait for the task forever.
                def on_error(done):
                    if done.exception() is not None:
                        callback(done.exception())

                future.add_done_callback(on_error)
            return future

    joblib.register_parallel_backend(name, DaskBackend)
    return DaskBackend


class AccelerateMixin(_SkorchAccelerateMixin):
    """skorch's :class:`~skorch.hf.AccelerateMixin`, for modules without parameters too.

    Put it first among the bases, e.g.
    ``class Net(AccelerateMixin, AdaRegNeuralNetRegressor)``, and pass
    ``accelerator=accelerate.Accelerator(...)``. It differs from skorch's
    only in which modules the accelerator prepares: those with a trainable
    parameter (the network); the others (a parameterless criterion, the
    AdaReg ``priors_``) are moved to ``accelerator.device`` when the
    accelerator places devices, and are never wrapped in
    ``DistributedDataParallel``, which on CPU processes fails for them.
    Everything else is skorch's: see :class:`skorch.hf.AccelerateMixin` for
    the parameters. (skorch's mixin prints the epoch table through the
    accelerator whatever ``verbose``; ``callbacks__print_log__sink=print``
    lets ``verbose=0`` silence it.)

    Examples
    --------
    >>> import torch
    >>> from accelerate import Accelerator
    >>> from sk_adareg.distributed import AccelerateMixin
    >>> from sk_adareg.net import AdaRegNeuralNetRegressor
    >>> class Net(AccelerateMixin, AdaRegNeuralNetRegressor):
    ...     pass
    >>> net = Net(torch.nn.Linear(3, 2), accelerator=Accelerator(cpu=True), max_epochs=2,
    ...           train_split=None, verbose=0, callbacks__print_log__sink=print)
    >>> net.fit(torch.randn(20, 3), torch.randn(20, 2)).priors_["weight"].row_precision.shape
    torch.Size([2, 2])
    """

    def _initialize_accelerator(self):
        if self._wrapped_with_accelerator:
            return self
        device = self.accelerator.device if self.accelerator.device_placement else None
        for kind, names in (("criterion", self._criteria), ("module", self._modules)):
            with self._current_init_context(kind):
                for name in names:
                    module = getattr(self, name + "_")
                    if not isinstance(module, torch.nn.Module):
                        continue
                    if any(p.requires_grad for p in module.parameters()):
                        setattr(self, name + "_", self.accelerator.prepare(module))
                    elif device is not None:
                        setattr(self, name + "_", module.to(device))
        with self._current_init_context("optimizer"):
            for name in self._optimizers:
                optimizer = getattr(self, name + "_")
                if isinstance(optimizer, torch.optim.Optimizer):
                    setattr(self, name + "_", self.accelerator.prepare(optimizer))
        # skorch's LRScheduler policies, as skorch's mixin prepares them.
        for _, callback in self.callbacks_:
            if isinstance(callback, LRScheduler):
                callback.policy_ = self.accelerator.prepare(callback.policy_)
        self._wrapped_with_accelerator = True
        return self


# -- helpers for the AdaReg nets and callbacks ---------------------------------


def unwrap(module):
    """The module inside (Distributed)DataParallel wrappers, or ``module`` itself."""
    while isinstance(module, DistributedDataParallel | DataParallel):
        module = module.module
    return module


def process_count(net):
    """How many processes train ``net`` together (1 unless an accelerator says more)."""
    accelerator = getattr(net, "accelerator", None)
    count = getattr(accelerator, "num_processes", 1)
    if count > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
        return count
    return 1


def broadcast_buffers(module):
    """Overwrite every buffer of ``module`` with the first process's, in place."""
    for buffer in module.buffers():
        torch.distributed.broadcast(buffer, src=0)


def sum_across(values):
    """Sum a 1-D tensor over all processes, in float64 (a new tensor on its device)."""
    total = values.detach().to(torch.float64, copy=True)
    torch.distributed.all_reduce(total, op=torch.distributed.ReduceOp.SUM)
    return total


def max_across(value, device):
    """The largest of an int over all processes (communicated on ``device``)."""
    tensor = torch.tensor([value], dtype=torch.int64, device=device)
    torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.MAX)
    return int(tensor.item())
