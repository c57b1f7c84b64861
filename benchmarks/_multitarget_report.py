"""Tables and the heatmap of ``multitarget.py``, from its CSV (one row per set, method, rep)."""

import json
from pathlib import Path

import numpy as np
from _common import RESULTS, write_report

REFERENCES = ("GaussianProcess", "RandomForest")
# Issue 11's per-set goal: no set more than this below the best cross-validated neural variant.
MARGIN = 0.01


def cv_neural(methods):
    """The cross-validated neural variants among ``methods`` (issue 11's yardstick).

    Those cross-validated over a fixed strength, weight decay or the training length; the
    choice between the learned strengths ("auto or loo by CV") is measured against them,
    so that the yardstick stays the issue's.
    """
    return [m for m in methods if m.startswith(("AdaReg tuned", "weight decay tuned"))
            or m == "early stopping"]


def _cell(mean, std, digits=3):
    if np.isnan(mean):
        return ""
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if not np.isnan(std) else f"{mean:.{digits}f}"


def per_set(results, value):
    """Mean and std over repetitions, methods x sets."""
    grouped = results.groupby(["method", "set"])[value]
    return grouped.mean().unstack(), grouped.std().unstack()


def table(results, value, sets, methods, digits=3, best="max"):
    mean, std = per_set(results, value)
    mean, std = mean.reindex(index=methods, columns=sets), std.reindex(index=methods,
                                                                       columns=sets)
    top = mean.max() if best == "max" else mean.min()
    lines = ["| method | " + " | ".join(sets) + " |", "|---" * (len(sets) + 1) + "|"]
    for method in methods:
        cells = []
        for s in sets:
            text = _cell(mean.loc[method, s], std.loc[method, s], digits)
            if text and np.isclose(mean.loc[method, s], top[s]):
                text = f"**{text}**"
            cells.append(text)
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ranks(results, sets, methods):
    """Average rank over sets (1 = best) by mean aRRMSE and by mean R²."""
    mean_rr, _ = per_set(results, "arrmse")
    mean_r2, _ = per_set(results, "r2")
    rr = mean_rr.reindex(index=methods, columns=sets).rank(axis=0, ascending=True)
    r2 = mean_r2.reindex(index=methods, columns=sets).rank(axis=0, ascending=False)
    return rr.mean(axis=1), r2.mean(axis=1)


def paired(keyed, set_name, method, reference):
    """Mean and standard error over the repetitions of ``method - reference`` on a set.

    ``keyed`` is a measure indexed by (set, rep, method); the difference is paired over
    the splits both have. None where either has none; the error is NaN for one split.
    """
    try:
        a = keyed.xs((set_name, method), level=("set", "method"))
        b = keyed.xs((set_name, reference), level=("set", "method"))
    except KeyError:
        return None
    diff = (a - b).dropna()
    if not len(diff):
        return None
    return diff.mean(), diff.std() / np.sqrt(len(diff)) if len(diff) > 1 else np.nan


def versus(results, reference, method, sets):
    """(wins, ties, losses, clear wins, clear losses) of ``method`` against ``reference``.

    Compared by mean aRRMSE over the repetitions of each set; "clear" when the paired
    difference (same splits) is more than twice its standard error.
    """
    wins = ties = losses = clear_wins = clear_losses = 0
    keyed = results.set_index(["set", "rep", "method"])["arrmse"]
    for s in sets:
        found = paired(keyed, s, method, reference)
        if found is None:
            continue
        d, se = found
        se = np.inf if np.isnan(se) else se
        if np.isclose(d, 0, atol=1e-12):
            ties += 1
        elif d < 0:
            wins += 1
            clear_wins += bool(-d > 2 * se)
        else:
            losses += 1
            clear_losses += bool(d > 2 * se)
    return wins, ties, losses, clear_wins, clear_losses


