"""Would cross-validation on the training part tell which of "auto" and "loo" to use? (a
diagnostic for issue 11)

At the shipped 200 epochs, ``reg_lambda="auto"`` on all layers is within 0.015 of the best
cross-validated neural variant on every set whose targets have light tails and fails on the
heavy-tailed ones, and ``reg_lambda="loo"`` the other way round
(``benchmarks/results/uncertainty.md``); at 60 epochs "auto" is closer still on the
light-tailed sets (``benchmarks/results/multitarget.md``). This study asks whether
refitting on the training part tells the regimes apart: for each split of
``multitarget.py`` it scores each candidate, "auto" and "loo" on all layers at 200 and at
60 epochs, by 3-fold cross-validation on the training part with the protocol of
``loo_factor_cv.py`` (that of ``GridSearchCV`` in ``multitarget.py``), and takes the best,
among "auto" and "loo" at 200 epochs and among all four. The test R² and coverage of a
candidate are those of its fit on the whole training part, as ``uncertainty.py`` fits and
scores it (same split, seed and settings). Two more choices take the regime by shorter
folds (60 epochs) and train it 200 epochs, and repeat the first choice with the folds' seed
shifted (by 100 and by 200), to see how much of it is the folds' luck.

Rows made elsewhere are read, not refitted: the folds of "loo" at 200 epochs from
``benchmarks/studies/results/loo_factor_cv.csv`` (factor 1) and the 200-epoch test fits from
``benchmarks/results/uncertainty.csv``. The choice is made on the training part only; the test part
is read once per candidate.

Run from the repository root, after ``python benchmarks/studies/loo_factor_cv.py`` and
``python benchmarks/uncertainty.py``::

    python benchmarks/studies/auto_or_loo_cv.py                  # every set, 5 repetitions
    python benchmarks/studies/auto_or_loo_cv.py --repetitions 1 --sets edm scpf

Writes ``benchmarks/studies/results/auto_or_loo_cv.md``, ``auto_or_loo_cv.csv`` (one row per
set, repetition and candidate cross-validated here: the mean and the folds' R²) and
``auto_or_loo_cv_tests.csv`` (the 60-epoch test fits, as ``uncertainty.csv``'s rows);
both resume where they stopped.
"""

import _parent  # noqa: F401  (benchmarks/ on sys.path, results here)
import pandas as pd
from _common import RESULTS, STUDY_RESULTS, completed, run_and_save, write_report
from joblib import delayed
from loo_factor import FACTORS, label
from loo_factor_cv import cross_validated
from multitarget import benchmark_sets, study_arguments
from uncertainty import METHODS, best_cv_neural
from uncertainty import run_one as test_fit

from sk_adareg import AdaRegMultiTaskRegressor

AUTO, LOO, GP = "AdaReg auto, all layers", "AdaReg loo, all layers", "GaussianProcess"
# The 200-epoch candidates are also scored by other folds: is the choice the folds' luck?
FOLD_SHIFTS = (100, 200)
# Candidate: (uncertainty.py's method, epochs, the folds' seed minus rep).
CANDIDATES = {"auto, 200 epochs": (AUTO, 200, 0), "loo, 200 epochs": (LOO, 200, 0),
              "auto, 60 epochs": (AUTO, 60, 0), "loo, 60 epochs": (LOO, 60, 0),
              **{f"{regime}, 200 epochs, folds +{shift}": (method, 200, shift)
                 for shift in FOLD_SHIFTS for regime, method in (("auto", AUTO), ("loo", LOO))}}
# Cross-validated elsewhere (loo_factor_cv.py); fitted and tested here (the others that
# are fitted come from uncertainty.py).
CV_ELSEWHERE, TESTED_HERE = ["loo, 200 epochs"], ["auto, 60 epochs", "loo, 60 epochs"]
TESTED_ELSEWHERE = ["auto, 200 epochs", "loo, 200 epochs"]
# Choice: candidates as (scored by the folds of, fitted and tested as).
FOUR = (*TESTED_ELSEWHERE, *TESTED_HERE)


def scaled_loo(factor):
    """The name of "loo" at 200 epochs with ``loo_factor.py``'s factor on its strengths."""
    return "loo, 200 epochs" if factor == 1.0 else f"{label(factor)}, 200 epochs"


