"""SARCOS multitask regression: AdaReg against the paper's baselines, by training size.

The pool is the official 4,449-row SARCOS test file (the 44,484-row training
file needs a download): a fixed random 2,000 rows are the test part, and
training sets of 50, 100, 300, 1,000 and all 2,449 remaining rows are drawn
from the rest, 5 repetitions each. Network FC21-256-100-7 (Appendix B.1), inputs
standardized on the training part, targets standardized by the estimator.

Run from the repository root::

    python benchmarks/sarcos.py                  # the comparison (about an hour, 2 cores)
    python benchmarks/sarcos.py --protocol authors   # the authors' published settings

Prints tables and writes ``benchmarks/results/sarcos*.{csv,md,png}``.
"""

from pathlib import Path

import numpy as np
from _protocol import (
    AUTHORS_METHODS,
    AUTHORS_PROTOCOL,
    LEGACY,
    METHODS,
    arguments,
    per_task_table,
    report,
    run,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from sk_adareg import AdaRegMultiTaskRegressor
from sk_adareg.datasets import fetch_sarcos, load_sarcos

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "sarcos_inv_test.mat"
SIZES = (50, 100, 300, 1000, 2449)
N_TEST = 2000


def load(path):
    if path.exists():
        return load_sarcos(path, return_X_y=True)
    print(f"{path} not found: downloading the official test file")
    return fetch_sarcos(subset="test", return_X_y=True)


def splits(X, Y, sizes, repetitions):
    order = np.random.default_rng(0).permutation(len(X))
    test, pool = order[:N_TEST], order[N_TEST:]
    for n in sizes:
        for seed in range(repetitions):
            train = np.random.default_rng(seed).permutation(pool)[:n]
            yield n, seed, X[train], Y[train], X[test], Y[test]


def main():
    args = arguments(__doc__, SIZES, protocol=True, **{"--data": {"type": Path,
                                                               "default": SHARED}})
    X, Y = load(args.data)
    net = AdaRegMultiTaskRegressor(hidden_layer_sizes=(256, 100), **LEGACY)
    methods, name = METHODS, "sarcos"
    if args.protocol == "authors":
        net.set_params(**AUTHORS_PROTOCOL)
        methods, name = AUTHORS_METHODS, "sarcos_authors"
    base = Pipeline([("scale", StandardScaler()), ("net", net)])
    results = run(name, base, methods, list(splits(X, Y, args.sizes, args.repetitions)),
                  args.n_jobs)
    results = results[results.n_train.isin(args.sizes)]
    order = list(methods)
    per_task = []
    for n in (min(args.sizes), max(args.sizes)):
        per_task += [f"Explained variance per task at n={n} (the paper's Table 1 layout):",
                     per_task_table(results, n, order, 7)]
    report(name, results, order, "Mean explained variance over the 7 tasks",
           "7 x 100, the paper's Table 2", "explained variance (test)", per_task)


if __name__ == "__main__":
    main()
