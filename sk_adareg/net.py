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
from skorch.utils import to_tensor

from . import _strength
from ._data import WeightedTarget, first_output
from ._engine import FIT_STATE, EngineMixin
from ._layers import resolve_adareg_layers
from ._losses import TargetWeightedMSELoss
from ._params import ADAREG_PARAMS, NET_DEFAULTS, PRIOR_PARAMS, check_params, parameters_doc
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


class AdaRegMixin(EngineMixin):
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
      with ``reg_lambda="evidence"`` or ``"loo"`` only, learns the strength of each
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

    Training runs through the package's speed engine, which gives skorch's
    results to the last bit in less time for small networks; it is turned off
    with :func:`sk_adareg.config_context` (``fast_engine=False``).

    The nets train data-parallel with skorch's
    :class:`~skorch.hf.AccelerateMixin` (on CPU processes, with
    :class:`sk_adareg.distributed.AccelerateMixin`): the penalty and the
    precisions are those of the network inside the ``DistributedDataParallel``
    wrapper, and the precisions are broadcast from the first process after
    each update (:mod:`sk_adareg.distributed`).

    Parameters
    ----------
    {parameters_doc(defaults=NET_DEFAULTS)}

    *args, **kwargs
        Passed on to the skorch net.

    Attributes
    ----------
    priors_ : PriorCollection
        The priors, built at initialization.
    reg_lambda_ : dict of str to float
        The strength in force for each regularized weight (the factor of its
        penalty in the mean loss): learned with ``reg_lambda="evidence"`` or ``"loo"``.
    noise_variance_ : list of float or None
        With learned strengths and a squared-error criterion, the noise
        variance of each target learned at the last update (in the units of
        the targets the net trains on); None before.
    """

    def __init__(self, *args, **kwargs):
        adareg_params = {name: kwargs.pop(name, default)
                         for name, default in NET_DEFAULTS.items()}
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

    def get_default_callbacks(self):
        return [
            *super().get_default_callbacks(),
            ("divergence_check", DivergenceCheck()),
            ("prior_update", PriorUpdate()),
            ("strength_update", StrengthUpdate()),
            ("prior_refresh", PriorRefresh()),
        ]

    def __getstate__(self):
        # skorch pickles its modules, criteria and optimizers apart from the rest and loads
        # them with a map_location, so that a net trained on a GPU loads on a machine
        # without one. The ``module`` parameter may be the trained module itself (an
        # instance given to the net, as the estimators give theirs), and callbacks may hold
        # tensors (EarlyStopping's best weights): they travel the same way.
        prefixes = self.cuda_dependent_attributes_
        self.cuda_dependent_attributes_ = [
            *prefixes, *(p for p in _DEVICE_PREFIXES if p not in prefixes)]
        try:
            return super().__getstate__()
        finally:
            self.cuda_dependent_attributes_ = prefixes

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
        names = resolve_adareg_layers(self.regularized_module, self.adareg_layers)
        self.priors_ = PriorCollection(
            self.regularized_module, names,
            **{name: getattr(self, name) for name in PRIOR_PARAMS})
        self.decov_recorder_ = None  # attached in on_train_begin when decov_lambda > 0
        self.batch_data_loss_ = None
        # The strength of each prior in the loss's units, and the noise variances
        # (training units) once an evidence fit has estimated them.
        self.strength_policy.initialize(self, names)
        return self

    @property
    def regularized_module(self):
        """``module_``, unwrapped from a data-parallel wrapper: what the priors regularize."""
        return unwrap(self.module_)

    @property
    def strength_policy(self):
        """What ``reg_lambda`` means (:mod:`sk_adareg._strength`), for its current value."""
        cached = self.__dict__.get("_strength")
        if cached is None or cached[0] is not self.reg_lambda:
            cached = self.__dict__["_strength"] = (self.reg_lambda,
                                                   _strength.strength_policy(self.reg_lambda))
        return cached[1]

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        # The callbacks plan a call's prior updates over the epochs it trains: a
        # partial_fit(epochs=k) shorter than max_epochs is a step of a longer training.
        self.__dict__["_call_epochs"] = int(self.max_epochs if epochs is None else epochs)
        return super().fit_loop(X, y, epochs=epochs, **fit_params)

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        super().on_train_begin(net, X=X, y=y, **kwargs)
        # The parameters may have changed through set_params since initialization.
        self._check_adareg_params()
        self.priors_.set_hyperparameters(**{name: getattr(self, name) for name in PRIOR_PARAMS})
        # Checked before training: what the strength policy will need.
        self.strength_policy.begin(self, X)
        self.decov_recorder_ = None
        if self.decov_lambda:
            layer = last_linear(self.regularized_module)
            if layer is None:
                raise ValueError(
                    f"decov_lambda={self.decov_lambda!r} needs an nn.Linear layer, whose "
                    f"input DeCov decorrelates; {type(self.module_).__name__} has none.")
            # Looked up from the module each fit: the hook travels with the module.
            self.decov_recorder_ = InputRecorder.attach(layer)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """Data loss, plus ``reg_lambda * penalty`` (and DeCov) when ``training``.

        With ``y_true`` a :class:`~sk_adareg._data.WeightedTarget` (a
        batch of a dataset with sample weights), the data loss is the
        average of the samples' losses weighted by their weights, normalised
        by the batch's total weight, as in scikit-learn's MLPs. A module that
        returns a tuple is scored on its first element, the prediction (skorch's
        convention).
        """
        y_pred = first_output(y_pred)
        if isinstance(y_true, WeightedTarget):
            loss = self._weighted_loss(y_pred, y_true, X, training)
        else:
            loss = super().get_loss(y_pred, y_true, X=X, training=training)
        if not training:
            return loss
        # Handed to the prior_update callback, which clears it at the batch's end.
        self.__dict__["batch_data_loss_"] = loss.detach()  # skorch's __setattr__ costs
        policy = self.strength_policy
        if self.__dict__.get("_penalty_after_backward"):
            pass  # train_step_single adds the penalty's gradient and value itself
        elif policy.learned:  # the learned strengths are in the priors' strengths
            loss = loss + self.priors_.penalty(self.regularized_module)
        elif policy.active:
            loss = loss + self.reg_lambda * self.priors_.penalty(self.regularized_module)
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

    def train_step_single(self, batch, **fit_params):
        """skorch's training step, with the penalty's gradient added after ``backward()``.

        The same gradient as autograd through ``get_loss``'s penalty, at a fraction
        of the per-batch cost (:meth:`PriorCollection.add_penalty_gradients`), and
        before skorch notifies ``on_grad_computed`` (gradient clipping sees it).
        The returned loss includes the penalty. A subclass whose own
        ``train_step_single`` comes first in the method order (skorch's
        ``AccelerateMixin``) gets the penalty through ``get_loss`` instead.

        For the estimators' default network, a ReLU multilayer perceptron
        without dropout or batch norm, under ``CrossEntropyLoss`` or a squared
        error (with or without sample weights), the speed engine runs the
        forward and backward passes without autograd: the same kernels, hence
        the same gradients to the last bit, at about two thirds of the cost on
        a CPU.
        """
        step = self.engine_step(batch, **fit_params)
        if step is not None:
            self.__dict__["batch_data_loss_"] = step["loss"]
            return self._add_penalty(step)
        if not self.strength_policy.active:
            return super().train_step_single(batch, **fit_params)
        # In __dict__ directly: skorch's __setattr__ costs more than a small layer's penalty.
        self.__dict__["_penalty_after_backward"] = True
        try:
            step = super().train_step_single(batch, **fit_params)
        finally:
            self.__dict__["_penalty_after_backward"] = False
        return self._add_penalty(step)

    def quiet_epoch(self):
        """Bind the penalty's factors for an epoch in which no batch callback can change them."""
        if not (self.strength_policy.active and self._mirrors_steps()):
            return super().quiet_epoch()
        return _BoundPenalty(self)

    def _add_penalty(self, step):
        """Add the penalty's gradient to the weights' ``.grad``, its value to the step's loss."""
        if not self.strength_policy.active:
            return step
        penalty_step = self.__dict__.get("_epoch_penalty_step") or self._penalty_step()
        step["loss"] = step["loss"] + penalty_step()
        return step

    def _penalty_step(self):
        """The priors' :meth:`~sk_adareg.prior.PriorCollection.penalty_step` as they stand."""
        # With a fixed reg_lambda the strengths are 1 (set in on_train_begin).
        policy = self.strength_policy
        return self.priors_.penalty_step(self.regularized_module, policy.scale,
                                         use_strengths=policy.learned)

    def update_priors(self):
        """Update every prior in closed form from the current weights.

        In data-parallel training every process computes the update from the
        same weights; the first process's precisions are then broadcast to
        the others, so that all hold the same to the last bit.

        Returns
        -------
        self
        """
        self.priors_.update(self.regularized_module)
        if process_count(self) > 1:
            broadcast_buffers(self.priors_)
        self.prior_changed()
        return self

    def prior_changed(self):
        """Take a change of the precisions or strengths into the penalty within an epoch.

        An epoch of the speed engine binds the penalty's factors once; a callback
        that changes the priors between two steps (a short fit's update) calls
        this, and the rest of the epoch trains under the new prior.
        """
        if self.__dict__.get("_epoch_penalty_step") is not None:
            self.__dict__["_epoch_penalty_step"] = self._penalty_step()


# Attributes, besides skorch's modules, criteria and optimizers, that may hold tensors on
# the training device: skorch's pickling loads those with a map_location.
_DEVICE_PREFIXES = ("module", "callbacks")
# Batch callbacks that read nothing of the history during an epoch.
AdaRegMixin._QUIET_CALLBACKS = (PriorUpdate, StrengthUpdate)
# The classes whose training loss the engine's step reproduces.
AdaRegMixin._ENGINE_MIRRORS = (AdaRegMixin, NeuralNet, NeuralNetClassifier, NeuralNetRegressor)
# What the mixin keeps in __dict__ during a fit, besides the engine's (not parameters).
_FIT_STATE = FIT_STATE | {"_strength", "_epoch_penalty_step", "_penalty_after_backward",
                          "_call_epochs"}


class _BoundPenalty:
    """The penalty step bound once for a quiet epoch (see :meth:`AdaRegMixin.quiet_epoch`)."""

    def __init__(self, net):
        self.net = net

    def __enter__(self):
        self.net.__dict__["_epoch_penalty_step"] = self.net._penalty_step()

    def __exit__(self, *exc):
        self.net.__dict__["_epoch_penalty_step"] = None


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
