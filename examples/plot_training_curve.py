"""
=================================
What happens while AdaReg trains
=================================

AdaReg alternates two kinds of steps (Algorithm 1 of Zhao et al., NeurIPS
2019): epochs of the network's optimizer on the data loss plus
``reg_lambda * Tr(Omega_r W Omega_c W^T)``, and, every
``cov_update_every`` epochs, a closed-form update of the precisions
``Omega_r`` and ``Omega_c`` of the prior. Fig. 3 of the paper follows the
loss through these phases.

:class:`~sk_adareg.plotting.TrainingCurveDisplay` draws it all from the
estimator's history: the data loss on training and validation data, the
penalty, the prior's objective, and the range of the precisions'
eigenvalues between their bounds ``u`` and ``v``, with the update epochs
marked. :func:`~sk_adareg.metrics.weight_norms` reports the stable rank and
the spectral norm of the regularized weight, with which the paper explains
AdaReg's effect (Fig. 4, Table 2).

The script writes ``training_curve.png`` and ``training_curve_comparison.png``
to the current directory.
"""

# %%
# Training on a small set of digits
# ---------------------------------
# As in Fig. 3, a small training set: 400 digits, of which
# ``validation_fraction=0.25`` is held out to draw the validation loss and
# score at every epoch (``validation_scores_``), without early stopping.

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from sk_adareg import AdaRegClassifier
from sk_adareg.metrics import weight_norms
from sk_adareg.plotting import TrainingCurveDisplay

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X / 16, y, train_size=400,
                                                    random_state=0, stratify=y)
params = dict(max_epochs=80, cov_update_every=10, validation_fraction=0.25,
              random_state=0)
adareg = AdaRegClassifier(reg_lambda=1e-2, **params).fit(X_train, y_train)

# %%
# Four panels share the epoch axis; dotted lines mark the epochs at whose
# end the precisions were updated. The penalty drops at each update (the
# precisions adapt to the weights), then grows again as the weights do. The
# prior's objective jumps at the first update, when the precisions leave the
# identity; with the default ``precision_scale="unit_mean"`` the updates
# minimise a scale-free version of it, so it need not decrease. The
# eigenvalues of both precisions spread out from 1 as the prior learns how
# the classes and the hidden units correlate, within the bounds ``u`` and ``v``.
#
# From the first update on, the smallest eigenvalue of the column precision
# sits on ``u``; the legend says what that means. With
# ``precision_scale="unit_mean"`` the eigenvalues have mean 1, so a direction
# on ``u = 0.1`` is penalised 10 times less than the mean one, the least the
# bound allows: the prior would loosen it further without the bound. Here the
# 10 x 100 last-layer weight uses only 10 directions of the 100 hidden units,
# and the prior penalises those far less than the 90 it leaves unused (the
# spectrum in :ref:`sphx_glr_auto_examples_plot_covariance.py` shows them).
# A curve on ``v`` would mean a direction penalised as much as allowed.

disp = TrainingCurveDisplay.from_estimator(adareg)
disp.axes_[0].set_title(f"AdaRegClassifier on 400 digits (reg_lambda={adareg.reg_lambda:g})")
plt.savefig("training_curve.png", dpi=100)

# %%
# With and without the prior
# --------------------------
# The same network trained with ``reg_lambda=0`` (the precisions are still
# estimated, but the penalty is not in the loss). Side by side, the data
# losses of both runs; each title gives the stable rank and spectral norm of
# the last layer's weight. The prior lowers both, as in Fig. 4 and Table 2
# of the paper, at the same test accuracy and nearly the same losses: here
# it changes the weights more than the predictions.

baseline = AdaRegClassifier(reg_lambda=0.0, **params).fit(X_train, y_train)

fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True, layout="constrained")
for ax, model in zip(axes, [baseline, adareg], strict=True):
    TrainingCurveDisplay.from_estimator(model, ax=ax)  # one Axes: the loss panel
    norms = weight_norms(model)["output.weight"]
    ax.set_title(f"reg_lambda={model.reg_lambda:g}: test accuracy "
                 f"{model.score(X_test, y_test):.3f}\nlast layer: stable rank "
                 f"{norms['stable_rank']:.2f}, spectral norm {norms['spectral_norm']:.2f}")
fig.suptitle("Data loss during training, without (left) and with (right) the AdaReg prior",
             fontsize="large")
plt.savefig("training_curve_comparison.png", dpi=100)
plt.show()
