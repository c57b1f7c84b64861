"""How much of the networks' loss to the Gaussian process is a few test rows far outside the data?

On ``osales`` one repetition of ``multitarget.py`` gives every neural method a test R² of
-10 or so while the Gaussian process keeps 0.26. This script looks for such rows on every
set of the benchmark (the same splits, preprocessing and seeds): for each repetition it
fits ``AdaRegMultiTaskRegressor`` (``reg_lambda="auto"`` on all layers, and the shipped
defaults) on the training part, and reports

- the largest absolute standardized input of the test part against that of the training
  part (inputs are standardized on the training part);
- the test R² as the estimator predicts, and when every test input is first clipped to
  the range the training part spans, feature by feature (what a tree ensemble does by
  construction, and what a radial-basis kernel does in effect: it reverts to its mean far
  from the data).

Clipping is not something the estimators do; this only measures what extrapolation costs.
Nothing is tuned on the test part.

Run from the repository root::

    python benchmarks/studies/extrapolation.py              # every set, 5 repetitions, 60 epochs
    python benchmarks/studies/extrapolation.py --sets osales --repetitions 5

Writes ``benchmarks/studies/results/extrapolation.{md,csv}``.
"""

import warnings

import _parent  # noqa: F401  (benchmarks/ on sys.path, results here)
import numpy as np
import torch
from _common import STUDY_RESULTS, write_report
from multitarget import prepared, run_over_sets, scores
from threadpoolctl import threadpool_limits

from sk_adareg import AdaRegMultiTaskRegressor

METHODS = {
    "AdaReg auto, all layers": {"reg_lambda": "auto", "adareg_layers": "all"},
    "AdaReg, defaults": {},
}
EPOCHS = 60  # the protocol of multitarget.py


def run_one(name, rep, method, data):
    torch.set_num_threads(1)
    Y = data[1]
    train, test, A_train, A_test, target = prepared(name, data, rep)
    model = AdaRegMultiTaskRegressor(max_epochs=EPOCHS, random_state=rep, **METHODS[method])
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(A_train, target.transform(Y[train]))
        pred = target.inverse_transform(model.predict(A_test))
        clipped = np.clip(A_test, A_train.min(axis=0), A_train.max(axis=0))
        pred_clipped = target.inverse_transform(model.predict(clipped))
    r2 = np.nanmean(scores(Y[test], pred, Y[train])[0])
    r2_clipped = np.nanmean(scores(Y[test], pred_clipped, Y[train])[0])
    outside = np.any(clipped != A_test, axis=1)
    return {"set": name, "rep": rep, "method": method,
            "max_abs_z_train": float(np.abs(A_train).max()),
            "max_abs_z_test": float(np.abs(A_test).max()),
            "rows_outside": int(outside.sum()), "n_test": len(test),
            "r2": float(r2), "r2_clipped": float(r2_clipped)}


def main():
    args, sets, results = run_over_sets(__doc__.splitlines()[0], run_one, METHODS)
    STUDY_RESULTS.mkdir(exist_ok=True)
    results.to_csv(STUDY_RESULTS / "extrapolation.csv", index=False)
    first = results[results["method"] == next(iter(METHODS))]
    inputs = first.groupby("set").agg(
        max_abs_z_train=("max_abs_z_train", "max"), max_abs_z_test=("max_abs_z_test", "max"),
        test_rows_outside=("rows_outside", "mean"), n_test=("n_test", "first")).reindex(sets)
    lines = [f"{args.repetitions} repetitions, {EPOCHS} epochs. Inputs: the largest absolute "
             "standardized input over the repetitions, and the mean number of test rows with "
             "an input outside the training range.", "", inputs.to_markdown(floatfmt=".1f"), ""]
    for method in METHODS:
        part = results[results["method"] == method]
        table = part.groupby("set")[["r2", "r2_clipped"]].mean().reindex(sets)
        table["difference"] = table["r2_clipped"] - table["r2"]
        worst = part.loc[part["r2"].idxmin()]
        lines += [f"### {method}: mean test R² as predicted and with inputs clipped", "",
                  table.to_markdown(floatfmt=".3f"), "",
                  f"Mean over sets: {table['r2'].mean():.3f} as predicted, "
                  f"{table['r2_clipped'].mean():.3f} clipped. Worst fit: {worst['set']} "
                  f"repetition {worst['rep']}, R² {worst['r2']:.3f} ({worst['r2_clipped']:.3f} "
                  f"clipped), its largest test input {worst['max_abs_z_test']:.0f} training "
                  "standard deviations from the training mean.", ""]
    body = "\n".join(lines)
    print(body)
    write_report("extrapolation", body)


if __name__ == "__main__":
    main()
