"""Shared by the studies that replace the strengths of ``reg_lambda="auto"`` by a callback's
(``gcv_strength.py``, ``loo_strength.py``, ``robust_evidence.py``, ``loo_noise.py``): the
network linearized in the eigenbasis of its KFAC posterior, the fit of one variant and the
comparison table against the best cross-validated neural variant and the Gaussian process
of ``benchmarks/results/multitarget.csv``."""

import time
from contextlib import nullcontext

import _parent  # noqa: F401  (benchmarks/ on sys.path, results here)
import numpy as np
import pandas as pd
import torch
from _common import RESULTS, write_study
from multitarget import fit_and_score, prepared, run_over_sets, scores
from skorch.callbacks import Callback
from skorch.utils import to_tensor
from uncertainty import best_cv_neural

from sk_adareg import AdaRegMultiTaskRegressor
from sk_adareg.laplace import KroneckerLaplace, kfac

GRID = np.logspace(-6, 8, 57)  # strengths in the units of 1/2 SSE + 1/2 lambda penalty


def linearization(module, names, priors, X, Y):
    """The network's squared error, linearized at its current weights, per regularized weight.

    In the eigenbasis of the prior-whitened KFAC factors at unit noise (the targets are
    standardized), the quadratic model of ``1/2 SSE + sum_l lambda_l/2 pen_l`` is diagonal:
    each weight ``l`` gives ``h`` (the curvature's eigenvalues), ``C`` (the whitened
    weight) and ``G`` (the gradient of ``1/2 SSE``), all (p, d), and its ``layer``, the
    private eigenbasis of :class:`sk_adareg.laplace.KroneckerLaplace` (``row_map`` and
    ``Ma`` map an output gradient and an input into it). Returns the curvature and the
    per-weight dicts.
    """
    curvature = kfac(module, [(X, Y)], names, "gaussian")
    ones = torch.ones(curvature.n_outputs, dtype=torch.float64)
    laplace = KroneckerLaplace(curvature, priors, 1.0, ones)
    training = module.training
    module.eval()
    weights = [module.get_parameter(name) for name in names]
    grads = torch.autograd.grad(0.5 * ((module(X) - Y) ** 2).sum(), weights)
    module.train(training)
    layers = []
    for name, grad in zip(names, grads, strict=True):
        layer, W = laplace._layers[name], curvature.layers[name].weight
        g, Qg = layer.spectrum(ones)
        Qa = (layer.Ma @ layer.Lc).T  # Ma = Qa^T Lc^{-1}
        layers.append({
            "h": g[:, None] * layer.a[None, :],
            "C": Qg.T @ layer.Lr.T @ W @ layer.Lc @ Qa,
            "G": layer.row_map(ones) @ grad.double().reshape(W.shape) @ layer.Ma.T,
            "layer": layer, "row_map": layer.row_map(ones)})
    return curvature, layers


def coordinate_search(criterion, lambdas, grid, rounds):
    """Minimize ``criterion(lambdas)`` over ``grid``, one strength at a time, ``rounds`` times."""
    lambdas = list(lambdas)
    for _ in range(rounds):
        for i in range(len(lambdas)):
            values = [criterion([*lambdas[:i], lam, *lambdas[i + 1:]]) for lam in grid]
            lambdas[i] = float(grid[int(np.argmin(values))])
    return lambdas


def set_strengths(net, lambdas, N):
    """Put ``lambdas`` (units of ``1/2 SSE``) in force as the net's strengths, targets alike.

    The loss's units: mean squared error over the ``N`` scalar targets + c * penalty.
    """
    strengths = {name: lam / N for name, lam in zip(net.priors_.names, lambdas, strict=True)}
    net.priors_.set_strengths(strengths)
    net.reg_lambda_ = strengths
    net.criterion_.target_weights.fill_(1.0)


class AfterEvidenceUpdate(Callback):
    """Calls ``self.update(net, X, Y)`` with the training data after each evidence update.

    It comes after the net's own callbacks, so it overrides what the update set.
    """

    def on_epoch_end(self, net, dataset_train=None, **kwargs):
        if "log_evidence" not in net.history[-1]:
            return
        X = to_tensor(dataset_train.X, net.device)
        self.update(net, X, to_tensor(dataset_train.y, net.device).reshape(len(X), -1).float())


