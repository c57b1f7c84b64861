"""The engine's skorch net mixin: the training step, the optimizer step and the epoch loop.

:class:`EngineMixin` overrides skorch's per-batch machinery where a small
network's step costs less than the machinery around it, and hands every case it
does not recognize back to skorch. It decides once per fit whether it runs at all
(:func:`sk_adareg.config_context`, and :func:`sk_adareg._private_api.engine_available`)
and, at the start of each epoch, what it can do in that epoch:

- the default network's training step without autograd (:mod:`._step`);
- torch's fused Adam step called directly (:mod:`._adam`);
- the per-batch callbacks found once per epoch, not looked up at every batch;
- an epoch loop that keeps the batches' losses on their device and reads them
  once at the end of the epoch (:class:`LossTape`), where nothing reads the
  history during the epoch;
- the modules' training mode and the gradients' reset without skorch's walk
  over the modules at every step.

Each gives the same numbers as skorch's path to the last bit.
"""

# SPDX-License-Identifier: BSD-3-Clause

import contextlib

import torch
from skorch import NeuralNet
from skorch.callbacks import Callback
from skorch.dataset import get_len, unpack_data
from skorch.history import History

from .._config import get_config
from .._data import WeightedTarget
from .._private_api import engine_available
from ._adam import adam_plan
from ._step import step_plan

__all__ = ["FIT_STATE", "EngineMixin", "LossTape"]

#: What the engine keeps in the net's ``__dict__`` during a fit (not parameters).
FIT_STATE = frozenset({"_engine_on", "_batch_listeners", "_mode_modules", "_fast_step",
                       "_optimizer_steps"})


