"""What ``reg_lambda`` means: one strength policy per value, chosen in one place.

The nets, their callbacks and the estimators never test ``reg_lambda`` themselves;
they ask its policy (:func:`strength_policy`):

- :class:`FixedStrength` (a number): ``reg_lambda * penalty`` joins the loss; the
  evidence fits only the noise at the end (for ``return_std``).
- :class:`EvidenceStrength`: a strength per regularized weight (and a noise
  variance per target) by type-II maximum likelihood, the Laplace evidence of the
  training data, after every precision update (:mod:`._evidence`).
- :class:`LooStrength`: the evidence's strengths times the one factor that
  minimizes the approximate leave-one-out error of the linearized network
  (:mod:`._loo`).
- :class:`AutoStrength`: the estimators' choice between the learned policies by
  cross-validation on the training data; a net trains under the chosen one.

Strengths are kept in the loss's units (``c_l``, the factor of each penalty in the
mean loss: ``net.reg_lambda_``); :func:`~._evidence.prior_scale` converts them to the
prior's (``lambda_l``) where the evidence needs them.
"""

# SPDX-License-Identifier: BSD-3-Clause

import numpy as np
import torch

from .._layers import owning_layers
from .._losses import likelihood_of
from .._params import AUTO_START, LEARNED_STRENGTHS
from ..distributed import process_count
from ._evidence import fit_evidence, update_data
from ._loo import rescale_strengths

__all__ = ["MIN_LOO_SAMPLES", "AutoStrength", "EvidenceStrength", "FixedStrength", "LooStrength",
           "strength_policy"]

#: The fewest effective samples, ``(sum w)^2 / sum w^2``, that ``"loo"`` needs.
MIN_LOO_SAMPLES = 2


class FixedStrength:
    """A numeric ``reg_lambda``: the same strength on every regularized weight.

    Parameters
    ----------
    value : float
        ``reg_lambda``, the factor of the penalty in the mean loss.
    """

    name = "fixed"
    learned = False
    incremental = True  # partial_fit and warm_start may continue under it
    chooses = False  # the estimator chooses nothing by cross-validation

    def __init__(self, value):
        self.value = value
        self.scale = float(value)  # the penalty's factor in the loss
        self.active = bool(value)  # whether the loss has a penalty at all

    def __repr__(self):
        return f"FixedStrength({self.value!r})"

    def initialize(self, net, names):
        """The strengths when the net's priors are built (or when training goes on at a
        fixed strength after learned ones: the targets count alike again)."""
        net.reg_lambda_ = dict.fromkeys(names, self.value)
        net.noise_variance_ = None
        # The criterion exists when training goes on (initialize builds it after this).
        weights = getattr(vars(net).get("criterion_"), "target_weights", None)
        if weights is not None:
            weights.fill_(1.0)

    def check_weights(self, sample_weight):
        """Whether the strength can be set with these sample weights: any can."""

    def accepts(self, sample_weight):
        """Whether :meth:`check_weights` passes: always, at a fixed strength."""
        return True

    def begin(self, net, X):
        """At the start of training: the priors' relative strengths are 1."""
        net.priors_.strengths.fill_(1.0)
        net.reg_lambda_ = dict.fromkeys(net.priors_.names, self.value)

    def update(self, net, dataset):
        """After a precision update: nothing to learn; no history records."""
        return {}

    def posterior(self, net, dataset, predictive):
        """The Laplace posterior at the end of training, where the estimator needs one.

        At a fixed strength only the noise is fitted (regression), and only where
        ``predictive`` and every regularized weight is linear or convolutional.
        """
        if not predictive:
            return None
        try:
            owning_layers(net.regularized_module, net.priors_.names)
        except ValueError:  # a prior on another weight: no posterior, no return_std
            return None
        return fit_evidence(net, dataset, fit_strength=False)


class EvidenceStrength:
    """Strengths (and noise variances) learned by the Laplace evidence of the training data.

    They start at :data:`~sk_adareg._params.AUTO_START` and are refitted after
    every precision update during training. The end of training fits the noise
    only, at the strengths the final weights were trained under.
    """

    name = "evidence"
    learned = True
    incremental = False
    chooses = False
    active = True
    scale = 1.0  # the learned strengths live in the priors' strengths

    def __repr__(self):
        return f"{type(self).__name__}()"

    def initialize(self, net, names):
        net.reg_lambda_ = dict.fromkeys(names, AUTO_START)
        net.noise_variance_ = None
        net.priors_.set_strengths(net.reg_lambda_)

    def check_weights(self, sample_weight):
        """Whether the strength can be learned with these sample weights: any can."""

    def accepts(self, sample_weight):
        """Whether :meth:`check_weights` passes (a fold of ``"auto"`` scores it ``-inf``)."""
        try:
            self.check_weights(sample_weight)
        except ValueError:
            return False
        return True

    def begin(self, net, X):
        """Check, before training, what the evidence will need."""
        if process_count(net) > 1:
            raise ValueError(
                f"reg_lambda={self.name!r} does not support data-parallel training "
                "yet: the evidence needs the curvature of all the training data. Use a "
                "numeric reg_lambda, e.g. the reg_lambda_ of a single-process fit.")
        owning_layers(net.regularized_module, net.priors_.names)
        likelihood_of(net.criterion_)

    def update(self, net, dataset):
        """Refit the strengths to the current weights; the history records.

        On a large training set the curvature (and the leave-one-out error) come
        from a random subset (:func:`~._evidence.update_data`).
        """
        seed = len(net.history) * 1_000_003 + len(net.history[-1]["batches"])
        curvature_data, press_data = update_data(dataset, seed)
        laplace = fit_evidence(net, curvature_data, fit_strength=True)
        return self._records(net, press_data, laplace)

    def _records(self, net, dataset, laplace):
        return {"log_evidence": laplace.log_evidence()}

    def posterior(self, net, dataset, predictive):
        """The Laplace posterior at the end of training: the noise fitted, the strengths kept."""
        return fit_evidence(net, dataset, fit_strength=False)


