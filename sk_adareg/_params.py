"""The AdaReg hyperparameters: each one's default, constraint and documentation, once.

The prior (:mod:`sk_adareg.prior`), the skorch mixin (:mod:`sk_adareg.net`) and
the estimators take their defaults, their validation and the numpydoc text of
their parameters from :data:`ADAREG_PARAMS`. A new hyperparameter is one entry
here, plus the explicit ``__init__`` signatures that scikit-learn requires of
the estimators. The estimators' defaults (:data:`DEFAULTS`) learn the strength on
every layer; the skorch nets keep a fixed strength on the last layer
(:data:`NET_DEFAULTS`), since they cannot refit themselves to choose.
"""

# SPDX-License-Identifier: BSD-3-Clause

import math
from dataclasses import dataclass
from numbers import Integral, Real

from sklearn.utils._param_validation import Interval, StrOptions, validate_parameter_constraints

__all__ = []


@dataclass(frozen=True)
class _Hyperparameter:
    """One hyperparameter: defaults, scikit-learn constraints, numpydoc type and text.

    ``net_default`` is the skorch nets' default where it differs from the estimators'.
    """

    default: object
    constraints: list
    type_doc: str
    doc: str
    net_default: object = None

    def numpydoc(self, name, default):
        """The numpydoc block ``name : type, default=...`` with its text, indented for a class."""
        return f"{name} : {self.type_doc}, default={_format(default)}\n        {self.doc}"


def _format(value):
    """A default as numpydoc writes it: ``"last"``, ``3e-3``, ``10.0``."""
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, float) and 0 < abs(value) < 1e-2:
        return f"{value:.0e}".replace("e-0", "e-")
    return repr(value)


_ADAREG_LAYER_KINDS = ("last", "all", "linear", "conv")
#: The values of ``reg_lambda`` that learn the strengths from the training data.
LEARNED_STRENGTHS = ("auto", "evidence", "loo")
NUMERATORS = ("paper", "authors")
PRECISION_SCALES = ("learned", "unit_mean")

# Bounds are open at +inf so that inf is rejected: an infinite strength or bound
# turns the penalty or the precisions into NaN.
ADAREG_PARAMS = {
    "reg_lambda": _Hyperparameter(
        "auto", [Interval(Real, 0, math.inf, closed="left"), StrOptions(set(LEARNED_STRENGTHS))],
        'float, "auto", "evidence" or "loo"',
        """Strength of the prior: the factor of its penalty in the mean loss of
        each batch. A number fixes it; ``0`` trains without the prior. The
        strings learn it from the training data, during training.
        ``"evidence"`` gives each regularized weight a strength (and, for
        regression, each target a noise variance) that maximizes the Laplace
        approximation of the marginal likelihood: type-II maximum likelihood,
        with no data held out. ``"loo"`` (regression) then multiplies all the
        strengths by the factor with the least approximate leave-one-out
        error; it picks stronger priors, which suits heavy-tailed targets.
        ``"auto"`` (the estimators only) chooses between the two by
        cross-validation on the training data (``cv``), with short fold fits,
        and refits with the winner; for classification it chooses between
        ``"evidence"``, a fixed 3e-3 and no prior.
        See the user guide, "Learning the strength".""",
        net_default=3e-3),
    "u": _Hyperparameter(
        0.1, [Interval(Real, 0, math.inf, closed="neither")], "float",
        """Lower bound on the eigenvalues of both precision matrices, ``0 < u <= v``.
        With ``precision_scale="unit_mean"``, ``v / u`` bounds how much more one
        direction of the weights is penalised than another."""),
    "v": _Hyperparameter(
        10.0, [Interval(Real, 0, math.inf, closed="neither")], "float",
        """Upper bound on the eigenvalues of both precision matrices."""),
    "precision_scale": _Hyperparameter(
        "unit_mean", [StrOptions(set(PRECISION_SCALES))], '{"unit_mean", "learned"}',
        """``"learned"`` is the paper's prior: the precisions' scale is learned
        within ``[u, v]``; as the weights shrink, the precisions grow toward
        ``v``, which can collapse the layer (a
        :class:`~sk_adareg.exceptions.CollapseWarning` says so).
        ``"unit_mean"`` (beyond the paper) makes each precision independent
        of the weights' scale, with mean eigenvalue 1: the prior learns only
        how rows and columns correlate, and ``reg_lambda`` sets the overall
        strength, as in weight decay. It needs ``u <= 1 <= v``."""),
    "numerator": _Hyperparameter(
        "paper", [StrOptions(set(NUMERATORS))], '{"paper", "authors"}',
        """The count in the closed-form update: ``"paper"`` follows Corollary 1
        (``d`` for the row precision of a p x d weight, ``p`` for the column
        precision); ``"authors"`` follows the authors' public code, which
        divides by the size of the matrix being updated (see
        :class:`~sk_adareg.prior.MatrixNormalPrior`)."""),
    "cov_update_every": _Hyperparameter(
        10, [Interval(Integral, 1, None, closed="left")], "int",
        """Epochs of the network's optimizer between two closed-form updates of
        the precisions (Algorithm 1)."""),
    "adareg_layers": _Hyperparameter(
        "all", [StrOptions(set(_ADAREG_LAYER_KINDS)), list, tuple],
        '{"all", "last", "linear", "conv"} or list of str',
        """Weights that carry a prior: all ``nn.Linear`` and ``nn.Conv2d``
        weights, the last ``nn.Linear`` (in registration order), all linear,
        all convolutional, or a list of parameter names of the module. With
        learned strengths, a prior on every layer predicts better and gives
        honest intervals (``return_std``). ``row_covariance_`` and
        ``column_covariance_`` are always the last regularized layer's.""",
        net_default="last"),
    "decov_lambda": _Hyperparameter(
        0.0, [Interval(Real, 0, math.inf, closed="left")], "float",
        """Strength of the DeCov penalty (Cogswell et al., 2016) on the input of
        the network's last ``nn.Linear`` layer, a baseline the paper compares
        with; it adds to the AdaReg penalty. Set ``reg_lambda=0`` for DeCov
        alone."""),
}

