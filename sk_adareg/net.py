"""skorch nets that train with the AdaReg prior.

:class:`AdaRegMixin` adds the matrix-normal prior to any skorch
:class:`~skorch.NeuralNet`: ``reg_lambda * penalty`` joins the training loss,
and the callbacks of :mod:`sk_adareg.callbacks`, among the net's default
callbacks, update the precisions every ``cov_update_every`` epochs
(Algorithm 1 of the paper).
"""

# SPDX-License-Identifier: BSD-3-Clause

import torch
from skorch import NeuralNet, NeuralNetClassifier, NeuralNetRegressor
from skorch.callbacks import Callback
from skorch.dataset import get_len, unpack_data
from skorch.history import History
from skorch.utils import to_tensor

from ._batches import WeightedTarget
from ._evidence import TargetWeightedMSELoss, likelihood_of
from ._fast_optim import adam_plan
from ._fast_step import step_plan
from ._kfac import resolve_kfac_layers
from ._layers import resolve_adareg_layers
from ._params import (
    ADAREG_PARAMS,
    AUTO_START,
    DEFAULTS,
    PRIOR_PARAMS,
    check_params,
    parameters_doc,
)
from .callbacks import DivergenceCheck, PriorRefresh, PriorUpdate, StrengthUpdate
from .decov import InputRecorder, decov_penalty, last_linear
from .distributed import broadcast_buffers, process_count, unwrap
from .prior import PriorCollection

__all__ = [
    "AdaRegMixin",
    "AdaRegNeuralNet",
    "AdaRegNeuralNetClassifier",
    "AdaRegNeuralNetRegressor",
    "PriorCollection",
    "TargetWeightedMSELoss",
]