def fit_variant(name, rep, data, epochs, callbacks, reg_lambda="auto"):
    """``reg_lambda`` (``"auto"``) on all layers with ``callbacks``, on a split of
    ``multitarget.py``.

    Returns the fitted model, its mean test R², and the mean test R² with every test
    input clipped to the training part's range.
    """
    torch.set_num_threads(1)
    model = AdaRegMultiTaskRegressor(reg_lambda=reg_lambda, adareg_layers="all",
                                     max_epochs=epochs, random_state=rep, callbacks=callbacks)
    split = prepared(name, data, rep)
    train, test, A_train, A_test, target = split
    Y = data[1]
    r2 = float(np.nanmean(fit_and_score(model, Y, split)))
    clipped = np.clip(A_test, A_train.min(axis=0), A_train.max(axis=0))
    pred = target.inverse_transform(model.predict(clipped))
    return model, r2, float(np.nanmean(scores(Y[test], pred, Y[train])[0]))


def timed_row(name, rep, variant, data, callbacks, reg_lambda="auto"):
    """:func:`fit_variant` of ``variant = (criterion, epochs)``, as a row of a study's table.

    Returns the fitted model and the row: set, rep, criterion, epochs, r2, r2_clipped and
    the fit's seconds.
    """
    criterion, epochs = variant
    start = time.perf_counter()
    model, r2, r2_clipped = fit_variant(name, rep, data, epochs, callbacks, reg_lambda)
    return model, {"set": name, "rep": rep, "criterion": criterion, "epochs": epochs,
                   "r2": r2, "r2_clipped": r2_clipped,
                   "seconds": time.perf_counter() - start}


def comparison(results, sets, repetitions, variants):
    """Mean test R² per set and variant, beside the best CV neural variant and the GP.

    ``results`` has the columns set, rep, criterion, epochs, r2 and r2_clipped. Returns the
    table (with a row of means), the mean over sets of the clipped R² per variant, and per
    variant the sets more than 0.01 below the best CV neural variant.
    """
    results["variant"] = results["criterion"] + ", " + results["epochs"].astype(str) + " ep."
    order = [f"{c}, {e} ep." for c, e in variants]
    table = results.pivot_table(index="set", columns="variant", values="r2").reindex(
        index=sets, columns=order)
    peers = pd.read_csv(RESULTS / "multitarget.csv")
    gp = peers[(peers["method"] == "GaussianProcess") & (peers["rep"] < repetitions)]
    best = best_cv_neural(sets, repetitions)["best CV neural"]
    table["best CV neural (60 ep.)"] = best
    table["GaussianProcess"] = gp.groupby("set")["r2"].mean().reindex(sets)
    below = {v: [s for s in sets if table.loc[s, v] < best[s] - 0.01] for v in order}
    table.loc["mean over sets"] = table.mean()
    clipped = results.groupby(["variant", "set"])["r2_clipped"].mean().groupby(
        "variant").mean().reindex(order)
    return table, clipped, below


def comparison_lines(table, clipped, below):
    """:func:`comparison`'s results as a report's lines: the table, then per variant the
    mean clipped R² and the sets more than 0.01 below the best CV neural variant."""
    lines = [table.to_markdown(floatfmt=".3f"), "",
             "| variant | mean R², inputs clipped to the training range | sets more than 0.01 "
             "below the best CV neural variant |", "|---|---|---|"]
    return lines + [f"| {v} | {clipped[v]:.3f} | {len(below[v])}: {', '.join(below[v])} |"
                    for v in clipped.index]


def loo_row(name, rep, variant, data, patch=None):
    """:func:`timed_row` of ``reg_lambda="loo"`` on all layers, inside the context ``patch``."""
    with patch or nullcontext():
        return timed_row(name, rep, variant, data, [], reg_lambda="loo")[1]


def comparison_study(name, description, run_one, variants, caption):
    """Run a per-set study (:func:`multitarget.run_over_sets`) and write its report.

    The report is ``caption(args)``, then :func:`comparison_lines`; the rows go to
    ``results/<name>.csv``.
    """
    args, sets, results = run_over_sets(description, run_one, variants)
    table, clipped, below = comparison(results, sets, args.repetitions, variants)
    lines = [caption(args), "", *comparison_lines(table, clipped, below)]
    write_study(name, "\n".join(lines), results)
