"""Real multi-target data: AdaReg against the methods a user would pick instead.

Every set of the Mulan collection found in ``../shared/data/mulan/`` (read with
:func:`sk_adareg.datasets.fetch_mulan`, no network) plus the SARCOS pool (the
official 4,449-row test file) at training sizes 300 and 1,000. Mulan sets: seeded
random 70/30 splits; SARCOS: a fixed random 2,000 rows are the test part and the
training rows are drawn from the rest. The same splits and the same
preprocessing serve every method: median imputation and standardization of
numeric inputs, most-frequent imputation and one-hot encoding of nominal ones,
targets standardized on the training part. Hyperparameters are chosen by
3-fold cross-validation on the training part only.

``SETTINGS`` below is the protocol. Sized to fit about an hour on a shared
2-core machine, it trains every network for 60 epochs (the estimator's default
is 200; ``AdaReg, default`` is the estimator as shipped, 200 epochs), caps the
Gaussian process's L-BFGS at 50 iterations with no restarts,
and does not tune the random forest or the gradient boosting.

Run from the repository root::

    python benchmarks/multitarget.py            # the full comparison
    python benchmarks/multitarget.py --quick    # a smoke run (under 10 minutes)

Prints tables and writes ``benchmarks/results/multitarget.{csv,md,png}``
(``multitarget_quick.*`` with ``--quick``). The CSV has one row per (set,
method, repetition): an interrupted run resumes where it stopped.
"""

import argparse
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from _common import RESULTS, completed, run_and_save
from _multitarget_report import report
from joblib import Parallel, delayed
from scipy.optimize import fmin_l_bfgs_b
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel
from sklearn.impute import SimpleImputer
from sklearn.linear_model import MultiTaskElasticNetCV, RidgeCV
from sklearn.model_selection import GridSearchCV, KFold, train_test_split
from sklearn.multioutput import MultiOutputRegressor
from sklearn.neighbors import KNeighborsRegressor
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from sk_adareg import AdaRegMultiTaskRegressor
from sk_adareg.datasets import MULAN_FILES, fetch_mulan, fetch_sarcos, load_sarcos

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SARCOS_SIZES = (300, 1000)
SARCOS_TEST = 2000
TEST_FRACTION = 0.3
CV_FOLDS = 3

# The full protocol and the smoke run. ``grids`` are searched by 3-fold CV.
SETTINGS = {
    "full": {
        "repetitions": 5, "max_epochs": 60, "n_trees": 300, "gp_maxiter": 50,
        # Wide enough that few choices sit at an edge (the report counts them).
        "adareg_grid": [1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0],
        "wd_grid": [1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0],
        "alpha_grid": [1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0],
        "k_grid": [1, 2, 3, 5, 7, 10, 15, 20, 30],
    },
    "quick": {
        "repetitions": 1, "max_epochs": 40, "n_trees": 100, "gp_maxiter": 10,
        "adareg_grid": [1e-2, 1.0], "wd_grid": [1e-3, 1e-1], "alpha_grid": [1e-3, 1.0],
        "k_grid": [3, 10],
    },
}

# The estimator exactly as shipped: its defaults, 200 epochs.
DEFAULT = "AdaReg, default"
# The rest are fixed configurations, pinned so that their rows stay valid as the defaults
# change: inputs not clipped, the prior on the last layer unless "all layers" says so.
PINNED = {"clip_inputs": False, "adareg_layers": "last"}
OURS = [DEFAULT, "AdaReg, reg_lambda=0", "AdaReg, 3e-3 last layer",
        "AdaReg, 3e-3 last layer, 200 epochs", "AdaReg tuned, last layer",
        "AdaReg tuned, all layers", "weight decay tuned", "weight decay tuned, inputs clipped",
        "early stopping"]
PEERS = ["RidgeCV", "MultiTaskElasticNetCV", "KNN, k tuned", "RandomForest",
         "HistGradientBoosting", "GaussianProcess", "MLPRegressor"]
METHODS = OURS + PEERS


# --------------------------------------------------------------------------- data


def mulan_names(folder):
    """The Mulan sets with a file in ``folder``, in the loader's order."""
    return [name for name in MULAN_FILES if (folder / f"{name}.arff").is_file()]