CHOICES = {
    "auto or loo, 200 epochs": [(c, c) for c in ("auto, 200 epochs", "loo, 200 epochs")],
    "auto or loo, 60 or 200 epochs": [(c, c) for c in FOUR],
    # The regime chosen by shorter folds (0.3 times their cost), then trained as shipped.
    "auto or loo by folds of 60 epochs, trained 200 epochs": [
        ("auto, 60 epochs", "auto, 200 epochs"), ("loo, 60 epochs", "loo, 200 epochs")],
    **{f"auto or loo, 200 epochs, folds +{shift}": [
        (f"{regime}, 200 epochs, folds +{shift}", f"{regime}, 200 epochs")
        for regime in ("auto", "loo")] for shift in FOLD_SHIFTS},
    # More candidates: "loo" with the other factors of loo_factor.py (folds and test fits
    # read from loo_factor_cv.csv and loo_factor.csv, which record no coverage or NLL).
    "the four, and loo x 3 at 200 epochs": [(c, c) for c in (*FOUR, scaled_loo(3.0))],
    "the four, and loo x 0.1, 0.3 and 3 at 200 epochs": [
        (c, c) for c in (*FOUR, *(scaled_loo(f) for f in FACTORS if f != 1.0))],
}


def run_cv(name, rep, candidate, data):
    """The 3-fold cross-validated R² of a candidate on a split's training part."""
    method, epochs, shift = CANDIDATES[candidate]
    model = AdaRegMultiTaskRegressor(max_epochs=epochs, random_state=rep, **METHODS[method])
    return cross_validated(name, rep, data, model, candidate, fold_seed=rep + shift)


def run_test(name, rep, candidate, data):
    """A candidate's fit on the whole training part, scored on the test part."""
    method, epochs, _ = CANDIDATES[candidate]
    return {**test_fit(name, method, rep, data, {"max_epochs": epochs}), "method": candidate}


def candidate_rows(cv, tests, sets, repetitions):
    """Per (set, rep, candidate): the CV R²; and, of the fitted ones, the test R², coverage
    and NLL."""
    names = {label(f): scaled_loo(f) for f in FACTORS}
    loo_cv = pd.read_csv(STUDY_RESULTS / "loo_factor_cv.csv").assign(
        method=lambda t: t["method"].map(names))
    scaled = pd.read_csv(STUDY_RESULTS / "loo_factor.csv").rename(columns={"criterion": "method"})
    scaled = scaled[scaled["method"] != label(1.0)].assign(
        method=lambda t: t["method"].map(names))
    shipped = pd.read_csv(RESULTS / "uncertainty.csv")
    names = {CANDIDATES[c][0]: c for c in TESTED_ELSEWHERE}
    shipped = shipped[shipped["method"].isin(names)].assign(
        method=lambda t: t["method"].map(names))
    key = ["set", "rep", "method"]
    cv = pd.concat([cv, loo_cv])[[*key, "cv_r2"]]
    tests = pd.concat([tests, shipped, scaled])[[*key, "r2", "coverage90", "nll"]]
    return tuple(t[t["set"].isin(sets) & (t["rep"] < repetitions)] for t in (cv, tests))


def choice_table(cv, tests, among, sets, best, gp):
    """Per set, the candidates' test R² and that of the one with the best CV R² per split.

    ``among`` pairs the candidate whose folds score a choice with the one fitted for it.
    """
    key = ["set", "rep"]
    rows = pd.concat([
        cv[cv["method"] == scored][[*key, "cv_r2"]].merge(
            tests[tests["method"] == fitted], on=key, validate="one_to_one")
        for scored, fitted in among], ignore_index=True)
    among = [fitted for _, fitted in among]
    picked = rows.loc[rows.groupby(["set", "rep"])["cv_r2"].idxmax()]
    means = rows.pivot_table(index="set", columns="method", values="r2")[among]
    table = means.rename(columns=lambda c: f"test R², {c}")
    table["chosen (count)"] = picked.groupby("set")["method"].agg(
        lambda c: ", ".join(f"{k} ({n})" for k, n in c.value_counts().items()))
    table["test R², chosen by CV"] = picked.groupby("set")["r2"].mean()
    table["best candidate (oracle)"] = means.max(axis=1)
    # Not recorded for some candidates: NaN where one of them was chosen, not a partial mean.
    whole = picked.groupby("set")
    table["coverage, chosen"] = whole["coverage90"].agg(lambda v: v.mean(skipna=False))
    table["NLL, chosen"] = whole["nll"].agg(lambda v: v.mean(skipna=False))
    table["Gaussian process"] = gp
    table["best CV neural (60 ep.)"] = best["best CV neural"]
    table = table.reindex(sets)
    below = [s for s in sets if table.loc[s, "test R², chosen by CV"]
             < table.loc[s, "best CV neural (60 ep.)"] - 0.01]
    mean = table.drop(columns="chosen (count)").mean(skipna=False)
    table.loc["mean over sets"] = [mean.get(c, "") for c in table.columns]
    return table, mean, below


