"""
=================================================
How classes and tasks relate: learned covariances
=================================================

AdaReg puts a matrix-variate normal prior ``MN(0, Sigma_r, Sigma_c)`` on the
weight matrix ``W`` of the last layer and learns both covariances with the
network. ``W`` has one row per output (a class, or a task), so the row
covariance ``Sigma_r`` says which outputs share statistical strength, and the
column covariance ``Sigma_c`` says how the layer's inputs (the hidden units)
relate (Appendix B.4 of Zhao et al., NeurIPS 2019).

:class:`~sk_adareg.plotting.CovarianceDisplay` draws either matrix, or the
correlation it implies, with the class or task names on the axes. With
``source="weights"`` it draws the same statistic computed from the learned
weights, as Fig. 5 of the paper does; ``source="prior"`` (the default) draws
the prior's covariance, as Fig. 8 does.

The script writes ``covariance_digits.png``, ``covariance_hidden_units.png``
and ``covariance_tasks.png`` to the current directory.
"""

# %%
# Digits: which classes share strength?
# -------------------------------------
# A network with one hidden layer of 100 units learns the ten digit classes;
# the prior sits on its last layer, a 10 x 100 matrix.

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.metrics import explained_variance_score
from sklearn.model_selection import train_test_split

from sk_adareg import AdaRegClassifier, AdaRegMultiTaskRegressor
from sk_adareg.metrics import covariance_to_correlation
from sk_adareg.plotting import CovarianceDisplay

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X / 16, y, test_size=0.25,
                                                    random_state=0, stratify=y)
clf = AdaRegClassifier(max_epochs=60, random_state=0).fit(X_train, y_train)
print(f"Digits test accuracy: {clf.score(X_test, y_test):.3f}")


def zoomed(covariance):
    """Colour range that shows weak correlations: the largest off-diagonal one, rounded up."""
    corr = covariance_to_correlation(covariance)
    limit = np.abs(corr - np.eye(len(corr))).max()
    limit = float(np.ceil(limit * 100) / 100)
    return {"vmin": -limit, "vmax": limit}


# %%
# Left, the correlation between the rows of the learned weight (Fig. 5 of the
# paper). Right, the correlation of the prior's ``Sigma_r`` (Fig. 8a). The
# bounds ``u`` and ``v`` keep the prior's eigenvalues within a factor
# ``v / u`` of each other, so its correlations are somewhat weaker and its
# colour range is zoomed (the diagonal, exactly 1, is off that scale); the
# pattern is the weights': for instance the pairs 3-4 and 6-9 are negative,
# 4-7 positive.

fig, (ax_weights, ax_prior) = plt.subplots(1, 2, figsize=(13, 5.6), layout="constrained")
CovarianceDisplay.from_estimator(clf, source="weights", ax=ax_weights)
ax_weights.set_title("Correlation of the learned weight rows\n"
                     r"(one row per class, from $WW^\top$)")
im_kw = zoomed(clf.row_covariance_)
CovarianceDisplay.from_estimator(clf, ax=ax_prior, im_kw=im_kw, values_format=".3f",
                                 text_kw={"fontsize": "x-small"})
ax_prior.set_title("Correlation of the learned prior $\\Sigma_r$\n"
                   f"(colour range zoomed to ±{im_kw['vmax']:g}; the diagonal is 1)")
fig.suptitle("Digits: how the ten classes relate in AdaReg's last layer", fontsize="x-large")
plt.savefig("covariance_digits.png", dpi=100)

# %%
# The column covariance ``Sigma_c`` relates the 100 hidden units (Fig. 8b).
# In the units' own order its heatmap looks like noise: a unit's index means
# nothing. With more than 30 units the display therefore reorders them by
# hierarchical clustering of their correlations (``order="auto"``), so that
# units that move together, or oppositely, form blocks along the diagonal;
# the ticks name the units drawn there. The axes are labelled sparsely and
# the values are not written in the cells. The pale rows at both ends are
# units correlated with no other: hidden units that never fire on the
# training data (dead ReLUs), whose outgoing weights shrink to zero.
#
# The spectrum of the precision ``Omega_c`` (right) says more than any one
# correlation. The 10 x 100 weight spans only 10 directions of the hidden
# units, and the prior penalises those less than the other 90, which the
# weight leaves unused. With ``precision_scale="unit_mean"`` the eigenvalues
# have mean 1, and the bounds ``u`` and ``v`` say how much less (``1 / u``
# times) or more (``v`` times) than the mean one direction may be penalised.
# Several of the 10 sit on ``u``: the prior would penalise them still less
# if the bound let it. This is what the training curve shows as the column
# precision's minimum sitting on ``u``.

fig, (ax, ax_spectrum) = plt.subplots(1, 2, figsize=(13, 5.6), width_ratios=[1.3, 1],
                                      layout="constrained")
