"""Speed: predict and fit against a plain PyTorch loop and scikit-learn's MLP (issue 12).

Paired ratios, measured in one process with the two sides interleaved (A, B,
A, B, ...) after one untimed warm-up of each, reported as the median and the
min-max range of the per-repetition ratios A / B:

(a) ``predict`` / ``predict_proba`` on 1,000,000 rows x 50 inputs (hidden
    (100,), 7 targets or classes) against the same module's forward pass
    under ``torch.no_grad()`` in chunks of 65,536 rows (outputs gathered
    into one host array); and, with no goal, the regressor's
    ``predict(X, return_std=True)`` against ``predict(X)`` on the first
    100,000 of those rows (what the predictive standard deviation costs);
(b) ``fit`` with ``reg_lambda=0`` against a plain PyTorch loop with the same
    network (``Linear``, ``ReLU``, ``Linear``, built here), Adam, learning
    rate, batch size 64, epochs and per-epoch shuffling: 1,000 digits
    (pixels / 16, 30 epochs) for the classifier, 1,000 synthetic rows x 50
    inputs x 7 targets for the regressor; and, for what the library's fast
    training engine saves, the same fit with it switched off
    (``sk_adareg.config_context(fast_engine=False)``);
(c) ``fit`` with the prior (a fixed 3e-3 on the last layer and on all layers;
    ``reg_lambda="evidence"`` on all layers; for the regressor ``"loo"``)
    against ``reg_lambda=0``, same data and epochs (a learned strength against
    the fixed one with the same layers is the ratio of two of these lines);
    what the prior costs besides its per-batch penalty step is the study
    ``benchmarks/studies/penalty_cost.py``;
(d) time per epoch (fit time / epochs) of the estimators (a fixed 3e-3 on the
    last layer, the defaults before the default learned its strength)
    against scikit-learn's ``MLPClassifier``/``MLPRegressor`` with the same
    hidden layers, ``solver="adam"``, batch size and learning rate, at 1k,
    10k, 100k and 1M synthetic rows x 50 features, and the peak memory of one
    such fit, each in a fresh process;
(e) the default fit (``reg_lambda="auto"``: cross-validation of the learned
    strengths, then the fit; all layers) against a fixed strength on all
    layers, same data and epochs.

Run from the repository root::

    python benchmarks/speed.py                   # CPU, 1 thread: ~12 min quiet, 26 shared
    python benchmarks/speed.py --device cuda     # the same on a GPU
    python benchmarks/speed.py --quick           # ~2 min smoke run (speed_quick.*)
    python benchmarks/speed.py --parts c --repeats 15 --name speed_c   # (c) alone

Writes ``benchmarks/results/speed{_cuda}{_quick}.{md,csv,png}`` and
``..._memory.csv``.
"""

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from _common import RESULTS, timed, write_report
from sklearn.datasets import load_digits, make_classification, make_regression
from sklearn.neural_network import MLPClassifier, MLPRegressor
from threadpoolctl import threadpool_limits
from torch import nn

import sk_adareg
from sk_adareg import AdaRegClassifier, AdaRegMultiTaskRegressor

HIDDEN = (100,)
BATCH = 64
LR = 1e-3
RAW_CHUNK = 65_536
STD_ROWS = 100_000
GOALS = {"a": 1.5, "b": 1.3, "c_last": 1.10, "c_all": 1.50, "d_100000": 1.0, "e": 2.5}
# A fixed strength on the last layer (the defaults until the default learned the strength):
# what (b) and (d) time, so that their lines compare across versions.
FIXED_LAST = {"reg_lambda": 3e-3, "adareg_layers": "last"}
FIXED_ALL = {"reg_lambda": 3e-3, "adareg_layers": "all"}
# (c): the fits with the prior, each against reg_lambda=0; one line per variant.
PRIOR_CASES = [
    ("3e-3, last layer", FIXED_LAST, "c_last"),
    ("3e-3, all layers", FIXED_ALL, "c_all"),
    ('reg_lambda="evidence", all layers', {"reg_lambda": "evidence"}, None),
    ('reg_lambda="loo", all layers', {"reg_lambda": "loo"}, None),
]
# "loo" scores squared errors: the regressor's only.
REGRESSOR_ONLY = {'reg_lambda="loo", all layers'}


