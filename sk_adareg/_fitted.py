"""The one narrow way in which metrics and plotting read a fitted AdaReg model."""

# SPDX-License-Identifier: BSD-3-Clause

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from ._estimators._base import BaseAdaReg
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
        Names of the network's outputs (classes; tasks: ``target_names_``, or
        ``"task 0"``, ...) and ``output_kind`` what they are (``"class"``,
        ``"task"``).
    output_kind : str or None
    feature_names : list or None
        Names of the input features, when the estimator saw them, or, in a
        pipeline, the names the steps before it give their outputs.
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


def _last_step(estimator):
    """The last step of a pipeline (of nested pipelines), and the names of its input
    features given by the steps before it; ``(estimator, None)`` for anything else."""
    feature_names = None
    while isinstance(estimator, Pipeline):
        pipeline, estimator = estimator, estimator[-1]
        try:
            feature_names = pipeline[:-1].get_feature_names_out() if len(pipeline) > 1 else None
        except (AttributeError, NotFittedError):  # a step that does not name its outputs
            feature_names = None
    return estimator, feature_names


def fitted_model(estimator):
    """The :class:`FittedModel` of a fitted AdaReg estimator (or a pipeline ending in one)
    or an initialized AdaReg net.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If the estimator is not fitted (the net not initialized).
    TypeError
        If ``estimator`` is neither.
    """
    given = estimator
    estimator, step_feature_names = _last_step(estimator)
    if isinstance(estimator, BaseAdaReg):
        check_is_fitted(estimator, "net_")
        net = estimator.net_
    elif isinstance(estimator, AdaRegMixin):
        if not hasattr(estimator, "priors_"):
            raise NotFittedError(
                f"This {type(estimator).__name__} is not initialized yet: call "
                "'initialize' or 'fit' first.")
        net = estimator
    else:
        got = type(given).__name__
        if given is not estimator:
            got += f" ending in {type(estimator).__name__}"
        raise TypeError(
            "estimator must be a fitted AdaRegClassifier or AdaRegMultiTaskRegressor (or a "
            "Pipeline ending in one), or an AdaReg skorch net from sk_adareg.net; got "
            f"{got}.")
    classes = getattr(estimator, "classes_", None)
    n_outputs = getattr(estimator, "n_outputs_", None)
    if classes is not None:
        output_labels, output_kind = list(classes), "class"
    elif n_outputs is not None:
        names = getattr(estimator, "target_names_", None)
        output_labels = ([f"task {k}" for k in range(n_outputs)] if names is None
                         else list(names))
        output_kind = "task"
    else:
        output_labels, output_kind = None, None
    feature_names = getattr(estimator, "feature_names_in_", step_feature_names)
    if feature_names is not None and len(feature_names) != getattr(
            estimator, "n_features_in_", len(feature_names)):
        feature_names = None
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
