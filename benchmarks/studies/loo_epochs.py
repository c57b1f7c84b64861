"""Does the leave-one-out error pick the training length? (a diagnostic for issue 11)

``reg_lambda="loo"`` (all layers, 200 epochs) is more than 0.01 below the best
cross-validated neural variant on seven of the twelve sets of ``multitarget.py``; on two of
them (atp1d, oes97) the 60-epoch cross-validated fits are ahead of any factor on its
strengths (``benchmarks/studies/results/loo_factor.md``). This asks whether the training
length is what is missing, and whether the criterion "loo" already computes could choose
it: at every strength update the history records ``loo_mse``, the approximate leave-one-out
mean squared error of the network linearized there. A callback keeps the network's test
outputs at every update (``evidence_trace.TestOutputs``: it draws no random number, so the
fits are those of ``multitarget.py``; the test part is only read), and the report gives per
set the test R²

- at the end of training (as shipped),
- at the update with the lowest ``loo_mse`` (what keeping those weights, as
  ``EarlyStopping(load_best=True)`` keeps the best validation epoch's, would score:
  chosen on the training data alone),
- at the update with the best test R² (an oracle, not a method: a bound on what any
  choice of the epoch could give),

beside the best cross-validated neural variant and the Gaussian process of
``benchmarks/results/multitarget.csv``, and the rank correlation, within each fit, between
``loo_mse`` and the test mean squared error over the updates.

Run from the repository root::

    python benchmarks/studies/loo_epochs.py                  # every set, 5 repetitions
    python benchmarks/studies/loo_epochs.py --repetitions 1 --sets atp1d oes97

Writes ``benchmarks/studies/results/loo_epochs.md`` and ``loo_epochs.csv``.
"""

import _parent  # noqa: F401  (benchmarks/ on sys.path, results here)
import numpy as np
import pandas as pd
from _common import RESULTS, write_study
from evidence_trace import EPOCHS, traced_fit
from multitarget import run_over_sets, scores
from scipy.stats import spearmanr
from uncertainty import best_cv_neural


def run_one(name, rep, _, data):
    Y = data[1]
    final, (train, test, *_, target), records = traced_fit(name, rep, data, "loo", "loo_mse")
    rows = []
    for epoch, mse, pred in records:
        r2, _ = scores(Y[test], pred, Y[train])
        test_mse = float(np.mean((target.transform(Y[test]) - target.transform(pred)) ** 2))
        rows.append({"set": name, "rep": rep, "epoch": epoch, "loo_mse": mse,
                     "test_mse": test_mse, "r2": float(np.nanmean(r2)),
                     "final_r2": float(np.nanmean(final))})
    return {"rows": rows}


def per_fit(trace):
    """Per fit: the R² at the end, at the lowest loo_mse and at the best update; the
    epoch of the lowest loo_mse; the rank correlation of loo_mse and the test MSE."""
    out = []
    for (name, rep), fit in trace.groupby(["set", "rep"], sort=False):
        fit = fit.sort_values("epoch")
        chosen = fit.loc[fit["loo_mse"].idxmin()]
        out.append({"set": name, "rep": rep, "final": fit["final_r2"].iloc[0],
                    "lowest loo_mse": chosen["r2"], "its epoch": chosen["epoch"],
                    "best update (oracle)": fit["r2"].max(),
                    "rank corr.": spearmanr(fit["loo_mse"], fit["test_mse"]).statistic})
    return pd.DataFrame(out)


def main():
    args, sets, results = run_over_sets(__doc__.splitlines()[0], run_one, [None])
    trace = pd.DataFrame([row for rows in results["rows"] for row in rows])
    fits = per_fit(trace)
    table = fits.groupby("set").mean(numeric_only=True).drop(columns="rep").reindex(sets)
    best = best_cv_neural(sets, args.repetitions)["best CV neural"]
    peers = pd.read_csv(RESULTS / "multitarget.csv")
    gp = peers[(peers["method"] == "GaussianProcess") & (peers["rep"] < args.repetitions)]
    table["best CV neural (60 ep.)"] = best
    table["GaussianProcess"] = gp.groupby("set")["r2"].mean().reindex(sets)
    table.loc["mean over sets"] = table.mean()
    lines = [f'`reg_lambda="loo"`, all layers, {EPOCHS} epochs, {args.repetitions} '
             "repetitions; means over the repetitions of the test R² at the end of training, "
             "at the strength update with the lowest `loo_mse` (and its epoch), and at the "
             "update with the best test R² (an oracle); the rank correlation (Spearman) "
             "within each fit between `loo_mse` and the test MSE over its updates, averaged. "
             "The last two columns from `results/multitarget.csv` (60 epochs, same splits).",
             "", table.to_markdown(floatfmt=".3f"), "",
             "| choice of the epoch | mean R² | sets more than 0.01 below the best CV neural "
             "variant |", "|---|---|---|"]
    for column in ("final", "lowest loo_mse", "best update (oracle)"):
        below = [s for s in sets if table.loc[s, column] < best[s] - 0.01]
        lines.append(f"| {column} | {table.loc['mean over sets', column]:.3f} | "
                     f"{len(below)}: {', '.join(below)} |")
    write_study("loo_epochs", "\n".join(lines), trace)


if __name__ == "__main__":
    main()