# -- timing -------------------------------------------------------------------

def interleaved(fns, repeats, device, warmup=True, label=""):
    """Per repetition, ``[(seconds, output), ...]`` of each function, run in turn (A, B, ...).

    Each function takes the repetition's index (its seed); with ``warmup``,
    each runs once untimed first.
    """
    if warmup:
        for fn in fns:
            fn(0)
    times = []
    for rep in range(repeats):
        times.append([timed(lambda fn=fn: fn(rep), device) for fn in fns])  # noqa: B023
        seconds = [t for t, _ in times[-1]]
        print(f"  {label} rep {rep}: " + " / ".join(f"{t:.4f} s" for t in seconds)
              + f" (A/B {seconds[0] / seconds[1]:.3f})", flush=True)
    return times


def paired(fn_a, fn_b, repeats, device, warmup=True, label=""):
    """Per-repetition ``(t_a, t_b, out_a, out_b)``, interleaved A, B, A, B ..."""
    return [(t_a, t_b, out_a, out_b) for (t_a, out_a), (t_b, out_b)
            in interleaved([fn_a, fn_b], repeats, device, warmup, label)]


# -- data ---------------------------------------------------------------------

def regression_data(n, n_targets=7, seed=0):
    X, y = make_regression(n, 50, n_informative=20, n_targets=n_targets, noise=10.0,
                           random_state=seed)
    y = (y - y.mean(axis=0)) / y.std(axis=0)
    return X.astype(np.float32), y


def classification_data(n, n_classes=7, seed=0):
    X, y = make_classification(n, 50, n_informative=20, n_redundant=10, n_classes=n_classes,
                               random_state=seed)
    return X.astype(np.float32), y


def digits_data(n=1000):
    X, y = load_digits(return_X_y=True)
    return (X[:n] / 16.0).astype(np.float32), y[:n]


# -- the reference implementations ------------------------------------------------

def raw_forward(module, X, device, softmax=False):
    """The module's outputs on X in chunks of RAW_CHUNK rows, as one host array."""
    module.eval()
    outputs = []
    with torch.no_grad():
        for start in range(0, len(X), RAW_CHUNK):
            out = module(torch.as_tensor(X[start:start + RAW_CHUNK], device=device))
            if softmax:
                out = torch.softmax(out, dim=1)
            outputs.append(out.cpu())
    return torch.cat(outputs).numpy()


def plain_network(n_features, n_outputs):
    """The estimators' default network built from torch alone: Linear, ReLU, ..., Linear."""
    layers, width = [], n_features
    for size in HIDDEN:
        layers += [nn.Linear(width, size), nn.ReLU()]
        width = size
    return nn.Sequential(*layers, nn.Linear(width, n_outputs))


def plain_fit(X, y, task, epochs, seed, device):
    """A plain PyTorch loop: same network, Adam, lr, batch size, epochs, shuffling."""
    torch.manual_seed(seed)
    if task == "classifier":
        _, y = np.unique(y, return_inverse=True)
        n_outputs, criterion = int(y.max()) + 1, nn.CrossEntropyLoss()
    else:
        y = ((y - y.mean(axis=0)) / y.std(axis=0)).astype(np.float32).reshape(len(y), -1)
        n_outputs, criterion = y.shape[1], nn.MSELoss()
    X_t, y_t = torch.as_tensor(X, device=device), torch.as_tensor(y, device=device)
    module = plain_network(X.shape[1], n_outputs).to(device)
    optimizer = torch.optim.Adam(module.parameters(), lr=LR)
    module.train()
    for _ in range(epochs):
        order = torch.randperm(len(X_t), device=device)
        for start in range(0, len(X_t), BATCH):
            rows = order[start:start + BATCH]
            optimizer.zero_grad()
            criterion(module(X_t[rows]), y_t[rows]).backward()
            optimizer.step()
    return module


def estimator(task, device, **params):
    cls = AdaRegClassifier if task == "classifier" else AdaRegMultiTaskRegressor
    return cls(hidden_layer_sizes=HIDDEN, batch_size=BATCH, lr=LR, device=device, **params)


