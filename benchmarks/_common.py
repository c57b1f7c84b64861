"""Helpers shared by the benchmark scripts: where results go and what machine made them."""

import os
import platform
import sys
from pathlib import Path

import numpy as np
import scipy
import sklearn
import skorch
import torch

RESULTS = Path(__file__).parent / "results"


def machine_description():
    """One line naming the machine and the library versions."""
    return (
        f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} CPU cores, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads"
        f"{', CUDA ' + torch.cuda.get_device_name() if torch.cuda.is_available() else ''}), "
        f"skorch {skorch.__version__}, scikit-learn {sklearn.__version__}, "
        f"numpy {np.__version__}, scipy {scipy.__version__}, Python {platform.python_version()}"
    ).replace("  ", " ")


def write_report(name, body):
    """Write ``results/<name>.md`` with the command line and the machine, then the body."""
    RESULTS.mkdir(exist_ok=True)
    command = "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])
    text = (f"Command: `{command}`\n\nMachine: {machine_description()}\n\n{body.rstrip()}\n")
    path = RESULTS / f"{name}.md"
    path.write_text(text)
    print(f"\nwrote {path}")
    return path