class EngineMixin:
    """skorch's training loop, faster for small networks, with the same results.

    Put after the domain mixin and before skorch's net in the bases. A subclass
    lists in ``_ENGINE_MIRRORS`` the classes whose ``get_loss`` and
    ``train_step_single`` the engine's training step reproduces, skorch's nets
    among them (the first is where a subclass's own ``train_step_single`` stops
    mattering), and names in
    ``_QUIET_CALLBACKS`` the per-batch callbacks that read nothing of the history
    during an epoch.
    """

    _ENGINE_MIRRORS = ()
    _QUIET_CALLBACKS = ()
    # Per-batch events: a callback that inherits skorch's no-op for one is not called.
    _BATCH_EVENTS = ("on_batch_begin", "on_batch_end", "on_grad_computed")

    def _engine(self):
        """Whether the engine runs in this fit (decided when the fit begins)."""
        return self.__dict__.get("_engine_on", False)

    def notify(self, method_name, **cb_kwargs):
        """Call the callbacks' ``method_name``, as skorch does.

        With the engine on, the listeners of each per-batch event (the net
        itself, and the callbacks that override skorch's no-op ``Callback``
        method) are found once per epoch, at ``on_epoch_begin``, instead of
        calling every callback at every batch; the callbacks cannot change within
        an epoch. After the callbacks' ``on_epoch_begin`` (which may add hooks),
        the engine decides whether the epoch's steps can run without autograd.
        """
        if method_name == "on_train_begin":
            # A fit that raised skipped on_train_end: nothing of its state may carry over.
            for name in FIT_STATE:
                self.__dict__[name] = None
            self.__dict__["_engine_on"] = get_config()["fast_engine"] and engine_available()
        if not self._engine():
            return super().notify(method_name, **cb_kwargs)
        listeners = self.__dict__.get("_batch_listeners")
        if listeners is not None and method_name in self._BATCH_EVENTS:
            for listener in listeners[method_name]:
                listener(self, **cb_kwargs)
            return None
        if method_name == "on_epoch_begin":
            self._find_batch_listeners()
        try:
            return super().notify(method_name, **cb_kwargs)
        finally:
            if method_name == "on_epoch_begin":
                self.__dict__["_fast_step"] = (
                    step_plan(self.module_, self.criterion_)
                    if self._mirrors_steps() else None)
                self.__dict__["_optimizer_steps"] = {
                    name: adam_plan(getattr(self, name + "_")) for name in self._optimizers}
            if method_name == "on_train_end":  # a fitted net keeps no module lists
                for name in FIT_STATE:
                    self.__dict__[name] = None

    def _mirrors_steps(self):
        """Whether the class computes its training loss as the classes the engine mirrors.

        True when no class in its method order but those of ``_ENGINE_MIRRORS``
        (and skorch's nets) overrides a method that the training step calls (a
        subclass that overrides ``train_step_single`` before the first mirrored
        class and calls ``super()`` still gets it).
        """
        mirrors = self._ENGINE_MIRRORS
        if not mirrors:
            return False
        mro = type(self).__mro__
        after = mro[mro.index(mirrors[0]):]
        own = {*mirrors, EngineMixin}
        for name in ("get_loss", "infer", "train_step_single", "_weighted_loss"):
            classes = after if name == "train_step_single" else mro
            if any(name in vars(k) and k not in own for k in classes):
                return False
        return True

    def engine_step(self, batch, **fit_params):
        """The batch's training step without autograd, or None where the engine has none.

        Parameters
        ----------
        batch : tuple
            ``(X, y)`` as the training iterator yields it (``y`` may be a
            :class:`~sk_adareg._data.WeightedTarget`).
        **fit_params : dict
            skorch's fit parameters: the engine steps aside when there are any.

        Returns
        -------
        step : dict or None
            ``{"loss": data loss, "y_pred": outputs}`` with the data loss's
            gradients added to the parameters' ``.grad``.
        """
        fast = self.__dict__.get("_fast_step")
        if fast is None or fit_params:
            return None
        X, y = unpack_data(batch)
        weights = None
        if isinstance(y, WeightedTarget):
            y, weights = y.y, y.sample_weight
        if not fast.applies(X, y, weights):
            return None
        # Moved as skorch's to_tensor moves them.
        X, y = X.to(self.device), y.to(self.device)
        if weights is not None:
            weights = weights.to(self.device)
        self._set_training(True)
        loss, y_pred = fast(X, y, weights)
        return {"loss": loss, "y_pred": y_pred}

    def quiet_epoch(self):
        """A context for an epoch whose batches no callback reads: none by default.

        The domain mixin binds there what cannot change between the epoch's steps.
        """
        return contextlib.nullcontext()

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        """Run one epoch, as skorch does, reading the batches' losses once at its end.

        skorch reads each batch's loss to the host (``loss.item()``) as the batch
        ends, which on a GPU waits for the batch's work to finish, every batch.
        Where nothing can read the history during the epoch (no batch callbacks
        but the net's own and the quiet ones, skorch's own ``on_batch_begin``),
        the losses are kept as tensors where they were computed
        (:class:`LossTape`) and written to the history in one transfer when the
        epoch ends: the same records, in the same order. Otherwise skorch's loop
        runs.
        """
        ends = self._quiet_batch_listeners(training, iterator)
        if ends is None:
            return super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)
        loss_key, size_key = prefix + "_loss", prefix + "_batch_size"
        rows = self.history[-1]["batches"]
        done, losses = [], LossTape()
        try:
            with self.quiet_epoch():
                for batch in iterator:
                    row = {}
                    rows.append(row)  # skorch's on_batch_begin: history.new_batch()
                    step = step_fn(batch, **fit_params)
                    losses.append(step["loss"])
                    done.append(row)
                    row[loss_key] = None  # read below; the key keeps skorch's order
                    row[size_key] = get_len(
                        batch[0] if isinstance(batch, (tuple, list)) else batch)
                    for listener in ends:
                        listener(self, batch=batch, training=training, **step)
        finally:
            # Also when the epoch is interrupted: the finished batches keep their losses.
            for row, value in zip(done, losses.values(), strict=True):
                row[loss_key] = value
        self.history.record(prefix + "_batch_count", len(done))
        return None

    def _quiet_batch_listeners(self, training, iterator):
        """The ``on_batch_end`` listeners, when the epoch may read its losses at its end."""
        listeners = self.__dict__.get("_batch_listeners")
        if not training or iterator is None or listeners is None:
            return None
        if type(self.history) is not History or type(self).on_batch_begin is not (
                NeuralNet.on_batch_begin) or listeners["on_batch_begin"] != [
                self.on_batch_begin]:
            return None
        ends = listeners["on_batch_end"]
        if type(self).on_batch_end is not NeuralNet.on_batch_end or any(
                type(getattr(listener, "__self__", None)) not in self._QUIET_CALLBACKS
                for listener in ends[1:]):
            return None
        return ends[1:]

    def _find_batch_listeners(self):
        """The bound per-batch methods that do something, and the modules' train switches."""
        # The net's own methods always run (skorch's open a batch row in the history).
        self.__dict__["_batch_listeners"] = {
            event: [getattr(self, event)] + [
                getattr(cb, event) for _, cb in self.callbacks_
                if getattr(type(cb), event, None) is not getattr(Callback, event)]
            for event in self._BATCH_EVENTS}
        modules = [getattr(self, name + "_") for name in self._modules + self._criteria]
        modules = [m for m in modules if isinstance(m, torch.nn.Module)]
        # Only where no module has a train() of its own is setting ``training`` equivalent.
        every = [sub for m in modules for sub in m.modules()]
        plain = all(type(sub).train is torch.nn.Module.train for sub in every)
        self.__dict__["_mode_modules"] = every if plain else None

    def _set_training(self, training=True):
        """Set the modules' training mode, as skorch, at no cost when they are in it already.

        skorch sets it at every training step; walking the modules costs more
        than a small network's step.
        """
        modules = self.__dict__.get("_mode_modules")
        if modules is not None and all(m.training is training for m in modules):
            return
        super()._set_training(training)

    def _step_optimizer(self, step_fn):
        """skorch's, with torch's fused Adam step called directly (:mod:`._adam`).

        As skorch does, every optimizer runs ``step_fn`` (the closure) and then
        steps; for a fused Adam or AdamW without hooks (checked at each epoch's
        start) the step is its two kernels: the same update at less than half
        the cost of ``optimizer.step()`` for a small network.
        """
        plans = self.__dict__.get("_optimizer_steps")
        if step_fn is None or not plans:
            return super()._step_optimizer(step_fn)
        for name in self._optimizers:
            optimizer = getattr(self, name + "_")
            plan = plans.get(name)
            if plan is None or plan.optimizer is not optimizer:
                optimizer.step(step_fn)
                continue
            with torch.enable_grad():  # as Optimizer.step runs its closure
                step_fn()
            plan()
        return None

    def _zero_grad_optimizer(self, set_to_none=None):
        """skorch's, with torch's own ``zero_grad()`` done in place of the call.

        For an optimizer whose ``zero_grad`` is ``torch.optim.Optimizer``'s,
        ``zero_grad()`` (``set_to_none=True``, torch's default) sets every
        gradient of its parameter groups to None, through a dynamo guard and a
        profiler record that cost about as much as a small layer's penalty at
        every step; this sets them to None directly. Other optimizers, and
        ``set_to_none=False``, get skorch's call.
        """
        if set_to_none is False or not self._engine():
            return super()._zero_grad_optimizer(set_to_none)
        for name in self._optimizers:
            optimizer = getattr(self, name + "_")
            if type(optimizer).zero_grad is not torch.optim.Optimizer.zero_grad:
                optimizer.zero_grad()
                continue
            for group in optimizer.param_groups:
                for parameter in group["params"]:
                    parameter.grad = None
        return None