def sklearn_mlp(task, epochs, seed):
    cls = MLPClassifier if task == "classifier" else MLPRegressor
    # tol=0 and n_iter_no_change=max_iter: it runs all its epochs.
    return cls(hidden_layer_sizes=HIDDEN, solver="adam", batch_size=BATCH,
               learning_rate_init=LR, max_iter=epochs, tol=0.0, n_iter_no_change=epochs,
               random_state=seed)


def auto_support():
    """None if the estimators accept reg_lambda="auto", else why not."""
    try:
        AdaRegMultiTaskRegressor(reg_lambda="auto", hidden_layer_sizes=(4,), max_epochs=1).fit(
            np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32),
            np.random.default_rng(1).normal(size=20))
    except Exception as exc:  # any failure means: not available
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    return None


# -- the four parts -------------------------------------------------------------

def summary_row(part, case, a, b, times, goal_key=None, extra=None, short=None):
    ratios = [t_a / t_b for t_a, t_b, *_ in times]
    return {
        "part": part, "case": case, "a": a, "b": b,
        "median_a_s": statistics.median(t[0] for t in times),
        "median_b_s": statistics.median(t[1] for t in times),
        "ratio": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
        "goal": GOALS.get(goal_key), "repeats": len(times), "short": short or case,
        **(extra or {}),
    }


def record_reps(records, part, case, times, **extra):
    for rep, (t_a, t_b, *_) in enumerate(times):
        records.append({"part": part, "case": case, "repetition": rep, "seconds_a": t_a,
                        "seconds_b": t_b, "ratio": t_a / t_b, **extra})


def compare(args, records, part, case, fns, labels, goal_key=None, short=None, warmup=True,
            **extra):
    """One line of (a)-(c): the functions ``fns`` (A, B) timed in turn, recorded, summed up.

    ``labels`` are the names of A and B; ``extra`` goes into every repetition's record.
    """
    print(f"({part}) {case}", flush=True)
    times = paired(*fns, args.repeats, args.device, warmup=warmup, label=f"({part})")
    record_reps(records, part, case, times, **extra)
    return summary_row(part, case, *labels, times, goal_key, short=short)


def part_a(args, records):
    rows = []
    n = args.predict_rows
    for task in ("regressor", "classifier"):
        X, y = (regression_data if task == "regressor" else classification_data)(n)
        X_fit, y_fit = X[:2000], y[:2000]
        est = estimator(task, args.device, max_epochs=1, random_state=0).fit(X_fit, y_fit)
        module = est.net_.module_
        method = est.predict if task == "regressor" else est.predict_proba
        case = f"{task} `{method.__name__}`, {n:,} x 50"
        # The warm-up, and the check that both compute the same outputs.
        expected = raw_forward(module, X, args.device, softmax=task == "classifier")
        if task == "regressor":  # predict returns target units: the network's are standardized
            expected = expected * y_fit.std(axis=0) + y_fit.mean(axis=0)
        # Unclipped, to compare the outputs: the default clips the rows that lie beyond the
        # training range (of 2,000 rows here); the timing below is of the default.
        est.set_params(clip_inputs=False)
        np.testing.assert_allclose(method(X), expected, rtol=1e-4, atol=1e-5)
        est.set_params(clip_inputs=True)

        def library(rep, method=method, X=X):
            method(X)  # the outputs are dropped: not kept across repetitions

        def reference(rep, X=X, task=task, module=module):
            raw_forward(module, X, args.device, softmax=task == "classifier")

        rows.append(compare(args, records, "a", case, (library, reference),
                            (method.__name__, f"chunked forward ({RAW_CHUNK:,} rows)"), "a",
                            short=f"{method.__name__} / raw forward, {task}", warmup=False,
                            n_rows=n))
        if task == "regressor":
            rows.append(std_cost(args, records, est, X[:STD_ROWS]))
        del X, y
    return rows


