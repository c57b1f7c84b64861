"""How the defaults were chosen: AdaReg's strength swept on both data sets, untuned.

Same splits, networks and repetitions as ``sarcos.py`` and ``digits.py``; no
cross-validation: every setting is fitted as is and compared, split by split,
with no regularization. The defaults must never be clearly worse than no
regularization while still changing the weights. The last row is the paper's
prior at the strength that collapses the last layer.

Run from the repository root::

    python benchmarks/defaults.py

Prints tables and writes ``benchmarks/results/defaults_{sarcos,digits}.csv`` and
``benchmarks/results/defaults.md``.
"""

import digits
import sarcos
from _common import write_report
from _protocol import arguments, mean_std_table, paired_difference_table, run
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from sk_adareg import AdaRegClassifier, AdaRegMultiTaskRegressor

SETTINGS = {
    "none": ({"reg_lambda": 0.0}, {}),
    **{f"unit_mean, λ={lam:g}": ({"reg_lambda": lam}, {})
       for lam in (3e-3, 1e-2, 3e-2, 1e-1)},
    "paper's prior, λ=1e-2, u=1e-3, v=1e3": (
        {"reg_lambda": 1e-2, "precision_scale": "learned", "u": 1e-3, "v": 1e3}, {}),
}


def main():
    args = arguments(__doc__, sizes=None)

    X, Y = sarcos.load(sarcos.SHARED)
    studies = {
        "sarcos": (Pipeline([("scale", StandardScaler()),
                             ("net", AdaRegMultiTaskRegressor(hidden_layer_sizes=(256, 100)))]),
                   list(sarcos.splits(X, Y, sarcos.SIZES, args.repetitions)),
                   "mean explained variance"),
        "digits": (AdaRegClassifier(hidden_layer_sizes=(100,)),
                   list(digits.splits(digits.SIZES, args.repetitions)), "test accuracy"),
    }
    sections = []
    order = list(SETTINGS)
    for name, (base, splits, score) in studies.items():
        results = run(f"defaults_{name}", base, SETTINGS, splits, args.n_jobs)
        sections += [
            f"## {name}: {score}, difference with no regularization (paired)",
            paired_difference_table(results, "none", order),
            f"## {name}: stable rank of the last layer",
            mean_std_table(results, "stable_rank", order, digits=2),
            f"## {name}: spectral norm of the last layer",
            mean_std_table(results, "spectral_norm", order, digits=3),
        ]
    body = "\n\n".join(sections)
    print(body)
    write_report("defaults", body)


if __name__ == "__main__":
    main()