#: The defaults of the estimators (why: the user guide, "The parameters that matter").
DEFAULTS = {name: param.default for name, param in ADAREG_PARAMS.items()}
#: The defaults of the skorch nets.
NET_DEFAULTS = {name: param.default if param.net_default is None else param.net_default
                for name, param in ADAREG_PARAMS.items()}

#: The defaults of :class:`~sk_adareg.prior.MatrixNormalPrior`, which differ on
#: purpose: the bare prior is the paper's object, with the bounds of the authors'
#: demo and the paper's learned scale; the estimators use the measured defaults.
PAPER_DEFAULTS = {**NET_DEFAULTS, "u": 1e-3, "v": 1e3, "precision_scale": "learned"}

PRIOR_PARAMS = ("u", "v", "numerator", "precision_scale")

#: Where learned strengths start: the nets' fixed default.
AUTO_START = NET_DEFAULTS["reg_lambda"]


def parameter_constraints(names=ADAREG_PARAMS):
    """scikit-learn ``_parameter_constraints`` entries of the named hyperparameters."""
    return {name: ADAREG_PARAMS[name].constraints for name in names}


def parameters_doc(names=ADAREG_PARAMS, defaults=None):
    """The numpydoc blocks of the named hyperparameters, for a class docstring.

    ``defaults`` are the estimators' (:data:`DEFAULTS`) unless given.
    """
    defaults = DEFAULTS if defaults is None else defaults
    return "\n\n    ".join(ADAREG_PARAMS[name].numpydoc(name, defaults[name]) for name in names)


def check_params(params, caller):
    """Validate AdaReg hyperparameters, alone and together.

    Parameters
    ----------
    params : dict
        Some of the hyperparameters of :data:`ADAREG_PARAMS`, by name.
    caller : str
        The class or function that takes them, named in the errors.

    Raises
    ------
    sklearn.utils._param_validation.InvalidParameterError
        A ``ValueError`` and ``TypeError`` naming the parameter and its value.
    """
    validate_parameter_constraints(parameter_constraints(params), params, caller_name=caller)
    u, v = params.get("u"), params.get("v")
    if u is not None and v is not None:
        if u > v:
            raise ValueError(f"u must be <= v, got u={u!r} and v={v!r}.")
        if params.get("precision_scale") == "unit_mean" and not u <= 1.0 <= v:
            raise ValueError(
                "precision_scale='unit_mean' fixes the mean eigenvalue of each precision "
                f"to 1, which needs u <= 1 <= v; got u={u!r} and v={v!r}."
            )
