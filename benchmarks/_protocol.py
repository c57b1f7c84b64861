"""The comparison protocol shared by the SARCOS and digits benchmarks.

Every method is one configuration of the same estimator class. Methods with
hyperparameters pick them by 3-fold cross-validation on the training part only
(``GridSearchCV``); the refitted model is scored once on the fixed test part.
Results go to ``results/<name>.csv`` one row per (method, training size,
repetition), so an interrupted run resumes where it stopped.
"""

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from _common import write_report
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.metrics import accuracy_score, explained_variance_score
from sklearn.model_selection import GridSearchCV, KFold

from sk_adareg.metrics import weight_norms

ADAREG_GRID = {"reg_lambda": [3e-3, 3e-2, 3e-1]}
# The base estimator of these comparisons: the defaults before the default learned its
# strength (a fixed 3e-3 on the last layer, inputs not clipped), so that every row keeps
# the configuration it was run with. The methods below override it.
LEGACY = {"reg_lambda": 3e-3, "adareg_layers": "last", "clip_inputs": False}
PAPER_PRIOR = {"precision_scale": "learned", "u": 1e-3, "v": 1e3}

# name -> (fixed parameters, grid searched by cross-validation)
METHODS = {
    "none": ({"reg_lambda": 0.0}, {}),
    "weight decay": ({"reg_lambda": 0.0}, {"weight_decay": [1e-4, 1e-3, 1e-2]}),
    "dropout": ({"reg_lambda": 0.0}, {"dropout": [0.1, 0.3, 0.5]}),
    "BN": ({"reg_lambda": 0.0, "batch_norm": True}, {}),
    "DeCov": ({"reg_lambda": 0.0}, {"decov_lambda": [1e-3, 1e-2, 1e-1]}),
    "AdaReg": ({}, ADAREG_GRID),
    "AdaReg + BN": ({"batch_norm": True}, ADAREG_GRID),
    "AdaReg, 3e-3 last layer": ({}, {}),
    # Ablation: the same penalty with the precisions never updated (Omega = I):
    # plain L2 on the last layer. Does learning the correlations matter?
    "last-layer L2": ({"cov_update_every": 10**6}, ADAREG_GRID),
    "AdaReg, paper's prior": (PAPER_PRIOR, {"reg_lambda": [1e-4, 1e-3, 1e-2]}),
}

# The authors' published defaults (demo.py of their repository), for the second setting.
AUTHORS_PROTOCOL = {"lr": 5e-4, "weight_decay": 1e-2, "batch_size": 256, "max_epochs": 300,
                    "cov_update_every": 30}
AUTHORS_METHODS = {
    "none": ({"reg_lambda": 0.0}, {}),
    "AdaReg, paper's prior": ({**PAPER_PRIOR, "reg_lambda": 1e-4}, {}),
    "AdaReg, 3e-3 last layer": ({}, {}),
}


def _score(estimator, X_test, y_test):
    """(mean score, per-task scores): explained variance per task, or accuracy."""
    pred = estimator.predict(X_test)
    if y_test.ndim == 2:
        per_task = explained_variance_score(y_test, pred, multioutput="raw_values")
        return float(per_task.mean()), per_task
    return accuracy_score(y_test, pred), np.array([])


def run_one(base, method, params, grid, X_train, y_train, X_test, y_test, seed):
    """Tune (if a grid is given), refit and score one method on one training set."""
    torch.set_num_threads(1)
    start = time.perf_counter()
    # In a pipeline, the AdaReg estimator is the step named "net".
    prefix = "net__" if hasattr(base, "steps") else ""
    estimator = clone(base).set_params(
        **{prefix + k: v for k, v in {"random_state": seed, **params}.items()})
    chosen = {}
    if grid:
        search = GridSearchCV(estimator, {prefix + k: v for k, v in grid.items()},
                              cv=KFold(3, shuffle=True, random_state=seed))
        estimator = search.fit(X_train, y_train).best_estimator_
        chosen = {k.removeprefix(prefix): v for k, v in search.best_params_.items()}
    else:
        estimator.fit(X_train, y_train)
    score, per_task = _score(estimator, X_test, y_test)
    net = estimator[-1] if prefix else estimator
    norms = weight_norms(net)[net.adareg_layers_[-1]]
    row = {"method": method, "n_train": len(X_train), "seed": seed, "score": score,
           "stable_rank": norms["stable_rank"], "spectral_norm": norms["spectral_norm"],
           "chosen": str(chosen), "seconds": time.perf_counter() - start}
    row.update({f"task_{i + 1}": s for i, s in enumerate(per_task)})
    return row


