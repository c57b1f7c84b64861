"""``reg_lambda="auto"``: the estimators' choice of a strength by cross-validation.

As scikit-learn's ``*CV`` estimators choose a hyperparameter, on the training data
alone: each candidate value of ``reg_lambda`` (a way of learning the strength, or a
fixed one) is trained on every fold's
training part (for a fraction of the epochs) and scored on its held-out part; the
one with the best mean score wins. The estimator then trains on all its training data
under the winner.
"""

# SPDX-License-Identifier: BSD-3-Clause

import math

import numpy as np

from ..exceptions import TrainingDivergedError

__all__ = ["CV_ROWS", "FOLD_EPOCHS", "choose_by_cv", "cv_rows", "fold_epochs", "mean_score"]

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


def mean_score(scores):
    """The mean of a candidate's fold scores, over the folds that have one.

    A fold's score is NaN where it is undefined (R² of a test fold of one sample, a
    fold without weight): the same for every candidate, so it is left out.

    Parameters
    ----------
    scores : array-like of shape (n_folds,)

    Returns
    -------
    mean : float
        NaN where no fold has a score.
    """
    scores = np.asarray(scores, dtype=np.float64)
    kept = scores[~np.isnan(scores)]
    return float(kept.mean()) if kept.size else np.nan


def choose_by_cv(candidates, folds, fit_and_score):
    """The candidate with the best mean score over the folds, and every score.

    Parameters
    ----------
    candidates : sequence of str or float
        Values of ``reg_lambda``; ties go to the first.
    folds : list of (train, test) index arrays
    fit_and_score : callable
        ``fit_and_score(candidate, train, test)`` fits on ``train`` and returns
        the score on ``test`` (higher is better).

    Returns
    -------
    chosen : str or float
    scores : dict of str or float to ndarray of shape (n_folds,)
        ``-inf`` where a fold's fit diverged (or predicted NaN), NaN where the
        fold has no score (:func:`mean_score` leaves it out).

    Raises
    ------
    TrainingDivergedError
        If every fit of every candidate diverged.
    ValueError
        If no candidate has a finite mean score otherwise (a fold's score undefined).
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
    means = [mean_score(scores[c]) for c in candidates]
    if not np.isfinite(means).any():
        if all(np.isneginf(scores[c]).all() for c in candidates):
            raise TrainingDivergedError(
                "Every fit of the cross-validation of reg_lambda='auto' diverged: their "
                "training losses or weights became NaN or infinite. Lower the learning rate "
                "or scale the inputs.")
        # NaN: a score undefined on its test fold (R² of one sample, or of zero weight).
        raise ValueError(
            "No candidate strength got a finite score on every fold of the "
            f"cross-validation of reg_lambda='auto' (scores: {scores}). Use larger "
            "folds (cv), or set reg_lambda='evidence'.")
    return candidates[int(np.argmax(means))], scores
