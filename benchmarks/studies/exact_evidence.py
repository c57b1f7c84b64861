"""Is it the Kronecker factorization that picks the strengths? (an open question of issue 11)

``reg_lambda="auto"`` maximizes the Laplace evidence with a Kronecker-factored (KFAC)
Gauss-Newton curvature. On small networks the exact Gauss-Newton matrix fits in memory,
so the two can be compared at the same weights. This fits
``AdaRegMultiTaskRegressor(reg_lambda="auto", adareg_layers="all")`` for 200 epochs on
the sets, splits and preprocessing of ``multitarget.py`` (those whose network has at most
``MAX_PARAMETERS`` regularized weights), then maximizes the Laplace evidence of the final
weights with the exact Gauss-Newton matrix of the regularized weights (biases held, as
in :mod:`sk_adareg.laplace`) over the strength of each layer and the noise of each
target, by L-BFGS on their logarithms, and prints both maximizers (strengths in the loss's
units, as ``reg_lambda_``) and the evidence of each at both.

Run from the repository root::

    python benchmarks/studies/exact_evidence.py --repetitions 1   # every small set, ~10 min
    python benchmarks/studies/exact_evidence.py --repetitions 1 --sets scpf slump

Writes ``benchmarks/studies/results/exact_evidence.md``.
"""

import copy
import math

import _parent  # noqa: F401  (benchmarks/ on sys.path, results here)
import numpy as np
import torch
from _common import write_report
from multitarget import fit_and_score, prepared, run_over_sets
from scipy.optimize import minimize

from sk_adareg import AdaRegMultiTaskRegressor
from sk_adareg._kfac import map_curvature
from sk_adareg.laplace import KroneckerLaplace

MAX_PARAMETERS = 4000
EPOCHS = 200


class ExactEvidence:
    """The Laplace evidence of a net's final weights with the exact Gauss-Newton matrix.

    ``log p(y | theta) - sum_l lambda_l pen_l / 2 - log det(I + P^-1/2 GGN P^-1/2) / 2``
    with ``P`` the block-diagonal prior precision ``lambda_l Omega_r kron Omega_c`` (row-major
    weights) and ``GGN = sum_k beta_k J_k^T J_k``: the formula of :mod:`sk_adareg.laplace`
    with the Kronecker factors replaced by the matrix they approximate.
    """

    def __init__(self, net, X, y):
        module = copy.deepcopy(net.module_).double().eval()
        self.names = list(net.priors_.names)
        params = {n: p.detach() for n, p in module.named_parameters()}

        def outputs(theta, x):
            return torch.func.functional_call(module, {**params, **theta}, (x[None],))[0]

        theta = {n: params[n] for n in self.names}
        jac = torch.func.vmap(torch.func.jacrev(outputs), in_dims=(None, 0))(theta, X)
        self.n, self.k = y.shape
        J = torch.cat([jac[n].reshape(self.n, self.k, -1) for n in self.names], dim=2)
        self.sse = ((torch.func.functional_call(module, params, (X,)) - y) ** 2).sum(0)
        roots, self.penalties, sizes = [], [], []
        for name in self.names:
            prior = net.priors_[name]
            unit = torch.kron(prior.row_precision.double(), prior.column_precision.double())
            roots.append(torch.linalg.cholesky(unit))
            w = params[name].reshape(-1)
            self.penalties.append(float(w @ unit @ w))
            sizes.append(unit.shape[0])
        root = torch.block_diag(*roots)
        # The whitened curvature of each target at unit strengths: L^-1 J_k^T J_k L^-T.
        self.whitened = []
        for k in range(self.k):
            half = torch.linalg.solve_triangular(root, J[:, k, :].T, upper=False)
            self.whitened.append(half @ half.T)
        self.owner = torch.cat([torch.full((s,), i) for i, s in enumerate(sizes)])
        self.n_parameters = int(root.shape[0])

    def __call__(self, lam, beta):
        curvature = sum(float(b) * m for b, m in zip(beta, self.whitened, strict=True))
        d = torch.as_tensor(np.asarray(lam, dtype=np.float64))[self.owner]
        chol = torch.linalg.cholesky(curvature + torch.diag(d))
        log_det = 2 * torch.log(chol.diagonal()).sum() - torch.log(d).sum()
        fit = sum(-0.5 * b * float(s) + 0.5 * self.n * math.log(b)
                  for b, s in zip(beta, self.sse, strict=True))
        prior = sum(lam_l * pen for lam_l, pen in zip(lam, self.penalties, strict=True))
        return (fit - 0.5 * self.n * self.k * math.log(2 * math.pi) - 0.5 * prior
                - 0.5 * float(log_det))

    def maximize(self, lam, beta):
        m = len(self.names)
        start = np.log(np.concatenate([lam, beta]))
        result = minimize(lambda z: -self(np.exp(z[:m]), np.exp(z[m:])), start,
                          method="L-BFGS-B")
        return np.exp(result.x[:m]), np.exp(result.x[m:])


