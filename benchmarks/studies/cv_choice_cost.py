"""How cheap can the default's cross-validation be and still choose as well?

``reg_lambda="auto"`` (the regressor's default) scores ``"evidence"`` and ``"loo"`` by
K-fold cross-validation on the training part, each fold's fit trained for a fraction
of ``max_epochs``, then trains the winner on all of it. This study reruns only that
choice, with fewer folds and shorter fold fits, on the sets and splits of
``uncertainty.py``, and reads the test R² of what each variant chooses from
``results/uncertainty.csv`` (the default's final fit is the chosen method's own fit:
the same seed). Its cost is the time of the cross-validation plus the chosen fit's,
over the fit at a fixed strength on the same split (``uncertainty.csv``).

Run from the repository root (after ``python benchmarks/uncertainty.py``)::

    python benchmarks/studies/cv_choice_cost.py

Writes ``benchmarks/studies/results/cv_choice_cost.{md,csv}``.
"""

import argparse
import time
import warnings

import _parent  # noqa: F401  (benchmarks/ on sys.path, results here)
import numpy as np
import pandas as pd
import torch
from _common import RESULTS, write_study
from joblib import Parallel, delayed
from multitarget import benchmark_sets, prepared
from sklearn.model_selection import KFold
from sklearn.utils import check_random_state
from threadpoolctl import threadpool_limits

from sk_adareg import AdaRegMultiTaskRegressor

# (folds, fraction of max_epochs per fold's fit); (3, 0.15) is the shipped default.
VARIANTS = [(3, 0.3), (3, 0.15), (2, 0.3), (2, 0.15), (2, 0.1)]
CHOSEN = {"evidence": "AdaReg evidence, all layers", "loo": "AdaReg loo, all layers"}
FIXED = "AdaReg, fixed 3e-3, all layers"


def run_one(name, rep, data, variant):
    from sk_adareg._strength import _choice  # patched here: each worker imports its own

    torch.set_num_threads(1)
    folds, fraction = variant
    train, _, A_train, _, target = prepared(name, data, rep)
    y = target.transform(data[1][train])
    est = AdaRegMultiTaskRegressor(random_state=rep)
    seed = check_random_state(rep).randint(np.iinfo(np.int32).max)
    est.set_params(cv=KFold(folds, shuffle=True, random_state=seed))
    saved, _choice.FOLD_EPOCHS = _choice.FOLD_EPOCHS, fraction
    start = time.perf_counter()
    try:
        with threadpool_limits(1), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            method, scores = est._strength_method(A_train.astype(np.float32), y, None, None,
                                                  seed)
    finally:
        _choice.FOLD_EPOCHS = saved
    return {"set": name, "rep": rep, "folds": folds, "fraction": fraction, "chosen": method,
            "cv_seconds": time.perf_counter() - start,
            **{f"score_{k}": float(v.mean()) for k, v in scores.items()}}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--n-jobs", type=int, default=2)
    args = parser.parse_args()
    sets, data = benchmark_sets()
    rows = Parallel(n_jobs=args.n_jobs)(
        delayed(run_one)(name, rep, data[name], variant) for variant in VARIANTS
        for name in sets for rep in range(args.repetitions))
    results = pd.DataFrame(rows)
    fits = pd.read_csv(RESULTS / "uncertainty.csv").set_index(["set", "method", "rep"])
    results["r2"] = [fits.loc[(s, CHOSEN[c], r), "r2"] for s, c, r in
                     zip(results["set"], results["chosen"], results["rep"], strict=True)]
    chosen_fit = [fits.loc[(s, CHOSEN[c], r), "fit_seconds"] for s, c, r in
                  zip(results["set"], results["chosen"], results["rep"], strict=True)]
    fixed = [fits.loc[(s, FIXED, r), "fit_seconds"] for s, r in
             zip(results["set"], results["rep"], strict=True)]
    results["cost_ratio"] = (results["cv_seconds"] + np.array(chosen_fit)) / np.array(fixed)
    per_set = results.pivot_table(index="set", columns=["folds", "fraction"], values="r2")
    summary = results.groupby(["folds", "fraction"]).agg(
        mean_r2=("r2", "mean"), loo_chosen=("chosen", lambda c: int((c == "loo").sum())),
        median_cost=("cost_ratio", "median"), max_cost=("cost_ratio", "max"))
    summary["mean_r2"] = results.groupby(["folds", "fraction", "set"])["r2"].mean().groupby(
        ["folds", "fraction"]).mean()
    lines = ["Per variant (folds, fraction of max_epochs per fold's fit): mean test R² over "
             "the sets of what it chooses, how often it chose loo (of 60 splits), and the "
             "paired cost of the default (its cross-validation plus the chosen fit) over a "
             "fit at a fixed strength.", "", summary.to_markdown(floatfmt=".3f"), "",
             "Mean test R² per set:", "", per_set.to_markdown(floatfmt=".3f")]
    write_study("cv_choice_cost", "\n".join(lines), results)


if __name__ == "__main__":
    main()