class LossTape:
    """The losses of an epoch's batches, kept where they were computed, read in one transfer.

    They are stacked every ``chunk`` batches (one operation, no transfer), so that an
    epoch of many batches keeps a tensor per chunk, not one per batch.
    """

    def __init__(self, chunk=256):
        self.chunk, self._stacked, self._pending = chunk, [], []

    def append(self, loss):
        # A view would keep its base's storage until the chunk is stacked.
        self._pending.append(loss.detach() if loss._base is None else loss.detach().clone())
        if len(self._pending) == self.chunk:
            self._stacked.append(_stack(self._pending))
            self._pending = []

    def values(self):
        """The losses as Python floats, as ``loss.item()`` gives them, in order."""
        parts = self._stacked + ([_stack(self._pending)] if self._pending else [])
        if all(isinstance(part, torch.Tensor) for part in parts):
            try:
                return torch.cat(parts).tolist() if parts else []
            except RuntimeError:  # chunks of different dtypes or devices
                pass
        return [value for part in parts for value in (
            part.tolist() if isinstance(part, torch.Tensor) else [v.item() for v in part])]


def _stack(losses):
    """One-element tensors as one 1-d tensor, or the list itself where they do not stack."""
    try:
        values = torch.stack(losses).reshape(len(losses), -1)
    except RuntimeError:  # different dtypes, shapes or devices
        return losses
    return values[:, 0] if values.shape[1] == 1 else losses  # .item() raises for the latter
