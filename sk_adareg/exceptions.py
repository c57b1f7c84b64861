"""Exceptions and warnings raised by sk-adareg."""

# SPDX-License-Identifier: BSD-3-Clause

__all__ = ["TrainingDivergedError"]


class TrainingDivergedError(FloatingPointError):
    """Raised when the training loss becomes NaN or infinite.

    The estimator that raised it is left unfitted. Lowering the learning rate
    (``lr``) or the prior's strength (``reg_lambda``) usually helps.
    """
