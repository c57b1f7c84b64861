"""Small-data classification on scikit-learn's digits: AdaReg against the baselines.

A fixed stratified 797 of the 1,797 digits are the test part; training sets
of 50, 100, 200, 500 and all 1,000 remaining digits are drawn from the rest, 5
repetitions each (the paper's Fig. 2 protocol, on data that ships with
scikit-learn). Network 64-100-10, pixels scaled to [0, 1].

Run from the repository root::

    python benchmarks/digits.py                       # the comparison
    python benchmarks/digits.py --protocol authors    # the authors' published settings

Prints tables and writes ``benchmarks/results/digits*.{csv,md,png}``.
"""

import numpy as np
from _protocol import AUTHORS_METHODS, AUTHORS_PROTOCOL, LEGACY, METHODS, arguments, report, run
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from sk_adareg import AdaRegClassifier

SIZES = (50, 100, 200, 500, 1000)


def splits(sizes, repetitions):
    X, y = load_digits(return_X_y=True)
    X_pool, X_test, y_pool, y_test = train_test_split(
        X / 16.0, y, test_size=797, stratify=y, random_state=0)
    for n in sizes:
        for seed in range(repetitions):
            train = np.random.default_rng(seed).permutation(len(X_pool))[:n]
            yield n, seed, X_pool[train], y_pool[train], X_test, y_test


def main():
    args = arguments(__doc__, SIZES, protocol=True)
    base = AdaRegClassifier(hidden_layer_sizes=(100,), **LEGACY)
    methods, name = METHODS, "digits"
    if args.protocol == "authors":
        base.set_params(**AUTHORS_PROTOCOL)
        methods, name = AUTHORS_METHODS, "digits_authors"
    results = run(name, base, methods, list(splits(args.sizes, args.repetitions)),
                  args.n_jobs)
    results = results[results.n_train.isin(args.sizes)]
    report(name, results, list(methods), "Test accuracy, the paper's Fig. 2",
           "10 x 100, the paper's Fig. 4", "test accuracy")


if __name__ == "__main__":
    main()
