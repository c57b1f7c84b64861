"""Scaling out on this machine: a search on 2 dask workers, training on 2 processes.

Run from the repository root (needs ``pip install -e ".[distributed]"``)::

    python benchmarks/scale.py

1. Wall time of a ``GridSearchCV`` over ``reg_lambda`` and ``u`` of
   ``AdaRegClassifier`` on digits, with ``n_jobs=1`` and on a dask
   ``LocalCluster`` of 2 single-threaded worker processes (joblib's dask
   backend), and whether their ``cv_results_`` are equal.
2. Training throughput of an ``AdaRegNeuralNetRegressor`` trained with
   accelerate (``sk_adareg.distributed.AccelerateMixin``) on 1 and on 2 CPU
   processes started by ``torchrun`` (gloo, one thread each), with the same
   global batch.

Prints a table and writes ``benchmarks/results/scale.md``.
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import write_report

N_TRAIN, N_FEATURES, N_TASKS, WIDTH = 16384, 64, 16, 256


def search_times(args):
    import dask
    import distributed
    import joblib
    from sklearn.datasets import load_digits
    from sklearn.model_selection import GridSearchCV

    from sk_adareg import AdaRegClassifier
    from sk_adareg.distributed import register_dask_backend

    X, y = load_digits(return_X_y=True)
    X, y = X[:args.search_samples] / 16, y[:args.search_samples]
    grid = {"reg_lambda": [1e-3, 1e-2], "u": [0.1, 0.5]}
    est = AdaRegClassifier(hidden_layer_sizes=(100,), max_epochs=args.search_epochs,
                           random_state=0)
    n_fits = 4 * 3

    def timed(n_jobs):
        start = time.perf_counter()
        search = GridSearchCV(est, grid, cv=3, n_jobs=n_jobs).fit(X, y)
        return search, time.perf_counter() - start

    register_dask_backend()
    start = time.perf_counter()
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                           host="127.0.0.1", dashboard_address=None)
    client = distributed.Client(cluster)
    startup = time.perf_counter() - start
    try:
        # The first search on dask also pays for the workers' imports of PyTorch and the
        # package. Then serial and dask searches alternate, so that both meet the same
        # load from other jobs; the best of each is reported.
        with joblib.parallel_config(backend="dask"):
            remote, cold = timed(-1)
        serial, on_dask = [], []
        for _ in range(args.repeats):
            local, seconds = timed(1)
            serial.append(seconds)
            with joblib.parallel_config(backend="dask"):
                remote, seconds = timed(-1)
            on_dask.append(seconds)
    finally:
        client.close()
        cluster.close()
    same = all(np.array_equal(local.cv_results_[k], remote.cv_results_[k])
               for k in local.cv_results_ if "time" not in k and k != "params")
    same = same and np.array_equal(local.predict(X), remote.predict(X))
    return {"n_fits": n_fits + 1, "serial": min(serial), "cold": cold, "dask": min(on_dask),
            "startup": startup,
            "same": same, "n_samples": len(X)}


# -- data-parallel training: the worker, run by torchrun -----------------------------


def train_worker(out_path, epochs, batch_size):
    import datetime

    from accelerate import Accelerator, DataLoaderConfiguration, InitProcessGroupKwargs

    from sk_adareg import AdaRegNeuralNetRegressor
    from sk_adareg.distributed import AccelerateMixin

    class Net(AccelerateMixin, AdaRegNeuralNetRegressor):
        pass

    torch.set_num_threads(1)
    accelerator = Accelerator(
        cpu=True, dataloader_config=DataLoaderConfiguration(split_batches=True),
        kwargs_handlers=[InitProcessGroupKwargs(timeout=datetime.timedelta(seconds=120))])
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N_TRAIN, N_FEATURES)).astype(np.float32)
    Y = np.tanh(X @ rng.normal(size=(N_FEATURES, N_TASKS)) / 8).astype(np.float32)
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(N_FEATURES, WIDTH), torch.nn.ReLU(),
                                 torch.nn.Linear(WIDTH, WIDTH), torch.nn.ReLU(),
                                 torch.nn.Linear(WIDTH, N_TASKS))
    net = Net(module, accelerator=accelerator, max_epochs=epochs, batch_size=batch_size,
              lr=1e-3, optimizer=torch.optim.Adam, train_split=None, verbose=0,
              callbacks__print_log__sink=print, reg_lambda=1e-3, cov_update_every=1,
              adareg_layers="all")
    net.fit(X, Y)
    if accelerator.is_main_process:
        durations = [row["dur"] for row in net.history]
        Path(out_path).write_text(json.dumps({
            "durations": durations, "train_loss": net.history[-1, "train_loss"],
            "processes": accelerator.num_processes}))


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def train_throughput(nproc, args):
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.json"
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        if "lo" in {name for _, name in socket.if_nameindex()}:
            env["GLOO_SOCKET_IFNAME"] = "lo"
        command = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}",
                   "--nnodes=1", "--master_addr=127.0.0.1", f"--master_port={free_port()}",
                   __file__, "--worker", str(out), f"--epochs={args.train_epochs}",
                   f"--batch-size={args.batch_size}"]
        subprocess.run(command, env=env, check=True, timeout=900,
                       stdout=subprocess.DEVNULL)
        result = json.loads(out.read_text())
    # The first epoch warms up (process group, allocations): left out.
    epoch = statistics.median(result["durations"][1:])
    return {"processes": nproc, "epoch": epoch, "throughput": N_TRAIN / epoch,
            "train_loss": result["train_loss"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--search-samples", type=int, default=600)
    parser.add_argument("--search-epochs", type=int, default=40)
    parser.add_argument("--train-epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=1024,
                        help="global batch, shared by the processes")
    parser.add_argument("--repeats", type=int, default=2,
                        help="alternated runs of each setting; the best is reported")
    parser.add_argument("--shared", action="store_true",
                        help="say in the report that other jobs shared the machine")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--epochs", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return train_worker(args.worker, args.epochs, args.batch_size)

    torch.set_num_threads(1)
    load_before = os.getloadavg()[0]
    search = search_times(args)
    print(search, flush=True)
    # Alternated, the best of each kept, as for the search.
    runs = [train_throughput(n, args) for _ in range(args.repeats) for n in (1, 2)]
    training = [max((run for run in runs if run["processes"] == n),
                    key=lambda run: run["throughput"]) for n in (1, 2)]
    print(training, flush=True)
    load = (f"1-minute load average {load_before:.1f} before the runs and "
            f"{os.getloadavg()[0]:.1f} after them, on {os.cpu_count()} cores")

    rows = [
        "| search (digits, " + f"{search['n_samples']} samples, {search['n_fits']} fits) "
        "| wall time, s | speed-up |",
        "|---|---|---|",
        f"| `n_jobs=1` | {search['serial']:.1f} | 1.00 |",
        f"| 2 dask workers (`LocalCluster`, 1 thread each), first search | "
        f"{search['cold']:.1f} | {search['serial'] / search['cold']:.2f} |",
        f"| 2 dask workers, workers warm | {search['dask']:.1f} | "
        f"{search['serial'] / search['dask']:.2f} |",
        f"| the cluster's start-up, not included above | {search['startup']:.1f} | |",
    ]
    rows += [
        "",
        f"| training ({N_TRAIN} samples, MLP {N_FEATURES}-{WIDTH}-{WIDTH}-{N_TASKS}, "
        f"global batch {args.batch_size}) | epoch, s (median) | samples/s | speed-up | "
        "final train loss |",
        "|---|---|---|---|---|",
    ]
    base = training[0]["throughput"]
    for run in training:
        rows.append(f"| {run['processes']} process(es), `torchrun`, gloo, 1 thread each | "
                    f"{run['epoch']:.2f} | {run['throughput']:.0f} | "
                    f"{run['throughput'] / base:.2f} | {run['train_loss']:.4f} |")
    body = "\n".join([
        f"Search: `GridSearchCV` over `reg_lambda` x `u` (4 points, 3-fold, plus the refit) "
        f"of `AdaRegClassifier(hidden_layer_sizes=(100,), max_epochs={args.search_epochs})`. "
        f"Its `cv_results_` and refitted predictions on dask equal those of `n_jobs=1`: "
        f"{'yes' if search['same'] else 'NO'}.",
        "",
        "Training: `AdaRegNeuralNetRegressor` with `sk_adareg.distributed.AccelerateMixin`, "
        "AdaReg on all three weights, precisions updated every epoch, "
        f"{args.train_epochs} epochs, the first (warm-up) left out of the median; both runs "
        "see the same global batches (`split_batches=True`).",
        "",
        f"Each setting ran {args.repeats} times, alternating with the others so that all "
        "met the same load; the tables give the best run of each (the first dask search, "
        "on fresh workers, once).",
        "",
        f"Machine load: {load}." + (
            " The cores were shared with other jobs during the runs: the processes did not "
            "have a core each, so these figures say little about an idle machine, where each "
            "process would." if args.shared else ""),
        "",
        *rows,
    ])
    print(body)
    write_report("scale", body)


if __name__ == "__main__":
    main()
