"""sk-adareg: adaptive regularization (AdaReg) for neural networks, the scikit-learn way.

Zhao, Tsai, Salakhutdinov & Gordon, "Learning Neural Networks with Adaptive
Regularization", NeurIPS 2019.
"""

# SPDX-License-Identifier: BSD-3-Clause

from ._config import config_context, get_config, set_config
from ._estimators._classifier import AdaRegClassifier
from ._estimators._regressor import AdaRegMultiTaskRegressor
from .net import (
    AdaRegMixin,
    AdaRegNeuralNet,
    AdaRegNeuralNetClassifier,
    AdaRegNeuralNetRegressor,
)
from .prior import MatrixNormalPrior, inv_threshold

__version__ = "0.1.0"

__all__ = [
    "AdaRegClassifier",
    "AdaRegMixin",
    "AdaRegMultiTaskRegressor",
    "AdaRegNeuralNet",
    "AdaRegNeuralNetClassifier",
    "AdaRegNeuralNetRegressor",
    "MatrixNormalPrior",
    "config_context",
    "get_config",
    "inv_threshold",
    "set_config",
]
