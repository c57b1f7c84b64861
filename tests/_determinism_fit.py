"""The fits the determinism tests compare, run in the test process and as a script.

``python _determinism_fit.py OUT_DIR`` fits both estimators in a fresh process and
saves their outputs to ``OUT_DIR/classifier.npz`` and ``OUT_DIR/regressor.npz``.
"""

import sys
from pathlib import Path

import numpy as np
from sklearn.datasets import make_classification

from sk_adareg import AdaRegClassifier, AdaRegMultiTaskRegressor

X, y = make_classification(n_samples=90, n_features=6, n_informative=4, n_classes=3,
                           random_state=0)
Y = X @ np.random.default_rng(0).normal(size=(6, 3))
PARAMS = dict(hidden_layer_sizes=(16, 8), dropout=0.2, early_stopping=True,
              n_iter_no_change=3, adareg_layers="all", max_epochs=6, batch_size=16,
              reg_lambda=1e-2, u=0.1, v=10.0, precision_scale="learned",
              cov_update_every=2, lr=1e-3)
SEED = 7


def fit_both(seed):
    return (AdaRegClassifier(**PARAMS, random_state=seed).fit(X, y),
            AdaRegMultiTaskRegressor(**PARAMS, random_state=seed).fit(X, Y))


def outputs(est):
    out = {"predict": est.predict(X), "loss_curve": np.array(est.loss_curve_)}
    for name in est.adareg_layers_:
        out[f"row {name}"] = est.row_covariances_[name]
        out[f"column {name}"] = est.column_covariances_[name]
    if hasattr(est, "predict_proba"):
        out["predict_proba"] = est.predict_proba(X)
    return out


if __name__ == "__main__":
    import torch

    torch.set_num_threads(1)
    out_dir = Path(sys.argv[1])
    for name, est in zip(("classifier", "regressor"), fit_both(SEED), strict=True):
        np.savez(out_dir / f"{name}.npz", **outputs(est))
