"""Learned strength and predictive uncertainty: ``reg_lambda="auto"`` beside a Gaussian process.

The sets, splits and preprocessing of ``multitarget.py`` (every Mulan set in
``../shared/data/mulan/`` and the SARCOS pool at 300 and 1,000 training rows,
five seeded repetitions). Methods that predict a standard deviation:
``AdaRegMultiTaskRegressor`` with its fixed default strength on the last layer
and on all layers, with ``reg_lambda="auto"`` on the last layer and on all
layers, with ``reg_lambda="loo"`` on all layers and on the last layer (``predict(X,
return_std=True)``), and ``GaussianProcessRegressor`` (constant x RBF with a
length scale per input + white noise, normalized targets; ``return_std=True``).
Nothing is tuned on the test part: "auto" and "loo" learn their strengths and
noise from the training part alone.

Measures, per set and method, averaged over targets: R², aRRMSE, the Gaussian
negative log predictive density per test point of the standardized targets
(targets divided by their training standard deviation, so sets compare), and
the share of test targets inside the central 90 % interval. Fit times give the
cost of "auto" and "loo" as paired ratios to the fixed strength with the same
epochs. When ``results/multitarget.csv`` exists, the report also compares them with
the best cross-validated neural variant of that benchmark on the same splits
(whose training length may differ: see its report).

Run from the repository root::

    python benchmarks/uncertainty.py            # the full run
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
from _multitarget_report import cv_neural
from joblib import delayed
from multitarget import (
    OURS,
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
METHODS = {
    "AdaReg, defaults": {},
    "AdaReg, fixed strength, all layers": {"adareg_layers": "all"},
    "AdaReg auto, last layer": {"reg_lambda": "auto"},
    "AdaReg auto, all layers": {"reg_lambda": "auto", "adareg_layers": "all"},
    "AdaReg loo, all layers": {"reg_lambda": "loo", "adareg_layers": "all"},
    "AdaReg loo, last layer": {"reg_lambda": "loo"},
    "GaussianProcess": None,
}
LEARNED = ["AdaReg auto, last layer", "AdaReg auto, all layers", "AdaReg loo, all layers",
           "AdaReg loo, last layer"]
# (learned-strength method, the fixed-strength method with the same layers and epochs)
COST_PAIRS = [("AdaReg auto, last layer", "AdaReg, defaults"),
              ("AdaReg auto, all layers", "AdaReg, fixed strength, all layers"),
              ("AdaReg loo, all layers", "AdaReg, fixed strength, all layers"),
              ("AdaReg loo, last layer", "AdaReg, defaults")]
Z90 = norm.ppf(0.95)


def run_one(set_name, method, rep, data, settings):
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
        mean, std = model.predict(A_test, return_std=True)
    mean = mean.reshape(len(test), -1)
    std = std.reshape(len(test), -1) if std.ndim > 1 else std[:, None] * np.ones_like(mean)
    pred = target.inverse_transform(mean)
    r2, rrmse = scores(Y[test], pred, Y[train])
    z_true = target.transform(Y[test])
    nll = -norm.logpdf(z_true, loc=mean, scale=std).mean()
    covered = np.mean(np.abs(z_true - mean) <= Z90 * std)
    row = {"set": set_name, "method": method, "rep": rep, "n_train": len(train),
           "r2": float(np.nanmean(r2)), "arrmse": float(np.nanmean(rrmse)),
           "nll": float(nll), "coverage90": float(covered), "fit_seconds": seconds}
    if isinstance(model, AdaRegMultiTaskRegressor):
        row["reg_lambda_"] = ";".join(f"{k}={v:.3g}" for k, v in model.reg_lambda_.items())
    return row


def run(sets, settings, path, n_jobs, mulan_folder, sarcos_path):
    rows, finished = completed(path)
    data = {name: load_set(name, mulan_folder, sarcos_path) for name in sets}
    tasks = [(name, method, rep) for rep in range(settings["repetitions"]) for name in sets
             for method in METHODS if (name, method, rep) not in finished]
    print(f"{len(tasks)} fits to run, {len(finished)} already in {path.name}", flush=True)
    calls = [delayed(run_one)(name, method, rep, data[name], settings)
             for name, method, rep in tasks]
    return run_and_save(calls, rows, path, n_jobs, lambda row: (
        f"{row['set']:>10} {row['method']:>36} rep={row['rep']}  R2={row['r2']:+.3f}  "
        f"NLL={row['nll']:.3f}  cov90={row['coverage90']:.2f}  {row['fit_seconds']:.1f}s"))


def best_cv_neural(sets, repetitions):
    """Per set, the best mean R² of the cross-validated neural variants of multitarget.csv."""
    path = RESULTS / "multitarget.csv"
    if not path.exists():
        return None
    other = pd.read_csv(path)
    tuned = cv_neural(OURS)
    other = other[other["method"].isin(tuned) & other["set"].isin(sets)
                  & (other["rep"] < repetitions)]
    if other.empty:
        return None
    means = other.groupby(["set", "method"])["r2"].mean().unstack()
    return pd.DataFrame({"best CV neural": means.max(axis=1),
                         "which": means.idxmax(axis=1)})


def report(name, results, sets, settings):
    methods = list(METHODS)
    lines = [f"Sets: {', '.join(sets)}; {settings['repetitions']} repetitions, "
             f"{settings['max_epochs']} epochs. Mean over repetitions (± std).", ""]
    for measure, better in (("r2", "higher"), ("arrmse", "lower"), ("nll", "lower"),
                            ("coverage90", "closer to 0.90")):
        table = results.groupby(["set", "method"])[measure].agg(["mean", "std"])
        cells = table.apply(lambda r: f"{r['mean']:.3f} ± {r['std']:.3f}", axis=1).unstack()
        cells = cells.reindex(index=sets, columns=methods)
        means = results.groupby(["set", "method"])[measure].mean().unstack()
        cells.loc["mean over sets"] = [f"{means[m].mean():.3f}" for m in methods]
        lines += [f"### {measure} ({better} is better)", "", cells.to_markdown(), ""]
    means = results.groupby(["set", "method"])["r2"].mean().unstack().reindex(sets)
    gp = means["GaussianProcess"]
    lines += ["### Goals of issue 11", ""]
    for method in LEARNED:
        diff = means[method] - gp
        cover = results[results["method"] == method]["coverage90"].mean()
        lines.append(f"- {method}: mean R² {means[method].mean():.3f} vs the GP's "
                     f"{gp.mean():.3f}; wins {int((diff > 0).sum())} / loses "
                     f"{int((diff < 0).sum())} sets against the GP; mean 90 % coverage "
                     f"{cover:.3f}.")
        vs_default = means[method] - means["AdaReg, defaults"]
        lines.append(f"  Against the fixed default: {vs_default.mean():+.3f} on average, "
                     f"worst set {vs_default.idxmin()} {vs_default.min():+.3f}.")
    best = best_cv_neural(sets, settings["repetitions"])
    if best is not None:
        table = best.join(means[LEARNED])
        for method in LEARNED:
            table[f"{method} − best"] = table[method] - table["best CV neural"]
        lines += ["", "Against the best cross-validated neural variant of "
                  "`multitarget.py` (same splits):", "", table.to_markdown(floatfmt=".3f")]
    lines += ["", "### Cost of learning the strengths (paired fit-time ratios, same epochs)",
              ""]
    for auto, fixed in COST_PAIRS:
        pivot = results.pivot_table(index=["set", "rep"], columns="method",
                                    values="fit_seconds")
        ratio = (pivot[auto] / pivot[fixed]).dropna()
        lines.append(f"- {auto} / {fixed}: median {ratio.median():.2f}, range "
                     f"{ratio.min():.2f}-{ratio.max():.2f} over {len(ratio)} fits.")
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
    results = results[results["set"].isin(sets) & results["method"].isin(list(METHODS))
                      & (results["rep"] < settings["repetitions"])]
    report(name, results, sets, settings)


if __name__ == "__main__":
    main()
