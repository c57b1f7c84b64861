"""Would cross-validation on the training part tell which of "auto" and "loo" to use? (a
diagnostic for issue 11)

At the shipped 200 epochs, ``reg_lambda="auto"`` on all layers is within 0.015 of the
best cross-validated neural variant on every set whose targets have light tails and fails
on the heavy-tailed ones, and ``reg_lambda="loo"`` the other way round
(``results/uncertainty.md``). This study asks whether refitting on the training part tells
the two regimes apart: for each split of ``multitarget.py`` it scores "auto" by 3-fold
cross-validation on the training part, with the protocol of ``loo_factor_cv.py`` (that of
``GridSearchCV`` in ``multitarget.py``), against the cross-validated R² of "loo" there
(``results/loo_factor_cv.csv``, factor 1), and takes the better one. Its test R² and
coverage are those of the same fit on the whole training part in
``results/uncertainty.csv`` (same split, seed and settings).

The choice is made on the training part only; the test part is read once, for the chosen
method.

Run from the repository root, after ``python benchmarks/loo_factor_cv.py``::

    python benchmarks/auto_or_loo_cv.py                  # every set, 5 repetitions
    python benchmarks/auto_or_loo_cv.py --repetitions 1 --sets edm scpf

Writes ``benchmarks/results/auto_or_loo_cv.md`` and ``auto_or_loo_cv.csv`` (one row per
set and repetition: the mean and the folds' R² of "auto"; resumed where it stopped).
"""

import pandas as pd
from _common import RESULTS, completed, run_and_save, write_report
from joblib import delayed
from loo_factor import EPOCHS, label
from loo_factor_cv import cross_validated
from multitarget import benchmark_sets, study_arguments
from uncertainty import best_cv_neural

from sk_adareg import AdaRegMultiTaskRegressor

AUTO, LOO, GP = "AdaReg auto, all layers", "AdaReg loo, all layers", "GaussianProcess"


def run_one(name, rep, data):
    """The 3-fold cross-validated R² of "auto" on all layers on a split's training part."""
    model = AdaRegMultiTaskRegressor(reg_lambda="auto", adareg_layers="all",
                                     max_epochs=EPOCHS, random_state=rep)
    return cross_validated(name, rep, data, model, AUTO)


def choices(cv_auto, sets, repetitions):
    """Per split: both methods' CV and test R², the chosen one's test R² and coverage."""
    cv_loo = pd.read_csv(RESULTS / "loo_factor_cv.csv")
    cv_loo = cv_loo[cv_loo["method"] == label(1.0)].set_index(["set", "rep"])["cv_r2"]
    tests = pd.read_csv(RESULTS / "uncertainty.csv").set_index(["set", "rep", "method"])
    rows = []
    for row in cv_auto.itertuples():
        if row.set not in sets or row.rep >= repetitions:
            continue
        loo_cv = cv_loo.loc[(row.set, row.rep)]
        pick = AUTO if row.cv_r2 > loo_cv else LOO
        rows.append({"set": row.set, "rep": row.rep, "cv_auto": row.cv_r2, "cv_loo": loo_cv,
                     "chosen": "auto" if pick == AUTO else "loo",
                     "r2_auto": tests.loc[(row.set, row.rep, AUTO), "r2"],
                     "r2_loo": tests.loc[(row.set, row.rep, LOO), "r2"],
                     "r2": tests.loc[(row.set, row.rep, pick), "r2"],
                     "coverage90": tests.loc[(row.set, row.rep, pick), "coverage90"],
                     "r2_gp": tests.loc[(row.set, row.rep, GP), "r2"]})
    return pd.DataFrame(rows)


def report(picked, sets, repetitions):
    best = best_cv_neural(sets, repetitions)
    by_set = picked.groupby("set")
    table = pd.DataFrame({
        "auto chosen": by_set["chosen"].agg(lambda c: f"{(c == 'auto').sum()} of {len(c)}"),
        "CV R², auto": by_set["cv_auto"].mean(),
        "CV R², loo": by_set["cv_loo"].mean(),
        "test R², auto": by_set["r2_auto"].mean(),
        "test R², loo": by_set["r2_loo"].mean(),
        "test R², chosen by CV": by_set["r2"].mean(),
        "best of the two (oracle)": by_set[["r2_auto", "r2_loo"]].mean().max(axis=1),
        "coverage, chosen": by_set["coverage90"].mean(),
        "Gaussian process": by_set["r2_gp"].mean(),
        "best CV neural (60 ep.)": best["best CV neural"]}).reindex(sets)
    below = [s for s in sets if table.loc[s, "test R², chosen by CV"]
             < table.loc[s, "best CV neural (60 ep.)"] - 0.01]
    mean = table.drop(columns="auto chosen").mean()
    table.loc["mean over sets"] = ["", *mean]
    lines = [f'`reg_lambda="auto"` and `reg_lambda="loo"`, all layers, {EPOCHS} epochs, '
             f"{repetitions} repetitions. Per split the one with the better mean R² over "
             "3-fold cross-validation on the training part (\"loo\"'s from "
             "`results/loo_factor_cv.csv`); test R² and 90 % coverage of the fits on the "
             "whole training part, and the Gaussian process's test R², from "
             "`results/uncertainty.csv`; the best "
             "cross-validated neural variant from `results/multitarget.csv`. Means over "
             "the repetitions.", "",
             table.to_markdown(floatfmt=".3f"), "",
             f"Chosen by cross-validation: mean R² {mean['test R², chosen by CV']:.3f} "
             f"(\"auto\" {mean['test R², auto']:.3f}, \"loo\" {mean['test R², loo']:.3f}, "
             "the better of the two per set on the test part "
             f"{mean['best of the two (oracle)']:.3f}), "
             f"90 % coverage {mean['coverage, chosen']:.3f} (the Gaussian process's R² "
             f"{mean['Gaussian process']:.3f}); more than 0.01 below the best "
             f"cross-validated neural variant on {len(below)} sets"
             + (f": {', '.join(below)}." if below else ".")]
    return "\n".join(lines)


def main():
    args = study_arguments(__doc__.splitlines()[0])
    sets, data = benchmark_sets(args.sets)
    path = RESULTS / "auto_or_loo_cv.csv"
    rows, finished = completed(path)
    calls = [delayed(run_one)(s, rep, data[s]) for rep in range(args.repetitions)
             for s in sets if (s, AUTO, rep) not in finished]
    print(f"{len(calls)} cross-validations to run, {len(finished)} already in {path.name}",
          flush=True)
    cv = run_and_save(calls, rows, path, args.n_jobs, lambda row: (
        f"{row['set']:>10} rep={row['rep']}  CV R2={row['cv_r2']:+.3f}  {row['seconds']:.0f}s"))
    body = report(choices(cv, sets, args.repetitions), sets, args.repetitions)
    print(body)
    write_report("auto_or_loo_cv", body)


if __name__ == "__main__":
    main()
