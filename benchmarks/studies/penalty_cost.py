"""What does the prior cost in a fit besides its per-batch penalty step? (issue 12)

Part (c) of ``benchmarks/speed.py`` times ``fit`` with the prior against ``reg_lambda=0``.
This study splits that cost, on the same data, networks and epochs, with the same paired
timing (A, B, A, B, ... after one untimed warm-up of each):

- the last-layer and all-layer fits with the penalty's per-batch step (per weight two
  products, an inner product and the gradient's addition) replaced by a zero penalty,
  against ``reg_lambda=0``: what the precision updates, the per-epoch readings and the
  regressor's end-of-fit posterior cost;
- a table of each weight's penalty product ``Omega_r @ W @ (c Omega_c)`` against the same
  layer's products in a training step on a batch of 64, each timed alone.

It patches the library's private ``sk_adareg.prior._PenaltyStep``: a study, not a product
benchmark. The runs of these lines before they moved here are in
``benchmarks/results/speed_c.md`` (``speed.py --parts c --repeats 15 --name speed_c``).

Run from the repository root::

    python benchmarks/studies/penalty_cost.py --repeats 15   # ~2 min
    python benchmarks/studies/penalty_cost.py --quick        # under a minute

Writes ``benchmarks/studies/results/penalty_cost{_cuda}{_quick}.{md,csv}``.
"""

import os
import statistics
import sys
import time
import warnings
from unittest import mock

import _parent  # noqa: F401  (benchmarks/ on sys.path, results here)
import numpy as np
import pandas as pd
import speed
import torch
from _common import write_study
from threadpoolctl import threadpool_limits

from sk_adareg.prior import _PenaltyStep

# The fits of speed.py's (c) whose penalty step is skipped, each against reg_lambda=0.
SKIPPED_CASES = [("last layer (default)", {}), ("all layers", {"adareg_layers": "all"})]
PRODUCT_CALLS = 2000  # per timing of one product in the table


def skipped(fit, device):
    """``fit`` (a :func:`speed.fitter`) with the penalty's per-batch step a zero penalty."""
    zero = torch.zeros((), device=device)

    def run(rep):
        with mock.patch.object(_PenaltyStep, "__call__", lambda self: zero):
            est = fit(rep)
        # The mock took: the loss is the data loss, to float rounding.
        last = est.history_[-1]
        assert np.isclose(last["train_loss"], last["train_data_loss"], rtol=1e-5), last
        return est
    return run


def skipped_lines(args, records):
    rows = []
    for task in ("classifier", "regressor"):
        X, y = speed.small_fit_data(task)
        for label, params in SKIPPED_CASES:
            fit = skipped(speed.fitter(args, task, X, y, **params), args.device)
            rows.append(speed.against_no_prior(
                args, records, task, X, y, f"{label}, the penalty's step skipped", fit))
    return rows


