"""Does a higher Laplace evidence mean a better test fit? (an open question of issue 11)

``reg_lambda="auto"`` sets the strengths and the noise to the maximizers of the
Laplace evidence at the weights reached so far, every ``cov_update_every`` epochs.
For the learned strengths to be trusted, the evidence should rise when the model
generalizes better. This fits ``AdaRegMultiTaskRegressor(reg_lambda="auto",
adareg_layers="all")`` for 200 epochs (the estimators' default) on the sets, splits and
preprocessing of ``multitarget.py`` and records, at every evidence update, the log
evidence per training row and the test R² of the network at that epoch (a diagnostic:
nothing is chosen on the test part, and the recording leaves the fits as they are without
it). Beside it, the largest excess kurtosis of a
target on the training part: how heavy the targets' tails are.

Run from the repository root::

    python benchmarks/studies/evidence_trace.py                 # every set, 5 repetitions
    python benchmarks/studies/evidence_trace.py --repetitions 1 --sets scpf enb

Writes ``benchmarks/studies/results/evidence_trace.md``.
"""

import _parent  # noqa: F401  (benchmarks/ on sys.path, results here)
import numpy as np
import pandas as pd
import torch
from _common import write_report
from multitarget import fit_and_score, prepared, run_over_sets, scores
from scipy.stats import kurtosis
from skorch.callbacks import Callback

from sk_adareg import AdaRegMultiTaskRegressor
from sk_adareg._data import chunked_forward

EPOCHS = 200
SHOWN = (20, 60, 100, 200)  # the epochs of the table (evidence updates)


class TestOutputs(Callback):
    """At each update: the epoch, the history's ``key`` and the net's raw test outputs.

    An update is an epoch whose history row has ``key``. The outputs come from
    ``chunked_forward``: in large chunks, and drawing no random number, so that the
    later epochs shuffle as they would without the recording.
    """

    def __init__(self, X_test, key="log_evidence"):
        self.X_test, self.key = X_test, key

    def initialize(self):
        self.records_ = []
        return self

    def on_epoch_end(self, net, **kwargs):
        value = net.history[-1].get(self.key)
        if value is not None:
            outputs, _ = chunked_forward(net.module_, self.X_test, net.device)
            self.records_.append((len(net.history), value, outputs))


def traced_fit(name, rep, data, reg_lambda, key):
    """``reg_lambda`` on all layers for ``EPOCHS`` epochs on a split of ``multitarget.py``,
    with :class:`TestOutputs` recording ``key``.

    Returns the final test R² per target, the split (from ``prepared``) and, per update,
    ``(epoch, value of key, test predictions in the targets' units)``.
    """
    torch.set_num_threads(1)
    split = prepared(name, data, rep)
    *_, A_test, target = split
    trace = TestOutputs(A_test.astype(np.float32), key)
    model = AdaRegMultiTaskRegressor(reg_lambda=reg_lambda, adareg_layers="all",
                                     max_epochs=EPOCHS, random_state=rep,
                                     callbacks=[("test_outputs", trace)])
    final = fit_and_score(model, data[1], split)
    # The net predicts in the estimator's internal target units.
    records = [(epoch, value, target.inverse_transform(
        model._target_scaler_.inverse_transform(raw.reshape(len(raw), -1))))
        for epoch, value, raw in trace.records_]
    return final, split, records


def run_one(name, rep, _, data):
    Y = data[1]
    _, (train, test, *_), records = traced_fit(name, rep, data, "auto", "log_evidence")
    rows = []
    for epoch, evidence, pred in records:
        r2, _ = scores(Y[test], pred, Y[train])
        rows.append({"set": name, "rep": rep, "epoch": epoch,
                     "evidence_per_row": evidence / len(train), "r2": float(np.nanmean(r2))})
    return {"set": name, "rows": rows, "kurtosis": float(np.nanmax(kurtosis(Y[train], axis=0)))}


def main():
    args, sets, results = run_over_sets(__doc__.splitlines()[0], run_one, [None])
    trace = pd.DataFrame([row for rows in results["rows"] for row in rows])
    kurt = results.groupby("set")["kurtosis"].mean()
    mean = trace.groupby(["set", "epoch"])[["evidence_per_row", "r2"]].mean().unstack()
    mean = mean.reindex(sets)
    table = pd.DataFrame({"largest target kurtosis": kurt.reindex(sets)})
    for epoch in SHOWN:
        table[f"log evidence / row, epoch {epoch}"] = mean[("evidence_per_row", epoch)]
    for epoch in SHOWN:
        table[f"test R², epoch {epoch}"] = mean[("r2", epoch)]
    # Within each fit: does the evidence's change from epoch 60 on go with the test R²'s?
    per_fit = trace.pivot_table(index=["set", "rep"], columns="epoch",
                                values=["evidence_per_row", "r2"])
    gain = per_fit[("evidence_per_row", EPOCHS)] - per_fit[("evidence_per_row", 60)]
    change = per_fit[("r2", EPOCHS)] - per_fit[("r2", 60)]
    agree = ((gain > 0) == (change > 0)).groupby("set").mean().reindex(sets)
    table["fits where evidence and R² moved together, 60 to 200"] = agree
    misled = int(((gain > 0) & (change < -0.05)).sum())
    rose = int((gain > 0).sum())
    body = (f"`reg_lambda=\"auto\"`, all layers, {EPOCHS} epochs, {args.repetitions} "
            "repetitions; means over the repetitions of the log evidence per training row and "
            "of the test R² at the evidence updates of the shown epochs.\n\n"
            + table.to_markdown(floatfmt=".3f")
            + f"\n\nFits whose evidence rose from epoch 60 to {EPOCHS}: {rose} of {len(gain)}; "
            f"of them, fits whose test R² fell by more than 0.05: {misled}.")
    print(body)
    write_report("evidence_trace", body)


if __name__ == "__main__":
    main()
