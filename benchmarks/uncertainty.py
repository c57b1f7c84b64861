"""The default and its uncertainty: learned strengths beside a Gaussian process.

The sets, splits and preprocessing of ``multitarget.py`` (every Mulan set in
``../shared/data/mulan/`` and the SARCOS pool at 300 and 1,000 training rows,
five seeded repetitions), 200 epochs. Methods that predict a standard deviation
(``predict(X, return_std=True)``): ``AdaRegMultiTaskRegressor()`` with its
defaults (``reg_lambda="auto"``: cross-validation on the training part chooses
between ``"evidence"`` and ``"loo"``; all layers; inputs clipped to their training
range), the same fit with ``clip_inputs=False`` at prediction, its isotropic twin
(``u = v = 1``: weight decay whose strength is learned), ``"evidence"`` and
``"loo"`` alone, a fixed strength (3e-3, all layers), and
``GaussianProcessRegressor`` (constant x RBF with a length scale per input + white
noise, normalized targets). Nothing is tuned on the test part.

Measures, per set and method, averaged over targets: R², aRRMSE, the Gaussian
negative log predictive density per test point of the standardized targets
(targets divided by their training standard deviation, so sets compare), and
the share of test targets inside the central 90 % interval. Fit times give the
cost of the learned strengths as paired ratios to the fixed strength with the
same epochs and layers. When ``results/multitarget.csv`` exists, the report checks
the default against weight decay tuned by cross-validation and ``RidgeCV`` there, on
the same splits.

Run from the repository root::

    python benchmarks/uncertainty.py            # the full run (about 40 minutes here)
    python benchmarks/uncertainty.py --quick    # one repetition, 40 epochs
"""

import argparse
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from _common import RESULTS, completed, run_and_save, write_report
from joblib import delayed
from multitarget import (
    SARCOS_SIZES,
    SHARED,
    load_set,
    make_method,
    mulan_names,
    prepared,
    scores,
)
from scipy.stats import norm
from threadpoolctl import threadpool_limits

from sk_adareg import AdaRegMultiTaskRegressor

# Our own protocol (multitarget.py may shorten its training to fit its time budget).
SETTINGS = {
    "full": {"repetitions": 5, "max_epochs": 200, "gp_maxiter": 200},
    "quick": {"repetitions": 1, "max_epochs": 40, "gp_maxiter": 50},
}
DEFAULT = "AdaReg, default"
# A method's estimator parameters (on top of max_epochs and random_state); None: the GP.
METHODS = {
    DEFAULT: {},
    "AdaReg, default, isotropic (u = v = 1)": {"u": 1.0, "v": 1.0},
    "AdaReg evidence, all layers": {"reg_lambda": "evidence"},
    "AdaReg loo, all layers": {"reg_lambda": "loo"},
    "AdaReg, fixed 3e-3, all layers": {"reg_lambda": 3e-3},
    "GaussianProcess": None,
}
# Rows scored from another method's fit, with clip_inputs=False at prediction.
UNCLIPPED = {DEFAULT: "AdaReg, default, inputs not clipped"}
ROWS = [DEFAULT, UNCLIPPED[DEFAULT], *list(METHODS)[1:]]
LEARNED = [DEFAULT, "AdaReg, default, isotropic (u = v = 1)", "AdaReg evidence, all layers",
           "AdaReg loo, all layers"]
FIXED = "AdaReg, fixed 3e-3, all layers"
# The goals of the default (issue 36): the peers on the same splits in multitarget.csv.
PEERS = {"weight decay tuned": 0.03, "RidgeCV": 0.05}
Z90 = norm.ppf(0.95)


def _scored(set_name, method, rep, train, test, Y, target, mean, std):
    """A result row from standardized predictions and standard deviations."""
    mean = mean.reshape(len(test), -1)
    std = std.reshape(len(test), -1) if std.ndim > 1 else std[:, None] * np.ones_like(mean)
    r2, rrmse = scores(Y[test], target.inverse_transform(mean), Y[train])
    z_true = target.transform(Y[test])
    return {"set": set_name, "method": method, "rep": rep, "n_train": len(train),
            "r2": float(np.nanmean(r2)), "arrmse": float(np.nanmean(rrmse)),
            "nll": float(-norm.logpdf(z_true, loc=mean, scale=std).mean()),
            "coverage90": float(np.mean(np.abs(z_true - mean) <= Z90 * std))}