def summary(results, sets, methods):
    rank_rr, rank_r2 = ranks(results, sets, methods)
    mean_r2 = per_set(results, "r2")[0].reindex(index=methods, columns=sets)
    mean_rr = per_set(results, "arrmse")[0].reindex(index=methods, columns=sets)
    lines = ["| method | mean R² over sets | mean aRRMSE over sets | avg rank (aRRMSE) "
             "| avg rank (R²) | vs GP: W/T/L (clear W/L) | vs RF: W/T/L (clear W/L) "
             "| mean fit s | total fit min |", "|---" * 9 + "|"]
    for method in methods:
        cells = [f"{mean_r2.loc[method].mean():.3f}", f"{mean_rr.loc[method].mean():.3f}",
                 f"{rank_rr[method]:.2f}", f"{rank_r2[method]:.2f}"]
        for reference in REFERENCES:
            if method == reference:
                cells.append("—")
                continue
            w, t, lo, cw, cl = versus(results, reference, method, sets)
            cells.append(f"{w}/{t}/{lo} ({cw}/{cl})")
        seconds = results[results.method == method]["fit_seconds"]
        cells += [f"{seconds.mean():.1f}", f"{seconds.sum() / 60:.1f}"]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def against_best_cv(results, sets, methods):
    """Each method against the best cross-validated neural variant of each set, paired.

    The best variant is the one with the highest mean test R² on the set (chosen on the
    test part, so the yardstick is biased upwards by the choice). Per set, the mean over
    the repetitions of the paired difference in R² (same splits) and its standard error;
    a set counts as "below" when the mean is more than ``MARGIN`` below the best, and as
    "clearly below" when it is so by more than twice its standard error.
    """
    candidates = cv_neural(methods)
    mean = per_set(results, "r2")[0].reindex(index=candidates, columns=sets)
    best = mean.idxmax()
    keyed = results.set_index(["set", "rep", "method"])["r2"]
    lines = ["| method | " + " | ".join(sets) + " | sets below | clearly below |",
             "|---" * (len(sets) + 3) + "|"]
    for method in methods:
        cells, below, clearly = [], [], []
        for s in sets:
            found = paired(keyed, s, method, best[s])
            if found is None:
                cells.append("")
                continue
            d, se = found
            cells.append(f"{d:+.3f} ± {se:.3f}" if not np.isnan(se) else f"{d:+.3f}")
            if d < -MARGIN:
                below.append(s)
                if d + MARGIN < -2 * se:
                    clearly.append(s)
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {len(below)} | "
                     + (f"{len(clearly)}: {', '.join(clearly)}" if clearly else "0") + " |")
    header = ", ".join(f"{s}: {best[s]}" for s in sets)
    return f"Best cross-validated neural variant per set: {header}.\n\n" + "\n".join(lines)


def fit_times(results, sets, methods):
    mean, _ = per_set(results, "fit_seconds")
    mean = mean.reindex(index=methods, columns=sets)
    lines = ["| method | " + " | ".join(sets) + " |", "|---" * (len(sets) + 1) + "|"]
    for method in methods:
        lines.append(f"| {method} | " + " | ".join(
            f"{v:.1f}" if not np.isnan(v) else "" for v in mean.loc[method]) + " |")
    return "\n".join(lines)


def edges(results, sets, methods, settings):
    """How often cross-validation chose the smallest or largest value of a grid."""
    tuned = results[results["edge"].fillna("").astype(str) != ""]
    lines = ["| method | grid | fits | at low edge | at high edge | chosen (count) |",
             "|---|---|---|---|---|---|"]
    for method in methods:
        sub = tuned[tuned.method == method]
        if not len(sub):
            continue
        counts = sub["chosen"].map(lambda c: next(iter(json.loads(c).values())))
        counts = counts.value_counts().sort_index()
        key = next(iter(json.loads(sub["chosen"].iloc[0])))
        grid = {"reg_lambda": "adareg_grid", "weight_decay": "wd_grid", "alpha": "alpha_grid",
                "n_neighbors": "k_grid"}[key]
        lines.append(
            f"| {method} | {key} ∈ {settings[grid]} | {len(sub)} "
            f"| {(sub.edge == 'low').sum()} | {(sub.edge == 'high').sum()} | "
            + ", ".join(f"{k:g} ({c})" for k, c in counts.items()) + " |")
    by_set = ["| set | " + " | ".join(m for m in methods if m in set(tuned.method)) + " |"]
    shown = [m for m in methods if m in set(tuned.method)]
    by_set.append("|---" * (len(shown) + 1) + "|")
    for s in sets:
        cells = []
        for method in shown:
            sub = tuned[(tuned.method == method) & (tuned.set == s)]
            cells.append(f"{(sub.edge == 'low').sum()} low, {(sub.edge == 'high').sum()} high"
                         f" / {len(sub)}")
        by_set.append(f"| {s} | " + " | ".join(cells) + " |")
    return "\n".join(lines), "\n".join(by_set)


