"""Time one closed-form update of the prior (Algorithm 1, lines 3-4) and its penalty.

Run from the repository root::

    python benchmarks/prior_update.py

Prints a table and writes ``benchmarks/results/prior_update.md``.
"""

import argparse
import statistics
import time

import torch
from _common import write_report

from sk_adareg import MatrixNormalPrior

SHAPES = [(7, 100), (10, 50), (100, 256), (1000, 1000), (2048, 2048)]


def median_seconds(fn, repeats):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    rows = ["| weight (p x d) | update, median s | penalty + backward, median ms |",
            "|---|---|---|"]
    for p, d in SHAPES:
        weight = torch.randn(p, d, requires_grad=True)
        prior = MatrixNormalPrior((p, d), 1e-3, 1e3)
        prior.update(weight)  # non-identity precisions for the penalty timing
        update = median_seconds(lambda: prior.update(weight), args.repeats)  # noqa: B023
        penalty = median_seconds(
            lambda: prior.penalty(weight).backward(), args.repeats)  # noqa: B023
        rows.append(f"| {p} x {d} | {update:.4f} | {1e3 * penalty:.2f} |")
        print(rows[-1], flush=True)
    body = (
        "Median wall time of `MatrixNormalPrior.update` (two float64 products, two "
        "symmetric eigendecompositions) and of one `penalty(W).backward()` in float32, "
        f"over {args.repeats} runs after a warm-up.\n\n" + "\n".join(rows)
    )
    write_report("prior_update", body)


if __name__ == "__main__":
    main()
