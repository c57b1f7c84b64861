"""``reg_lambda="auto"``: the estimators' choice of a learned strength by cross-validation.

As scikit-learn's ``*CV`` estimators choose a hyperparameter, on the training data
alone: each candidate way of learning the strength is trained on every fold's
training part (for a fraction of the epochs) and scored on its held-out part; the
one with the best mean score wins. The estimator then trains on all its training data
under the winner.
"""

# SPDX-License-Identifier: BSD-3-Clause

import math

import numpy as np

from ..exceptions import TrainingDivergedError

__all__ = ["CV_ROWS", "FOLD_EPOCHS", "choose_by_cv", "cv_rows", "fold_epochs"]

#: The fraction of ``max_epochs`` each fold's fit trains for: with 3 folds, 15 % chose as
#: well as 30 % on the benchmark suite, at half the cost (user guide, "Learning the
#: strength"); 10 % did not.
FOLD_EPOCHS = 0.15


#: The most training rows the choice reads: above it, a random subset of this size. The
#: choice matters on small data, where a prior too weak overfits; on large data both
#: ways of learning the strength do about as well, and a choice on every row would cost
#: several fits of the whole set.
CV_ROWS = 3_000


def cv_rows(n_samples, seed):
    """The rows the cross-validation reads: None for all, else :data:`CV_ROWS` of them."""
    if n_samples <= CV_ROWS:
        return None
    return np.sort(np.random.default_rng(seed).choice(n_samples, CV_ROWS, replace=False))


def fold_epochs(max_epochs):
    """Epochs of a fold's fit: :data:`FOLD_EPOCHS` of ``max_epochs``, at least 1."""
    return max(1, math.ceil(FOLD_EPOCHS * max_epochs))


def choose_by_cv(candidates, folds, fit_and_score):
    """The candidate with the best mean score over the folds, and every score.

    Parameters
    ----------
    candidates : sequence of str
        Values of ``reg_lambda``; ties go to the first.
    folds : list of (train, test) index arrays
    fit_and_score : callable
        ``fit_and_score(candidate, train, test)`` fits on ``train`` and returns
        the score on ``test`` (higher is better).

    Returns
    -------
    chosen : str
    scores : dict of str to ndarray of shape (n_folds,)
        ``-inf`` where a fold's fit diverged (or predicted NaN).

    Raises
    ------
    TrainingDivergedError
        If every fit of every candidate diverged.
    """
    scores = {}
    for candidate in candidates:
        fold_scores = []
        for train, test in folds:
            try:
                fold_scores.append(fit_and_score(candidate, train, test))
            except FloatingPointError:  # the fit diverged, or its predictions are not finite
                fold_scores.append(-np.inf)
        scores[candidate] = np.asarray(fold_scores, dtype=np.float64)
    means = [scores[c].mean() for c in candidates]
    if not np.isfinite(means).any():
        raise TrainingDivergedError(
            "Every fit of the cross-validation of reg_lambda='auto' diverged. Lower the "
            "learning rate or scale the inputs.")
    return candidates[int(np.argmax(means))], scores