class AdaRegMixin:
    __doc__ = f"""Adds AdaReg priors to a skorch net.

    Put it first among the bases (``class MyNet(AdaRegMixin, NeuralNet)``).
    At initialization it checks its parameters and builds a
    :class:`~sk_adareg.prior.PriorCollection` as the net's ``priors_``
    attribute, a registered module, so skorch moves it to ``device`` and
    pickles it. The training loss is the data loss plus ``reg_lambda *
    penalty`` (and DeCov); ``valid_loss`` (and early stopping on it) sees the
    data loss alone. ``get_loss`` adds the penalty when ``training=True``;
    during training, ``train_step_single`` adds its gradient after
    ``backward()`` instead, which is cheaper per batch and gives the same
    gradients and loss (a subclass whose own ``train_step_single`` comes first,
    such as skorch's ``AccelerateMixin``, gets it through ``get_loss``). The
    per-epoch work is done by callbacks that the mixin adds to the net's
    default callbacks (:mod:`sk_adareg.callbacks`):

    - ``divergence_check`` (:class:`~sk_adareg.callbacks.DivergenceCheck`)
      raises :class:`~sk_adareg.exceptions.TrainingDivergedError` when a
      training loss of the epoch, or a weight after it, is NaN or infinite;
    - ``prior_update`` (:class:`~sk_adareg.callbacks.PriorUpdate`) updates the
      precisions every ``cov_update_every`` epochs, warns when a layer
      collapses, and records in the history ``train_data_loss`` (the loss
      without the penalty), ``adareg_penalty``, ``adareg_objective`` (the
      prior's part of objective (4)), ``row_precision_min``/``_max``,
      ``column_precision_min``/``_max`` and ``cov_update`` (whether the
      precisions were updated at that epoch);
    - ``strength_update`` (:class:`~sk_adareg.callbacks.StrengthUpdate`),
      with ``reg_lambda="auto"`` or ``"loo"`` only, learns the strength of each
      prior (and the noise of each target under ``MSELoss``) from the training
      data by the Laplace evidence after each precision update, and records
      ``log_evidence`` (with ``"loo"`` it then rescales the strengths by the
      approximate leave-one-out error, and records ``loo_scale`` and
      ``loo_mse``); it needs ``criterion`` ``MSELoss``,
      :class:`TargetWeightedMSELoss` (which also weighs the targets by their
      learned noise precision) or ``CrossEntropyLoss``;
    - ``prior_refresh`` (:class:`~sk_adareg.callbacks.PriorRefresh`) runs
      after every other callback at the end of training and updates the
      precisions once more when the net ends with other weights than those of
      its last epoch (``EarlyStopping(load_best=True)`` restored the best
      ones, or training was interrupted mid-epoch) or when no update happened.

    The nets train data-parallel with skorch's
    :class:`~skorch.hf.AccelerateMixin` (on CPU processes, with
    :class:`sk_adareg.distributed.AccelerateMixin`): the penalty and the
    precisions are those of the network inside the ``DistributedDataParallel``
    wrapper, and the precisions are broadcast from the first process after
    each update (:mod:`sk_adareg.distributed`).

    Parameters
    ----------
    {parameters_doc()}

    *args, **kwargs
        Passed on to the skorch net.

    Attributes
    ----------
    priors_ : PriorCollection
        The priors, built at initialization.
    reg_lambda_ : dict of str to float
        The strength in force for each regularized weight (the factor of its
        penalty in the mean loss): learned with ``reg_lambda="auto"``.
    noise_variance_ : list of float or None
        With ``reg_lambda="auto"`` and a squared-error criterion, the noise
        variance of each target learned at the last update (in the units of
        the targets the net trains on); None before.
    """

    def __init__(self, *args, **kwargs):
        adareg_params = {name: kwargs.pop(name, default) for name, default in DEFAULTS.items()}
        super().__init__(*args, **kwargs)
        vars(self).update(adareg_params)

    def _get_param_names(self):
        # skorch reads the parameters from __dict__; the per-fit state kept there is not one.
        return [name for name in super()._get_param_names() if name not in _FIT_STATE]

    def _check_adareg_params(self):
        check_params({name: getattr(self, name) for name in ADAREG_PARAMS}, type(self).__name__)

    def _validate_params(self):
        super()._validate_params()
        self._check_adareg_params()

    # Per-batch events: a callback that inherits skorch's no-op for one is not called.
    _BATCH_EVENTS = ("on_batch_begin", "on_batch_end", "on_grad_computed")

    def notify(self, method_name, **cb_kwargs):
        """Call the callbacks' ``method_name``, as skorch does.

        The listeners of each per-batch event (the net itself, and the
        callbacks that override skorch's no-op ``Callback`` method) are found
        once per epoch, at ``on_epoch_begin``, instead of calling every
        callback at every batch; the callbacks cannot change within an epoch.
        After the callbacks' ``on_epoch_begin`` (which may add hooks), the net
        decides whether the epoch's steps can run without autograd.
        """
        listeners = self.__dict__.get("_batch_listeners")
        if listeners is not None and method_name in self._BATCH_EVENTS:
            for listener in listeners[method_name]:
                listener(self, **cb_kwargs)
            return None
        if method_name in ("on_train_begin", "on_epoch_begin"):
            self._find_batch_listeners()
        try:
            return super().notify(method_name, **cb_kwargs)
        finally:
            if method_name == "on_epoch_begin":
                self.__dict__["_fast_step"] = self._fast_step_plan()
                self.__dict__["_optimizer_steps"] = {
                    name: adam_plan(getattr(self, name + "_")) for name in self._optimizers}
            if method_name == "on_train_end":  # a fitted net keeps no module lists
                self._batch_listeners = self._mode_modules = None
                self.__dict__["_fast_step"] = self.__dict__["_optimizer_steps"] = None

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        """Run one epoch, as skorch does, reading the batches' losses once at its end.

        skorch reads each batch's loss to the host (``loss.item()``) as the batch
        ends, which on a GPU waits for the batch's work to finish, every batch.
        Where nothing can read the history during the epoch (no batch callbacks
        but the net's own and :class:`~sk_adareg.callbacks.PriorUpdate`, skorch's
        own ``on_batch_begin``), the losses are kept as tensors where they were
        computed (:class:`_LossTape`) and written to the history in one transfer
        when the epoch ends: the same records, in the same order. Otherwise
        skorch's loop runs.
        """
        ends = self._quiet_batch_listeners(training, iterator)
        if ends is None:
            return super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)
        loss_key, size_key = prefix + "_loss", prefix + "_batch_size"
        rows = self.history[-1]["batches"]
        done, losses = [], _LossTape()
        # Nothing between the steps can change the priors: their factors are bound once.
        if (self._auto or self.reg_lambda) and _skorch_steps(type(self)):
            self.__dict__["_epoch_penalty_step"] = self._penalty_step()
        try:
            for batch in iterator:
                row = {}
                rows.append(row)  # skorch's on_batch_begin: history.new_batch()
                step = step_fn(batch, **fit_params)
                losses.append(step["loss"])
                done.append(row)
                row[loss_key] = None  # read below; the key keeps skorch's order
                row[size_key] = get_len(batch[0] if isinstance(batch, (tuple, list)) else batch)
                for listener in ends:
                    listener(self, batch=batch, training=training, **step)
        finally:
            # Also when the epoch is interrupted: the finished batches keep their losses.
            self.__dict__["_epoch_penalty_step"] = None
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
                type(getattr(listener, "__self__", None)) not in _QUIET_CALLBACKS
                for listener in ends[1:]):
            return None
        return ends[1:]

    def _find_batch_listeners(self):
        """The bound per-batch methods that do something, and the modules' train switches."""
        # The net's own methods always run (skorch's open a batch row in the history).
        self._batch_listeners = {
            event: [getattr(self, event)] + [
                getattr(cb, event) for _, cb in self.callbacks_
                if getattr(type(cb), event, None) is not getattr(Callback, event)]
            for event in self._BATCH_EVENTS}
        modules = [getattr(self, name + "_") for name in self._modules + self._criteria]
        modules = [m for m in modules if isinstance(m, torch.nn.Module)]
        # Only where no module has a train() of its own is setting ``training`` equivalent.
        every = [sub for m in modules for sub in m.modules()]
        plain = all(type(sub).train is torch.nn.Module.train for sub in every)
        self._mode_modules = every if plain else None

    def _set_training(self, training=True):
        """Set the modules' training mode, as skorch, at no cost when they are in it already.

        skorch sets it at every training step; walking the modules costs more
        than a small network's step.
        """
        modules = self.__dict__.get("_mode_modules")
        if modules is not None and all(m.training is training for m in modules):
            return
        super()._set_training(training)

    def get_default_callbacks(self):
        return [
            *super().get_default_callbacks(),
            ("divergence_check", DivergenceCheck()),
            ("prior_update", PriorUpdate()),
            ("strength_update", StrengthUpdate()),
            ("prior_refresh", PriorRefresh()),
        ]

    def initialize_callbacks(self):
        """Initialize the callbacks, with the prior refresh after all others."""
        super().initialize_callbacks()
        # The refresh must see the weights the net ends with, after any callback
        # that restores earlier ones (EarlyStopping(load_best=True), a checkpoint).
        self.callbacks_.sort(key=lambda item: isinstance(item[1], PriorRefresh))
        return self

    def initialize_module(self):
        """Initialize the module, then one prior per selected weight."""
        super().initialize_module()
        names = resolve_adareg_layers(self._adareg_module, self.adareg_layers)
        self.priors_ = PriorCollection(
            self._adareg_module, names, **{name: getattr(self, name) for name in PRIOR_PARAMS})
        self.decov_recorder_ = None  # attached in on_train_begin when decov_lambda > 0
        self.batch_data_loss_ = None
        # The strength of each prior in the loss's units, and the noise variances
        # (training units) once an evidence fit has estimated them.
        start = AUTO_START if self._auto else self.reg_lambda
        self.reg_lambda_ = dict.fromkeys(names, start)
        self.noise_variance_ = None
        if self._auto:
            self.priors_.set_strengths(self.reg_lambda_)
        return self

    @property
    def _adareg_module(self):
        """``module_``, unwrapped from a data-parallel wrapper: what the priors regularize."""
        return unwrap(self.module_)

    @property
    def _auto(self):
        """Whether the strengths are learned (``reg_lambda`` ``"auto"`` or ``"loo"``)."""
        return isinstance(self.reg_lambda, str)

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        super().on_train_begin(net, X=X, y=y, **kwargs)
        # The parameters may have changed through set_params since initialization.
        self._check_adareg_params()
        self.priors_.set_hyperparameters(**{name: getattr(self, name) for name in PRIOR_PARAMS})
        if self._auto:
            if process_count(self) > 1:
                raise ValueError(
                    f"reg_lambda={self.reg_lambda!r} does not support data-parallel training "
                    "yet: the evidence needs the curvature of all the training data. Use a "
                    "numeric reg_lambda, e.g. the reg_lambda_ of a single-process fit.")
            # Checked before training: the evidence needs these.
            layers = resolve_kfac_layers(self._adareg_module, self.priors_.names)
            likelihood = likelihood_of(self.criterion_)
            if self.reg_lambda == "loo":
                _check_loo(layers, likelihood, self.criterion_, X)
        else:
            self.priors_.strengths.fill_(1.0)
            self.reg_lambda_ = dict.fromkeys(self.priors_.names, self.reg_lambda)
        self.decov_recorder_ = None
        if self.decov_lambda:
            layer = last_linear(self._adareg_module)
            if layer is None:
                raise ValueError(
                    f"decov_lambda={self.decov_lambda!r} needs an nn.Linear layer, whose "
                    f"input DeCov decorrelates; {type(self.module_).__name__} has none.")
            # Looked up from the module each fit: the hook travels with the module.
            self.decov_recorder_ = InputRecorder.attach(layer)

    def _fast_step_plan(self):
        """This net's training step without autograd, or None (:mod:`sk_adareg._fast_step`)."""
        # DeCov's penalty and any override of the loss or the forward call need get_loss.
        if self.decov_lambda or self.module_ is not self._adareg_module:
            return None
        return step_plan(self.module_, self.criterion_) if _skorch_steps(type(self)) else None

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """Data loss, plus ``reg_lambda * penalty`` (and DeCov) when ``training``.

        With ``y_true`` a :class:`~sk_adareg._batches.WeightedTarget` (a
        batch of a dataset with sample weights), the data loss is the
        average of the samples' losses weighted by their weights, normalised
        by the batch's total weight, as in scikit-learn's MLPs.
        """
        if isinstance(y_true, WeightedTarget):
            loss = self._weighted_loss(y_pred, y_true, X, training)
        else:
            loss = super().get_loss(y_pred, y_true, X=X, training=training)
        if not training:
            return loss
        # Handed to the prior_update callback, which clears it at the batch's end.
        self.__dict__["batch_data_loss_"] = loss.detach()  # skorch's __setattr__ costs
        if self.__dict__.get("_penalty_after_backward"):
            pass  # train_step_single adds the penalty's gradient and value itself
        elif self._auto:  # the learned strengths are in the priors' strengths
            loss = loss + self.priors_.penalty(self._adareg_module)
        elif self.reg_lambda:
            loss = loss + self.reg_lambda * self.priors_.penalty(self._adareg_module)
        activations = self.decov_recorder_.pop() if self.decov_recorder_ else None
        if activations is not None:
            loss = loss + self.decov_lambda * decov_penalty(activations)
        return loss

    def _weighted_loss(self, y_pred, y_true, X, training):
        criterion = self.criterion_
        if not hasattr(criterion, "reduction"):
            raise ValueError(
                "sample_weight needs a criterion with a 'reduction' attribute (the per-sample "
                f"losses), as torch's losses have; {type(criterion).__name__} has none.")
        reduction, criterion.reduction = criterion.reduction, "none"
        try:
            losses = super().get_loss(y_pred, y_true.y, X=X, training=training)
        finally:
            criterion.reduction = reduction
        weights = to_tensor(y_true.sample_weight, device=losses.device).to(losses.dtype)
        losses = losses.reshape(len(weights), -1).mean(dim=1)
        total = weights.sum()
        # A batch of zero weights adds nothing (and no NaN): a zero loss with its graph.
        return (weights * losses).sum() / torch.where(total > 0, total, 1.0)

    def _step_optimizer(self, step_fn):
        """skorch's, with torch's fused Adam step called directly (:mod:`sk_adareg._fast_optim`).

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
        if set_to_none is False:
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

    def train_step_single(self, batch, **fit_params):
        """skorch's training step, with the penalty's gradient added after ``backward()``.

        The same gradient as autograd through ``get_loss``'s penalty, at a fraction
        of the per-batch cost (:meth:`PriorCollection.add_penalty_gradients`), and
        before skorch notifies ``on_grad_computed`` (gradient clipping sees it).
        The returned loss includes the penalty. A subclass whose own
        ``train_step_single`` comes first in the method order (skorch's
        ``AccelerateMixin``) gets the penalty through ``get_loss`` instead.

        For the estimators' default network, a ReLU :class:`~sk_adareg._mlp.MLP`
        without dropout or batch norm, under ``CrossEntropyLoss`` or a squared
        error (with or without sample weights), the forward and backward passes
        run without autograd (:mod:`sk_adareg._fast_step`): the same kernels,
        hence the same gradients to the last bit, at about two thirds of the
        cost on a CPU.
        """
        fast = self.__dict__.get("_fast_step")
        if fast is not None and not fit_params:
            X, y = unpack_data(batch)
            weights = None
            if isinstance(y, WeightedTarget):
                y, weights = y.y, y.sample_weight
            if fast.applies(X, y, weights):
                # Moved as skorch's to_tensor moves them.
                X, y = X.to(self.device), y.to(self.device)
                if weights is not None:
                    weights = weights.to(self.device)
                self._set_training(True)
                loss, y_pred = fast(X, y, weights)
                self.__dict__["batch_data_loss_"] = loss
                return self._add_penalty({"loss": loss, "y_pred": y_pred})
        if not (self._auto or self.reg_lambda):
            return super().train_step_single(batch, **fit_params)
        # In __dict__ directly: skorch's __setattr__ costs more than a small layer's penalty.
        self.__dict__["_penalty_after_backward"] = True
        try:
            step = super().train_step_single(batch, **fit_params)
        finally:
            self.__dict__["_penalty_after_backward"] = False
        return self._add_penalty(step)

    def _add_penalty(self, step):
        """Add the penalty's gradient to the weights' ``.grad``, its value to the step's loss."""
        if not (self._auto or self.reg_lambda):
            return step
        penalty_step = self.__dict__.get("_epoch_penalty_step") or self._penalty_step()
        step["loss"] = step["loss"] + penalty_step()
        return step

    def _penalty_step(self):
        """The priors' :meth:`~sk_adareg.prior.PriorCollection.penalty_step` as they stand."""
        # With a fixed reg_lambda the strengths are 1 (set in on_train_begin).
        return self.priors_.penalty_step(
            self._adareg_module, 1.0 if self._auto else float(self.reg_lambda),
            use_strengths=self._auto)

    def update_priors(self):
        """Update every prior in closed form from the current weights.

        In data-parallel training every process computes the update from the
        same weights; the first process's precisions are then broadcast to
        the others, so that all hold the same to the last bit.

        Returns
        -------
        self
        """
        self.priors_.update(self._adareg_module)
        if process_count(self) > 1:
            broadcast_buffers(self.priors_)
        return self