im_kw = zoomed(clf.column_covariance_)
CovarianceDisplay.from_estimator(clf, which="column", ax=ax, im_kw=im_kw)
ax.set_title("Correlation of the prior $\\Sigma_c$ between hidden units\n"
             f"(units clustered by |correlation|; colour range ±{im_kw['vmax']:g}, diagonal 1)")

eigenvalues = np.sort(1 / np.linalg.eigvalsh(clf.column_covariance_))
at_u = int(np.sum(np.isclose(eigenvalues, clf.u)))
ax_spectrum.plot(np.arange(1, len(eigenvalues) + 1), eigenvalues, "o", markersize=3,
                 color="C3", label="eigenvalues of $\\Omega_c$")
ax_spectrum.axhline(clf.u, color="0.3", linestyle="--", linewidth=1,
                    label=f"$u$ = {clf.u:g}: penalised as little as allowed")
ax_spectrum.axhline(clf.v, color="0.3", linestyle=":", linewidth=1,
                    label=f"$v$ = {clf.v:g}: penalised as much as allowed")
ax_spectrum.axhline(1, color="0.6", linewidth=1, label="mean eigenvalue, 1")
ax_spectrum.set_yscale("log")
ax_spectrum.yaxis.set_major_formatter("{x:g}")
ax_spectrum.set_xlabel("eigenvalue, smallest first")
ax_spectrum.set_ylabel("precision eigenvalue")
ax_spectrum.set_title(f"Spectrum of the precision $\\Omega_c$: {at_u} of {len(eigenvalues)} "
                      "eigenvalues on $u$")
# Below the mean, right of the 10 used directions: an empty corner.
ax_spectrum.legend(loc="lower right", bbox_to_anchor=(1, 0.1), fontsize="small")
fig.suptitle("Digits: how the 100 hidden units relate in the prior of the last layer",
             fontsize="x-large")
plt.savefig("covariance_hidden_units.png", dpi=100)

# %%
# Multitask regression with known task groups
# -------------------------------------------
# Six regression tasks on eight features. Tasks 0, 1 and 2 share one
# coefficient vector, tasks 3 and 4 share another, orthogonal to it, and
# task 5 has the opposite of the first one; each task adds its own noise to
# its coefficients. A linear multitask model (``hidden_layer_sizes=()``) has
# one weight row per task, so the truth is the correlation of the true
# coefficient vectors.

rng = np.random.default_rng(0)
n_samples, n_features = 400, 8
base, _ = np.linalg.qr(rng.normal(size=(n_features, 2)))
base *= np.sqrt(n_features)
coef = np.column_stack([base[:, 0], base[:, 0], base[:, 0], base[:, 1], base[:, 1],
                        -base[:, 0]])
coef += 0.4 * rng.normal(size=coef.shape)
X = rng.normal(size=(n_samples, n_features))
Y = X @ coef + 0.5 * rng.normal(size=(n_samples, coef.shape[1]))
X_train, X_test, Y_train, Y_test = train_test_split(X, Y, test_size=0.25, random_state=0)

reg = AdaRegMultiTaskRegressor(hidden_layer_sizes=(), lr=1e-2, max_epochs=60,
                               random_state=0).fit(X_train, Y_train)
# Table 1 of the paper reports the explained variance of each task.
scores = explained_variance_score(Y_test, reg.predict(X_test), multioutput="raw_values")
print("Explained variance per task:", np.round(scores, 3))

# %%
# The learned weights recover the two task groups and the opposite task; the
# prior's ``Sigma_r`` shows the same pattern, with correlations about half as
# strong (its eigenvalues stay within a factor ``v / u`` of each other).

fig, axes = plt.subplots(1, 3, figsize=(18, 5.4), layout="constrained")
tasks = [f"task {k}" for k in range(coef.shape[1])]
CovarianceDisplay(covariance_to_correlation(coef.T @ coef), labels=tasks, kind="correlation",
                  axis_label="task").plot(ax=axes[0])
axes[0].set_title("Truth: correlation of the\ntrue coefficient vectors")
CovarianceDisplay.from_estimator(reg, source="weights", ax=axes[1])
axes[1].set_title("Correlation of the learned weight rows\n"
                  r"(one row per task, from $WW^\top$)")
im_kw = zoomed(reg.row_covariance_)
CovarianceDisplay.from_estimator(reg, ax=axes[2], im_kw=im_kw, values_format=".3f")
axes[2].set_title("Correlation of the learned prior $\\Sigma_r$\n"
                  f"(colour range ±{im_kw['vmax']:g}; the diagonal is 1)")
fig.suptitle("Multitask regression: tasks 0-2 alike, tasks 3-4 alike, "
             "task 5 opposite to tasks 0-2", fontsize="x-large")
plt.savefig("covariance_tasks.png", dpi=100)
plt.show()
