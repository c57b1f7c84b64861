"""The evidence's strengths at the noise that leave-one-out estimates (an experiment for issue 11)

On heavy-tailed targets ``reg_lambda="auto"`` fits a few extreme training targets, its
noise variances fall to the small training residuals, and the evidence, which weighs
the data by those precisions, asks for weak priors (``evidence_trace.py``). Here the
noise is taken from an estimate that does not reward fitting: after every evidence
update of ``reg_lambda="auto", adareg_layers="all"``, a callback sets each target's
noise variance to the approximate leave-one-out mean squared error (PRESS over ``n``,
Allen 1974) of the network linearized at its current weights and strengths (the
library's PRESS of ``reg_lambda="loo"``, :mod:`sk_adareg._strength._loo`, at the factor 1), then
the strengths to the maximizers of the Laplace evidence at that fixed noise, once or
three times over (the variant's rounds). The evidence still decides the strengths; only
its noise is honest about prediction. Nothing is held out; the test part is only
scored.

PRESS takes the strengths at unit noise: with noise precisions ``beta_k`` the
evidence's ``lambda_l`` is divided by ``mean(beta)`` (PRESS weighs the targets alike).

It reports the test R² per set at 60 and 200 epochs beside the best cross-validated
neural variant and the Gaussian process of ``benchmarks/results/multitarget.csv`` (60 epochs), and
each variant's fit time over the evidence's with the same epochs, paired by split.
The code lives here, not in the library: it reads the private eigenbases of
:class:`sk_adareg.laplace.KroneckerLaplace`.

Run from the repository root::

    python benchmarks/studies/loo_noise.py                  # every set, 5 repetitions
    python benchmarks/studies/loo_noise.py --repetitions 1 --sets scpf enb

Writes ``benchmarks/studies/results/loo_noise.md`` and ``.csv``.
"""

import _parent  # noqa: F401  (benchmarks/ on sys.path, results here)
import torch
from _common import write_study
from _strength_study import AfterEvidenceUpdate, comparison, comparison_lines, timed_row
from multitarget import run_over_sets

from sk_adareg._strength._evidence import prior_scale as _scale
from sk_adareg._strength._loo import _Linearized
from sk_adareg.laplace import LAMBDA_BOUNDS, KroneckerLaplace, fit_hyperparameters, kfac

# Alternations of the noise (PRESS) and the strengths (evidence) per update.
ROUNDS = {"LOO noise, 1 round": 1, "LOO noise, 3 rounds": 3}
VARIANTS = [("evidence", 60), ("LOO noise, 1 round", 60), ("evidence", 200),
            ("LOO noise, 1 round", 200), ("LOO noise, 3 rounds", 200)]


def loo_noise(module, names, laplace, X, Y):
    """Per target, PRESS over the points at the strengths and noise of ``laplace``."""
    beta = 1.0 / torch.as_tensor(laplace.noise_variance, dtype=torch.float64)
    unit = {m: max(float(lam) / float(beta.mean()), LAMBDA_BOUNDS[0])
            for m, lam in laplace.reg_lambda.items()}
    press, total = torch.zeros(len(beta), dtype=torch.float64), 0.0
    for r, leverage, w in _Linearized(module, names, laplace, lambda: [(X, Y)],
                                      unit).loo_terms([1.0]):
        press += (w[:, None] * (r[..., 0] / (1 - leverage[..., 0])) ** 2).sum(0).cpu()
        total += float(w.sum())
    return (press / total).tolist()


class LOONoise(AfterEvidenceUpdate):
    """After each evidence update, noise from PRESS and strengths from the evidence at it,
    ``rounds`` times."""

    def __init__(self, rounds):
        self.rounds = rounds

    def update(self, net, X, Y):
        module, names = net.regularized_module, net.priors_.names
        curvature = kfac(module, [(X, Y)], names, "gaussian")
        n = curvature.n_samples
        # The posterior at what the evidence update just set (in the prior's units).
        noise = net.noise_variance_
        scale = _scale("gaussian", n, noise)
        laplace = KroneckerLaplace(curvature, net.priors_, {
            m: max(c * scale, LAMBDA_BOUNDS[0]) for m, c in net.reg_lambda_.items()}, noise)
        for _ in range(self.rounds):
            noise = loo_noise(module, names, laplace, X, Y)
            laplace = fit_hyperparameters(curvature, net.priors_, dict(laplace.reg_lambda),
                                          noise, fit_noise=False, laplace=laplace)
        # The loss's units, as the library's update sets them (sk_adareg._strength._evidence).
        scale = _scale("gaussian", n, noise)
        strengths = {m: lam / scale for m, lam in laplace.reg_lambda.items()}
        net.priors_.set_strengths(strengths)
        net.reg_lambda_, net.noise_variance_ = strengths, noise
        beta = 1.0 / torch.tensor(noise, dtype=torch.float64)
        net.criterion_.target_weights.copy_(beta / beta.mean())


def run_one(name, rep, variant, data):
    criterion, _ = variant
    callbacks = [("loo_noise", LOONoise(ROUNDS[criterion]))] if criterion in ROUNDS else []
    return timed_row(name, rep, variant, data, callbacks)[1]


def caption(args):
    return (f"`reg_lambda=\"auto\"`, all layers, {args.repetitions} repetitions; the "
            "strengths and noise from the Laplace evidence (as shipped), or the noise from "
            "the linearized leave-one-out error and the strengths from the evidence at that "
            "noise (one or three alternations per update). Mean test R² over the "
            "repetitions; the last two columns from `results/multitarget.csv` (60 epochs, "
            "same splits).")


def main():
    args, sets, results = run_over_sets(__doc__.splitlines()[0], run_one, VARIANTS)
    table, clipped, below = comparison(results, sets, args.repetitions, VARIANTS)
    seconds = results.pivot_table(index=["set", "rep", "epochs"], columns="criterion",
                                  values="seconds")
    lines = [caption(args), "", *comparison_lines(table, clipped, below), "",
             "| variant | fit time / evidence's, median (range) |", "|---|---|"]
    for v, (criterion, epochs) in zip(clipped.index, VARIANTS, strict=True):
        if criterion != "evidence":
            ratio = (seconds[criterion] / seconds["evidence"]).xs(epochs, level="epochs")
            lines.append(f"| {v} | {ratio.median():.2f} ({ratio.min():.2f}-{ratio.max():.2f}) |")
    write_study("loo_noise", "\n".join(lines), results)


if __name__ == "__main__":
    main()