def load_set(name, mulan_folder, sarcos_path):
    """(X, Y, nominal column indices) of one set; SARCOS sets are ``sarcos300`` etc."""
    if name.startswith("sarcos"):
        if sarcos_path.is_file():
            X, Y = load_sarcos(sarcos_path, return_X_y=True)
        else:
            X, Y = fetch_sarcos(subset="test", return_X_y=True)
        return X, Y, []
    bunch = fetch_mulan(name, data_home=mulan_folder, download_if_missing=False,
                        as_frame=True)
    nominal = [i for i, dtype in enumerate(bunch.data.dtypes) if dtype == "category"]
    X, _ = fetch_mulan(name, data_home=mulan_folder, download_if_missing=False,
                       return_X_y=True)
    return X, bunch.target.to_numpy(dtype=np.float64), nominal


def split(name, X, Y, rep):
    """Train and test indices of repetition ``rep`` of one set."""
    if name.startswith("sarcos"):
        order = np.random.default_rng(0).permutation(len(X))
        test, pool = order[:SARCOS_TEST], order[SARCOS_TEST:]
        train = np.random.default_rng(rep).permutation(pool)[:int(name[len("sarcos"):])]
        return train, test
    return train_test_split(np.arange(len(X)), test_size=TEST_FRACTION, random_state=rep)


def benchmark_sets(only=None, folder=SHARED):
    """The set names (the Mulan files in ``folder``, then SARCOS at each of
    ``SARCOS_SIZES``), those in ``only`` if given, and each set's data by name."""
    sets = mulan_names(folder / "mulan") + [f"sarcos{n}" for n in SARCOS_SIZES]
    sets = [s for s in sets if only is None or s in only]
    return sets, {s: load_set(s, folder / "mulan", folder / "sarcos_inv_test.mat") for s in sets}


def study_arguments(description):
    """The command line of a per-set study: ``--repetitions``, ``--sets``, ``--n-jobs``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--sets", nargs="+", default=None)
    parser.add_argument("--n-jobs", type=int, default=min(2, os.cpu_count() or 1))
    return parser.parse_args()


def run_over_sets(description, run_one, variants):
    """A per-set study on its command line (:func:`study_arguments`).

    Runs ``run_one(set, rep, variant, data)`` for every set, repetition and variant, in
    parallel; returns the arguments, the set names and the rows as a DataFrame.
    """
    args = study_arguments(description)
    sets, data = benchmark_sets(args.sets)
    rows = Parallel(n_jobs=args.n_jobs)(
        delayed(run_one)(s, rep, variant, data[s])
        for s in sets for rep in range(args.repetitions) for variant in variants)
    return args, sets, pd.DataFrame(rows)


def prepared(name, data, rep):
    """Repetition ``rep`` of a set: the train and test indices, the inputs preprocessed
    on the training part, and the target scaler fitted there."""
    X, Y, nominal = data
    train, test = split(name, X, Y, rep)
    pre = preprocessing(X.shape[1], nominal).fit(X[train])
    return (train, test, pre.transform(X[train]), pre.transform(X[test]),
            StandardScaler().fit(Y[train]))


# --------------------------------------------------------------------------- methods


def preprocessing(n_features, nominal):
    numeric = [i for i in range(n_features) if i not in nominal]
    steps = [("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
              numeric)]
    if nominal:
        steps.append(("nominal", make_pipeline(
            SimpleImputer(strategy="most_frequent"),
            OneHotEncoder(handle_unknown="ignore", sparse_output=False)), nominal))
    return ColumnTransformer(steps)


def gp_optimizer(maxiter):
    """L-BFGS-B as scikit-learn's default, with a cap on the iterations."""
    def optimizer(obj_func, initial_theta, bounds):
        theta, value, _ = fmin_l_bfgs_b(obj_func, initial_theta, bounds=bounds,
                                        maxiter=maxiter)
        return theta, value
    return optimizer


