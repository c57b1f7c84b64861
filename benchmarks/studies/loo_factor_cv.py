"""Would cross-validation on the training part pick the factor on "loo" that the test part
wants? (a diagnostic for issue 11)

``loo_factor.py`` finds that the best factor on the strengths of ``reg_lambda="loo"``
differs between sets in both directions (0.1 on light-tailed sets, 3 on heavy-tailed
ones), so that no constant helps. This study asks whether the training data tell them
apart when the network is refitted: for each split of ``multitarget.py`` it scores
every factor of ``loo_factor.py`` by 3-fold cross-validation on the training part,
exactly as the tuned variants of ``multitarget.py`` are chosen (``GridSearchCV``'s
protocol: the same folds, preprocessing and target scaling fitted inside each fold,
the estimator's R² on the held-out fold), and takes the factor with the best mean fold
score. Its test R² is that of the fit with this factor on the whole training part,
read from ``benchmarks/studies/results/loo_factor.csv`` (the same fit: same split, seed
and callbacks).

The factor is chosen on the training part only; the test part is read once, for the
chosen factor.

Run from the repository root, after ``python benchmarks/studies/loo_factor.py``::

    python benchmarks/studies/loo_factor_cv.py                # every set, 5 repetitions (~20 min)
    python benchmarks/studies/loo_factor_cv.py --repetitions 1 --sets edm scpf

Writes ``benchmarks/studies/results/loo_factor_cv.md`` and ``loo_factor_cv.csv`` (one row per
set, repetition and factor: the mean and the folds' R²; resumed where it stopped).
"""

import json
import time
import warnings

import _parent  # noqa: F401  (benchmarks/ on sys.path, results here)
import numpy as np
import pandas as pd
import torch
from _common import STUDY_RESULTS, completed, run_and_save, write_report
from joblib import delayed
from loo_factor import EPOCHS, FACTORS, ScaleAfterUpdate, label
from multitarget import CV_FOLDS, benchmark_sets, preprocessing, split, study_arguments
from sklearn.compose import TransformedTargetRegressor
from sklearn.model_selection import KFold, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits
from uncertainty import best_cv_neural

from sk_adareg import AdaRegMultiTaskRegressor


def run_one(name, rep, factor, data):
    """The 3-fold cross-validated R² of "loo" times ``factor`` on a split's training part."""
    model = AdaRegMultiTaskRegressor(
        reg_lambda="loo", adareg_layers="all", max_epochs=EPOCHS, random_state=rep,
        callbacks=[] if factor == 1.0 else [("scale", ScaleAfterUpdate(factor))])
    return cross_validated(name, rep, data, model, label(factor))


def cross_validated(name, rep, data, model, method, fold_seed=None):
    """The row of ``model``'s 3-fold cross-validated R² on a split's training part.

    ``GridSearchCV``'s protocol of ``multitarget.py``: the folds of ``rep`` (or of
    ``fold_seed``), and the preprocessing and the target scaling fitted inside each fold.
    """
    torch.set_num_threads(1)
    X, Y, nominal = data
    train, _ = split(name, X, Y, rep)
    estimator = TransformedTargetRegressor(
        Pipeline([("pre", preprocessing(X.shape[1], nominal)), ("model", model)]),
        transformer=StandardScaler())
    start = time.perf_counter()
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        folds = cross_val_score(estimator, X[train], Y[train],
                                cv=KFold(CV_FOLDS, shuffle=True, random_state=rep
                                         if fold_seed is None else fold_seed))
    return {"set": name, "method": method, "rep": rep, "cv_r2": float(np.mean(folds)),
            "fold_r2": json.dumps([round(float(v), 5) for v in folds]),
            "seconds": time.perf_counter() - start}


def chosen_factors(cv):
    """Per (set, rep), the factor with the best mean fold R² (the first of ties)."""
    order = {label(f): i for i, f in enumerate(FACTORS)}
    cv = cv.assign(order=cv["method"].map(order)).sort_values(["set", "rep", "order"])
    best = cv.loc[cv.groupby(["set", "rep"])["cv_r2"].idxmax()]
    return best.set_index(["set", "rep"])["method"]


