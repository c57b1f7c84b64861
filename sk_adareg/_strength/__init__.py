"""How strong the prior is: the strength policies behind ``reg_lambda``.

This module exports on purpose what the nets, callbacks and estimators use:
:func:`strength_policy` maps a value of ``reg_lambda`` to its policy, and every
question about the strength (is it learned? what factor multiplies the penalty?
what happens after a precision update, and at the end of training?) is asked of
that policy (:mod:`._policies`). The evidence (:mod:`._evidence`) and the
leave-one-out factor (:mod:`._loo`) sit behind it.
"""

# SPDX-License-Identifier: BSD-3-Clause

from ._choice import choose_by_cv, cv_rows, fold_epochs, mean_score
from ._evidence import UPDATE_ROWS
from ._policies import (
    AutoStrength,
    EvidenceStrength,
    FixedStrength,
    LooStrength,
    strength_policy,
)

__all__ = ["UPDATE_ROWS", "AutoStrength", "EvidenceStrength", "FixedStrength", "LooStrength",
           "choose_by_cv", "cv_rows", "fold_epochs", "mean_score", "strength_policy"]