def make_method(method, n_inputs, settings, seed):
    """(model, grid) for one method; the grid's keys are the model's parameters."""
    if method == DEFAULT:
        return AdaRegMultiTaskRegressor(max_epochs=200, random_state=seed), {}
    net = AdaRegMultiTaskRegressor(max_epochs=settings["max_epochs"], random_state=seed,
                                   reg_lambda=3e-3, **PINNED)
    # Read only where used: uncertainty.py builds its Gaussian process here, without grids.
    lam = {"reg_lambda": settings.get("adareg_grid")}
    if method == "AdaReg, reg_lambda=0":
        return net.set_params(reg_lambda=0.0), {}
    if method == "AdaReg, 3e-3 last layer":
        return net, {}
    if method == "AdaReg, 3e-3 last layer, 200 epochs":
        return net.set_params(max_epochs=200), {}
    if method == "AdaReg tuned, last layer":
        return net, lam
    if method == "AdaReg tuned, all layers":
        return net.set_params(adareg_layers="all"), lam
    if method == "weight decay tuned":
        return net.set_params(reg_lambda=0.0), {"weight_decay": settings["wd_grid"]}
    if method == "weight decay tuned, inputs clipped":
        return (net.set_params(reg_lambda=0.0, clip_inputs=True),
                {"weight_decay": settings["wd_grid"]})
    if method == "early stopping":
        return net.set_params(early_stopping=True), {}
    if method == "RidgeCV":
        return RidgeCV(alphas=np.logspace(-3, 3, 13)), {}
    if method == "MultiTaskElasticNetCV":
        return MultiTaskElasticNetCV(l1_ratio=[0.1, 0.5, 0.9, 1.0], alphas=30, cv=CV_FOLDS,
                                     max_iter=5000, random_state=seed), {}
    if method == "KNN, k tuned":
        return KNeighborsRegressor(), {"n_neighbors": settings["k_grid"]}
    if method == "RandomForest":
        return RandomForestRegressor(settings["n_trees"], random_state=seed), {}
    if method == "HistGradientBoosting":
        return MultiOutputRegressor(HistGradientBoostingRegressor(random_state=seed)), {}
    if method == "GaussianProcess":
        kernel = (ConstantKernel(1.0, (1e-3, 1e3))
                  * RBF(np.full(n_inputs, np.sqrt(n_inputs)), (1e-2, 1e4))
                  + WhiteKernel(0.1, (1e-6, 1e1)))
        return GaussianProcessRegressor(kernel, normalize_y=True, random_state=seed,
                                        optimizer=gp_optimizer(settings["gp_maxiter"])), {}
    if method == "MLPRegressor":
        return MLPRegressor(early_stopping=True, max_iter=settings["max_epochs"],
                            random_state=seed), {"alpha": settings["alpha_grid"]}
    raise ValueError(method)


def fit_and_score(model, Y, split):
    """Fit ``model`` on the training part of ``split`` (from :func:`prepared`), targets
    standardized there, quietly and on one BLAS thread; the test R² of each target."""
    train, test, A_train, A_test, target = split
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(A_train, target.transform(Y[train]))
        pred = target.inverse_transform(model.predict(A_test))
    return scores(Y[test], pred, Y[train])[0]


def scores(Y_test, pred, Y_train):
    """Per target: R² on the test part, and RMSE relative to predicting the training mean.

    Targets constant on the test part (R² undefined) or predicted exactly by the training
    mean give NaN and are left out of the means.
    """
    resid = ((Y_test - pred) ** 2).sum(axis=0)
    total = ((Y_test - Y_test.mean(axis=0)) ** 2).sum(axis=0)
    baseline = ((Y_test - Y_train.mean(axis=0)) ** 2).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(total > 0, 1 - resid / total, np.nan)
        rrmse = np.where(baseline > 0, np.sqrt(resid / baseline), np.nan)
    return r2, rrmse


def run_one(set_name, method, rep, data, settings):
    """Tune (by CV on the training part), refit and score one method on one split."""
    torch.set_num_threads(1)
    X, Y, nominal = data
    train, test = split(set_name, X, Y, rep)
    pre = preprocessing(X.shape[1], nominal)
    n_inputs = pre.fit(X[train]).transform(X[train[:1]]).shape[1]
    model, grid = make_method(method, n_inputs, settings, rep)
    estimator = TransformedTargetRegressor(
        Pipeline([("pre", pre), ("model", model)]), transformer=StandardScaler())
    prefix = "regressor__model__"
    start = time.perf_counter()
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        chosen, edge = {}, ""
        if grid:
            search = GridSearchCV(estimator, {prefix + k: v for k, v in grid.items()},
                                  cv=KFold(CV_FOLDS, shuffle=True, random_state=rep))
            estimator = search.fit(X[train], Y[train]).best_estimator_
            chosen = {k.removeprefix(prefix): v for k, v in search.best_params_.items()}
            (key, value), = chosen.items()
            values = list(grid[key])
            # A grid of numbers has edges; a choice between settings does not.
            if all(isinstance(v, (int, float)) for v in values):
                edge = ("low" if value == values[0] else "high" if value == values[-1]
                        else "inside")
        else:
            estimator.fit(X[train], Y[train])
        seconds = time.perf_counter() - start
        pred = estimator.predict(X[test]).reshape(len(test), -1)
    r2, rrmse = scores(Y[test], pred, Y[train])
    fitted = estimator.regressor_[-1]
    if method == "MultiTaskElasticNetCV":
        chosen = {"l1_ratio": float(fitted.l1_ratio_), "alpha": float(fitted.alpha_)}
    elif method == "RidgeCV":
        chosen = {"alpha": float(fitted.alpha_)}
    return {"set": set_name, "n_train": len(train), "n_test": len(test), "method": method,
            "rep": rep, "r2": float(np.nanmean(r2)), "arrmse": float(np.nanmean(rrmse)),
            "fit_seconds": seconds, "chosen": json.dumps(chosen), "edge": edge,
            "r2_per_target": json.dumps([round(float(v), 5) for v in r2]),
            "rrmse_per_target": json.dumps([round(float(v), 5) for v in rrmse])}


