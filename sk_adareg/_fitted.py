"""The one narrow way in which metrics and plotting read a fitted AdaReg model."""

# SPDX-License-Identifier: BSD-3-Clause

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from ._base import _BaseAdaReg
from ._layers import resolve_adareg_layers
from .net import AdaRegMixin

__all__ = []


@dataclass(frozen=True)
class FittedModel:
    """What a fitted AdaReg estimator or net shows to metrics and plotting.

    Parameters
    ----------
    name : str
        Class name of the estimator or net.
    module : torch.nn.Module
        The trained network.
    priors : PriorCollection
        Its priors.
    history : skorch.History
        Per-epoch records.
    bounds : tuple of float
        ``(u, v)``.
    criterion : str
        Class name of the training criterion.
    output_labels : list or None
        Names of the network's outputs (classes, tasks) and ``output_kind``
        what they are (``"class"``, ``"task"``).
    output_kind : str or None
    feature_names : list or None
        Names of the input features, when the estimator saw them.
    standardized_targets : bool
        Whether the loss was computed on standardized targets.
    """

    name: str
    module: torch.nn.Module
    priors: object
    history: object
    bounds: tuple
    criterion: str
    output_labels: list | None
    output_kind: str | None
    feature_names: list | None
    standardized_targets: bool

    @property
    def layers(self):
        """Names of the regularized weights."""
        return list(self.priors.names)

    def weight(self, name):
        """The weight ``name`` as the prior sees it: a (p, d) float64 numpy matrix."""
        matrix = self.priors[name].as_matrix(self.module.get_parameter(name))
        return matrix.detach().to(device="cpu", dtype=torch.float64).numpy()

    def axis_labels(self, layer, which, size):
        """``(labels, axis name)`` of the rows (``which="row"``) or columns of ``layer``."""
        units = list(range(size))
        linear = _linear_weights(self.module)
        if (which == "row" and linear and layer == linear[-1]
                and self.output_labels is not None and len(self.output_labels) == size):
            return list(self.output_labels), self.output_kind
        axis_names = getattr(self.module, "axis_names", None)
        if axis_names is not None and layer in linear:
            name = axis_names(layer)[which == "row"]
            if name == "input feature" and self.feature_names is not None:
                return list(self.feature_names), name
            return units, name
        return units, f"{'output' if which == 'row' else 'input'} unit of {layer}"


def _linear_weights(module):
    try:
        return resolve_adareg_layers(module, "linear")
    except ValueError:  # no nn.Linear at all
        return []


def fitted_model(estimator):
    """The :class:`FittedModel` of a fitted AdaReg estimator or an initialized AdaReg net.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If the estimator is not fitted (the net not initialized).
    TypeError
        If ``estimator`` is neither.
    """
    if isinstance(estimator, _BaseAdaReg):
        check_is_fitted(estimator, "net_")
        net = estimator.net_
    elif isinstance(estimator, AdaRegMixin):
        if not hasattr(estimator, "priors_"):
            raise NotFittedError(
                f"This {type(estimator).__name__} is not initialized yet: call "
                "'initialize' or 'fit' first.")
        net = estimator
    else:
        raise TypeError(
            "estimator must be a fitted AdaRegClassifier or AdaRegMultiTaskRegressor, or an "
            f"AdaReg skorch net from sk_adareg.net; got {type(estimator).__name__}.")
    classes = getattr(estimator, "classes_", None)
    n_outputs = getattr(estimator, "n_outputs_", None)
    if classes is not None:
        output_labels, output_kind = list(classes), "class"
    elif n_outputs is not None:
        output_labels, output_kind = [f"task {k}" for k in range(n_outputs)], "task"
    else:
        output_labels, output_kind = None, None
    feature_names = getattr(estimator, "feature_names_in_", None)
    return FittedModel(
        name=type(estimator).__name__,
        module=net.module_,
        priors=net.priors_,
        history=net.history,
        bounds=(net.u, net.v),
        criterion=type(net.criterion_).__name__,
        output_labels=output_labels,
        output_kind=output_kind,
        feature_names=None if feature_names is None else list(np.asarray(feature_names)),
        standardized_targets=bool(getattr(estimator, "standardize_targets", False)),
    )
