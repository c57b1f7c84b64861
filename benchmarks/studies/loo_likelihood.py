"""Leave-one-out log likelihood instead of PRESS for ``reg_lambda="loo"`` (a diagnostic
for issue 11)

``reg_lambda="loo"`` takes one factor on the evidence's strengths from the approximate
leave-one-out squared error (PRESS) of the linearized network. On light-tailed sets it
asks for stronger priors than cross-validation picks (``loo_factor_cv.py``). The
Bayesian leave-one-out predictive of a linear-Gaussian model weighs a point's leverage
``h`` less: its mean is ``y - r / (1 - h)`` as in PRESS, but its variance is
``sigma^2 / (1 - h)``, so the log predictive density of the left-out target is

    -1/2 log(2 pi sigma^2) + 1/2 log(1 - h) - r^2 / (2 sigma^2 (1 - h)).

With the noise of each target profiled out (``sigma_k^2``, the weighted mean of
``r^2 / (1 - h)``) the factor minimizes

    sum_k W/2 log sigma_k^2 - 1/2 sum_ik w_i log(1 - h_ik)      (W = sum_i w_i).

This study puts that criterion in place of PRESS (the same linearization, leverages,
factors and search) and compares it with "loo" as shipped, on the same splits and
seeds. Nothing is chosen on the test part and no setting of the library comes from
this table.

Run from the repository root::

    python benchmarks/studies/loo_likelihood.py                  # every set, 5 repetitions
    python benchmarks/studies/loo_likelihood.py --repetitions 1 --sets atp1d scpf

Writes ``benchmarks/studies/results/loo_likelihood.md`` and ``loo_likelihood.csv``.
"""

import math
from unittest import mock

import _parent  # noqa: F401  (benchmarks/ on sys.path, results here)
import torch
from _strength_study import comparison_study, loo_row

from sk_adareg._strength import _loo

VARIANTS = [("loo", 60), ("loo, LOO likelihood", 60), ("loo", 200),
            ("loo, LOO likelihood", 200)]


def negative_loo_likelihood(self, scales):
    """In place of ``_loo._Linearized.press``: minus the LOO log likelihood.

    Per factor and target: the weighted sums of ``r^2 / (1 - h)`` and of ``log(1 - h)``
    over the terms PRESS sums; inf where a leverage reaches 1, as PRESS.
    """
    squares, logs = 0.0, 0.0
    reached = torch.zeros(len(scales), dtype=torch.bool)
    for r, leverage, w in self.loo_terms(scales):
        reached |= (leverage >= 1).flatten(0, 1).any(0).cpu()
        rest = (1 - leverage).clamp_min(1e-300)
        squares = squares + (w[:, None, None] * r**2 / rest).sum(0)  # (targets, factors)
        logs = logs + (w[:, None, None] * torch.log(rest)).sum((0, 1))
    value = 0.5 * self.total * torch.log(squares / self.total).sum(0) - 0.5 * logs
    return torch.where(reached, math.inf, value.cpu()).numpy()


def run_one(name, rep, variant, data):
    patch = None if variant[0] == "loo" else mock.patch.object(
        _loo._Linearized, "press", negative_loo_likelihood)
    return loo_row(name, rep, variant, data, patch)


def main():
    comparison_study("loo_likelihood", __doc__.splitlines()[0], run_one, VARIANTS, lambda args: (
        f'`reg_lambda="loo"`, all layers, {args.repetitions} repetitions: the factor on '
        "the evidence's strengths by PRESS (as shipped) or by the leave-one-out log "
        "likelihood of the linearized network. Mean test R² over the repetitions; the "
        "last two columns from `results/multitarget.csv` (60 epochs, same splits)."))


if __name__ == "__main__":
    main()
