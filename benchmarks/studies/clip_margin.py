"""How far outside the training range should ``clip_inputs`` let an input go?

Clipping every input to its training range keeps a ReLU network's predictions from
running away far from the data (``osales``), but costs a little where test inputs lie
just outside the range and the network's linear extrapolation is right (``oes97``).
This study refits, on every split of ``uncertainty.py``, the method the default chose
there (``strength_method_`` in ``results/uncertainty.csv``: the default's own final fit,
same seed), and scores its predictions with each input clipped to its training range
widened by a margin, a fraction of that range on each side (0: the range itself; inf:
no clipping).

Run from the repository root (after ``python benchmarks/uncertainty.py``)::

    python benchmarks/studies/clip_margin.py

Writes ``benchmarks/studies/results/clip_margin.{md,csv}``.
"""

import argparse
import warnings

import _parent  # noqa: F401  (benchmarks/ on sys.path, results here)
import numpy as np
import pandas as pd
import torch
from _common import RESULTS, write_study
from joblib import Parallel, delayed
from multitarget import benchmark_sets, prepared, scores
from threadpoolctl import threadpool_limits

from sk_adareg import AdaRegMultiTaskRegressor

MARGINS = [0.0, 0.05, 0.1, 0.25, 0.5, 1.0, np.inf]


def run_one(name, rep, data, method):
    torch.set_num_threads(1)
    Y = data[1]
    train, test, A_train, A_test, target = prepared(name, data, rep)
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = AdaRegMultiTaskRegressor(reg_lambda=method, clip_inputs=False,
                                         random_state=rep)
        model.fit(A_train, target.transform(Y[train]))
        low, high = A_train.min(axis=0), A_train.max(axis=0)
        rows = []
        for margin in MARGINS:
            width = (high - low) * margin if np.isfinite(margin) else np.inf
            clipped = np.clip(A_test, low - width, high + width)
            pred = target.inverse_transform(model.predict(clipped))
            rows.append({"set": name, "rep": rep, "margin": margin, "method": method,
                         "r2": float(np.nanmean(scores(Y[test], pred, Y[train])[0]))})
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--n-jobs", type=int, default=2)
    args = parser.parse_args()
    sets, data = benchmark_sets()
    fits = pd.read_csv(RESULTS / "uncertainty.csv")
    chosen = fits[fits["method"] == "AdaReg, default"].set_index(["set", "rep"])
    rows = Parallel(n_jobs=args.n_jobs)(
        delayed(run_one)(name, rep, data[name], chosen.loc[(name, rep), "strength_method_"])
        for name in sets for rep in range(args.repetitions))
    results = pd.DataFrame([row for part in rows for row in part])
    r2 = results.pivot_table(index="set", columns="margin", values="r2").reindex(sets)
    unclipped = r2[np.inf]
    cost = r2.sub(unclipped, axis=0)
    summary = pd.DataFrame({"mean R²": r2.mean(), "worst set vs no clipping": cost.min(),
                            "which": cost.idxmin(), "best set": cost.max()})
    lines = ["Mean test R² over the sets per margin (a fraction of each input's training "
             "range added on each side; inf: no clipping), and the largest loss and gain "
             "against no clipping on one set:", "", summary.to_markdown(floatfmt=".3f"), "",
             "Per set:", "", r2.to_markdown(floatfmt=".3f")]
    write_study("clip_margin", "\n".join(lines), results)


if __name__ == "__main__":
    main()