def run_one(set_name, method, rep, data, settings):
    """One method on one split; a list of rows (with the unclipped twin, if any)."""
    torch.set_num_threads(1)
    Y = data[1]
    train, test, A_train, A_test, target = prepared(set_name, data, rep)
    if METHODS[method] is None:
        model = make_method(method, A_train.shape[1], settings, rep)[0]
    else:
        model = AdaRegMultiTaskRegressor(max_epochs=settings["max_epochs"], random_state=rep,
                                         **METHODS[method])
    start = time.perf_counter()
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # Both see standardized targets (the GP normalizes them again; AdaReg standardizes).
        model.fit(A_train, target.transform(Y[train]))
        seconds = time.perf_counter() - start
        rows = [_scored(set_name, method, rep, train, test, Y, target,
                        *model.predict(A_test, return_std=True))]
        if method in UNCLIPPED:
            model.set_params(clip_inputs=False)
            rows.append(_scored(set_name, UNCLIPPED[method], rep, train, test, Y, target,
                                *model.predict(A_test, return_std=True)))
    for row in rows:
        row["fit_seconds"] = seconds
        if isinstance(model, AdaRegMultiTaskRegressor):
            row["reg_lambda_"] = ";".join(f"{k}={v:.3g}" for k, v in model.reg_lambda_.items())
            row["strength_method_"] = model.strength_method_
    return rows


def run(sets, settings, path, n_jobs, mulan_folder, sarcos_path):
    rows, finished = completed(path)
    data = {name: load_set(name, mulan_folder, sarcos_path) for name in sets}
    tasks = [(name, method, rep) for rep in range(settings["repetitions"]) for name in sets
             for method in METHODS if (name, method, rep) not in finished]
    print(f"{len(tasks)} fits to run, {len(finished)} already in {path.name}", flush=True)
    calls = [delayed(run_one)(name, method, rep, data[name], settings)
             for name, method, rep in tasks]
    return run_and_save(calls, rows, path, n_jobs, lambda row: (
        f"{row['set']:>10} {row['method']:>38} rep={row['rep']}  R2={row['r2']:+.3f}  "
        f"NLL={row['nll']:.3f}  cov90={row['coverage90']:.2f}  {row['fit_seconds']:.1f}s"))


def _peers(sets, repetitions):
    """Per set, the mean R² of the peers of :data:`PEERS` in multitarget.csv, or None."""
    path = RESULTS / "multitarget.csv"
    if not path.exists():
        return None
    other = pd.read_csv(path)
    other = other[other["method"].isin(PEERS) & other["set"].isin(sets)
                  & (other["rep"] < repetitions)]
    return other.groupby(["set", "method"])["r2"].mean().unstack().reindex(sets)


def goals(results, sets, settings):
    """The lines of the default's goals: mean R², per-set margins, coverage, cost."""
    means = results.groupby(["set", "method"])["r2"].mean().unstack().reindex(sets)
    cover = results.groupby(["set", "method"])["coverage90"].mean().unstack().reindex(sets)
    lines = ["### The default's goals (issue 36)", ""]
    default = means[DEFAULT]
    lines.append(f"- Mean R² over the sets: {default.mean():.3f} (goal ≥ 0.60; the GP "
                 f"{means['GaussianProcess'].mean():.3f}).")
    peers = _peers(sets, settings["repetitions"])
    for peer, margin in PEERS.items():
        if peers is None or peer not in peers:
            continue
        diff = default - peers[peer]
        short = diff[diff < -margin]
        where = ", ".join(f"{s} {d:+.3f}" for s, d in short.items()) or "none"
        lines.append(f"- Against {peer} (multitarget.csv, same splits; mean "
                     f"{peers[peer].mean():.3f}): {diff.mean():+.3f} on average; sets more "
                     f"than {margin} below: {where}.")
    low = cover[DEFAULT][cover[DEFAULT] < 0.75]
    lines.append(f"- 90 % intervals cover {cover[DEFAULT].mean():.1%} of test targets on "
                 "average (goal 85-95 %); sets below 75 %: "
                 f"{', '.join(f'{s} {c:.1%}' for s, c in low.items()) or 'none'}.")
    clipped = means[DEFAULT] - means[UNCLIPPED[DEFAULT]]
    lines.append(f"- Clipping the inputs: {clipped.mean():+.3f} R² on average, worst set "
                 f"{clipped.idxmin()} {clipped.min():+.3f}, best {clipped.idxmax()} "
                 f"{clipped.max():+.3f}.")
    chosen = results[results["method"] == DEFAULT]["strength_method_"].value_counts()
    lines.append(f"- What the default chose: {', '.join(f'{k} {v}' for k, v in chosen.items())}"
                 " (splits).")
    pivot = results.pivot_table(index=["set", "rep"], columns="method", values="fit_seconds")
    lines += ["", "### Cost of learning the strengths (paired fit-time ratios, same epochs "
              f"and layers, against {FIXED})", ""]
    for method in LEARNED:
        ratio = (pivot[method] / pivot[FIXED]).dropna()
        lines.append(f"- {method}: median {ratio.median():.2f}, range "
                     f"{ratio.min():.2f}-{ratio.max():.2f} over {len(ratio)} fits.")
    return lines


