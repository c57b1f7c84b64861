"""Many related tasks, few samples: the regime empirical Bayes is made for.

Synthetic multitask regression: 40 tasks on 20 inputs, all built from the
same 5 nonlinear features of the input, with task coefficients drawn around 4
group centres (tasks of a group are alike) plus noise. With few samples per
task, a prior that learns how the tasks relate should help most here. Network
20-64-40, training sizes 30, 100 and 300, a fixed test set of 2,000, 5
repetitions, hyperparameters by 3-fold cross-validation on the training part.

Run from the repository root::

    python benchmarks/many_tasks.py

Prints tables and writes ``benchmarks/results/many_tasks.{csv,md,png}``.
"""

import numpy as np
from _protocol import LEGACY, METHODS, arguments, report, run

from sk_adareg import AdaRegMultiTaskRegressor

SIZES = (30, 100, 300)
N_TASKS, N_FEATURES, N_LATENT, N_GROUPS, N_TEST = 40, 20, 5, 4, 2000
SHOWN = ["none", "weight decay", "AdaReg", "AdaReg, 3e-3 last layer", "last-layer L2",
         "AdaReg, paper's prior"]


def make_problem(seed=0):
    """Inputs -> 5 shared tanh features -> 40 tasks in 4 groups; returns a sampler."""
    rng = np.random.default_rng(seed)
    projection = rng.normal(size=(N_FEATURES, N_LATENT)) / np.sqrt(N_FEATURES)
    centres = rng.normal(size=(N_GROUPS, N_LATENT))
    coef = centres[np.arange(N_TASKS) % N_GROUPS] + 0.3 * rng.normal(size=(N_TASKS, N_LATENT))

    def sample(n, rng):
        X = rng.normal(size=(n, N_FEATURES))
        Y = np.tanh(2 * X @ projection) @ coef.T
        return X, Y + 0.5 * rng.normal(size=Y.shape)

    return sample


def splits(sizes, repetitions):
    sample = make_problem()
    X_test, Y_test = sample(N_TEST, np.random.default_rng(10**6))
    for n in sizes:
        for seed in range(repetitions):
            X, Y = sample(n, np.random.default_rng(seed))
            yield n, seed, X, Y, X_test, Y_test


def main():
    args = arguments(__doc__, SIZES)
    base = AdaRegMultiTaskRegressor(hidden_layer_sizes=(64,), **LEGACY)
    methods = {name: METHODS[name] for name in SHOWN}
    results = run("many_tasks", base, methods, list(splits(args.sizes, args.repetitions)),
                  args.n_jobs)
    results = results[results.n_train.isin(args.sizes)]
    report("many_tasks", results, SHOWN, "Mean explained variance over the 40 tasks",
           "40 x 64", "explained variance (test)")


if __name__ == "__main__":
    main()