def run(name, base, methods, splits, n_jobs):
    """Run every (method, split) not yet in ``results/<name>.csv``; return all rows.

    ``splits`` yields ``(n_train, seed, X_train, y_train, X_test, y_test)``.
    """
    path = Path(__file__).parent / "results" / f"{name}.csv"
    path.parent.mkdir(exist_ok=True)
    done = pd.read_csv(path) if path.exists() else pd.DataFrame(columns=["method", "n_train",
                                                                         "seed"])
    finished = set(zip(done["method"], done["n_train"], done["seed"], strict=True))
    tasks = [
        (method, params, grid, split)
        for split in splits
        for method, (params, grid) in methods.items()
        if (method, split[0], split[1]) not in finished
    ]
    tasks.sort(key=lambda t: -t[3][0] * (3 * _n_candidates(t[2]) + 1))  # longest first
    print(f"{name}: {len(tasks)} fits to run, {len(finished)} already in {path.name}",
          flush=True)
    rows = done.to_dict("records")
    jobs = (delayed(run_one)(base, method, params, grid, *split[2:], split[1])
            for method, params, grid, split in tasks)
    for row in Parallel(n_jobs=n_jobs, return_as="generator_unordered")(jobs):
        rows.append(row)
        pd.DataFrame(rows).to_csv(path, index=False)
        print(f"  {row['method']:>22}  n={row['n_train']:<5} seed={row['seed']}  "
              f"score={row['score']:.4f}  {row['seconds']:.0f}s", flush=True)
    return pd.DataFrame(rows)


def _n_candidates(grid):
    return int(np.prod([len(v) for v in grid.values()])) if grid else 0


def n_jobs_default():
    return min(2, os.cpu_count() or 1)


def mean_std_table(results, value, methods, digits=3):
    """Markdown table: methods x training sizes, ``mean ± std`` over repetitions."""
    sizes = sorted(results["n_train"].unique())
    lines = ["| method | " + " | ".join(f"n={n}" for n in sizes) + " |",
             "|---" * (len(sizes) + 1) + "|"]
    for method in methods:
        cells = []
        for n in sizes:
            v = results[(results.method == method) & (results.n_train == n)][value]
            cells.append(f"{v.mean():.{digits}f} ± {v.std():.{digits}f}" if len(v) else "")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def paired_difference_table(results, reference, methods, digits=4):
    """Markdown table of ``score - reference score`` on the same split: mean ± std."""
    sizes = sorted(results["n_train"].unique())
    ref = results[results.method == reference].set_index(["n_train", "seed"])["score"]
    lines = ["| method − " + reference + " | " + " | ".join(f"n={n}" for n in sizes) + " |",
             "|---" * (len(sizes) + 1) + "|"]
    for method in methods:
        if method == reference:
            continue
        diff = results[results.method == method].set_index(["n_train", "seed"])["score"] - ref
        cells = []
        for n in sizes:
            d = diff.xs(n, level="n_train").dropna() if n in diff.index.levels[0] else []
            cells.append(f"{d.mean():+.{digits}f} ± {d.std():.{digits}f}" if len(d) else "")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def per_task_table(results, n_train, methods, n_tasks):
    """The paper's Table 1 layout: explained variance per task at one training size."""
    lines = ["| method | " + " | ".join(f"task {i + 1}" for i in range(n_tasks)) + " |",
             "|---" * (n_tasks + 1) + "|"]
    for method in methods:
        sub = results[(results.method == method) & (results.n_train == n_train)]
        cells = [f"{sub[f'task_{i + 1}'].mean():.4f}" for i in range(n_tasks)]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def chosen_table(results, methods):
    """Which hyperparameters cross-validation chose, counted over splits."""
    lines = ["| method | n | chosen (count) |", "|---|---|---|"]
    for method in methods:
        for n, sub in results[results.method == method].groupby("n_train"):
            counts = sub["chosen"].value_counts()
            if counts.index[0] != "{}":
                text = ", ".join(f"{k} ({c})" for k, c in counts.items())
                lines.append(f"| {method} | {n} | {text} |")
    return "\n".join(lines)