def penalty_products(args, records):
    """Each weight's penalty product against its own products in a training step.

    Per weight of the networks of (c) with the prior on all layers (fitted for one
    epoch, so the factors are real ones): ``Omega_r @ W @ (c Omega_c)`` in the weights'
    dtype, as the training step computes it at every batch, against the products of
    the same layer in a training step on a batch of 64 (forward, the weight's
    gradient and, past the first layer, the input's gradient), each timed alone over
    ``PRODUCT_CALLS`` calls, interleaved over the repetitions.
    """
    rows = []
    for task in ("classifier", "regressor"):
        X, y = speed.small_fit_data(task)
        est = speed.estimator(task, args.device, max_epochs=1, random_state=0,
                              adareg_layers="all").fit(X, y)
        generator = torch.Generator().manual_seed(0)
        for k, (name, prior) in enumerate(est.net_.priors_.items()):
            weight = est.net_.module_.get_parameter(name).detach()
            p, d = weight.shape
            omega_r = prior.row_precision.to(weight.dtype)
            omega_c = (est.reg_lambda * prior.column_precision).to(weight.dtype)
            inputs = torch.randn(speed.BATCH, d, generator=generator).to(weight)
            grads = torch.randn(speed.BATCH, p, generator=generator).to(weight)
            bias = torch.zeros(p).to(weight)

            def penalty(rep, w=weight, r=omega_r, c=omega_c):
                for _ in range(PRODUCT_CALLS):
                    r @ w @ c

            def data(rep, w=weight, a=inputs, g=grads, b=bias, first=k == 0):
                for _ in range(PRODUCT_CALLS):
                    torch.addmm(b, a, w.t())
                    g.t().mm(a)
                    if not first:
                        g.mm(w)

            case = f"{task}: {name}, {p} x {d}"
            print(f"(c) products, {case}", flush=True)
            times = speed.paired(penalty, data, args.repeats, args.device, label="(c)")
            speed.record_reps(records, "c_products", case, times, calls=PRODUCT_CALLS)
            n_data = 2 if k == 0 else 3
            rows.append({"task": task, "weight": name, "p": p, "d": d,
                         "penalty_us": statistics.median(t[0] for t in times)
                         / PRODUCT_CALLS * 1e6,
                         "data_us": statistics.median(t[1] for t in times)
                         / PRODUCT_CALLS * 1e6,
                         "ratio": statistics.median(t[0] / t[1] for t in times),
                         "macs_penalty": p * p * d + p * d * d,
                         "macs_data": n_data * speed.BATCH * p * d, "n_data": n_data})
    return rows


def products_table(products):
    lines = ["| task | weight (p x d) | penalty product, us | the layer's products in a step, "
             "us | ratio median | multiply-adds, penalty (p^2 d + p d^2) | multiply-adds, "
             "data (k x 64 p d) |", "|---|---|---|---|---|---|---|"]
    for r in products:
        lines.append(
            f"| {r['task']} | `{r['weight']}` ({r['p']} x {r['d']}) | {r['penalty_us']:.1f} "
            f"| {r['data_us']:.1f} ({r['n_data']} products) | {r['ratio']:.2f} "
            f"| {r['macs_penalty']:,} | {r['macs_data']:,} |")
    return "\n".join(lines)


def main():
    args = speed.sized(speed.timing_parser(__doc__.splitlines()[0], "penalty_cost")
                       .parse_args())
    if torch.device(args.device).type == "cuda" and not torch.cuda.is_available():
        sys.exit(f"--device {args.device}: CUDA is not available here")
    torch.set_num_threads(args.threads)
    started, loads, state = time.perf_counter(), [os.getloadavg()[0]], speed.library_state()
    records = []
    with threadpool_limits(args.threads), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the collapse warning
        rows = skipped_lines(args, records)
        products = penalty_products(args, records)
    loads.append(os.getloadavg()[0])
    body = speed.run_description(args, loads, time.perf_counter() - started, state) + f"""
Every ratio is A / B of one repetition, the two timed back to back in one process (A, B,
A, B, ...), after one untimed warm-up of each; "median" and "range" are over the
{args.repeats} repetitions. Fit times include everything `fit` does.

## The fits with the penalty's step skipped, against `reg_lambda=0`

{speed.ratio_table(rows)}

## The penalty's products against the layer's own, batch {speed.BATCH}

Each weight of the networks with the prior on all layers: the penalty's product
`Omega_r @ W @ (c Omega_c)`, which the training step computes at every batch, against the
same layer's products in a training step on a batch of {speed.BATCH} (forward `addmm`, the
weight's gradient and, past the first layer, the input's gradient), each timed alone over
{PRODUCT_CALLS:,} calls ({args.threads} thread(s)); medians over the {args.repeats}
repetitions. The penalty's arithmetic grows as `p d (p + d)`, the data's as
`64 p d` per product: at this batch size a hidden layer's penalty is of the order of
its own products in a step, however little code surrounds it.

{products_table(products)}
"""
    write_study(speed.run_name(args, "penalty_cost"), body, pd.DataFrame(records))


if __name__ == "__main__":
    main()
