"""Helpers shared by the benchmark scripts: where results go and what machine made them."""

import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy
import sklearn
import skorch
import torch
from joblib import Parallel

RESULTS = Path(__file__).parent / "results"
"""The product benchmarks' results (the studies read some of them)."""
STUDY_RESULTS = Path(__file__).parent / "studies" / "results"
"""The studies' results."""
output = RESULTS
"""Where :func:`write_report` and :func:`write_study` write: ``studies/_parent.py`` makes it
:data:`STUDY_RESULTS` for a study."""


def _cpu_model():
    """The CPU's model name and the vector instructions torch uses, or "" where unknown."""
    name = ""
    try:
        with open("/proc/cpuinfo") as f:
            name = next((line.split(":", 1)[1].strip() for line in f
                         if line.startswith("model name")), "")
    except OSError:
        pass
    try:  # torch >= 2.1
        name += f" ({torch.backends.cpu.get_cpu_capability()} kernels)"
    except AttributeError:
        pass
    return name.strip()


def machine_description():
    """One line naming the machine and the library versions."""
    # The CPU family changes the last digits of the fits and every timing.
    return (
        f"{platform.machine()} {_cpu_model() or platform.processor() or ''} "
        f"{os.cpu_count()} CPU cores, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads"
        f"{', CUDA ' + torch.cuda.get_device_name() if torch.cuda.is_available() else ''}), "
        f"skorch {skorch.__version__}, scikit-learn {sklearn.__version__}, "
        f"numpy {np.__version__}, scipy {scipy.__version__}, Python {platform.python_version()}"
    ).replace("  ", " ")


def write_report(name, body):
    """Write ``<output>/<name>.md`` with the command line and the machine, then the body."""
    output.mkdir(exist_ok=True)
    command = "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])
    text = (f"Command: `{command}`\n\nMachine: {machine_description()}\n\n{body.rstrip()}\n")
    path = output / f"{name}.md"
    path.write_text(text)
    print(f"\nwrote {path}")
    return path


def write_study(name, body, results):
    """Print a study's report, write it (:func:`write_report`) and its rows to ``<name>.csv``."""
    print(body)
    write_report(name, body)
    results.to_csv(output / f"{name}.csv", index=False)


def completed(path):
    """The rows of a resumable results CSV, and their ``(set, method, rep)`` keys."""
    done = pd.read_csv(path) if path.exists() else pd.DataFrame(columns=["set", "method", "rep"])
    return done.to_dict("records"), set(zip(done["set"], done["method"], done["rep"],
                                            strict=True))


def run_and_save(calls, rows, path, n_jobs, describe):
    """Run joblib ``calls`` in parallel; each result (a row, or a list of rows) joins
    ``rows`` and the CSV at once.

    The CSV is rewritten after every fit, so that a stopped run resumes where it stopped;
    ``describe(row)`` is the progress line of a result.
    """
    start = time.perf_counter()
    for i, result in enumerate(Parallel(n_jobs=n_jobs, return_as="generator_unordered")(calls)):
        new = result if isinstance(result, list) else [result]  # a call may score twice
        rows += new
        pd.DataFrame(rows).to_csv(path, index=False)
        for row in new:
            print(f"[{i + 1}/{len(calls)} {time.perf_counter() - start:5.0f}s] "
                  f"{describe(row)}", flush=True)
    return pd.DataFrame(rows)


def sync(device):
    """Wait for the device's queued work, so that a clock reads what it cost."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device):
    """Seconds ``fn()`` took on ``device``, and what it returned."""
    sync(device)
    start = time.perf_counter()
    out = fn()
    sync(device)
    return time.perf_counter() - start, out