def std_cost(args, records, est, X):
    """(a), no goal: ``predict(X, return_std=True)`` against ``predict(X)``."""
    case = f"regressor `predict(return_std=True)`, {len(X):,} x 50"

    def with_std(rep):
        est.predict(X, return_std=True)  # the outputs are dropped, as in the lines above

    def without(rep):
        est.predict(X)

    return compare(args, records, "a", case, (with_std, without),
                   ("predict, return_std=True", "predict"),
                   short="predict with std / predict, regressor", n_rows=len(X))


def small_fit_data(task):
    if task == "classifier":
        return digits_data()
    return regression_data(1000)


def fit_case(args, task):
    """How the lines of (b) and (c) name their data."""
    data = "1,000 digits" if task == "classifier" else "1,000 x 50, 7 targets"
    return f"{task}, {data}, {args.fit_epochs} epochs"


def fitter(args, task, X, y, plain=False, fast_engine=True, **params):
    """A function of the repetition that fits on (X, y) and returns the fitted estimator,
    or fits the plain loop.

    ``fast_engine=False`` fits with the library's fast training engine switched off.
    """
    def fit(rep):
        if plain:
            return plain_fit(X, y, task, args.fit_epochs, rep, args.device)
        est = estimator(task, args.device, max_epochs=args.fit_epochs, random_state=rep,
                        **params)
        if fast_engine:
            return est.fit(X, y)
        with sk_adareg.config_context(fast_engine=False):
            return est.fit(X, y)
    return fit


def part_b(args, records):
    rows = []
    for task in ("classifier", "regressor"):
        X, y = small_fit_data(task)
        case = fit_case(args, task)
        sizes = {"n_rows": len(X), "epochs": args.fit_epochs}
        rows.append(compare(args, records, "b", case,
                            (fitter(args, task, X, y, reg_lambda=0.0, adareg_layers="last"),
                             fitter(args, task, X, y, plain=True)),
                            ("fit, reg_lambda=0", "plain PyTorch loop"), "b",
                            short=f"fit reg_lambda=0 / plain loop, {task}", **sizes))
        rows.append(compare(args, records, "b", f"{case}: the fast training engine",
                            (fitter(args, task, X, y, reg_lambda=0.0, adareg_layers="last"),
                             fitter(args, task, X, y, fast_engine=False, reg_lambda=0.0,
                                    adareg_layers="last")),
                            ("fit, reg_lambda=0", "the same fit, fast_engine=False"),
                            short=f"fit / fit with fast_engine=False, {task}", **sizes))
    return rows


def against_no_prior(args, records, task, X, y, label, fit, goal_key=None):
    """A line of (c): ``fit`` (a :func:`fitter`) against the same fit with ``reg_lambda=0``."""
    return compare(args, records, "c", f"{fit_case(args, task)}: {label}",
                   (fit, fitter(args, task, X, y, reg_lambda=0.0, adareg_layers="last")),
                   (f"fit, {label}", "fit, reg_lambda=0"), goal_key,
                   short=f"{label} / reg_lambda=0, {task}", n_rows=len(X),
                   epochs=args.fit_epochs)


def part_c(args, records, auto_missing):
    rows = []
    for task in ("classifier", "regressor"):
        X, y = small_fit_data(task)
        for label, params, goal in PRIOR_CASES:
            if isinstance(params.get("reg_lambda"), str) and auto_missing:
                continue
            if label in REGRESSOR_ONLY and task != "regressor":
                continue
            rows.append(against_no_prior(args, records, task, X, y, label,
                                         fitter(args, task, X, y, **params), goal))
    return rows


def part_e(args, records):
    """(e) The default fit (``reg_lambda="auto"``) against a fixed strength, same layers."""
    rows = []
    for task in ("classifier", "regressor"):
        X, y = small_fit_data(task)
        case = f"{fit_case(args, task)}: the default"
        rows.append(compare(args, records, "e", case,
                            (fitter(args, task, X, y), fitter(args, task, X, y, **FIXED_ALL)),
                            ("fit, defaults", "fit, 3e-3 on all layers"), "e",
                            short=f"default / fixed strength, {task}", n_rows=len(X),
                            epochs=args.fit_epochs))
    return rows