def heatmap(results, sets, methods, path):
    """Methods x sets: colour = R² minus the best method's R² on that set, text = R²."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mean, _ = per_set(results, "r2")
    mean = mean.reindex(index=methods, columns=sets)
    gap = mean - mean.max(axis=0)
    rank_rr, _ = ranks(results, sets, methods)
    fig, ax = plt.subplots(figsize=(1.0 * len(sets) + 4.5, 0.45 * len(methods) + 2.2),
                           constrained_layout=True)
    image = ax.imshow(gap.clip(lower=-0.3).to_numpy(dtype=float), cmap="RdYlGn", vmin=-0.3,
                      vmax=0, aspect="auto")
    for i in range(len(methods)):
        for j in range(len(sets)):
            value = mean.iloc[i, j]
            if np.isnan(value):
                continue
            best = np.isclose(gap.iloc[i, j], 0)
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=8,
                    fontweight="bold" if best else "normal",
                    color="white" if gap.iloc[i, j] < -0.22 else "black")
    ax.set_xticks(range(len(sets)), sets, rotation=30, ha="right")
    ax.set_yticks(range(len(methods)),
                  [f"{m}  (rank {rank_rr[m]:.1f})" for m in methods])
    n_ours = methods.index("RidgeCV") if "RidgeCV" in methods else 0
    ax.axhline(n_ours - 0.5, color="black", linewidth=1.2)  # ours above, the peers below
    colorbar = fig.colorbar(image, ax=ax, shrink=0.8)
    colorbar.set_label("R² minus the best R² on the set (clipped at −0.3)")
    ax.set_title("Mean test R² over targets and repetitions (bold: best on the set).\n"
                 "Above the line: AdaRegMultiTaskRegressor; rank: average rank by aRRMSE",
                 fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"wrote {path}")


def report(name, results, sets, methods, settings, mode):
    sets = [s for s in sets if s in set(results["set"])]
    reps = results.groupby(["set", "method"]).size()
    edge_table, edge_by_set = edges(results, sets, methods, settings)
    sizes = results.groupby("set")[["n_train", "n_test"]].first()
    set_line = ", ".join(f"{s} ({sizes.loc[s, 'n_train']}/{sizes.loc[s, 'n_test']})"
                         for s in sets)
    sections = [
        f"Mode: `{mode}`. Settings: {json.dumps(settings)}.",
        f"Repetitions per (set, method): {reps.min()} to {reps.max()}; "
        f"{len(results)} fits in all, {results['fit_seconds'].sum() / 3600:.2f} hours of "
        "fit time (sum over the parallel workers).",
        f"Sets (training/test rows): {set_line}.",
        "## Summary\n\nAverage rank over the sets (1 = best), by mean aRRMSE (the "
        "collection's measure: mean over targets of the test RMSE relative to predicting the "
        "training mean; lower is better) and by mean R². Wins/ties/losses against the "
        "Gaussian process and the random forest are counted per set by mean aRRMSE; "
        "\"clear\" when the paired difference over the same splits is more than twice its "
        "standard error. Fit time includes the cross-validated tuning.",
        summary(results, sets, methods),
        "## Mean R² over targets (test), mean ± std over repetitions\n\nBold: best on the set.",
        table(results, "r2", sets, methods),
        "## aRRMSE (test), mean ± std over repetitions\n\nLower is better; bold: best.",
        table(results, "arrmse", sets, methods, best="min"),
        "## Hyperparameters chosen by cross-validation\n\nHow often the value was at an "
        "edge of its grid, over all sets and repetitions:",
        edge_table,
        "By set (AdaReg and the other tuned methods):",
        edge_by_set,
        "## Against the best cross-validated neural variant (issue 11's per-set goal)\n\n"
        "Test R² minus that of the set's best cross-validated neural variant (the tuned "
        "AdaReg variants, tuned weight decay, early stopping; the best chosen by mean test "
        "R², which biases the yardstick upwards), paired over the same splits: mean ± "
        f"standard error over the repetitions. \"Below\": more than {MARGIN} below it; "
        "\"clearly below\": so by more than twice the standard error.",
        against_best_cv(results, sets, methods),
        "## Mean fit time per split (seconds, tuning included, one thread)",
        fit_times(results, sets, methods),
    ]
    body = "\n\n".join(sections)
    print(body)
    heatmap(results, sets, methods, Path(RESULTS) / f"{name}.png")
    write_report(name, body)
