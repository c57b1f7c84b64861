"""Data-parallel training of the AdaReg nets with accelerate, on CPU processes.

``torchrun`` starts two gloo processes on 127.0.0.1 that run ``_accelerate_fit.py``;
every run has a timeout, after which its whole process group is killed.
"""

import importlib
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("accelerate")

from accelerate import Accelerator

from sk_adareg.distributed import AccelerateMixin, unwrap
from sk_adareg.net import AdaRegNeuralNetRegressor

TESTS_DIR = Path(__file__).resolve().parent
SCRIPT = TESTS_DIR / "_accelerate_fit.py"
sys.path.insert(0, str(TESTS_DIR))
_fit = importlib.import_module("_accelerate_fit")
TIMEOUT = 240


def free_ports(n):
    """``n`` distinct free TCP ports on 127.0.0.1."""
    sockets = []
    try:
        for _ in range(n):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def run_bounded(args, timeout=TIMEOUT):
    """Run ``args`` in a new process group, killed whole after ``timeout`` seconds."""
    # CPU processes only: with a GPU visible, accelerate and torchrun would place the
    # processes on it, which these gloo tests are not about.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    if "lo" in {name for _, name in socket.if_nameindex()}:
        env["GLOO_SOCKET_IFNAME"] = "lo"  # gloo's traffic stays on the loopback interface
    proc = subprocess.Popen(args, cwd=TESTS_DIR, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        pytest.fail(f"{args} did not end within {timeout} s:\n{output[-4000:]}")
    return proc.returncode, output


def torchrun(out_dir, *options, nproc=2):
    master, store = free_ports(2)
    return run_bounded(
        [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}",
         "--nnodes=1", "--master_addr=127.0.0.1", f"--master_port={master}", str(SCRIPT),
         str(out_dir), f"--store-port={store}", *options])


def load(path):
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(scope="module")
def two_ranks_and_one(tmp_path_factory):
    """The fit on two processes (one file per rank) and the same fit in one process."""
    two, one = tmp_path_factory.mktemp("two"), tmp_path_factory.mktemp("one")
    code, output = torchrun(two)
    assert code == 0, output[-4000:]
    code, output = run_bounded([sys.executable, str(SCRIPT), str(one)])
    assert code == 0, output[-4000:]
    return [load(two / f"rank{r}.npz") for r in range(2)], load(one / "rank0.npz")


def test_two_processes_end_with_the_same_weights_precisions_and_history(two_ranks_and_one):
    (rank0, rank1), _ = two_ranks_and_one
    assert int(rank0["world_size"]) == int(rank1["world_size"]) == 2
    precisions = [key for key in rank0 if key.startswith(("row ", "column "))]
    assert len(precisions) == 4  # adareg_layers="all": two weights, two precisions each
    for key in rank0:
        np.testing.assert_array_equal(rank0[key], rank1[key], err_msg=key)
    # The precisions moved away from their start, the identity, within [u, v].
    for key in precisions:
        eigenvalues = np.linalg.eigvalsh(rank0[key])
        assert not np.allclose(rank0[key], np.eye(len(rank0[key]))), key
        assert eigenvalues.min() >= 0.1 - 1e-9 and eigenvalues.max() <= 10 + 1e-9, key
    # Predictions are complete: every sample, gathered from both processes.
    assert rank0["predict"].shape == (_fit.N_SAMPLES, _fit.N_TASKS)


def test_two_processes_train_like_one(two_ranks_and_one):
    (rank0, _), single = two_ranks_and_one
    assert int(single["world_size"]) == 1
    # Same global batches: the losses, weights and precisions agree up to round-off.
    for key in single.keys() - {"world_size"}:
        np.testing.assert_allclose(rank0[key], single[key], rtol=1e-3, atol=1e-5,
                                   err_msg=key)
    # The loss fell: the comparison is of a fit, not of two untrained nets.
    assert single["train_data_loss"][-1] < 0.8 * single["train_data_loss"][0]


def test_a_diverging_process_fails_every_process(tmp_path):
    code, output = torchrun(tmp_path, "--diverge-rank=1", "--max-epochs=3")
    assert code != 0, output[-4000:]
    for rank in range(2):
        message = (tmp_path / f"rank{rank}.TrainingDivergedError").read_text()
        assert "became NaN or infinite at epoch 1" in message
    assert not list(tmp_path.glob("*.npz"))


@pytest.mark.parametrize("reg_lambda", ["evidence", "loo"])
def test_learned_strengths_are_refused_in_data_parallel_training(tmp_path, reg_lambda):
    code, output = torchrun(tmp_path, f"--reg-lambda={reg_lambda}", "--max-epochs=2")
    assert code != 0, output[-4000:]
    for rank in range(2):
        message = (tmp_path / f"rank{rank}.ValueError").read_text()
        assert "data-parallel" in message and f"reg_lambda={reg_lambda!r}" in message


def test_single_process_accelerator_leaves_priors_and_criterion_unwrapped():
    class Net(AccelerateMixin, AdaRegNeuralNetRegressor):
        pass

    X, Y = _fit.make_data()
    net = Net(_fit.make_module(), accelerator=Accelerator(cpu=True), max_epochs=4,
              cov_update_every=2, train_split=None, verbose=0)
    net.fit(X, Y)
    assert type(net.priors_).__name__ == "PriorCollection"
    assert isinstance(net.criterion_, torch.nn.MSELoss)
    assert unwrap(net.module_) is net.module_
    assert net.history[-1, "cov_update"]
    assert not np.allclose(net.priors_["2.weight"].row_precision.numpy(), np.eye(_fit.N_TASKS))
    assert net.predict(X).shape == (_fit.N_SAMPLES, _fit.N_TASKS)


def test_unwrap_reaches_the_module_inside_data_parallel_wrappers():
    module = torch.nn.Linear(3, 2)
    assert unwrap(torch.nn.DataParallel(torch.nn.DataParallel(module))) is module
    assert unwrap(module) is module