def part_d(args, records, tmp):
    rows, memory = [], []
    for task in ("classifier", "regressor"):
        X_all, y_all = (classification_data if task == "classifier"
                        else regression_data)(max(args.sizes))
        for n in args.sizes:
            X, y = X_all[:n], y_all[:n]
            epochs = args.epochs_at[n]
            case = f"{task}, {n:,} rows"
            print(f"(d) {case}, {epochs} epochs", flush=True)
            durs = []

            def fit_adareg(rep, X=X, y=y, epochs=epochs, task=task, durs=durs):
                est = estimator(task, args.device, max_epochs=epochs, random_state=rep,
                                **FIXED_LAST).fit(X, y)
                durs.append(statistics.median(est.history_[:, "dur"]))
                return est.n_iter_

            def fit_sklearn(rep, X=X, y=y, epochs=epochs, task=task):
                return sklearn_mlp(task, epochs, rep).fit(X, y).n_iter_

            def fit_plain(rep, X=X, y=y, epochs=epochs, task=task):
                plain_fit(X, y, task, epochs, rep, args.device)
                return epochs

            # For scale, the plain PyTorch loop of (b) too, up to plain_max_rows.
            fns = [fit_adareg, fit_sklearn] + [fit_plain] * (n <= args.plain_max_rows)
            # The first size warms all up; a warm-up fit at 1M rows would cost minutes.
            times = interleaved(fns, args.epoch_repeats, args.device,
                                warmup=n == args.sizes[0], label="(d)")
            assert all(out == epochs for rep in times for _, out in rep), "early stop"
            durs = durs[-len(times):]
            per_epoch = [(rep[0][0] / epochs, rep[1][0] / epochs) for rep in times]
            plain = [rep[2][0] / epochs for rep in times] if len(fns) == 3 else None
            record_reps(records, "d", case, per_epoch, n_rows=n, epochs=epochs)
            for k, (r, d) in enumerate(zip(records[-len(times):], durs, strict=True)):
                r["adareg_epoch_dur_s"] = d
                r["plain_s_per_epoch"] = plain[k] if plain else None
            rows.append(summary_row(
                "d", case, "AdaReg (3e-3, last layer), s/epoch", "scikit-learn MLP, s/epoch",
                per_epoch,
                f"d_{n}", {"task": task, "n_rows": n, "epochs": epochs,
                           "adareg_epoch_dur_s": statistics.median(durs),
                           "plain_s": statistics.median(plain) if plain else None,
                           "plain_ratio": statistics.median(
                               p / b for p, (_, b) in zip(plain, per_epoch, strict=True))
                           if plain else None},
                short=f"per epoch AdaReg / sklearn, {task}, {n:,} rows"))
            if not args.no_memory:
                path = Path(tmp) / f"{task}_{n}.npz"
                np.savez(path, X=X, y=y)
                for library in ("adareg", "sklearn"):
                    mem = memory_in_subprocess(args, path, task, library, epochs)
                    mem.update(task=task, n_rows=n, library=library, epochs=epochs)
                    memory.append(mem)
                    print(f"  memory {library}: {mem}", flush=True)
                path.unlink()
        del X_all, y_all
    return rows, memory


# -- peak memory, in a fresh process per configuration ----------------------------