# What the mixin keeps in __dict__ during a fit (skorch would list it among the parameters).
_FIT_STATE = frozenset({"_batch_listeners", "_mode_modules", "_fast_step",
                        "_optimizer_steps", "_epoch_penalty_step",
                        "_penalty_after_backward"})

# Batch callbacks that read nothing of the history during an epoch.
_QUIET_CALLBACKS = (PriorUpdate,)


class _LossTape:
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


# The methods whose work the training step without autograd does itself.
_STEP_METHODS = ("get_loss", "infer", "train_step_single", "_weighted_loss")


def _skorch_steps(cls):
    """Whether ``cls`` computes its training loss as the mixin and skorch's nets do.

    True when no class in its method order but the mixin and skorch's own nets
    overrides a method that the training step calls (a subclass that overrides
    ``train_step_single`` before the mixin and calls ``super()`` still gets it).
    """
    mro = cls.__mro__
    after = mro[mro.index(AdaRegMixin):]
    own = {AdaRegMixin, NeuralNet, NeuralNetClassifier, NeuralNetRegressor}
    for name in _STEP_METHODS:
        classes = after if name == "train_step_single" else mro
        if any(name in vars(k) and k not in own for k in classes):
            return False
    return True


def _check_loo(layers, likelihood, criterion, X):
    """``reg_lambda="loo"`` scores squared errors, through the Jacobians of linear layers."""
    if X is not None and hasattr(X, "__len__") and len(X) < 2:
        raise ValueError(
            "reg_lambda='loo' leaves one sample out: it needs at least 2 training samples, "
            f"got {len(X)} sample.")
    if likelihood != "gaussian":
        raise ValueError(
            "reg_lambda='loo' chooses the strength by the leave-one-out squared error and "
            f"needs a squared-error criterion (MSELoss); got {type(criterion).__name__}. "
            "Use reg_lambda='auto' for classification.")
    for name, layer in layers.items():
        if not isinstance(layer, torch.nn.Linear):
            raise ValueError(
                f"reg_lambda='loo' needs every regularized weight to be an nn.Linear's; "
                f"{name!r} is the weight of a {type(layer).__name__}. Use reg_lambda='auto'.")


