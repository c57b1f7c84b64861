"""Averaging ``reg_lambda="loo"`` fits over seeds: how much of the gap to cross-validation
is the variance of one network (a diagnostic for issue 11)

``reg_lambda="loo"`` on all layers, trained the shipped 200 epochs, reaches the Gaussian
process's mean R² on the twelve sets of ``multitarget.py`` but stays more than 0.01 below
the best cross-validated neural variant on seven of them, by 0.02-0.06
(``benchmarks/results/multitarget.md``). On a few hundred rows one network's test error has a
large part that depends on its seed alone (initialization and batch order). This study
fits, on each split of ``multitarget.py``, five "loo" networks that differ only in
``random_state`` (the first is the study's and the benchmark's own, ``random_state=rep``)
and scores the first alone and the mean of the predictions of the first three and of all
five. Nothing is tuned and nothing is chosen on the test part; no setting of the library
comes from this table. The members cost five fits: the table says what that buys, not
that it is worth it.

Run from the repository root::

    python benchmarks/studies/loo_ensemble.py                  # every set, 5 repetitions
    python benchmarks/studies/loo_ensemble.py --repetitions 1 --sets atp1d scpf

Writes ``benchmarks/studies/results/loo_ensemble.md`` and ``loo_ensemble.csv``.
"""

import time
import warnings

import _parent  # noqa: F401  (benchmarks/ on sys.path, results here)
import numpy as np
import pandas as pd
import torch
from _common import write_study
from _strength_study import comparison, comparison_lines
from joblib import Parallel, delayed
from multitarget import benchmark_sets, prepared, scores, study_arguments
from threadpoolctl import threadpool_limits

from sk_adareg import AdaRegMultiTaskRegressor

EPOCHS = 200
MEMBERS = 5
# Members 1, 2, ...: seeds that no repetition's own seed (0-4) takes.
SEED_STRIDE = 1000
VARIANTS = [("loo", EPOCHS), ("loo, mean of 3 seeds", EPOCHS),
            ("loo, mean of 5 seeds", EPOCHS)]


def member_predictions(split, Y_train, seed):
    """One "loo" network's test predictions (target units), raw and on clipped inputs."""
    _, _, A_train, A_test, target = split
    model = AdaRegMultiTaskRegressor(reg_lambda="loo", adareg_layers="all",
                                     max_epochs=EPOCHS, random_state=seed)
    model.fit(A_train, target.transform(Y_train))
    clipped = np.clip(A_test, A_train.min(axis=0), A_train.max(axis=0))
    return (target.inverse_transform(model.predict(A_test)),
            target.inverse_transform(model.predict(clipped)))


def run_split(name, rep, data):
    """The rows of the three variants on repetition ``rep`` of set ``name``."""
    torch.set_num_threads(1)
    Y = data[1]
    split = prepared(name, data, rep)
    train, test = split[:2]
    start, preds = time.perf_counter(), []
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k in range(MEMBERS):
            preds.append(member_predictions(split, Y[train], rep + SEED_STRIDE * k))
    seconds = time.perf_counter() - start
    rows = []
    for (criterion, epochs), count in zip(VARIANTS, (1, 3, MEMBERS), strict=True):
        mean = np.mean([p for p, _ in preds[:count]], axis=0)
        mean_clipped = np.mean([c for _, c in preds[:count]], axis=0)
        rows.append({"set": name, "rep": rep, "criterion": criterion, "epochs": epochs,
                     "r2": float(np.nanmean(scores(Y[test], mean, Y[train])[0])),
                     "r2_clipped": float(np.nanmean(
                         scores(Y[test], mean_clipped, Y[train])[0])),
                     "members": count, "seconds_all_members": seconds})
    return rows


def main():
    args = study_arguments(__doc__.splitlines()[0])
    sets, data = benchmark_sets(args.sets)
    rows = Parallel(n_jobs=args.n_jobs)(
        delayed(run_split)(s, rep, data[s]) for s in sets for rep in range(args.repetitions))
    results = pd.DataFrame([row for split_rows in rows for row in split_rows])
    table, clipped, below = comparison(results, sets, args.repetitions, VARIANTS)
    lines = [f'`reg_lambda="loo"`, all layers, {EPOCHS} epochs, {args.repetitions} '
             "repetitions: one network (`random_state=rep`, as in `multitarget.py`), and "
             f"the mean of the predictions of the first 3 and of all {MEMBERS} networks "
             f"(seeds rep, rep + {SEED_STRIDE}, rep + {2 * SEED_STRIDE}, ...). Mean test R² "
             "over the repetitions; the last two columns from `results/multitarget.csv` "
             "(60 epochs, same splits).", "",
             *comparison_lines(table, clipped, below)]
    write_study("loo_ensemble", "\n".join(lines), results)


if __name__ == "__main__":
    main()
