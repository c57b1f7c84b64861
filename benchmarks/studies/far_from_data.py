"""Far from the training data: does clipping the inputs keep the default's predictions sane?

A ReLU network extrapolates linearly. Three kinds of split put test inputs outside the
training data:

- ``osales``, the five random splits of ``multitarget.py`` (split 3 has a test input far
  outside the training range);
- ``enb`` split by building shape (its 12 values of relative compactness are the
  groups): a ``GroupShuffleSplit`` holds out whole shapes;
- ``jura`` split by place: the sampling sites grouped into 8 spatial clusters (k-means
  on their coordinates), whole clusters held out.

Methods: ``AdaRegMultiTaskRegressor()`` with its defaults (``clip_inputs=True``) and the
same fit predicting unclipped inputs, the Gaussian process, ``RidgeCV``, a random forest
and the training mean. Preprocessing as in ``multitarget.py``, fitted on the training
part. Nothing is tuned on the test part.

Run from the repository root::

    python benchmarks/studies/far_from_data.py

Writes ``benchmarks/studies/results/far_from_data.{md,csv}``.
"""

import argparse
import warnings

import _parent  # noqa: F401  (benchmarks/ on sys.path, results here)
import numpy as np
import pandas as pd
import torch
from _common import write_study
from joblib import Parallel, delayed
from multitarget import SHARED, load_set, make_method, preprocessing, scores, split
from sklearn.cluster import KMeans
from sklearn.dummy import DummyRegressor
from sklearn.model_selection import GroupShuffleSplit
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from sk_adareg import AdaRegMultiTaskRegressor

REPETITIONS = 5
METHODS = ["AdaReg, default", "AdaReg, default, inputs not clipped", "GaussianProcess",
           "RidgeCV", "RandomForest", "training mean"]
SPLITS = {"osales": "random (multitarget.py)", "enb": "by building shape",
          "jura": "by spatial cluster"}


def groups(name, X):
    """The group of each row of a set split by group; None for a random split."""
    if name == "enb":
        return np.asarray(X[:, 0])  # relative compactness: one value per building shape
    if name == "jura":
        coordinates = np.asarray(X[:, :2], dtype=float)
        return KMeans(8, n_init=10, random_state=0).fit_predict(coordinates)
    return None


def split_rows(name, X, Y, rep):
    labels = groups(name, X)
    if labels is None:
        return split(name, X, Y, rep)
    splitter = GroupShuffleSplit(n_splits=REPETITIONS, test_size=0.3, random_state=0)
    return list(splitter.split(X, Y, labels))[rep]


def run_one(name, rep, data):
    torch.set_num_threads(1)
    X, Y, nominal = data
    train, test = split_rows(name, X, Y, rep)
    pre = preprocessing(X.shape[1], nominal).fit(X[train])
    A_train, A_test = pre.transform(X[train]), pre.transform(X[test])
    target = StandardScaler().fit(Y[train])
    rows = []

    def scored(method, pred):
        r2, rrmse = scores(Y[test], target.inverse_transform(pred.reshape(len(test), -1)),
                           Y[train])
        outside = np.any((A_test < A_train.min(0)) | (A_test > A_train.max(0)), axis=1)
        rows.append({"set": name, "split": SPLITS[name], "rep": rep, "method": method,
                     "r2": float(np.nanmean(r2)), "arrmse": float(np.nanmean(rrmse)),
                     "test_rows_outside": float(outside.mean()),
                     "max_abs_z_test": float(np.abs(A_test).max())})

    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y = target.transform(Y[train])
        model = AdaRegMultiTaskRegressor(random_state=rep).fit(A_train, y)
        scored("AdaReg, default", model.predict(A_test))
        scored("AdaReg, default, inputs not clipped",
               model.set_params(clip_inputs=False).predict(A_test))
        for method in ("GaussianProcess", "RidgeCV", "RandomForest"):
            peer = make_method(method, A_train.shape[1],
                               {"max_epochs": 200, "n_trees": 300, "gp_maxiter": 50}, rep)[0]
            scored(method, peer.fit(A_train, y).predict(A_test))
        scored("training mean", DummyRegressor().fit(A_train, y).predict(A_test))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-jobs", type=int, default=2)
    args = parser.parse_args()
    data = {name: load_set(name, SHARED / "mulan", SHARED / "sarcos_inv_test.mat")
            for name in SPLITS}
    results = pd.DataFrame([row for rows in Parallel(n_jobs=args.n_jobs)(
        delayed(run_one)(name, rep, data[name]) for name in SPLITS
        for rep in range(REPETITIONS)) for row in rows])
    r2 = results.pivot_table(index=["set", "rep"], columns="method", values="r2")[METHODS]
    lines = ["Test R² per split (rows: set and repetition); the share of test rows with an "
             "input outside the training range, and the largest absolute standardized "
             "test input.", "",
             r2.join(results.groupby(["set", "rep"])[["test_rows_outside",
                                                      "max_abs_z_test"]].first())
             .to_markdown(floatfmt=".3f"), "",
             "Mean test R² per set:", "",
             results.pivot_table(index=["set", "split"], columns="method", values="r2")
             [METHODS].to_markdown(floatfmt=".3f")]
    write_study("far_from_data", "\n".join(lines), results)


if __name__ == "__main__":
    main()
