"""When do the eigenvalue bounds ``u`` and ``v`` matter?

With the default ``precision_scale="unit_mean"`` each precision has mean eigenvalue 1
and its eigenvalues lie in ``[u, v]``: ``v / u`` bounds how much more the prior
penalises one direction of the weights than another, and ``u = v = 1`` is weight decay
(its strength still learned). A grid of bounds, ``(1, 1)``, ``(0.5, 2)``, ``(0.1, 10)``
(the default) and ``(0.01, 100)``:

- on the twelve sets of ``multitarget.py`` (5 splits each), ``reg_lambda="evidence"`` on
  all layers, 200 epochs;
- on the 40 related tasks of ``many_tasks.py`` (30, 100 and 300 training rows, 5
  repetitions), with ``"evidence"`` on all layers and with a fixed strength (0.3) on the
  last layer, where learning how the tasks relate helped before.

For each fit it records the test score and the share of the precisions' eigenvalues that
sit at ``u`` or at ``v`` at the end (a bound that nothing touches cannot matter).

Run from the repository root::

    python benchmarks/studies/bounds_uv.py

Writes ``benchmarks/studies/results/bounds_uv.{md,csv}``.
"""

import argparse
import warnings

import _parent  # noqa: F401  (benchmarks/ on sys.path, results here)
import numpy as np
import pandas as pd
import torch
from _common import write_study
from joblib import Parallel, delayed
from many_tasks import make_problem
from multitarget import benchmark_sets, prepared, scores
from sklearn.metrics import explained_variance_score
from threadpoolctl import threadpool_limits

from sk_adareg import AdaRegMultiTaskRegressor

BOUNDS = [(1.0, 1.0), (0.5, 2.0), (0.1, 10.0), (0.01, 100.0)]
MANY_TASKS = {'"evidence", all layers': {"reg_lambda": "evidence"},
              "0.3, last layer": {"reg_lambda": 0.3, "adareg_layers": "last"}}


def at_bounds(est, u, v):
    """The share of all the precisions' eigenvalues within 1e-6 of ``u`` or of ``v``."""
    values = np.concatenate([np.linalg.eigvalsh(p) for precisions in (
        est.row_precisions_, est.column_precisions_) for p in precisions.values()])
    return (float(np.mean(np.abs(values - u) <= 1e-6 * u)),
            float(np.mean(np.abs(values - v) <= 1e-6 * v)))


def suite_one(name, rep, data, bounds):
    torch.set_num_threads(1)
    Y = data[1]
    train, test, A_train, A_test, target = prepared(name, data, rep)
    u, v = bounds
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = AdaRegMultiTaskRegressor(reg_lambda="evidence", u=u, v=v, random_state=rep)
        est.fit(A_train, target.transform(Y[train]))
        pred = target.inverse_transform(est.predict(A_test))
    at_u, at_v = at_bounds(est, u, v)
    return {"data": "suite", "set": name, "config": '"evidence", all layers', "rep": rep,
            "u": u, "v": v, "score": float(np.nanmean(scores(Y[test], pred, Y[train])[0])),
            "at_u": at_u, "at_v": at_v}


def many_tasks_one(n, rep, config, bounds):
    torch.set_num_threads(1)
    sample = make_problem()
    X_test, Y_test = sample(2000, np.random.default_rng(10**6))
    X, Y = sample(n, np.random.default_rng(rep))
    u, v = bounds
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = AdaRegMultiTaskRegressor(hidden_layer_sizes=(64,), u=u, v=v, random_state=rep,
                                       **MANY_TASKS[config]).fit(X, Y)
        score = explained_variance_score(Y_test, est.predict(X_test))
    at_u, at_v = at_bounds(est, u, v)
    return {"data": "many_tasks", "set": f"n={n}", "config": config, "rep": rep, "u": u,
            "v": v, "score": float(score), "at_u": at_u, "at_v": at_v}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--n-jobs", type=int, default=2)
    args = parser.parse_args()
    sets, data = benchmark_sets()
    calls = [delayed(many_tasks_one)(n, rep, config, bounds) for n in (30, 100, 300)
             for config in MANY_TASKS for bounds in BOUNDS for rep in range(args.repetitions)]
    calls += [delayed(suite_one)(name, rep, data[name], bounds) for name in sets
              for bounds in BOUNDS for rep in range(args.repetitions)]
    results = pd.DataFrame(Parallel(n_jobs=args.n_jobs)(calls))
    results["bounds"] = [f"({u:g}, {v:g})" for u, v in zip(results["u"], results["v"],
                                                           strict=True)]
    order = [f"({u:g}, {v:g})" for u, v in BOUNDS]
    suite = results[results["data"] == "suite"]
    per_set = suite.pivot_table(index="set", columns="bounds", values="score")[order]
    touched = results.groupby(["data", "config", "bounds"])[["at_u", "at_v"]].mean()
    many = results[results["data"] == "many_tasks"].pivot_table(
        index=["config", "set"], columns="bounds", values="score")[order]
    lines = ["Test R² on the twelve sets (\"evidence\", all layers), mean over splits; "
             "bounds (u, v):", "", per_set.to_markdown(floatfmt=".3f"), "",
             f"Mean over the sets: {', '.join(f'{b} {per_set[b].mean():.3f}' for b in order)}.",
             "", "Explained variance (test) on 40 related tasks:", "",
             many.to_markdown(floatfmt=".3f"), "",
             "The share of the precisions' eigenvalues at u and at v at the end of the fit:",
             "", touched.unstack("bounds").to_markdown(floatfmt=".2f")]
    write_study("bounds_uv", "\n".join(lines), results)


if __name__ == "__main__":
    main()
