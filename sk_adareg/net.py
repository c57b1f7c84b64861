"""skorch nets that train with the AdaReg prior.

:class:`AdaRegMixin` adds the matrix-normal prior to any skorch
:class:`~skorch.NeuralNet`: ``reg_lambda * penalty`` joins the training loss,
and the precisions get their closed-form update every ``cov_update_every``
epochs (Algorithm 1 of the paper).
"""

# SPDX-License-Identifier: BSD-3-Clause

import math
import warnings
from numbers import Integral

import torch
from skorch import NeuralNet, NeuralNetClassifier, NeuralNetRegressor
from torch import nn

from ._layers import resolve_adareg_layers
from .decov import InputRecorder, decov_penalty, last_linear
from .exceptions import CollapseWarning, TrainingDivergedError
from .prior import MatrixNormalPrior

__all__ = [
    "AdaRegMixin",
    "AdaRegNeuralNet",
    "AdaRegNeuralNetClassifier",
    "AdaRegNeuralNetRegressor",
    "PriorCollection",
]


class PriorCollection(nn.Module):
    """The priors of a network, one :class:`MatrixNormalPrior` per weight.

    Parameters
    ----------
    module : torch.nn.Module
        The network whose weights carry the priors.
    names : list of str
        Parameter names of ``module``, as in ``module.named_parameters()``.
    **prior_params
        Passed on to :class:`MatrixNormalPrior` (``u``, ``v``, ``numerator``,
        ``precision_scale``).

    Examples
    --------
    >>> from torch import nn
    >>> from sk_adareg.net import PriorCollection
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> priors = PriorCollection(net, ["2.weight"], u=0.1, v=10)
    >>> priors["2.weight"].shape
    (2, 8)
    """

    def __init__(self, module, names, **prior_params):
        super().__init__()
        self.names = list(names)
        self.priors = nn.ModuleList(
            MatrixNormalPrior(module.get_parameter(name).shape, **prior_params)
            for name in self.names
        )

    def __getitem__(self, name):
        return self.priors[self.names.index(name)]

    def __len__(self):
        return len(self.names)

    def items(self):
        """Pairs ``(parameter name, prior)``."""
        return zip(self.names, self.priors, strict=True)

    def penalty(self, module):
        """Sum of the priors' penalties on the weights of ``module``.

        Parameters
        ----------
        module : torch.nn.Module
            The network the priors were built for.

        Returns
        -------
        penalty : torch.Tensor
            A differentiable scalar.
        """
        return sum(prior.penalty(module.get_parameter(name)) for name, prior in self.items())

    def update(self, module):
        """One closed-form update of every prior from the current weights.

        Parameters
        ----------
        module : torch.nn.Module
            The network the priors were built for.

        Returns
        -------
        self : PriorCollection
        """
        for name, prior in self.items():
            prior.update(module.get_parameter(name))
        return self

    def diagnostics(self, module):
        """Summed penalty and objective, extreme precision eigenvalues over all priors.

        Parameters
        ----------
        module : torch.nn.Module
            The network the priors were built for.

        Returns
        -------
        readings : dict of str to float
            See :meth:`MatrixNormalPrior.diagnostics`.
        """
        readings = [prior.diagnostics(module.get_parameter(name)) for name, prior in self.items()]
        summary = {}
        for key in readings[0]:
            values = [r[key] for r in readings]
            reduce = min if key.endswith("_min") else max if key.endswith("_max") else sum
            summary[key] = reduce(values)
        return summary


