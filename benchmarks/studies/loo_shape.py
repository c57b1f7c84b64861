"""Does the evidence's shape across layers help ``reg_lambda="loo"``? (a diagnostic for issue 11)

``reg_lambda="loo"`` takes from the Laplace evidence how the layers' strengths compare
and from leave-one-out (PRESS) one factor on all of them. ``loo_factor.py`` shows that
no factor lifts it to the best cross-validated neural variant on atp1d, oes97 and scpf.
This study changes the shape instead: before every PRESS search the strengths are set
to their geometric mean (the same strength, in the loss's units, on every layer: the
shape of a numeric ``reg_lambda``, whose precisions have unit mean), and PRESS then
chooses the factor as usual. Beside it, "loo" as shipped (the same splits and seeds).

Nothing is chosen on the test part and no setting of the library comes from this table.

Run from the repository root::

    python benchmarks/studies/loo_shape.py                  # every set, 5 repetitions (~5 min)
    python benchmarks/studies/loo_shape.py --repetitions 1 --sets atp1d scpf

Writes ``benchmarks/studies/results/loo_shape.md`` and ``loo_shape.csv``.
"""

import math
from unittest import mock

import _parent  # noqa: F401  (benchmarks/ on sys.path, results here)
from _strength_study import comparison_study, loo_row

from sk_adareg._strength import _policies

EPOCHS = 200
VARIANTS = [("loo", EPOCHS), ("loo, equal strengths", EPOCHS)]


def equal_then_rescale(net, dataset, laplace, rescale=_policies.rescale_strengths):
    """Set every strength to their geometric mean, then let PRESS pick the factor."""
    values = list(net.reg_lambda_.values())
    mean = math.exp(sum(math.log(max(v, 1e-300)) for v in values) / len(values))
    net.reg_lambda_ = dict.fromkeys(net.reg_lambda_, mean)
    net.priors_.set_strengths(net.reg_lambda_)
    return rescale(net, dataset, laplace)


def run_one(name, rep, variant, data):
    patch = None if variant[0] == "loo" else mock.patch.object(
        _policies, "rescale_strengths", equal_then_rescale)
    return loo_row(name, rep, variant, data, patch)


def main():
    comparison_study("loo_shape", __doc__.splitlines()[0], run_one, VARIANTS, lambda args: (
        f'`reg_lambda="loo"`, all layers, {EPOCHS} epochs, {args.repetitions} '
        "repetitions: as shipped, and with the strengths set to their geometric mean "
        "before every leave-one-out search. Mean test R² over the repetitions; the last "
        "two columns from `results/multitarget.csv` (60 epochs, same splits)."))


if __name__ == "__main__":
    main()
