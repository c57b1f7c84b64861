"""A data-parallel AdaReg fit through skorch's AccelerateMixin, run as a script.

``python -m torch.distributed.run --nproc_per_node N _accelerate_fit.py OUT_DIR [options]``
fits an :class:`~sk_adareg.net.AdaRegNeuralNetRegressor` with accelerate on N CPU
processes (gloo) and saves what each rank ends with to ``OUT_DIR/rank<R>.npz`` (or, when the fit
raises TrainingDivergedError or ValueError, the message to
``OUT_DIR/rank<R>.<error class>``, and exits with 3). Run
with plain ``python`` it fits in one process. The global batch is the same for any
number of processes (accelerate's ``split_batches``): N processes share each batch.
"""

import argparse
import datetime
import os
import sys
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator, DataLoaderConfiguration, InitProcessGroupKwargs
from skorch.history import DistributedHistory

from sk_adareg.distributed import AccelerateMixin
from sk_adareg.exceptions import TrainingDivergedError
from sk_adareg.net import AdaRegNeuralNetRegressor

N_SAMPLES, N_FEATURES, N_TASKS = 128, 8, 4


class AcceleratedRegressor(AccelerateMixin, AdaRegNeuralNetRegressor):
    """AdaReg regressor trained data-parallel by accelerate."""


def make_data(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N_SAMPLES, N_FEATURES)).astype(np.float32)
    W = rng.normal(size=(N_FEATURES, N_TASKS))
    Y = (np.tanh(X @ W) + 0.1 * rng.normal(size=(N_SAMPLES, N_TASKS))).astype(np.float32)
    return X, Y


def make_module(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(N_FEATURES, 16), torch.nn.Tanh(),
                               torch.nn.Linear(16, N_TASKS))


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--max-epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--store-port", type=int, default=None,
                        help="port of the history's TCPStore (default: MASTER_PORT + 1)")
    parser.add_argument("--reg-lambda", default="0.01")
    parser.add_argument("--diverge-rank", type=int, default=-1,
                        help="give this rank NaN targets: its loss diverges")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    # A collective that waits longer than a minute fails instead of hanging.
    accelerator = Accelerator(
        cpu=True, dataloader_config=DataLoaderConfiguration(split_batches=True),
        kwargs_handlers=[InitProcessGroupKwargs(timeout=datetime.timedelta(seconds=60))])
    history = None
    if accelerator.num_processes > 1:
        # The batch records of all processes in every process's history.
        store = torch.distributed.TCPStore(
            "127.0.0.1", args.store_port or int(os.environ["MASTER_PORT"]) + 1,
            accelerator.num_processes,
            is_master=accelerator.is_main_process, timeout=datetime.timedelta(seconds=60))
        history = DistributedHistory(store=store, rank=accelerator.process_index,
                                     world_size=accelerator.num_processes)
    try:
        return fit_and_save(args, accelerator, history)
    finally:
        if accelerator.num_processes > 1:
            # Leave together: rank 0 holds the TCPStore, and a process that exits while
            # another still talks to it (or to the process group) aborts that one.
            accelerator.wait_for_everyone()
            torch.distributed.destroy_process_group()


def fit_and_save(args, accelerator, history):
    X, Y = make_data()
    if accelerator.process_index == args.diverge_rank:
        Y = np.full_like(Y, np.nan)
    net = AcceleratedRegressor(
        make_module(), accelerator=accelerator, history=history,
        max_epochs=args.max_epochs,
        batch_size=args.batch_size, lr=args.lr, optimizer=torch.optim.Adam,
        iterator_train__shuffle=False, train_split=None, verbose=0,
        reg_lambda=(args.reg_lambda if args.reg_lambda in ("auto", "evidence", "loo")
                    else float(args.reg_lambda)),
        cov_update_every=2, adareg_layers="all",
        precision_scale="learned", u=0.1, v=10.0)
    try:
        net.fit(X, Y)
    except (TrainingDivergedError, ValueError) as exc:
        name = type(exc).__name__
        (args.out_dir / f"rank{accelerator.process_index}.{name}").write_text(str(exc))
        return 3
    out = {"predict": net.predict(X),
           "train_loss": np.array(net.history[:, "train_loss"]),
           "train_data_loss": np.array(net.history[:, "train_data_loss"]),
           "world_size": accelerator.num_processes}
    for name, prior in net.priors_.items():
        out[f"row {name}"] = prior.row_precision.numpy()
        out[f"column {name}"] = prior.column_precision.numpy()
    for name, param in net.module_.named_parameters():
        out[f"param {name}"] = param.detach().numpy()
    np.savez(args.out_dir / f"rank{accelerator.process_index}.npz", **out)


if __name__ == "__main__":
    sys.exit(main())
