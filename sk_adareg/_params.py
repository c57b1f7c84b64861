"""The AdaReg hyperparameters: each one's default, constraint and documentation, once.

The prior (:mod:`sk_adareg.prior`), the skorch mixin (:mod:`sk_adareg.net`) and
the estimators take their defaults, their validation and the numpydoc text of
their parameters from :data:`ADAREG_PARAMS`. A new hyperparameter is one entry
here, plus the explicit ``__init__`` signatures that scikit-learn requires of
the estimators.
"""

# SPDX-License-Identifier: BSD-3-Clause

import math
from dataclasses import dataclass
from numbers import Integral, Real

from sklearn.utils._param_validation import Interval, StrOptions, validate_parameter_constraints

__all__ = []


@dataclass(frozen=True)
class _Hyperparameter:
    """One hyperparameter: default, scikit-learn constraints, numpydoc type and text."""

    default: object
    constraints: list
    type_doc: str
    doc: str

    def numpydoc(self, name):
        """The numpydoc block ``name : type, default=...`` with its text, indented for a class."""
        return f"{name} : {self.type_doc}, default={_format(self.default)}\n        {self.doc}"


def _format(value):
    """A default as numpydoc writes it: ``"last"``, ``3e-3``, ``10.0``."""
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, float) and 0 < abs(value) < 1e-2:
        return f"{value:.0e}".replace("e-0", "e-")
    return repr(value)


_ADAREG_LAYER_KINDS = ("last", "all", "linear", "conv")
#: The values of ``reg_lambda`` that learn the strengths from the training data.
LEARNED_STRENGTHS = ("auto", "loo")
NUMERATORS = ("paper", "authors")
PRECISION_SCALES = ("learned", "unit_mean")

# Bounds are open at +inf so that inf is rejected: an infinite strength or bound
# turns the penalty or the precisions into NaN.
ADAREG_PARAMS = {
    "reg_lambda": _Hyperparameter(
        3e-3, [Interval(Real, 0, math.inf, closed="left"), StrOptions(set(LEARNED_STRENGTHS))],
        'float, "auto" or "loo"',
        """Strength ``lambda`` of the prior in objective (4), added to the mean
        loss of each batch. ``0`` trains without it (the precisions are still
        estimated from the weights). The default is the largest value that
        never made AdaReg worse than no regularization in our benchmarks
        (user guide, "The parameters that matter"); tune it by cross-validation
        for your data,
        or use ``"auto"``: a strength per regularized layer (and, for
        regression, a noise variance per target) learned from the training
        data by maximizing the Laplace approximation of the marginal
        likelihood, every ``cov_update_every`` epochs after the precisions'
        update (type-II maximum likelihood, as in Immer et al., 2021; no data
        is held out). The strengths start at 3e-3. ``"loo"`` (regression,
        ``nn.Linear`` weights) then multiplies all the strengths by the factor,
        from 1e-3 to 1e6, that minimizes the approximate leave-one-out squared
        error of the network linearized at its weights (PRESS, as RidgeCV's
        leave-one-out), with the targets weighed alike: the evidence decides how
        the layers compare, leave-one-out how strong the prior is overall. It
        asks for stronger priors than ``"auto"`` where the targets have heavy
        tails; the leverages come from the Kronecker-factored posterior, which
        makes them larger than the exact ones (user guide, "Learning the
        strength")."""),
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
        "last", [StrOptions(set(_ADAREG_LAYER_KINDS)), list, tuple],
        '{"last", "all", "linear", "conv"} or list of str',
        """Weights that carry a prior: the last ``nn.Linear`` (in registration
        order), all ``nn.Linear`` and ``nn.Conv2d`` weights, all linear, all
        convolutional, or a list of parameter names of the module."""),
    "decov_lambda": _Hyperparameter(
        0.0, [Interval(Real, 0, math.inf, closed="left")], "float",
        """Strength of the DeCov penalty (Cogswell et al., 2016) on the input of
        the network's last ``nn.Linear`` layer, a baseline the paper compares
        with; it adds to the AdaReg penalty. Set ``reg_lambda=0`` for DeCov
        alone."""),
}

#: The defaults of the nets and estimators (why: the user guide, "The parameters that matter").
DEFAULTS = {name: param.default for name, param in ADAREG_PARAMS.items()}

#: The defaults of :class:`~sk_adareg.prior.MatrixNormalPrior`, which differ on
#: purpose: the bare prior is the paper's object, with the bounds of the authors'
#: demo and the paper's learned scale; the estimators use the measured defaults.
PAPER_DEFAULTS = {**DEFAULTS, "u": 1e-3, "v": 1e3, "precision_scale": "learned"}

PRIOR_PARAMS = ("u", "v", "numerator", "precision_scale")

#: Where ``reg_lambda="auto"`` starts: the strength of the fixed default.
AUTO_START = 3e-3


def parameter_constraints(names=ADAREG_PARAMS):
    """scikit-learn ``_parameter_constraints`` entries of the named hyperparameters."""
    return {name: ADAREG_PARAMS[name].constraints for name in names}


def parameters_doc(names=ADAREG_PARAMS):
    """The numpydoc blocks of the named hyperparameters, for a class docstring."""
    return "\n\n    ".join(ADAREG_PARAMS[name].numpydoc(name) for name in names)


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
