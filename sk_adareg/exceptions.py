"""Exceptions and warnings raised by sk-adareg."""

# SPDX-License-Identifier: BSD-3-Clause

__all__ = ["CollapseWarning", "TrainingDivergedError"]


class TrainingDivergedError(FloatingPointError):
    """Raised when the training loss, or a weight, becomes NaN or infinite.

    Also raised when the network's outputs on the training data overflow after
    the last step. The estimator that raised it is left as it was before the
    call (unfitted, or with its earlier fit). Lowering the learning rate
    (``lr``) or the prior's strength (``reg_lambda``) usually helps.
    """


class CollapseWarning(UserWarning):
    """Warned when the prior drives a regularized weight toward zero.

    With the paper's prior (``precision_scale="learned"``), shrinking a weight
    raises the optimal precisions toward their bound ``v``, which shrinks the
    weight further. The warning names the layer and what to change.
    """