def small_fit(name, rep, data, reg_lambda, dtype):
    """Fit ``reg_lambda`` on all layers on a split of ``multitarget.py``, if the net is small.

    Returns ``(None, row)`` with the weight count when the network has more than
    ``MAX_PARAMETERS`` regularized weights, else ``(model, r2)`` and the training inputs
    and targets as the net trains on them (the estimator's internal target units), as
    tensors of ``dtype``: ``(model, r2, X, y)``.
    """
    torch.set_num_threads(1)
    Y = data[1]
    split = prepared(name, data, rep)
    train, _, A_train, _, target = split
    hidden = 100  # the estimators' default network
    weights = A_train.shape[1] * hidden + hidden * Y.shape[1]
    if weights > MAX_PARAMETERS:
        return None, {"set": name, "rep": rep, "weights": weights}  # too large: left out
    model = AdaRegMultiTaskRegressor(reg_lambda=reg_lambda, adareg_layers="all",
                                     max_epochs=EPOCHS, random_state=rep)
    r2 = float(np.nanmean(fit_and_score(model, Y, split)))
    X = torch.as_tensor(A_train, dtype=dtype)
    y = torch.as_tensor(model._target_scaler_.transform(target.transform(Y[train])),
                        dtype=dtype).reshape(len(X), -1)
    return model, r2, X, y


def left_out_note(results, sets):
    """The table of the fitted sets, and the line naming the sets left out."""
    left_out = sorted(set(results.loc[results["r2"].isna(), "set"]), key=sets.index)
    return (results.dropna(subset=["r2"]),
            f"\n\nLeft out (more weights): {', '.join(left_out) or 'none'}.")


def run_one(name, rep, _, data):
    model, *fitted = small_fit(name, rep, data, "auto", torch.float64)
    if model is None:
        return fitted[0]
    r2, X, y = fitted
    net = model.net_
    curvature, lam_kfac, noise = model._posterior_
    curvature = map_curvature(curvature, torch.as_tensor)
    exact = ExactEvidence(net, X, y)
    names = exact.names
    lam_k = np.array([lam_kfac[n] for n in names])
    beta_k = 1.0 / np.asarray(noise, dtype=np.float64)
    lam_e, beta_e = exact.maximize(lam_k, beta_k)
    laplace = KroneckerLaplace(curvature, net.priors_, lam_kfac, noise)
    kfac_at_kfac = laplace.log_evidence()
    laplace.reg_lambda = {n: float(v) for n, v in zip(names, lam_e, strict=True)}
    laplace.noise_variance = torch.as_tensor(1.0 / beta_e)
    kfac_at_exact = laplace.log_evidence()

    def loss_units(lam, beta):  # lambda_l / (n K mean(beta)), as reg_lambda_
        return lam / (exact.n * exact.k * float(np.mean(beta)))

    strength_k, strength_e = loss_units(lam_k, beta_k), loss_units(lam_e, beta_e)
    return {"set": name, "rep": rep, "weights": exact.n_parameters,
            "r2": r2,
            "hidden (KFAC / exact)": f"{strength_k[0]:.3g} / {strength_e[0]:.3g}",
            "output (KFAC / exact)": f"{strength_k[-1]:.3g} / {strength_e[-1]:.3g}",
            "exact / KFAC strength, geometric mean": float(np.exp(np.mean(
                np.log(strength_e / strength_k)))),
            "mean noise (KFAC / exact)": f"{np.mean(1 / beta_k):.3g} / {np.mean(1 / beta_e):.3g}",
            "KFAC evidence at KFAC / exact maximizer": f"{kfac_at_kfac:.1f} / {kfac_at_exact:.1f}",
            "exact evidence at KFAC / exact maximizer":
                f"{exact(lam_k, beta_k):.1f} / {exact(lam_e, beta_e):.1f}"}


def main():
    args, sets, results = run_over_sets(__doc__.splitlines()[0], run_one, [None])
    table, left_out = left_out_note(results, sets)
    body = (f"`reg_lambda=\"auto\"`, all layers, {EPOCHS} epochs, {args.repetitions} "
            f"repetition(s); the sets whose network has at most {MAX_PARAMETERS} regularized "
            "weights. Strengths in the loss's units (as `reg_lambda_`), noise variances in "
            "the network's target units, log evidences in nats; `r2` is the test R² of the "
            "fitted network.\n\n" + table.to_markdown(index=False, floatfmt=".3f")
            + left_out)
    print(body)
    write_report("exact_evidence", body)


if __name__ == "__main__":
    main()