def report(cv, sets, repetitions):
    tests = pd.read_csv(STUDY_RESULTS / "loo_factor.csv")
    tests = tests[tests["rep"] < repetitions].set_index(["set", "rep", "criterion"])
    choice = chosen_factors(cv)
    rows = []
    for (s, rep), method in choice.items():
        rows.append({"set": s, "rep": rep, "chosen": method,
                     "r2": tests.loc[(s, rep, method), "r2"],
                     "r2_loo": tests.loc[(s, rep, label(1.0)), "r2"]})
    picked = pd.DataFrame(rows)
    best = best_cv_neural(sets, repetitions)
    means = tests["r2"].unstack("criterion").groupby("set").mean()
    table = pd.DataFrame({
        "factor chosen by CV (count)": picked.groupby("set")["chosen"].agg(
            lambda c: ", ".join(f"{k.removeprefix('loo x ')} ({n})"
                                for k, n in c.value_counts().sort_index().items())),
        "loo, factor by CV": picked.groupby("set")["r2"].mean(),
        "loo (x 1)": picked.groupby("set")["r2_loo"].mean(),
        "best factor (oracle)": means[[label(f) for f in FACTORS]].max(axis=1),
        "best CV neural (60 ep.)": best["best CV neural"]}).reindex(sets)
    below = [s for s in sets if table.loc[s, "loo, factor by CV"]
             < table.loc[s, "best CV neural (60 ep.)"] - 0.01]
    numeric = table.drop(columns="factor chosen by CV (count)")
    table.loc["mean over sets"] = ["", *numeric.mean()]
    cv_means = cv.pivot_table(index="set", columns="method", values="cv_r2").reindex(
        index=sets, columns=[label(f) for f in FACTORS])
    lines = [f'`reg_lambda="loo"`, all layers, {EPOCHS} epochs, {repetitions} repetitions. '
             f"Per split the factor on the strengths (of {', '.join(map(str, FACTORS))}) "
             f"with the best mean R² over {CV_FOLDS}-fold cross-validation on the training "
             "part; the test R² of the fit with that factor on the whole training part "
             "(from `results/loo_factor.csv`), beside \"loo\" as shipped, the best factor "
             "per set chosen on the test part (an oracle) and the best cross-validated "
             "neural variant of `results/multitarget.csv`.", "",
             table.to_markdown(floatfmt=".3f"), "",
             f"With the factor chosen by cross-validation: mean R² "
             f"{table.loc['mean over sets', 'loo, factor by CV']:.3f}; more than 0.01 below "
             f"the best cross-validated neural variant on {len(below)} sets"
             + (f": {', '.join(below)}." if below else "."), "",
             "Mean cross-validated R² of each factor (training part only):", "",
             cv_means.to_markdown(floatfmt=".3f")]
    return "\n".join(lines)


def main():
    args = study_arguments(__doc__.splitlines()[0])
    sets, data = benchmark_sets(args.sets)
    path = STUDY_RESULTS / "loo_factor_cv.csv"
    rows, finished = completed(path)
    calls = [delayed(run_one)(s, rep, f, data[s])
             for rep in range(args.repetitions) for s in sets for f in FACTORS
             if (s, label(f), rep) not in finished]
    print(f"{len(calls)} cross-validations to run, {len(finished)} already in {path.name}",
          flush=True)
    cv = run_and_save(calls, rows, path, args.n_jobs, lambda row: (
        f"{row['set']:>10} {row['method']:>10} rep={row['rep']}  CV R2={row['cv_r2']:+.3f}  "
        f"{row['seconds']:.0f}s"))
    cv = cv[cv["set"].isin(sets) & (cv["rep"] < args.repetitions)]
    body = report(cv, sets, args.repetitions)
    print(body)
    write_report("loo_factor_cv", body)


if __name__ == "__main__":
    main()
