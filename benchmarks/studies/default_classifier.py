"""Does the classifier's default (its strength learned by the evidence) beat no regularization?

``AdaRegClassifier()`` with its defaults (``reg_lambda="auto"``, which for classification
is ``"evidence"``: the strength of the prior on every layer learned from the training
data by the Laplace evidence of the cross-entropy) against ``reg_lambda=0``, weight decay
tuned by 3-fold cross-validation on the training part, and scikit-learn's
``MLPClassifier`` (its defaults, hidden layer (100,)). Digits at 300 and 1,000 training
rows from the pool of ``benchmarks/digits.py`` (797 fixed test digits), 5 repetitions.

Run from the repository root::

    python benchmarks/studies/default_classifier.py

Writes ``benchmarks/studies/results/default_classifier.{md,csv}``.
"""

import argparse
import time
import warnings

import _parent  # noqa: F401  (benchmarks/ on sys.path, results here)
import pandas as pd
import torch
from _common import write_study
from digits import splits
from joblib import Parallel, delayed
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.neural_network import MLPClassifier
from threadpoolctl import threadpool_limits

from sk_adareg import AdaRegClassifier

SIZES = (300, 1000)
WD_GRID = [1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0]
METHODS = ["AdaRegClassifier(), default", "reg_lambda=0", "weight decay tuned by CV",
           "MLPClassifier"]


def model(method, seed):
    if method == "AdaRegClassifier(), default":
        return AdaRegClassifier(random_state=seed)
    if method == "reg_lambda=0":
        return AdaRegClassifier(reg_lambda=0.0, random_state=seed)
    if method == "weight decay tuned by CV":
        return GridSearchCV(AdaRegClassifier(reg_lambda=0.0, random_state=seed),
                            {"weight_decay": WD_GRID},
                            cv=StratifiedKFold(3, shuffle=True, random_state=seed))
    return MLPClassifier(hidden_layer_sizes=(100,), random_state=seed)


def run_one(method, n, seed, X_train, y_train, X_test, y_test):
    torch.set_num_threads(1)
    start = time.perf_counter()
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = model(method, seed).fit(X_train, y_train)
        seconds = time.perf_counter() - start
        accuracy = fitted.score(X_test, y_test)
    row = {"method": method, "n_train": n, "rep": seed, "accuracy": accuracy,
           "fit_seconds": seconds}
    if isinstance(fitted, AdaRegClassifier):
        row["reg_lambda_"] = ";".join(f"{k}={v:.3g}" for k, v in fitted.reg_lambda_.items())
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--n-jobs", type=int, default=2)
    args = parser.parse_args()
    rows = Parallel(n_jobs=args.n_jobs)(
        delayed(run_one)(method, *split) for split in splits(SIZES, args.repetitions)
        for method in METHODS)
    results = pd.DataFrame(rows)
    accuracy = results.pivot_table(index=["n_train", "rep"], columns="method",
                                   values="accuracy")[METHODS]
    gain = (accuracy["AdaRegClassifier(), default"] - accuracy["reg_lambda=0"]) * 100
    summary = results.groupby(["n_train", "method"])["accuracy"].agg(["mean", "std"])
    lines = ["Test accuracy, mean ± std over repetitions:", "",
             summary["mean"].unstack()[METHODS].map("{:.4f}".format).to_markdown(), "",
             "The default minus reg_lambda=0, in points of accuracy, per split:", "",
             gain.unstack().to_markdown(floatfmt="+.2f"), "",
             f"Mean {gain.mean():+.2f} points; worst split {gain.min():+.2f} (goal: never "
             "below -0.5, above 0 on average).", "",
             "Median fit seconds:", "",
             results.groupby(["n_train", "method"])["fit_seconds"].median().unstack()[METHODS]
             .to_markdown(floatfmt=".1f")]
    write_study("default_classifier", "\n".join(lines), results)


if __name__ == "__main__":
    main()