def report(name, results, sets, settings):
    methods = [m for m in ROWS if m in set(results["method"])]
    lines = [f"Sets: {', '.join(sets)}; {settings['repetitions']} repetitions, "
             f"{settings['max_epochs']} epochs. Mean over repetitions (± std).", ""]
    lines += [*goals(results, sets, settings), ""]
    for measure, better in (("r2", "higher"), ("arrmse", "lower"), ("nll", "lower"),
                            ("coverage90", "closer to 0.90")):
        table = results.groupby(["set", "method"])[measure].agg(["mean", "std"])
        cells = table.apply(lambda r: f"{r['mean']:.3f} ± {r['std']:.3f}", axis=1).unstack()
        cells = cells.reindex(index=sets, columns=methods)
        means = results.groupby(["set", "method"])[measure].mean().unstack()
        cells.loc["mean over sets"] = [f"{means[m].mean():.3f}" for m in methods]
        lines += [f"### {measure} ({better} is better)", "", cells.to_markdown(), ""]
    body = "\n".join(lines)
    print(body)
    write_report(name, body)
    plot(name, results, sets, methods)


def plot(name, results, sets, methods):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 0.45 * len(sets) + 2), sharey=True)
    y = np.arange(len(sets))
    height = 0.8 / len(methods)
    for ax, measure, title in zip(axes, ("r2", "nll", "coverage90"),
                                  ("test R² (higher is better)",
                                   "NLL of standardized targets (lower is better)",
                                   "90 % interval coverage (target 0.90)"), strict=True):
        means = results.groupby(["set", "method"])[measure].mean().unstack().reindex(sets)
        for i, method in enumerate(methods):
            ax.barh(y + i * height, means[method], height, label=method)
        if measure == "coverage90":
            ax.axvline(0.9, color="k", lw=1)
            ax.set_xlim(0.0, 1.0)
        if measure == "nll":  # a few overconfident fits reach NLLs in the hundreds
            ax.set_xscale("symlog", linthresh=1.0)
        ax.set_title(title)
    axes[0].set_yticks(y + 0.4 - height / 2, sets)
    axes[0].invert_yaxis()
    axes[0].legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    path = RESULTS / f"{name}.png"
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one repetition, 40 epochs")
    parser.add_argument("--repetitions", type=int, default=None)
    parser.add_argument("--sets", nargs="+", default=None)
    parser.add_argument("--n-jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--data", type=Path, default=SHARED)
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    settings = dict(SETTINGS["quick" if args.quick else "full"])
    if args.repetitions is not None:
        settings["repetitions"] = args.repetitions
    mulan_folder = args.data / "mulan"
    sets = mulan_names(mulan_folder) + [f"sarcos{n}" for n in SARCOS_SIZES]
    if args.sets:
        sets = [s for s in sets if s in args.sets]
    name = "uncertainty" + ("_quick" if args.quick else "")
    path = RESULTS / f"{name}.csv"
    RESULTS.mkdir(exist_ok=True)
    results = pd.read_csv(path) if args.report_only else run(
        sets, settings, path, args.n_jobs, mulan_folder, args.data / "sarcos_inv_test.mat")
    results = results[results["set"].isin(sets) & results["method"].isin(ROWS)
                      & (results["rep"] < settings["repetitions"])]
    report(name, results, sets, settings)


if __name__ == "__main__":
    main()
