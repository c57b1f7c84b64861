"""A leave-one-out factor per layer for ``reg_lambda="loo"`` (a diagnostic for issue 11)

``reg_lambda="loo"`` multiplies the evidence's strengths of all layers by one factor,
the one with the smallest PRESS of the linearized network. On the light-tailed sets
the prior it ends with is stronger than the evidence's and than cross-validation's; on
the heavy-tailed sets it is what rescues the fit (``loo_factor.py``), and "loo" on the
last layer alone fails there (``uncertainty.py``). This study lets PRESS move the
layers apart, with the same linearization, leverages and search as shipped
(``_loo._Linearized``): (1) a factor on the output layer alone, the hidden layers at
the evidence's strengths (the 37 factors of ``_loo.SCALES``); (2) a factor per layer,
every pair of the decades 1e-3 ... 1e6 (100 pairs for the two weights of the default
network). Beside them, "loo" as shipped, on the same splits and seeds. Where a leverage
reaches 1 at every candidate, the shipped factor decides (``fallbacks``, in the CSV). Nothing is
chosen on the test part and no setting of the library comes from this table.

Run from the repository root::

    python benchmarks/studies/loo_per_layer.py                  # every set, 5 repetitions
    python benchmarks/studies/loo_per_layer.py --repetitions 1 --sets atp1d scpf

Writes ``benchmarks/studies/results/loo_per_layer.md`` and ``loo_per_layer.csv``.
"""

import itertools
from unittest import mock

import _parent  # noqa: F401  (benchmarks/ on sys.path, results here)
import numpy as np
from _strength_study import comparison_study, timed_row

from sk_adareg._strength import _loo, _policies

EPOCHS = 200
VARIANTS = [("loo", EPOCHS), ("loo, output factor", EPOCHS), ("loo, factor per layer", EPOCHS)]
DECADES = _loo.SCALES[::4]  # 1e-3, 1e-2, ..., 1e6


def factor_grid(variant, n_layers):
    """The per-layer factors that PRESS chooses among: a tuple per candidate."""
    if variant == "loo, output factor":
        return [(1.0,) * (n_layers - 1) + (float(s),) for s in _loo.SCALES]
    return [tuple(map(float, f)) for f in itertools.product(DECADES, repeat=n_layers)]


def per_layer_rescale(variant, shipped_search=_loo.press_scale):
    """In place of :func:`sk_adareg._strength._loo.rescale_strengths`: the factors of ``variant``.

    The library's function runs with its search replaced: it sets the strengths to
    the evidence's (factor 1) and the targets' weights to 1 as shipped, and the
    chosen factors then multiply each layer's strength. Where a leverage reaches 1 at
    every candidate (PRESS infinite everywhere), the shipped search (one factor on
    all layers) decides, and the history records ``loo_fallback``.
    """
    def rescale(net, dataset, laplace):
        chosen = {}

        def search(module, names, laplace, batches, strengths):
            grid = factor_grid(variant, len(names))
            press = _loo._Linearized(module, names, laplace, batches, strengths).press(grid)
            if np.isfinite(press).any():
                chosen["factors"] = grid[int(np.nanargmin(press))]
                return 1.0, press
            # A leverage reaches 1 at every candidate: the shipped search, counted.
            alpha, press = shipped_search(module, names, laplace, batches, strengths)
            chosen["factors"] = (alpha,) * len(names)
            net.history.record("loo_fallback", True)
            return 1.0, press

        with mock.patch.object(_loo, "press_scale", search):
            _, mse = _loo.rescale_strengths(net, dataset, laplace)
        net.reg_lambda_ = {name: factor * value for (name, value), factor in zip(
            net.reg_lambda_.items(), chosen["factors"], strict=True)}
        net.priors_.set_strengths(net.reg_lambda_)
        return chosen["factors"][-1], mse

    return rescale


def run_one(name, rep, variant, data):
    if variant[0] == "loo":
        return {**timed_row(name, rep, variant, data, [], reg_lambda="loo")[1], "fallbacks": 0}
    with mock.patch.object(_policies, "rescale_strengths",
                           per_layer_rescale(variant[0])):
        model, row = timed_row(name, rep, variant, data, [], reg_lambda="loo")
    return {**row, "fallbacks": sum(1 for epoch in model.history_ if "loo_fallback" in epoch)}


def main():
    comparison_study("loo_per_layer", __doc__.splitlines()[0], run_one, VARIANTS, lambda args: (
        f'`reg_lambda="loo"`, all layers, {EPOCHS} epochs, {args.repetitions} '
        "repetitions: one factor on the evidence's strengths (as shipped), a factor on the "
        "output layer alone, or a factor per layer (every pair of decades), each by PRESS. "
        "Mean test R² over the repetitions; the last two columns from "
        "`results/multitarget.csv` (60 epochs, same splits)."))


if __name__ == "__main__":
    main()