class AdaRegMixin:
    """Adds AdaReg priors to a skorch net.

    Put it first among the bases (``class MyNet(AdaRegMixin, NeuralNet)``).
    At initialization it builds a :class:`PriorCollection` as the net's
    ``priors_`` attribute, a registered module, so skorch moves it to
    ``device`` and pickles it. During training:

    - ``get_loss`` adds ``reg_lambda * penalty`` when ``training=True`` only,
      so ``valid_loss`` (and early stopping on it) sees the data loss alone;
    - the net's own ``on_epoch_end``, which skorch runs before any callback,
      updates the precisions every ``cov_update_every`` epochs, raises
      :class:`~sk_adareg.exceptions.TrainingDivergedError` when a training
      loss of the epoch, or a weight after it, was NaN or infinite, and
      records in the history:
      ``train_data_loss`` (the loss without the penalty), ``adareg_penalty``,
      ``adareg_objective`` (the prior's part of objective (4)),
      ``row_precision_min``/``_max``, ``column_precision_min``/``_max`` and
      ``cov_update`` (whether the precisions were updated at that epoch);
    - at each update it warns (:class:`~sk_adareg.exceptions.CollapseWarning`,
      once per layer and fit) when a regularized weight is collapsing: its
      norm fell below a quarter of its largest value in this fit while every
      eigenvalue of one of its precisions sits at the upper bound ``v``.

    Parameters
    ----------
    reg_lambda : float, default=3e-3
        Strength of the prior (``lambda`` in objective (4)).
    u, v : float, default=0.1, 10.0
        Bounds on the eigenvalues of both precisions, ``0 < u <= v``.
    cov_update_every : int, default=10
        Number of epochs of the network's optimizer between two updates of
        the precisions.
    adareg_layers : {"last", "all", "linear", "conv"} or list of str, default="last"
        Which weights carry a prior; see
        :func:`~sk_adareg._layers.resolve_adareg_layers`.
    numerator : {"paper", "authors"}, default="paper"
        Convention of the closed-form update; see :class:`MatrixNormalPrior`.
    precision_scale : {"learned", "unit_mean"}, default="unit_mean"
        ``"learned"`` is the paper's prior; ``"unit_mean"`` fixes the mean
        eigenvalue of each precision to 1; see :class:`MatrixNormalPrior`.
    decov_lambda : float, default=0.0
        Strength of the DeCov penalty (:func:`~sk_adareg.decov.decov_penalty`)
        on the input of the module's last ``nn.Linear`` (the penultimate
        activations), a baseline of the paper; it adds to the AdaReg penalty.
    *args, **kwargs
        Passed on to the skorch net.

    Notes
    -----
    A callback that restores earlier weights at the end of training (such as
    ``EarlyStopping(load_best=True)``) leaves the precisions of the last
    epoch; call :meth:`update_priors` afterwards to make them optimal for the
    restored weights.
    """

    # A layer collapses when its norm falls below this fraction of its peak in the fit.
    _COLLAPSE_RATIO = 0.25

    def __init__(self, *args, reg_lambda=3e-3, u=0.1, v=10.0, cov_update_every=10,
                 adareg_layers="last", numerator="paper", precision_scale="unit_mean",
                 decov_lambda=0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.reg_lambda = reg_lambda
        self.u = u
        self.v = v
        self.cov_update_every = cov_update_every
        self.adareg_layers = adareg_layers
        self.numerator = numerator
        self.precision_scale = precision_scale
        self.decov_lambda = decov_lambda

    def _prior_params(self):
        return {"u": self.u, "v": self.v, "numerator": self.numerator,
                "precision_scale": self.precision_scale}

    def initialize_module(self):
        """Initialize the module, then one prior per selected weight."""
        super().initialize_module()
        names = resolve_adareg_layers(self.module_, self.adareg_layers)
        self.priors_ = PriorCollection(self.module_, names, **self._prior_params())
        # (batch-size-weighted sum of the data losses, sample count) of the epoch;
        # the trailing underscore keeps it out of skorch's get_params.
        self.epoch_data_loss_ = [0.0, 0]
        self.decov_recorder_ = None  # attached in on_train_begin when decov_lambda > 0
        return self

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        super().on_train_begin(net, X=X, y=y, **kwargs)
        if not (isinstance(self.cov_update_every, Integral) and self.cov_update_every >= 1):
            raise ValueError(
                f"cov_update_every must be an int >= 1, got {self.cov_update_every!r}."
            )
        for name in ("reg_lambda", "decov_lambda"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be finite and >= 0, got {value!r}.")
        self.decov_recorder_ = None
        if self.decov_lambda:
            layer = last_linear(self.module_)
            if layer is None:
                raise ValueError(
                    f"decov_lambda={self.decov_lambda!r} needs an nn.Linear layer, whose "
                    f"input DeCov decorrelates; {type(self.module_).__name__} has none.")
            # Looked up from the module each fit: the hook travels with the module.
            self.decov_recorder_ = InputRecorder.attach(layer)
        # Norms at earlier updates and layers already warned about, for collapse.
        self.adareg_peak_norms_ = {}
        self.adareg_collapse_warned_ = set()
        # u, v, ... may have changed through set_params since initialization.
        for _, prior in self.priors_.items():
            prior.set_hyperparameters(**self._prior_params())

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        super().on_epoch_begin(net, dataset_train=dataset_train,
                               dataset_valid=dataset_valid, **kwargs)
        self.epoch_data_loss_ = [0.0, 0]

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """Data loss, plus ``reg_lambda * penalty`` (and DeCov) when ``training``."""
        loss = super().get_loss(y_pred, y_true, X=X, training=training)
        if not training:
            return loss
        # Accumulated as a tensor: reading it per batch would synchronise the GPU.
        n = len(y_pred)
        self.epoch_data_loss_[0] = self.epoch_data_loss_[0] + loss.detach() * n
        self.epoch_data_loss_[1] += n
        if self.reg_lambda:
            loss = loss + self.reg_lambda * self.priors_.penalty(self.module_)
        activations = self.decov_recorder_.pop() if self.decov_recorder_ else None
        if activations is not None:
            loss = loss + self.decov_lambda * decov_penalty(activations)
        return loss

    def update_priors(self):
        """Update every prior in closed form from the current weights.

        Returns
        -------
        self
        """
        self.priors_.update(self.module_)
        return self

    def on_epoch_end(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        super().on_epoch_end(net, dataset_train=dataset_train,
                             dataset_valid=dataset_valid, **kwargs)
        epoch = len(self.history)
        batch_losses = self.history[-1, "batches", :, "train_loss"]
        failed = None
        if not all(math.isfinite(loss) for loss in batch_losses):
            failed = "training loss"
        # The last step of an epoch can break the weights after its loss was read.
        elif not torch.stack([p.isfinite().all() for p in self.module_.parameters()]).all():
            failed = "network's weights"
        if failed:
            raise TrainingDivergedError(
                f"The {failed} became NaN or infinite at epoch {epoch}. "
                f"Lower the learning rate (lr={self.lr!r}) or the prior's strength "
                f"(reg_lambda={self.reg_lambda!r}), or scale the inputs."
            )
        update = epoch % self.cov_update_every == 0
        if update:
            self.update_priors()
            self._warn_if_collapsing(epoch)
        loss_sum, count = self.epoch_data_loss_
        if count:
            self.history.record("train_data_loss", float(loss_sum) / count)
        self.history.record("cov_update", update)
        for key, value in self.priors_.diagnostics(self.module_).items():
            name = key if key.endswith(("_min", "_max")) else f"adareg_{key}"
            self.history.record(name, value)

    def _warn_if_collapsing(self, epoch):
        for name, prior in self.priors_.items():
            if name in self.adareg_collapse_warned_:
                continue
            norm = self.module_.get_parameter(name).detach().norm().item()
            peak = max(self.adareg_peak_norms_.get(name, 0.0), norm)
            self.adareg_peak_norms_[name] = peak
            pinned = [side for side, eig in (("row", prior.row_eigenvalues),
                                             ("column", prior.column_eigenvalues))
                      if eig.min().item() >= prior.v * (1 - 1e-9)]
            if pinned and norm < self._COLLAPSE_RATIO * peak:
                self.adareg_collapse_warned_.add(name)
                warnings.warn(
                    f"AdaReg is collapsing {name!r}: at epoch {epoch} its norm has fallen "
                    f"from {peak:.3g} to {norm:.3g} while every eigenvalue of its "
                    f"{pinned[0]} precision sits at the upper bound v={prior.v:g}. The "
                    "paper's prior rewards shrinking the weights without limit; use "
                    "precision_scale='unit_mean', or lower reg_lambda "
                    f"(now {self.reg_lambda:g}) or v.",
                    CollapseWarning,
                    stacklevel=2,
                )


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
