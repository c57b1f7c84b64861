"""Strengths by approximate leave-one-out instead of the evidence (an experiment for issue 11)

``reg_lambda="auto"`` sets each layer's strength to the maximizer of the Laplace
evidence, which on heavy-tailed targets asks for priors far weaker than
cross-validation picks (``evidence_trace.py``); GCV (``gcv_strength.py``) helps on
some sets and hurts on others. GCV replaces every training point's leverage by the
average; leave-one-out keeps each point's own, which is where a few extreme points
show. After every evidence update of ``reg_lambda="auto", adareg_layers="all"``, a
callback sets the strengths to the minimizer of the approximate leave-one-out squared
error (PRESS, Allen 1974) of the network linearized at its current weights,

    PRESS(lambda) = sum_ik (r_ik(lambda) / (1 - h_ik(lambda)))^2,

with ``r_ik`` the residual of target ``k`` at training point ``i`` at the mode of the
linearized model for ``lambda`` and ``h_ik`` its leverage, ``J_ik Sigma(lambda)
J_ik^T`` with the KFAC posterior ``Sigma`` (diagonal in the eigenbasis of the
prior-whitened factors), plus ``1/n`` for the output bias (an intercept); the other
biases' leverage is left out, and the targets' leverages are taken one at a time (the
diagonal of each point's k x k block). In that eigenbasis each point's Jacobian is a
product ``u v^T`` of its mapped output gradient and input, so no per-point matrix is
formed. The targets count equally (the estimator standardizes them), as in the R²
that cross-validation scores; nothing is held out and the test part is not seen.

Two searches over a log grid:

- "coordinate": each layer's strength in turn (every other value of ``gcv_strength.py``'s
  grid, two rounds);
- "scale": one factor ``alpha`` on all of the evidence's strengths, so the evidence
  keeps deciding how the layers compare and PRESS only how strong the prior is overall
  (a per-layer search can trade a strong hidden layer against a weak output layer, a
  rescaling that a ReLU network absorbs but the linearized model does not).

It reports the test R² per set, at 60 epochs (``multitarget.py``'s training length)
and 200 (the estimators' default), beside the best cross-validated neural variant and
the Gaussian process of ``benchmarks/results/multitarget.csv`` (60 epochs), and the fit times.
The code lives here, not in the library: it reads the private eigenbases of
:class:`sk_adareg.laplace.KroneckerLaplace`.

Run from the repository root::

    python benchmarks/studies/loo_strength.py                  # every set, 5 repetitions
    python benchmarks/studies/loo_strength.py --repetitions 1 --sets scpf enb

Writes ``benchmarks/studies/results/loo_strength.md``.
"""

import _parent  # noqa: F401  (benchmarks/ on sys.path, results here)
import numpy as np
from _common import write_study
from _strength_study import (
    GRID,
    AfterEvidenceUpdate,
    comparison,
    coordinate_search,
    set_strengths,
    timed_row,
)
from multitarget import run_over_sets

from sk_adareg._strength._loo import _Linearized
from sk_adareg.laplace import KroneckerLaplace, kfac

SCALES = np.logspace(-3, 6, 37)  # the factors alpha of the "scale" search
VARIANTS = [("evidence", 60), ("LOO, coordinate", 60), ("LOO, scale", 60),
            ("evidence", 200), ("LOO, coordinate", 200), ("LOO, scale", 200)]


def press_criterion(module, names, priors, X, Y):
    """``PRESS(lambdas)`` (one strength per weight of ``names``) at the current weights.

    The library's PRESS of ``reg_lambda="loo"`` (:mod:`sk_adareg._strength._loo`), with a factor
    per layer on unit strengths.
    """
    laplace = KroneckerLaplace(kfac(module, [(X, Y)], names, "gaussian"), priors)
    linearized = _Linearized(module, names, laplace, lambda: [(X, Y)], dict.fromkeys(names, 1.0))

    def press(lambdas):
        return float(linearized.press([lambdas])[0])

    return press, laplace.curvature.n_samples * laplace.curvature.n_outputs


class PRESSStrength(AfterEvidenceUpdate):
    """After each evidence update, replace the strengths by PRESS's (targets weighted alike)."""

    def __init__(self, search):
        self.search = search

    def initialize(self):
        self.lambdas_ = None
        return self

    def update(self, net, X, Y):
        names = net.priors_.names
        press, N = press_criterion(net.regularized_module, names, net.priors_, X, Y)
        evidence = [max(float(net.reg_lambda_[m]) * N, GRID[0]) for m in names]
        if self.search == "scale":
            values = [press([alpha * lam for lam in evidence]) for alpha in SCALES]
            alpha = float(SCALES[int(np.argmin(values))])
            lambdas = [alpha * lam for lam in evidence]
        else:
            lambdas = coordinate_search(press, self.lambdas_ or evidence, GRID[::2], rounds=2)
        self.lambdas_ = lambdas
        set_strengths(net, lambdas, N)


def run_one(name, rep, variant, data):
    criterion, _ = variant
    callbacks = ([] if criterion == "evidence" else
                 [("press", PRESSStrength("scale" if "scale" in criterion else "coordinate"))])
    return timed_row(name, rep, variant, data, callbacks)[1]


def main():
    args, sets, results = run_over_sets(__doc__.splitlines()[0], run_one, VARIANTS)
    table, clipped, below = comparison(results, sets, args.repetitions, VARIANTS)
    order = list(clipped.index)
    # Paired by split: each variant's fit time over the evidence's with the same epochs.
    seconds = results.pivot_table(index=["set", "rep", "epochs"], columns="criterion",
                                  values="seconds")
    lines = [f"`reg_lambda=\"auto\"`, all layers, {args.repetitions} repetitions; the "
             "strengths from the Laplace evidence (as shipped) or from the approximate "
             "leave-one-out error (PRESS) of the linearized network. Mean test R² over the "
             "repetitions; the last two columns from `results/multitarget.csv` (60 epochs, "
             "same splits).", "",
             table.to_markdown(floatfmt=".3f"), "",
             "| variant | mean R², inputs clipped to the training range | sets more than 0.01 "
             "below the best CV neural variant | fit time / evidence's, median (range) |",
             "|---|---|---|---|"]
    for v, (criterion, epochs) in zip(order, VARIANTS, strict=True):
        ratio = (seconds[criterion] / seconds["evidence"]).xs(epochs, level="epochs")
        cost = "-" if criterion == "evidence" else (
            f"{ratio.median():.2f} ({ratio.min():.2f}-{ratio.max():.2f})")
        lines.append(f"| {v} | {clipped[v]:.3f} | {len(below[v])}: {', '.join(below[v])} "
                     f"| {cost} |")
    write_study("loo_strength", "\n".join(lines), results)


if __name__ == "__main__":
    main()
