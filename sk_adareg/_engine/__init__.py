"""The speed engine: how the nets train fast, with the same results as skorch's path.

Everything here exists for speed alone. Small networks on tabular data spend more
time in the machinery around a training step than in its arithmetic, so the engine
cuts the training arrays into batches by indexing (:func:`batch_loader`), runs the
default network's step without autograd (:mod:`._step`), calls torch's fused Adam
kernels directly (:mod:`._adam`) and trims skorch's epoch loop
(:class:`EngineMixin`). Each part is checked to give the same numbers to the last
bit as the stock path; one switch turns them all off
(:func:`sk_adareg.config_context` with ``fast_engine=False``), and the engine also
turns itself off where a private name of torch or skorch it needs is missing
(:mod:`sk_adareg._private_api`).

This module exports on purpose what the rest of the package uses.
"""

# SPDX-License-Identifier: BSD-3-Clause

from ._batches import batch_loader
from ._epoch import FIT_STATE, EngineMixin, LossTape

__all__ = ["FIT_STATE", "EngineMixin", "LossTape", "batch_loader"]