class LooStrength(EvidenceStrength):
    """The evidence's strengths, times the factor with the least leave-one-out error.

    After each evidence fit, every strength is multiplied by the factor of
    :data:`~sk_adareg._strength._loo.SCALES` that minimizes the approximate
    leave-one-out squared error (PRESS) of the linearized network, and the targets
    are weighed alike. Regression with ``nn.Linear`` weights only.
    """

    name = "loo"

    def check_weights(self, sample_weight):
        """Raise a ValueError where a few samples carry almost all the weight.

        Leaving out a sample that carries nearly all the weight leaves nothing to
        predict it from: its leverage reaches 1 and the leave-one-out error is
        undefined. It needs the effective number of samples, ``(sum w)^2 / sum w^2``
        (Kish's), to be at least 2.
        """
        if sample_weight is None:
            return
        weights = np.asarray(sample_weight, dtype=np.float64)
        n_eff = weights.sum() ** 2 / (weights**2).sum() if weights.any() else 0.0
        if not n_eff >= MIN_LOO_SAMPLES:
            raise ValueError(
                "reg_lambda='loo' leaves one sample out at a time, which needs the weight "
                f"spread over at least {MIN_LOO_SAMPLES} samples; sample_weight gives an "
                f"effective number of samples (sum w)^2 / sum w^2 of {n_eff:.3g}: one "
                "sample carries almost all of it. Spread the weights, or use "
                "reg_lambda='evidence'.")

    def begin(self, net, X):
        super().begin(net, X)
        if X is not None and hasattr(X, "__len__") and len(X) < 2:
            raise ValueError(
                "reg_lambda='loo' leaves one sample out: it needs at least 2 training "
                f"samples, got {len(X)} sample.")
        self.check_weights(getattr(X, "sample_weight", None))
        if likelihood_of(net.criterion_) != "gaussian":
            raise ValueError(
                "reg_lambda='loo' chooses the strength by the leave-one-out squared error "
                "and needs a squared-error criterion (MSELoss); got "
                f"{type(net.criterion_).__name__}. Use reg_lambda='evidence' for classification.")
        for name, layer in owning_layers(net.regularized_module, net.priors_.names).items():
            if not isinstance(layer, torch.nn.Linear):
                raise ValueError(
                    f"reg_lambda='loo' needs every regularized weight to be an nn.Linear's; "
                    f"{name!r} is the weight of a {type(layer).__name__}. Use "
                    "reg_lambda='evidence'.")

    def _records(self, net, dataset, laplace):
        records = super()._records(net, dataset, laplace)
        scale, mse = rescale_strengths(net, dataset, laplace)
        return {**records, "loo_scale": scale, "loo_mse": mse}


class AutoStrength(EvidenceStrength):
    """``reg_lambda="auto"``: the estimators choose how to set the strength by cross-validation.

    The estimator scores each of :meth:`candidates` by K-fold cross-validation on
    its training data and trains its net under the best; a skorch net cannot
    refit itself, so it takes ``"evidence"``, ``"loo"`` or a number instead.
    """

    name = "auto"
    chooses = True

    @staticmethod
    def candidates(likelihood, sample_weight=None):
        """The values of ``reg_lambda`` to choose from.

        Regression: the evidence and leave-one-out (which needs weights spread over at
        least :data:`MIN_LOO_SAMPLES` samples). Classification, where leave-one-out is
        not defined here: the evidence, the nets' fixed default
        (:data:`~sk_adareg._params.AUTO_START`) and no prior. The evidence of the
        cross-entropy asks for strong priors (its Gauss-Newton curvature vanishes as
        the network grows confident on its training data), which cost accuracy on
        data that needs little regularization (user guide, "Learning the strength").
        """
        if likelihood != "gaussian":
            return ("evidence", AUTO_START, 0.0)
        if not LooStrength().accepts(sample_weight):
            return ("evidence",)
        return ("evidence", "loo")

    def initialize(self, net, names):
        raise ValueError(
            "reg_lambda='auto' chooses the strength by cross-validation among learned and "
            "fixed ones, which the estimators (AdaRegClassifier, AdaRegMultiTaskRegressor) "
            "do in fit; "
            f"a skorch net ({type(net).__name__}) takes reg_lambda='evidence', 'loo' or a "
            "number.")


_LEARNED = {"auto": AutoStrength, "evidence": EvidenceStrength, "loo": LooStrength}
assert set(_LEARNED) == set(LEARNED_STRENGTHS)


def strength_policy(reg_lambda):
    """The policy of a value of ``reg_lambda``: a number, or a name of ``LEARNED_STRENGTHS``.

    Parameters
    ----------
    reg_lambda : float or str

    Returns
    -------
    policy : FixedStrength, EvidenceStrength, LooStrength or AutoStrength
    """
    if isinstance(reg_lambda, str):
        return _LEARNED[reg_lambda]()
    return FixedStrength(reg_lambda)