def plot_curves(results, methods, score_label, path, reference="none"):
    """Learning curves, paired gains over ``reference``, and the last layer's stable rank
    and spectral norm (the paper's Fig. 2 and Fig. 4)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ref = results[results.method == reference].set_index(["n_train", "seed"])["score"]
    panels = {"score": score_label, "gain": f"{score_label}: gain over '{reference}' (paired)",
              "stable_rank": "stable rank of the last layer",
              "spectral_norm": "spectral norm of the last layer"}
    fig, axes = plt.subplots(1, 4, figsize=(21, 5), constrained_layout=True)
    for method in methods:
        sub = results[results.method == method].set_index(["n_train", "seed"])
        sub = sub.assign(gain=sub["score"] - ref).groupby("n_train")
        style = "-" if "AdaReg" in method or method == "last-layer L2" else "--"
        for ax, value in zip(axes, panels, strict=True):
            mean, std = sub[value].mean(), sub[value].std()
            ax.errorbar(mean.index, mean, yerr=std, label=method, linestyle=style,
                        marker="o", markersize=3, capsize=2)
    sizes = sorted(results["n_train"].unique())
    for ax, title in zip(axes, panels.values(), strict=True):
        ax.set_xscale("log")
        ax.set_xticks(sizes, [str(n) for n in sizes])
        ax.minorticks_off()
        ax.set_xlabel("training set size")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[1].axhline(0, color="black", linewidth=0.8)
    axes[0].legend(fontsize=8)
    fig.suptitle("mean ± std over repetitions; solid lines: the AdaReg penalty", fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"wrote {path}")


def arguments(doc, sizes, protocol=False, **extra):
    """Parse the options the benchmark scripts share (plus ``extra``: name -> add_argument kw)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    if protocol:
        parser.add_argument("--protocol", choices=["ours", "authors"], default="ours")
    parser.add_argument("--repetitions", type=int, default=5)
    if sizes is not None:
        parser.add_argument("--sizes", type=int, nargs="+", default=sizes)
    parser.add_argument("--n-jobs", type=int, default=n_jobs_default())
    for flag, kwargs in extra.items():
        parser.add_argument(flag, **kwargs)
    return parser.parse_args()


def report(name, results, methods, score_caption, layer, score_label, extra=()):
    """Print the standard tables, plot the curves and write ``results/<name>.md``."""
    sections = [
        f"{score_caption} (mean ± std over repetitions):",
        mean_std_table(results, "score", methods),
        "Paired difference with no regularization, same splits and seeds:",
        paired_difference_table(results, "none", methods),
        f"Stable rank of the last layer ({layer}):",
        mean_std_table(results, "stable_rank", methods, digits=2),
        "Spectral norm of the last layer:",
        mean_std_table(results, "spectral_norm", methods, digits=3),
        *extra,
    ]
    if (results["chosen"] != "{}").any():
        sections += ["Hyperparameters chosen by 3-fold cross-validation on the training part:",
                     chosen_table(results, methods)]
    body = "\n\n".join(sections)
    print(body)
    plot_curves(results, methods, score_label, Path(__file__).parent / "results" / f"{name}.png")
    write_report(name, body)
