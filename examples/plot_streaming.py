"""
Training on a stream of data with ``partial_fit``
=================================================

Data that arrives in pieces, or that is too large to hold at once, trains
with ``partial_fit``, as scikit-learn's ``MLPRegressor``: each call is one
pass over the piece it is given, continuing from the network's weights and
the prior's precisions; the precisions get their closed-form update after
the first pass and then every ``cov_update_every`` passes, counted across
calls. Here a multitask regression problem (5 tasks that share 2 latent
factors of 20 inputs) arrives in pieces of 200 rows; after each piece the
model is scored on held-out rows, and compared at the end with one ``fit``
on all the pieces together. ``sample_weight`` can weigh each piece's rows,
e.g. to trust recent or better-measured data more.

The script writes ``streaming.png`` to the current directory.
"""

# %%
# A stream of pieces
# ------------------
# The first call fixes the inputs' and targets' shapes and the targets'
# standardization (from the first piece); every later piece must have the
# same features and tasks, or ``partial_fit`` raises a ``ValueError`` and
# leaves the model as it was.

import matplotlib.pyplot as plt
import numpy as np

from sk_adareg import AdaRegMultiTaskRegressor

rng = np.random.default_rng(0)
mixing = rng.normal(size=(20, 2))
loadings = rng.normal(size=(2, 5))


def piece(n):
    """n rows of the stream: 20 inputs, 5 tasks driven by 2 shared factors."""
    X = rng.normal(size=(n, 20))
    factors = np.tanh(X @ mixing / 3)
    return X, factors @ loadings + 0.3 * rng.normal(size=(n, 5))


X_test, Y_test = piece(2000)
stream = [piece(200) for _ in range(30)]

model = AdaRegMultiTaskRegressor(hidden_layer_sizes=(64,), lr=3e-3, reg_lambda=1e-2,
                                 cov_update_every=5, random_state=0)
scores = []
for X_piece, Y_piece in stream:
    model.partial_fit(X_piece, Y_piece)
    scores.append(model.score(X_test, Y_test))
print(f"after {model.n_iter_} pieces: R2 = {scores[-1]:.3f}")

# %%
# Against one fit on everything
# -----------------------------
# The same network fitted on all 6,000 rows at once, for as many epochs as
# there were pieces, sees each row 30 times, where the stream saw each once.

X_all = np.vstack([X for X, _ in stream])
Y_all = np.vstack([Y for _, Y in stream])
batch = AdaRegMultiTaskRegressor(hidden_layer_sizes=(64,), lr=3e-3, reg_lambda=1e-2,
                                 cov_update_every=5, max_epochs=30,
                                 random_state=0).fit(X_all, Y_all)
print(f"one fit on all the rows: R2 = {batch.score(X_test, Y_test):.3f}")

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(np.arange(1, len(scores) + 1), scores, marker="o", label="partial_fit, piece by piece")
ax.axhline(batch.score(X_test, Y_test), color="k", linestyle="--",
           label="fit on all pieces (30 epochs)")
for epoch in np.flatnonzero(model.history_[:, "cov_update"]) + 1:
    ax.axvline(epoch, color="grey", linestyle=":", linewidth=0.8)
ax.set_xlabel("pieces seen (dotted: precision updates)")
ax.set_ylabel("held-out R²")
ax.legend(loc="lower right")
fig.tight_layout()
plt.savefig("streaming.png", dpi=100)

# %%
# The task covariance the prior learned from the stream relates the 5 tasks
# through their 2 shared factors.

cov = model.row_covariance_
scale = np.sqrt(np.diag(cov))
print(np.round(cov / np.outer(scale, scale), 2))