def report(cv, tests, sets, repetitions):
    best = best_cv_neural(sets, repetitions)
    gp_rows = pd.read_csv(RESULTS / "uncertainty.csv").query(
        "method == @GP and rep < @repetitions and set in @sets").groupby("set")
    gp, gp_nll = gp_rows["r2"].mean(), gp_rows["nll"].mean().mean()
    lines = ['`reg_lambda="auto"` and `reg_lambda="loo"`, all layers, at 200 and 60 epochs, '
             f"{repetitions} repetitions. Per split the candidate with the best mean R² over "
             "3-fold cross-validation on the training part; test R², 90 % coverage and "
             "Gaussian negative log-likelihood (standardized targets, as in "
             "`uncertainty.py`) of the candidates' fits on the whole training part (those "
             "at 200 epochs from `results/uncertainty.csv`), the Gaussian process's test R² "
             "and NLL from the same CSV "
             "and the best cross-validated neural variant from `results/multitarget.csv`. "
             "Means over the repetitions.", ""]
    for title, among in CHOICES.items():
        table, mean, below = choice_table(cv, tests, among, sets, best, gp)
        uncertainty = ("coverage and NLL not recorded for all candidates"
                       if pd.isna(mean["coverage, chosen"]) else
                       f"90 % coverage {mean['coverage, chosen']:.3f}, NLL "
                       f"{mean['NLL, chosen']:.3f}")
        lines += [f"## {title}", "", table.to_markdown(floatfmt=".3f"), "",
                  f"Chosen by cross-validation: mean R² {mean['test R², chosen by CV']:.3f} "
                  "(the best candidate per set on the test part "
                  f"{mean['best candidate (oracle)']:.3f}), {uncertainty} (the "
                  f"Gaussian process's R² {mean['Gaussian process']:.3f}, NLL "
                  f"{gp_nll:.3f}); more than 0.01 below the best "
                  f"cross-validated neural variant on {len(below)} sets"
                  + (f": {', '.join(below)}." if below else "."), ""]
    cv_means = cv.pivot_table(index="set", columns="method", values="cv_r2").reindex(
        index=sets, columns=[*CANDIDATES, *(scaled_loo(f) for f in FACTORS if f != 1.0)])
    lines += ["Mean cross-validated R² of each candidate (training part only):", "",
              cv_means.to_markdown(floatfmt=".3f")]
    return "\n".join(lines)


def resume(path, run, candidates, sets, data, repetitions, n_jobs, what):
    rows, finished = completed(path)
    calls = [delayed(run)(s, rep, c, data[s]) for rep in range(repetitions) for s in sets
             for c in candidates if (s, c, rep) not in finished]
    print(f"{len(calls)} {what} to run, {len(finished)} already in {path.name}", flush=True)
    return run_and_save(calls, rows, path, n_jobs, lambda row: (
        f"{row['set']:>10} {row['method']:>17} rep={row['rep']}  "
        + (f"CV R2={row['cv_r2']:+.3f}" if "cv_r2" in row else f"R2={row['r2']:+.3f}")))


def main():
    args = study_arguments(__doc__.splitlines()[0])
    sets, data = benchmark_sets(args.sets)
    cv = resume(STUDY_RESULTS / "auto_or_loo_cv.csv", run_cv,
                [c for c in CANDIDATES if c not in CV_ELSEWHERE], sets, data,
                args.repetitions, args.n_jobs, "cross-validations")
    tests = resume(STUDY_RESULTS / "auto_or_loo_cv_tests.csv", run_test, TESTED_HERE, sets, data,
                   args.repetitions, args.n_jobs, "test fits")
    body = report(*candidate_rows(cv, tests, sets, args.repetitions), sets, args.repetitions)
    print(body)
    write_report("auto_or_loo_cv", body)


if __name__ == "__main__":
    main()