class AdaRegNeuralNet(AdaRegMixin, NeuralNet):
    """skorch :class:`~skorch.NeuralNet` trained with AdaReg priors.

    See :class:`AdaRegMixin` for the AdaReg parameters; everything else is
    skorch's.

    Examples
    --------
    >>> import torch
    >>> from sk_adareg.net import AdaRegNeuralNet
    >>> net = AdaRegNeuralNet(torch.nn.Linear(3, 2), torch.nn.MSELoss, max_epochs=2,
    ...                       train_split=None, verbose=0)
    >>> X, y = torch.randn(20, 3), torch.randn(20, 2)
    >>> net.fit(X, y).priors_["weight"].row_covariance.shape
    torch.Size([2, 2])
    """


class AdaRegNeuralNetClassifier(AdaRegMixin, NeuralNetClassifier):
    """skorch :class:`~skorch.NeuralNetClassifier` trained with AdaReg priors.

    See :class:`AdaRegMixin` for the AdaReg parameters. Use it with a module
    that returns logits and ``criterion=torch.nn.CrossEntropyLoss``.
    """


class AdaRegNeuralNetRegressor(AdaRegMixin, NeuralNetRegressor):
    """skorch :class:`~skorch.NeuralNetRegressor` trained with AdaReg priors.

    See :class:`AdaRegMixin` for the AdaReg parameters.
    """
