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
# With so many units, the axes are labelled sparsely and the values are not
# written in the cells. The correlations are scattered, with no blocks; the white
# lines are hidden units that never fire on the training data (dead ReLUs):
# their outgoing weights stay at zero, and the prior finds them correlated
# with no other unit.

fig, ax = plt.subplots(figsize=(7.5, 6.2), layout="constrained")
im_kw = zoomed(clf.column_covariance_)
CovarianceDisplay.from_estimator(clf, which="column", ax=ax, im_kw=im_kw)
ax.set_title("Digits: correlation of the prior $\\Sigma_c$ between hidden units\n"
             f"(colour range zoomed to ±{im_kw['vmax']:g}; the diagonal is 1)")
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