def _status_kib(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


def memory_worker(spec):
    """One fit in this (fresh) process; prints its peak memory as JSON."""
    torch.set_num_threads(spec["threads"])
    with threadpool_limits(spec["threads"]), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = np.load(spec["path"])
        X, y = data["X"], data["y"]
        def make(epochs):
            if spec["library"] == "adareg":
                return estimator(spec["task"], spec["device"], max_epochs=epochs,
                                 random_state=0)
            return sklearn_mlp(spec["task"], epochs, 0)

        # One tiny fit first: the libraries' one-time lazy initialization is not the fit's.
        make(1).fit(X[:200], y[:200])
        model = make(spec["epochs"])
        cuda = torch.device(spec["device"]).type == "cuda"
        if cuda:
            torch.cuda.init()
            torch.cuda.reset_peak_memory_stats()
        before = _status_kib("VmRSS")
        try:  # Linux >= 4.0: reset the peak resident set size to the current one
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            method = "VmHWM after resetting it with /proc/self/clear_refs"
        except OSError:
            method = "ru_maxrss (includes loading the data)"
        model.fit(X, y)
        peak = _status_kib("VmHWM") if method.startswith("VmHWM") else (
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    out = {"rss_before_fit_mib": before / 1024, "peak_rss_mib": peak / 1024,
           "fit_extra_mib": (peak - before) / 1024, "method": method,
           "data_mib": (X.nbytes + y.nbytes) / 2**20}
    if cuda:
        out["cuda_peak_allocated_mib"] = torch.cuda.max_memory_allocated() / 2**20
    print(json.dumps(out))


def memory_in_subprocess(args, path, task, library, epochs):
    spec = {"path": str(path), "task": task, "library": library, "epochs": epochs,
            "device": args.device, "threads": args.threads}
    env = {**os.environ, **{k: str(args.threads) for k in (
        "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}}
    done = subprocess.run([sys.executable, __file__, "--memory-worker", json.dumps(spec)],
                          capture_output=True, text=True, env=env, check=False)
    if done.returncode:
        raise RuntimeError(f"memory worker failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- report ---------------------------------------------------------------------------

def fmt_ratio(row):
    return f"{row['ratio']:.2f}", f"{row['ratio_min']:.2f}-{row['ratio_max']:.2f}"


def verdict(row):
    if row["goal"] is None:
        return "-", "-"
    met = "yes" if row["ratio"] <= row["goal"] else "**no**"
    if met == "yes" and row["ratio_max"] > row["goal"]:
        met = "yes (median; range crosses)"
    return f"<= {row['goal']:g}", met


def library_state():
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "sk_adareg"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown commit"
    return f"commit {head}" + (" with uncommitted changes in `sk_adareg/`" if dirty else "")


def ratio_table(rows):
    """The table of the lines of (a)-(c), one per row, or "" without any."""
    lines = ["| part | case | A | B | median A, s | median B, s | A/B median | A/B range "
             "| goal | met |", "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        if row["part"] == "d":
            continue
        goal, met = verdict(row)
        lines.append(f"| ({row['part']}) | {row['case']} | {row['a']} | {row['b']} "
                     f"| {row['median_a_s']:.3f} | {row['median_b_s']:.3f} "
                     f"| {' | '.join(fmt_ratio(row))} | {goal} | {met} |")
    return "\n".join(lines) if len(lines) > 2 else ""


def run_description(args, loads, wall, state):
    """The report's first paragraph: the library, the device, the load and the run's time."""
    return f"""\
Library: sk_adareg at {state} (at the start). Device `{args.device}`, {args.threads} torch
thread(s) (numpy/BLAS limited to the same). Load average (1 min) at the start and the end:
{loads[0]:.2f} and {loads[1]:.2f} on {os.cpu_count()} cores. Whole run: {wall / 60:.1f} min.
"""


def report(args, name, rows, memory, auto_missing, loads, wall, state):
    table = ratio_table(rows)
    mem = {(m["task"], m["n_rows"], m["library"]): m for m in memory}
    d_lines = ["| task | rows | epochs | AdaReg s/epoch (fit / epochs) | AdaReg epoch `dur` "
               "| sklearn s/epoch | ratio median | ratio range | goal | met "
               "| plain loop s/epoch (/ sklearn) "
               "| peak RSS AdaReg, MiB (fit's extra) | peak RSS sklearn, MiB (fit's extra) |",
               "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        if row["part"] != "d":
            continue
        goal, met = verdict(row)
        plain = ("-" if row["plain_s"] is None else
                 f"{row['plain_s']:.4f} ({row['plain_ratio']:.2f})")
        cells = []
        for library in ("adareg", "sklearn"):
            m = mem.get((row["task"], row["n_rows"], library))
            cells.append("-" if m is None else
                         f"{m['peak_rss_mib']:.0f} (+{m['fit_extra_mib']:.0f})"
                         + (f", CUDA {m['cuda_peak_allocated_mib']:.0f}"
                            if "cuda_peak_allocated_mib" in m else ""))
        d_lines.append(
            f"| {row['task']} | {row['n_rows']:,} | {row['epochs']} | {row['median_a_s']:.4f} "
            f"| {row['adareg_epoch_dur_s']:.4f} | {row['median_b_s']:.4f} "
            f"| {' | '.join(fmt_ratio(row))} | {goal} | {met} | {plain} | {' | '.join(cells)} |")
    method = memory[0]["method"] if memory else "not measured (--no-memory)"
    auto_line = ("" if not auto_missing else
                 f'\n`reg_lambda="auto"` is absent from the estimators here ({auto_missing}); '
                 "its line in (c) is one entry of `PRIOR_CASES` and runs once it exists.\n")
    body = run_description(args, loads, wall, state) + f"""
Every ratio is A / B of one repetition, the two timed back to back in one process (A, B,
A, B, ...), after one untimed warm-up of each (in (d), at the first size only);
"median" and "range" are over the {args.repeats} repetitions of (a)-(c) and the
{args.epoch_repeats} of (d). Fit times include everything `fit` does (validation, the
conversion to tensors, the end-of-fit precision update and, for the regressor, its
end-of-fit Laplace posterior); the plain loop includes its own conversion to tensors and
module construction.
"""
    if table:
        body += f"""
## (a)-(c): predict against a raw forward, fit against a plain loop, the prior's cost

{table}
{auto_line}"""
    if len(d_lines) > 2:
        body += f"""
## (d): time per epoch against scikit-learn's MLP, and peak memory

AdaReg at a fixed strength (`reg_lambda=3e-3` on the last layer, the old default) against
`MLPClassifier`/`MLPRegressor` (`solver="adam"`, its default `alpha=1e-4`), both
hidden {HIDDEN}, batch {BATCH}, learning rate {LR:g}, synthetic data with 50 features
(7 classes / 7 targets), float32 inputs. Seconds per epoch = fit time / epochs (so setup
and, for the regressor, the end-of-fit posterior count); "epoch `dur`" is skorch's own
per-epoch record (the epochs alone, median). "Plain loop" is the PyTorch loop of (b) on the
same data, timed in the same rotation (up to {args.plain_max_rows:,} rows), and its ratio to
scikit-learn: what PyTorch itself costs per batch of 64. Peak memory: one fit in a fresh
process per configuration ({method}), after loading the data and one 200-row warm-up fit of
the same library (its one-time lazy initialization); "+" is the peak minus the resident size
just before `fit` (the data, Python, torch and scikit-learn already loaded).

{chr(10).join(d_lines)}
"""
    write_report(name, body)


def plot(name, rows):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d_rows = [r for r in rows if r["part"] == "d"]
    if d_rows:
        fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.5),
                                          gridspec_kw={"width_ratios": [1.3, 1]})
    else:
        fig, left = plt.subplots(figsize=(8, 5.5))
    ratio_rows = [r for r in rows if r["part"] != "d" or r["n_rows"] == 100_000]
    ys = np.arange(len(ratio_rows))[::-1]
    for y, row in zip(ys, ratio_rows, strict=True):
        left.errorbar(row["ratio"], y, xerr=[[row["ratio"] - row["ratio_min"]],
                                             [row["ratio_max"] - row["ratio"]]],
                      fmt="o", color="C0", capsize=3)
        if row["goal"] is not None:
            left.plot(row["goal"], y, "|", color="C3", markersize=14, markeredgewidth=2)
    left.axvline(1.0, color="grey", lw=0.8)
    left.set_yticks(ys, [f"({r['part']}) {r['short']}" for r in ratio_rows], fontsize=8)
    left.set_xscale("log")
    left.set_xlabel("A / B (median, min-max over repetitions); red bar: the issue's goal")
    left.set_title("Paired ratios")
    for task, marker in (("classifier", "o"), ("regressor", "s")) if d_rows else ():
        d = [r for r in d_rows if r["task"] == task]
        if not d:
            continue
        n = [r["n_rows"] for r in d]
        right.loglog(n, [r["median_a_s"] for r in d], marker=marker, color="C0",
                     label=f"AdaReg {task}")
        right.loglog(n, [r["median_b_s"] for r in d], marker=marker, color="C1", ls="--",
                     label=f"scikit-learn MLP {task}")
    if d_rows:
        right.set_xlabel("training rows")
        right.set_ylabel("seconds per epoch (median)")
        right.set_title("Per-epoch time, batch 64")
        right.legend(fontsize=8)
        right.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    path = RESULTS / f"{name}.png"
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def write_csv(path, records):
    import pandas as pd

    pd.DataFrame(records).to_csv(path, index=False)
    print(f"wrote {path}")


# -- main ---------------------------------------------------------------------------

def timing_parser(description, default_name):
    """The options of a timing script: device, threads, quick, repetitions, name."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (and the BLAS threads of numpy/scikit-learn)")
    parser.add_argument("--quick", action="store_true", help="a ~2 minute smoke run")
    parser.add_argument("--repeats", type=int, default=7, help="repetitions of (a)-(c)")
    parser.add_argument("--name", help=f"results file name (default {default_name}"
                                       "[_cuda][_quick])")
    return parser


def sized(args):
    """``args`` with the sizes and epochs of a quick or a full run."""
    if args.quick:
        args.predict_rows, args.fit_epochs = 200_000, 10
        args.sizes, args.epochs_at = [1_000, 10_000], {1_000: 5, 10_000: 2}
        args.repeats = min(args.repeats, 5)
    else:
        args.predict_rows, args.fit_epochs = 1_000_000, 30
        args.sizes = [1_000, 10_000, 100_000, 1_000_000]
        args.epochs_at = {1_000: 20, 10_000: 5, 100_000: 3, 1_000_000: 2}
    return args


def run_name(args, default_name):
    """The results' file name: ``--name``, or the default with ``_cuda`` and ``_quick``."""
    return args.name or default_name + (
        "_cuda" if torch.device(args.device).type == "cuda" else "") + (
        "_quick" if args.quick else "")


def arguments():
    parser = timing_parser(__doc__.splitlines()[0], "speed")
    parser.add_argument("--epoch-repeats", type=int, default=5, help="repetitions of (d)")
    parser.add_argument("--parts", default="abcde", help="which parts to run, e.g. ab")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory subprocesses")
    parser.add_argument("--plain-max-rows", type=int, default=100_000,
                        help="in (d), time the plain PyTorch loop up to this many rows")
    parser.add_argument("--memory-worker", help=argparse.SUPPRESS)
    args = sized(parser.parse_args())
    if args.quick:
        args.epoch_repeats = min(args.epoch_repeats, 5)
    return args


def main():
    args = arguments()
    if args.memory_worker:
        memory_worker(json.loads(args.memory_worker))
        return
    if torch.device(args.device).type == "cuda" and not torch.cuda.is_available():
        sys.exit(f"--device {args.device}: CUDA is not available here")
    torch.set_num_threads(args.threads)
    name = run_name(args, "speed")
    print(f"{name}: {platform.node()}, device {args.device}, {args.threads} thread(s)",
          flush=True)
    started, loads, state = time.perf_counter(), [os.getloadavg()[0]], library_state()
    auto_missing = auto_support()
    print(f'reg_lambda="auto": {"available" if auto_missing is None else auto_missing}')
    records, rows, memory = [], [], []
    with threadpool_limits(args.threads), warnings.catch_warnings(), \
            tempfile.TemporaryDirectory() as tmp:
        # scikit-learn's ConvergenceWarning after a few epochs; the collapse warning.
        warnings.simplefilter("ignore")
        if "a" in args.parts:
            rows += part_a(args, records)
        if "b" in args.parts:
            rows += part_b(args, records)
        if "c" in args.parts:
            rows += part_c(args, records, auto_missing)
        if "d" in args.parts:
            d_rows, memory = part_d(args, records, tmp)
            rows += d_rows
        if "e" in args.parts:
            rows += part_e(args, records)
    loads.append(os.getloadavg()[0])
    RESULTS.mkdir(exist_ok=True)
    write_csv(RESULTS / f"{name}.csv", records)
    if memory:
        write_csv(RESULTS / f"{name}_memory.csv", memory)
    report(args, name, rows, memory, auto_missing, loads, time.perf_counter() - started,
           state)
    plot(name, rows)


if __name__ == "__main__":
    main()
