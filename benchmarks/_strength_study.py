"""Shared by the studies that replace the strengths of ``reg_lambda="auto"`` by a callback's
(``gcv_strength.py``, ``robust_evidence.py``): the fit of one variant and the comparison
table against the best cross-validated neural variant and the Gaussian process of
``results/multitarget.csv``."""

import numpy as np
import pandas as pd
import torch
from _common import RESULTS
from multitarget import fit_and_score, prepared, scores
from skorch.callbacks import Callback
from skorch.utils import to_tensor
from uncertainty import best_cv_neural

from sk_adareg import AdaRegMultiTaskRegressor


class AfterEvidenceUpdate(Callback):
    """Calls ``self.update(net, X, Y)`` with the training data after each evidence update.

    It comes after the net's own callbacks, so it overrides what the update set.
    """

    def on_epoch_end(self, net, dataset_train=None, **kwargs):
        if "log_evidence" not in net.history[-1]:
            return
        X = to_tensor(dataset_train.X, net.device)
        self.update(net, X, to_tensor(dataset_train.y, net.device).reshape(len(X), -1).float())


def fit_variant(name, rep, data, epochs, callbacks):
    """``reg_lambda="auto"`` on all layers with ``callbacks``, on a split of ``multitarget.py``.

    Returns the fitted model, its mean test R², and the mean test R² with every test
    input clipped to the training part's range.
    """
    torch.set_num_threads(1)
    model = AdaRegMultiTaskRegressor(reg_lambda="auto", adareg_layers="all",
                                     max_epochs=epochs, random_state=rep, callbacks=callbacks)
    split = prepared(name, data, rep)
    train, test, A_train, A_test, target = split
    Y = data[1]
    r2 = float(np.nanmean(fit_and_score(model, Y, split)))
    clipped = np.clip(A_test, A_train.min(axis=0), A_train.max(axis=0))
    pred = target.inverse_transform(model.predict(clipped))
    return model, r2, float(np.nanmean(scores(Y[test], pred, Y[train])[0]))


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
