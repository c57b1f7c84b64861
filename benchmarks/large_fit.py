"""Large data, few epochs: what the prior costs per step, and whether short fits adapt.

Synthetic regression, 200,000 rows x 50 inputs -> 7 targets (a 30,000-row test part from
the same distribution), network (256, 256), batch 256, 3 epochs, on ``--device``. Fits
``AdaRegMultiTaskRegressor`` with ``reg_lambda=0``, a fixed 3e-3 on the last layer and on
all layers, ``"evidence"`` on all layers (a short fit: its strengths are updated during
training, from a subset of the rows), and the defaults (``"auto"``: the cross-validated
choice), each against a plain PyTorch loop with the same network, optimizer, batches and
epochs on the same device (paired ratios: A, B, A, B, ... after a warm-up). Reports fit
seconds, the ratio to the plain loop, the test R² and the strengths in force at the end.

Run from the repository root::

    python benchmarks/large_fit.py --device cuda          # the GPU check's large fit
    python benchmarks/large_fit.py --rows 20000 --repeats 1   # a CPU-sized run

Writes ``benchmarks/results/large_fit_{device}.md``.
"""

import argparse
import statistics

import numpy as np
import torch
from _common import timed, write_report
from sklearn.datasets import make_regression
from sklearn.metrics import r2_score
from torch import nn

from sk_adareg import AdaRegMultiTaskRegressor

HIDDEN, BATCH, LR, EPOCHS = (256, 256), 256, 1e-3, 3
CASES = {
    "reg_lambda=0": {"reg_lambda": 0.0, "adareg_layers": "last"},
    "3e-3, last layer": {"reg_lambda": 3e-3, "adareg_layers": "last"},
    "3e-3, all layers": {"reg_lambda": 3e-3},
    '"evidence", all layers': {"reg_lambda": "evidence"},
    "defaults (auto)": {},
}


def data(rows, seed=0):
    X, Y = make_regression(rows + 30_000, 50, n_informative=30, n_targets=7, noise=5.0,
                           random_state=seed)
    Y = np.tanh(Y / Y.std(axis=0)) + 0.1 * np.sin(3 * X[:, :7])
    X = ((X - X.mean(axis=0)) / X.std(axis=0)).astype(np.float32)
    return X[:rows], Y[:rows], X[rows:], Y[rows:]


def plain_fit(X, Y, device, seed):
    """A plain PyTorch loop with the same network, Adam, batches and epochs."""
    torch.manual_seed(seed)
    Y = ((Y - Y.mean(axis=0)) / Y.std(axis=0)).astype(np.float32)
    layers, width = [], X.shape[1]
    for size in HIDDEN:
        layers += [nn.Linear(width, size), nn.ReLU()]
        width = size
    module = nn.Sequential(*layers, nn.Linear(width, Y.shape[1])).to(device)
    optimizer = torch.optim.Adam(module.parameters(), lr=LR)
    X_t, Y_t = torch.as_tensor(X, device=device), torch.as_tensor(Y, device=device)
    for _ in range(EPOCHS):
        order = torch.randperm(len(X_t), device=device)
        for start in range(0, len(X_t), BATCH):
            rows = order[start:start + BATCH]
            optimizer.zero_grad()
            nn.functional.mse_loss(module(X_t[rows]), Y_t[rows]).backward()
            optimizer.step()
    return module


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    X, Y, X_test, Y_test = data(args.rows)

    def estimator(params, seed):
        return AdaRegMultiTaskRegressor(hidden_layer_sizes=HIDDEN, batch_size=BATCH, lr=LR,
                                        max_epochs=EPOCHS, device=args.device,
                                        random_state=seed, **params)

    timed(lambda: plain_fit(X[:5000], Y[:5000], args.device, 0), args.device)  # warm-up
    lines = [f"{args.rows:,} training rows x 50 inputs -> 7 targets, hidden {HIDDEN}, "
             f"batch {BATCH}, {EPOCHS} epochs, device {args.device}; median over "
             f"{args.repeats} paired repetitions.", "",
             "| fit | seconds | plain loop s | ratio (range) | test R² | strengths in force |",
             "|---|---|---|---|---|---|"]
    for label, params in CASES.items():
        times, plain, est = [], [], None
        for rep in range(args.repeats):
            seconds, est = timed(lambda p=params, r=rep: estimator(p, r).fit(X, Y),
                                 args.device)
            times.append(seconds)
            plain.append(timed(lambda r=rep: plain_fit(X, Y, args.device, r),
                               args.device)[0])
        ratios = [a / b for a, b in zip(times, plain, strict=True)]
        r2 = r2_score(Y_test, est.predict(X_test))
        strengths = ", ".join(f"{k}: {v:.3g}" for k, v in est.reg_lambda_.items())
        lines.append(f"| {label} | {statistics.median(times):.2f} | "
                     f"{statistics.median(plain):.2f} | {statistics.median(ratios):.2f} "
                     f"({min(ratios):.2f}-{max(ratios):.2f}) | {r2:.4f} | {strengths} |")
        print(lines[-1], flush=True)
    device = torch.device(args.device).type
    write_report(f"large_fit_{device}", "\n".join(lines))


if __name__ == "__main__":
    main()
