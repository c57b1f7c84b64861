"""The evidence's strengths unless leave-one-out clearly beats them: a one-standard-error
rule for ``reg_lambda="loo"`` (a diagnostic for issue 11)

``reg_lambda="loo"`` multiplies the evidence's strengths by the factor with the smallest
PRESS of the linearized network. On light-tailed sets that factor is larger than
cross-validation picks, and the evidence alone (factor 1) scores better; on the
heavy-tailed sets the large factor is what rescues the fit (``loo_factor.py``). PRESS is
a sum over training points, so its differences between two factors have a paired
standard error from the points' terms. This study keeps the factor closest to 1 (on the
log scale) whose PRESS is within one standard error of the smallest, the usual
one-standard-error rule with the evidence as the simple end: the evidence stands unless
leave-one-out says clearly that it is worse. The same linearization, leverages and 37
factors as shipped (all of them scored); beside it, "loo" as shipped and "loo" with the
factor held at 1 (the evidence's strengths with the targets weighed alike, as "loo"
weighs them), on the same splits and seeds. Nothing is chosen on the test part and no
setting of the library comes from this table.

Run from the repository root::

    python benchmarks/studies/loo_one_se.py                  # every set, 5 repetitions
    python benchmarks/studies/loo_one_se.py --repetitions 1 --sets atp1d scpf

Writes ``benchmarks/studies/results/loo_one_se.md`` and ``loo_one_se.csv``.
"""

from unittest import mock

import _parent  # noqa: F401  (benchmarks/ on sys.path, results here)
import numpy as np
import torch
from _strength_study import comparison_study, loo_row

from sk_adareg._strength import _loo

VARIANTS = [("loo", 60), ("loo, one SE", 60), ("loo, factor 1", 60),
            ("loo", 200), ("loo, one SE", 200), ("loo, factor 1", 200)]


def one_se_scale(module, names, laplace, batches, strengths):
    """In place of :func:`sk_adareg._strength._loo.press_scale`: the one-standard-error factor.

    Returns the factor and PRESS at every factor of :data:`sk_adareg._strength._loo.SCALES`.
    """
    linearized = _loo._Linearized(module, names, laplace, batches, strengths)
    parts = []
    for r, leverage, w in linearized.loo_terms(_loo.SCALES):
        terms = (w[:, None, None] * (r / (1 - leverage)) ** 2).sum(1)  # (points, factors)
        parts.append(torch.where(leverage.amax(1) >= 1, torch.inf, terms))
    terms = torch.cat(parts).cpu().numpy()
    press = terms.sum(0)
    if np.isnan(press).any() or not np.isfinite(press).any():
        raise FloatingPointError("the leave-one-out error is NaN or infinite")
    best = int(np.argmin(press))
    n = len(terms)
    eligible = []
    for j in range(len(press)):
        if not np.isfinite(press[j]):
            continue
        d = terms[:, j] - terms[:, best]
        if d.sum() <= np.sqrt(n) * d.std(ddof=1):  # the sum's standard error
            eligible.append(j)
    chosen = min(eligible, key=lambda j: abs(np.log(_loo.SCALES[j])))
    return float(_loo.SCALES[chosen]), press


def unit_scale(module, names, laplace, batches, strengths):
    """In place of ``_loo.press_scale``: always the factor 1, and its PRESS."""
    return 1.0, _loo._Linearized(module, names, laplace, batches, strengths).press([1.0])


def run_one(name, rep, variant, data):
    patch = None
    if variant[0] != "loo":
        scale = one_se_scale if variant[0] == "loo, one SE" else unit_scale
        patch = mock.patch.object(_loo, "press_scale", scale)
    return loo_row(name, rep, variant, data, patch)


def main():
    comparison_study("loo_one_se", __doc__.splitlines()[0], run_one, VARIANTS, lambda args: (
        f'`reg_lambda="loo"`, all layers, {args.repetitions} repetitions: the factor on '
        "the evidence's strengths with the smallest PRESS (as shipped), or the one "
        "closest to 1 within one standard error of it, or 1. Mean test R² over the "
        "repetitions; the last two columns from `results/multitarget.csv` (60 epochs, "
        "same splits)."))


if __name__ == "__main__":
    main()