# --------------------------------------------------------------------------- driver


def cost(set_name, method, n_train, settings):
    """A rough guess of a task's time, to start the long ones first."""
    grids = {"AdaReg tuned, last layer": "adareg_grid", "AdaReg tuned, all layers":
             "adareg_grid", "weight decay tuned": "wd_grid",
             "weight decay tuned, inputs clipped": "wd_grid"}
    if method in grids:
        return n_train * (CV_FOLDS * len(settings[grids[method]]) + 1)
    if method == DEFAULT:
        return n_train * 15
    if method in OURS:
        return n_train
    if method == "GaussianProcess":
        return n_train * 3
    return n_train / 10


def run(sets, settings, path, n_jobs, mulan_folder, sarcos_path):
    rows, finished = completed(path)
    data = {name: load_set(name, mulan_folder, sarcos_path) for name in sets}
    tasks = []
    # Repetition by repetition, so that a run stopped early has whole repetitions.
    for rep in range(settings["repetitions"]):
        block = [(name, method, rep) for name in sets for method in METHODS
                 if (name, method, rep) not in finished]
        sizes = {name: len(split(name, *data[name][:2], 0)[0]) for name in sets}
        block.sort(key=lambda t: -cost(t[0], t[1], sizes[t[0]], settings))
        tasks += block
    print(f"{len(tasks)} fits to run, {len(finished)} already in {path.name}", flush=True)
    calls = [delayed(run_one)(name, method, rep, data[name], settings)
             for name, method, rep in tasks]
    return run_and_save(calls, rows, path, n_jobs, lambda row: (
        f"{row['set']:>10} {row['method']:>26} rep={row['rep']}  R2={row['r2']:+.3f}  "
        f"aRRMSE={row['arrmse']:.3f}  {row['fit_seconds']:.1f}s"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="one repetition, short training, small grids")
    parser.add_argument("--repetitions", type=int, default=None)
    parser.add_argument("--sets", nargs="+", default=None,
                        help="a subset of the sets (default: all available)")
    parser.add_argument("--n-jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--data", type=Path, default=SHARED,
                        help="folder with mulan/ and sarcos_inv_test.mat")
    parser.add_argument("--report-only", action="store_true",
                        help="rewrite the report from the CSV, fit nothing")
    args = parser.parse_args()
    mode = "quick" if args.quick else "full"
    settings = dict(SETTINGS[mode])
    if args.repetitions is not None:
        settings["repetitions"] = args.repetitions
    mulan_folder = args.data / "mulan"
    sets = mulan_names(mulan_folder) + [f"sarcos{n}" for n in SARCOS_SIZES]
    if args.sets:
        sets = [s for s in sets if s in args.sets]
    name = "multitarget" + ("_quick" if args.quick else "")
    path = RESULTS / f"{name}.csv"
    RESULTS.mkdir(exist_ok=True)
    if args.report_only:
        results = pd.read_csv(path)
    else:
        results = run(sets, settings, path, args.n_jobs, mulan_folder,
                      args.data / "sarcos_inv_test.mat")
    results = results[results["set"].isin(sets) & results["method"].isin(METHODS)
                      & (results["rep"] < settings["repetitions"])]
    report(name, results, sets, METHODS, settings, mode)


if __name__ == "__main__":
    main()
