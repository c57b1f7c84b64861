"""Does the Kronecker factorization pick the strength of "loo"? (a question of issue 11)

``reg_lambda="loo"`` multiplies the evidence's strengths by the factor that minimizes the
approximate leave-one-out error (PRESS) of the network linearized at its weights, with
the leverages from the Kronecker-factored (KFAC) posterior. On small networks the exact
Gauss-Newton posterior of the regularized weights fits in memory, so the two can be
compared at the same weights. This fits
``AdaRegMultiTaskRegressor(reg_lambda="loo", adareg_layers="all")`` for 200 epochs on the
sets, splits and preprocessing of ``multitarget.py`` (those whose network has at most
``MAX_PARAMETERS`` regularized weights), then computes PRESS at the final weights over the
factors of :data:`sk_adareg._strength._loo.SCALES` on the strengths in force, both with the
library's
KFAC leverages and with the exact ones (``J (J^T J + P)^-1 J^T`` over all regularized
weights at once, ``P`` the block-diagonal prior precision; the output bias counted as an
intercept, other biases held, as in the library), and prints the factor each picks.

Run from the repository root::

    python benchmarks/studies/exact_press.py --repetitions 1   # every small set, ~3 min
    python benchmarks/studies/exact_press.py --repetitions 1 --sets scpf slump

Writes ``benchmarks/studies/results/exact_press.md``.
"""

import _parent  # noqa: F401  (benchmarks/ on sys.path, results here)
import numpy as np
import torch
from _common import write_report
from exact_evidence import EPOCHS, MAX_PARAMETERS, left_out_note, small_fit
from multitarget import run_over_sets

from sk_adareg._kfac import output_gradients
from sk_adareg._strength._loo import SCALES, _Linearized
from sk_adareg.laplace import KroneckerLaplace, kfac


def exact_press(module, names, priors, X, Y, lambdas):
    """PRESS at each factor of SCALES on ``lambdas`` with the exact Gauss-Newton posterior."""
    f, factors = output_gradients(module, X, names)
    n, k = f.shape
    r = (f.double() - Y.double()).reshape(-1)  # point i, target t at i k + t
    jacobians, weights, precisions = [], [], []
    for name in names:
        a = factors[0][name][0][:, 0]
        per_target = [torch.einsum("ip,id->ipd", f_t[name][1][:, 0], a).reshape(n, -1)
                      for f_t in factors]
        jacobians.append(torch.stack(per_target, dim=1).reshape(n * k, -1))
        weights.append(module.get_parameter(name).detach().double().reshape(-1))
        prior = priors[name]  # row-major weights: Omega_r kron Omega_c
        precisions.append(torch.kron(prior.row_precision.double(),
                                     prior.column_precision.double()))
    J, theta = torch.cat(jacobians, dim=1), torch.cat(weights)
    ggn, gradient = J.T @ J, J.T @ r
    press = []
    for alpha in SCALES:
        P = torch.block_diag(*[alpha * lam * M for lam, M in zip(lambdas, precisions,
                                                                strict=True)])
        covariance = torch.linalg.inv(ggn + P)
        residuals = r - J @ (covariance @ (gradient + P @ theta))
        leverage = ((J @ covariance) * J).sum(dim=1) + 1.0 / n
        press.append(np.inf if bool((leverage >= 1).any()) else
                     float(((residuals / (1 - leverage)) ** 2).sum()))
    return np.array(press)


def run_one(name, rep, _, data):
    model, *fitted = small_fit(name, rep, data, "loo", torch.float32)
    if model is None:
        return fitted[0]
    r2, X, y = fitted
    net = model.net_
    module, names = net.module_, list(net.priors_.names)
    n_values = y.shape[0] * y.shape[1]
    lambdas = [net.reg_lambda_[m] * n_values for m in names]  # units of 1/2 SSE
    laplace = KroneckerLaplace(kfac(module, [(X, y)], names), net.priors_)
    with_kfac = _Linearized(module, names, laplace, lambda: [(X, y)],
                            dict(zip(names, lambdas, strict=True))).press(SCALES)
    exact = exact_press(module, names, net.priors_, X, y, lambdas)
    best_kfac, best_exact = int(np.argmin(with_kfac)), int(np.argmin(exact))
    weights = sum(module.get_parameter(m).numel() for m in names)
    return {"set": name, "rep": rep, "weights": weights, "n": len(X), "r2": r2,
            "factor by KFAC PRESS": float(SCALES[best_kfac]),
            "factor by exact PRESS": float(SCALES[best_exact]),
            "exact PRESS at KFAC's / its own factor":
                f"{exact[best_kfac]:.1f} / {exact[best_exact]:.1f}",
            "PRESS at factor 1, KFAC / exact": f"{with_kfac[12]:.1f} / {exact[12]:.1f}"}


def main():
    args, sets, results = run_over_sets(__doc__.splitlines()[0], run_one, [None])
    table, left_out = left_out_note(results, sets)
    body = (f"`reg_lambda=\"loo\"`, all layers, {EPOCHS} epochs, {args.repetitions} "
            f"repetition(s); the sets whose network has at most {MAX_PARAMETERS} regularized "
            "weights. At the final weights, the factor on the strengths in force that "
            "minimizes PRESS with the KFAC leverages (what the library uses) and with the "
            "exact Gauss-Newton ones; PRESS in the network's target units; `r2` is the test "
            "R² of the fitted network.\n\n" + table.to_markdown(index=False, floatfmt=".3g")
            + left_out)
    print(body)
    write_report("exact_press", body)


if __name__ == "__main__":
    main()
