"""The estimators' defaults: reg_lambda="auto" (evidence or leave-one-out, chosen by
cross-validation), a prior on every layer, strengths learned during training, and
inputs clipped to their training range at prediction."""

import importlib
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse
from sklearn.base import clone
from sklearn.model_selection import GroupKFold, KFold, StratifiedKFold, train_test_split
from sklearn.utils import check_random_state
from torch import nn

from sk_adareg import AdaRegClassifier, AdaRegMultiTaskRegressor
from sk_adareg.net import AdaRegNeuralNetClassifier, AdaRegNeuralNetRegressor

sys.path.insert(0, str(Path(__file__).resolve().parent))
StrengthsInForce = importlib.import_module("_recorders").StrengthsInForce


def data(n=80, p=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    Y = np.column_stack([X[:, 0] + np.sin(2 * X[:, 1]), X[:, 2] * X[:, 3]])
    Y += 0.3 * rng.standard_t(3, size=Y.shape)
    return X, Y, (X[:, 0] + X[:, 1] > 0).astype(int)


def seed_of(random_state):
    """The seed an estimator draws from its random_state (its folds', splits', torch's)."""
    return check_random_state(random_state).randint(np.iinfo(np.int32).max)


# ------------------------------------------------------------------------------- (a) defaults


@pytest.mark.parametrize("Estimator", [AdaRegClassifier, AdaRegMultiTaskRegressor])
def test_the_defaults_learn_the_strength_on_every_layer_and_clip_the_inputs(Estimator):
    params = Estimator().get_params()
    assert params["reg_lambda"] == "auto"
    assert params["adareg_layers"] == "all"
    assert params["clip_inputs"] is True
    assert params["cv"] is None


# ------------------------------------------------------------------- (b) the cross-validation


@pytest.fixture(scope="module")
def auto_regressor():
    X, Y, _ = data()
    return X, Y, AdaRegMultiTaskRegressor(max_epochs=20, random_state=0).fit(X, Y)


def test_auto_chooses_the_best_mean_score_of_three_shuffled_folds(auto_regressor):
    X, Y, est = auto_regressor
    scores = est.cv_scores_
    assert set(scores) == {"evidence", "loo"}
    assert all(s.shape == (3,) and np.isfinite(s).all() for s in scores.values())
    means = {method: s.mean() for method, s in scores.items()}
    assert est.strength_method_ == max(means, key=means.get)
    assert est.best_score_ == means[est.strength_method_]
    assert scores["evidence"].tolist() != scores["loo"].tolist()
    # Each fold's score is that of the candidate fitted on the fold's training part, for
    # 15 % of the epochs (ceil(0.15 * 20) = 3), with the estimator's seed.
    folds = KFold(3, shuffle=True, random_state=seed_of(0)).split(X)
    for k, (train, test) in enumerate(folds):
        for method, fold_scores in scores.items():
            fold = AdaRegMultiTaskRegressor(reg_lambda=method, max_epochs=math.ceil(0.15 * 20),
                                            random_state=0).fit(X[train], Y[train])
            assert fold.n_iter_ == 3
            assert fold_scores[k] == fold.score(X[test], Y[test]), (method, k)


def test_auto_then_trains_on_all_the_data_under_the_winner(auto_regressor):
    X, Y, est = auto_regressor
    winner = AdaRegMultiTaskRegressor(reg_lambda=est.strength_method_, max_epochs=20,
                                      random_state=0).fit(X, Y)
    assert est.n_iter_ == 20 and est.net_.reg_lambda == est.strength_method_
    np.testing.assert_array_equal(est.predict(X), winner.predict(X))
    assert est.reg_lambda_ == winner.reg_lambda_
    np.testing.assert_array_equal(est.noise_variance_, winner.noise_variance_)
    assert winner.cv_scores_ is None and winner.best_score_ is None
    assert winner.strength_method_ == est.strength_method_


# ------------------------------------------------------------------------------ (c) groups


class RecordingGroupKFold(GroupKFold):
    """A GroupKFold that keeps the groups and folds it was asked for."""

    def split(self, X, y=None, groups=None):
        self.groups_ = groups
        self.folds_ = list(super().split(X, y, groups))
        return iter(self.folds_)


def test_groups_reach_the_splitter():
    X, Y, _ = data(n=60)
    groups = np.repeat(np.arange(12), 5)  # 12 groups of 5 consecutive rows
    splitter = RecordingGroupKFold(3)
    est = AdaRegMultiTaskRegressor(hidden_layer_sizes=(8,), max_epochs=5, cv=splitter,
                                   random_state=0).fit(X, Y, groups=groups)
    np.testing.assert_array_equal(splitter.groups_, groups)
    assert len(splitter.folds_) == 3
    tested = [set(groups[test]) for _, test in splitter.folds_]
    assert set.union(*tested) == set(range(12)) and sum(map(len, tested)) == 12
    for train, test in splitter.folds_:  # no group on both sides of a fold
        assert not set(groups[train]) & set(groups[test])
    # the scores are those of these folds
    train, test = splitter.folds_[0]
    method = est.strength_method_
    fold = AdaRegMultiTaskRegressor(hidden_layer_sizes=(8,), reg_lambda=method,
                                    max_epochs=math.ceil(0.15 * 5),
                                    random_state=0).fit(X[train], Y[train])
    assert est.cv_scores_[method][0] == fold.score(X[test], Y[test])
    # a group splitter without groups: it is the splitter that refuses
    with pytest.raises(ValueError, match="groups"):
        clone(est).fit(X, Y)


# ------------------------------------------------------- (d) strengths learned during training


@pytest.mark.parametrize("reg_lambda", ["evidence", "loo"])
def test_a_short_fit_learns_its_strengths_during_training(reg_lambda):
    X, Y, _ = data()
    recorder = StrengthsInForce()
    # 2 epochs of 5 batches: updates after steps 2, 5 and 8 of the 10 (update_steps)
    est = AdaRegMultiTaskRegressor(hidden_layer_sizes=(8,), reg_lambda=reg_lambda,
                                   max_epochs=2, batch_size=16, keep_batch_history=True,
                                   callbacks=[("strengths", recorder)],
                                   random_state=0).fit(X, Y)
    assert est.strength_method_ == reg_lambda and est.cv_scores_ is None
    in_force = dict(est.net_.callbacks_)["strengths"].strengths_
    assert len(in_force) == 10
    steps = [row.get("cov_update", False) for epoch in est.history_ for row in epoch["batches"]
             if "train_loss" in row]
    assert [i + 1 for i, updated in enumerate(steps) if updated] == [2, 5, 8]
    assert est.history_[:, "cov_update"] == [True, True]
    assert all(isinstance(row["log_evidence"], float) for row in est.history_)
    if reg_lambda == "loo":
        assert all(row["loo_scale"] > 0 for row in est.history_)
    # From 3e-3 at the first step, a new strength after each update, those of the last
    # one in force for the steps after it and reported: the end of the fit keeps them.
    names = ["hidden.0.weight", "output.weight"]
    assert in_force[0] == dict.fromkeys(names, 3e-3)
    changes = [i + 1 for i in range(1, 10) if in_force[i] != in_force[i - 1]]
    assert changes == [2, 5, 8]
    assert in_force[7] == in_force[8] == in_force[9]
    assert list(est.reg_lambda_) == names
    assert all(value != 3e-3 for value in est.reg_lambda_.values())
    assert est.reg_lambda_ == pytest.approx(in_force[-1], rel=1e-12)
    assert est.net_.reg_lambda_ == pytest.approx(
        dict(zip(names, est.net_.priors_.strengths.tolist(), strict=True)), rel=1e-12)


def test_a_short_fit_counts_its_steps_in_the_batches_skorch_makes():
    X, Y, _ = data()
    # skorch batches by iterator_train__batch_size over batch_size: 80 rows in 2 batches
    # of 40, 4 steps in 2 epochs, updates after steps 1, 2 and 3 (none past the last).
    est = AdaRegMultiTaskRegressor(hidden_layer_sizes=(8,), reg_lambda="evidence",
                                   max_epochs=2, batch_size=16, keep_batch_history=True,
                                   random_state=0).set_params(
                                       iterator_train__batch_size=40).fit(X, Y)
    steps = [row.get("cov_update", False) for epoch in est.history_ for row in epoch["batches"]
             if "train_loss" in row]
    assert len(steps) == 4
    assert [i + 1 for i, updated in enumerate(steps) if updated] == [1, 2, 3]
    assert all(value != 3e-3 for value in est.reg_lambda_.values())


def test_a_long_warm_start_learns_its_strengths_until_its_own_last_epoch():
    X, Y, _ = data()
    params = {"hidden_layer_sizes": (8,), "reg_lambda": "evidence", "max_epochs": 8,
              "cov_update_every": 2, "warm_start": True, "random_state": 0}
    est = AdaRegMultiTaskRegressor(**params).fit(X, Y)
    first = dict(est.reg_lambda_)
    est.fit(X, Y)  # epochs 9 to 16: the history is longer than max_epochs
    learned = [i + 1 for i, row in enumerate(est.history_) if "log_evidence" in row]
    # updated after epochs 2, 4 and 6 of each call, not after its last one (8 and 16)
    assert learned == [2, 4, 6, 10, 12, 14]
    assert est.reg_lambda_ != first


def bare_net(**params):
    module = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 2))
    return AdaRegNeuralNetRegressor(module, reg_lambda="evidence", batch_size=16,
                                    train_split=None, verbose=0, **params).initialize()


def test_a_bare_nets_partial_fit_of_one_epoch_at_a_time_learns_every_few_epochs():
    X, Y, _ = data()
    X, Y = X.astype(np.float32), Y.astype(np.float32)
    # max_epochs=10 alone would plan 3 step updates over 10 epochs, which a call of one
    # epoch never reaches: each call is a step of a longer training.
    net = bare_net(max_epochs=10, cov_update_every=5)
    for _ in range(12):
        net.partial_fit(X, Y, epochs=1)
    updated = [row["epoch"] for row in net.history if row["cov_update"]]
    assert updated == [5, 10]
    # no last epoch in such a training: each precision update is followed by a strength one
    assert [row["epoch"] for row in net.history if "log_evidence" in row] == [5, 10]
    assert not any(row.get("cov_update") for epoch in net.history
                   for row in epoch["batches"])


def test_a_bare_nets_call_longer_than_max_epochs_plans_over_its_own_epochs():
    X, Y, _ = data()
    X, Y = X.astype(np.float32), Y.astype(np.float32)
    net = bare_net(max_epochs=1, cov_update_every=1)
    # 3 epochs of 5 batches: (3 - 1) // 1 = 2 updates by the epoch would be too few,
    # so after steps 4, 8 and 11 of the 15, the call's own quarters.
    net.partial_fit(X, Y, epochs=3)
    steps = [row.get("cov_update", False) for epoch in net.history for row in epoch["batches"]
             if "train_loss" in row]
    assert [i + 1 for i, updated in enumerate(steps) if updated] == [4, 8, 11]
    assert all("log_evidence" in row for row in net.history)


# ------------------------------------------------------------------------- (e) clip_inputs


def clip_range(X_train):
    """The training range in float32, widened by a quarter of it on each side."""
    low = X_train.min(axis=0).astype(np.float32)
    high = X_train.max(axis=0).astype(np.float32)
    width = (high - low) * np.float32(0.25)
    return low - width, high + width


def far_and_clipped(X_train, X):
    """``X`` pushed far outside the training range, and the same clipped back near it."""
    far = X * 50 + np.sign(X) * 10
    return far, np.clip(far, *clip_range(X_train))


@pytest.mark.parametrize("sparse", [False, True])
def test_predictions_far_from_the_data_are_those_at_its_edge(sparse):
    X, Y, _ = data()
    if sparse:
        X = np.where(np.abs(X) > 0.7, X, 0.0)
    far, clipped = far_and_clipped(X, X[:20])
    assert not np.array_equal(far, clipped)
    wrap = scipy.sparse.csr_matrix if sparse else np.asarray
    est = AdaRegMultiTaskRegressor(hidden_layer_sizes=(8,), reg_lambda="evidence",
                                   max_epochs=5, random_state=0).fit(wrap(X), Y)
    np.testing.assert_array_equal(est._input_bounds_[0], X.min(axis=0).astype(np.float32))
    np.testing.assert_array_equal(est._input_bounds_[1], X.max(axis=0).astype(np.float32))
    mean, std = est.predict(wrap(far), return_std=True)
    at_edge, std_at_edge = est.predict(wrap(clipped), return_std=True)
    np.testing.assert_array_equal(mean, at_edge)
    np.testing.assert_allclose(std, std_at_edge, rtol=1e-12)
    np.testing.assert_array_equal(est.predict(wrap(far)), at_edge)
    # the check can fail: unclipped, the network extrapolates
    est.set_params(clip_inputs=False)
    mean, std = est.predict(wrap(far), return_std=True)
    assert not np.allclose(mean, at_edge) and not np.allclose(std, std_at_edge)


def test_the_classifiers_probabilities_far_from_the_data_are_those_at_its_edge():
    X, _, y = data()
    far, clipped = far_and_clipped(X, X[:20])
    clf = AdaRegClassifier(hidden_layer_sizes=(8,), max_epochs=5, random_state=0).fit(X, y)
    np.testing.assert_array_equal(clf.predict_proba(far), clf.predict_proba(clipped))
    np.testing.assert_array_equal(clf.predict(far), clf.predict(clipped))
    clf.set_params(clip_inputs=False)
    assert not np.allclose(clf.predict_proba(far), clf.predict_proba(clipped))


@pytest.mark.parametrize("clip_inputs", [True, False])
def test_the_validation_part_is_clipped_to_the_training_parts_range(clip_inputs):
    X, Y, _ = data(n=120)
    X[::10] *= 4  # every tenth row far out: some land in the validation part
    est = AdaRegMultiTaskRegressor(hidden_layer_sizes=(8,), reg_lambda=3e-3, max_epochs=3,
                                   validation_fraction=0.25, clip_inputs=clip_inputs,
                                   random_state=0).fit(X, Y)
    train, valid = train_test_split(np.arange(len(X)), test_size=0.25,
                                    random_state=seed_of(0))
    X32 = X.astype(np.float32)
    np.testing.assert_array_equal(est._input_bounds_[0], X32[train].min(axis=0))
    np.testing.assert_array_equal(est._input_bounds_[1], X32[train].max(axis=0))
    low, high = clip_range(X32[train])
    valid_X = est.net_.train_split.keywords["valid_ds"].X
    assert not np.array_equal(np.clip(X32[valid], low, high), X32[valid])  # some are out
    np.testing.assert_array_equal(valid_X, np.clip(X32[valid], low, high) if clip_inputs
                                  else X32[valid])
    # the validation score is the score of the validation rows, as predict sees them
    assert est.validation_scores_[-1] == pytest.approx(est.score(X[valid], Y[valid]),
                                                       abs=1e-6)


# ------------------------------------------------------------------------- (f) partial_fit


@pytest.mark.parametrize("Estimator", [AdaRegClassifier, AdaRegMultiTaskRegressor])
def test_partial_fit_trains_the_default_under_a_fixed_strength(Estimator):
    X, Y, y = data()
    target = y if Estimator is AdaRegClassifier else Y
    kwargs = {"classes": [0, 1]} if Estimator is AdaRegClassifier else {}
    est = Estimator(hidden_layer_sizes=(8,), random_state=0).partial_fit(X, target, **kwargs)
    assert est.strength_method_ == "fixed" and est.net_.reg_lambda == 3e-3
    assert est.cv_scores_ is None and est.best_score_ is None
    assert est.reg_lambda_ == {"hidden.0.weight": 3e-3, "output.weight": 3e-3}
    # as a fit under reg_lambda=3e-3 would train
    fixed = Estimator(hidden_layer_sizes=(8,), reg_lambda=3e-3, random_state=0)
    fixed.partial_fit(X, target, **kwargs)
    np.testing.assert_array_equal(est.history_[:, "train_loss"],
                                  fixed.history_[:, "train_loss"])
    est.partial_fit(X, target)
    assert est.n_iter_ == 2 and est.strength_method_ == "fixed"
    with pytest.raises(ValueError, match=r"reg_lambda='evidence'.*partial_fit"):
        Estimator(reg_lambda="evidence").partial_fit(X, target, **kwargs)


# --------------------------------------------------------------------------- (g) the nets


@pytest.mark.parametrize("net_class", [AdaRegNeuralNetRegressor, AdaRegNeuralNetClassifier])
def test_a_net_cannot_choose_by_cross_validation(net_class):
    net = net_class(nn.Linear(5, 2), reg_lambda="auto", train_split=None, verbose=0)
    with pytest.raises(ValueError, match=r"reg_lambda='auto'.*'evidence', 'loo' or a number"):
        net.initialize()
    net = net_class(nn.Linear(5, 2), train_split=None, verbose=0).initialize()
    assert net.reg_lambda == 3e-3 and net.priors_.names == ["weight"]  # the nets' defaults
    net_class(nn.Linear(5, 2), reg_lambda="evidence", train_split=None, verbose=0).initialize()


# ---------------------------------------------------------------------- (h) the classifier


def test_the_classifiers_auto_chooses_between_the_evidence_a_fixed_strength_and_none():
    X, _, y = data()
    params = {"hidden_layer_sizes": (8,), "max_epochs": 20, "random_state": 0}
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    clf = AdaRegClassifier(cv=cv, **params).fit(X, y)
    assert list(clf.cv_scores_) == ["evidence", 3e-3, 0.0]
    means = {method: s.mean() for method, s in clf.cv_scores_.items()}
    chosen = max(means, key=means.get)
    assert clf.best_score_ == means[chosen]
    assert clf.strength_method_ == ("evidence" if chosen == "evidence" else "fixed")
    assert clf.net_.reg_lambda == chosen
    # each fold's score is the candidate's fit on the fold, scored as score() scores
    for k, (train, test) in enumerate(cv.split(X, y)):
        for method, fold_scores in clf.cv_scores_.items():
            fold = AdaRegClassifier(**{**params, "max_epochs": 3}, reg_lambda=method)
            assert fold_scores[k] == fold.fit(X[train], y[train]).score(X[test], y[test])
    # then the winner trained on all the data
    winner = AdaRegClassifier(reg_lambda=chosen, **params).fit(X, y)
    np.testing.assert_array_equal(clf.predict_proba(X), winner.predict_proba(X))
    assert clf.reg_lambda_ == winner.reg_lambda_


class RecordingKFold(KFold):
    """A KFold that keeps the number of rows it was asked to split."""

    def split(self, X, y=None, groups=None):
        self.n_rows_ = X.shape[0]
        return super().split(X, y, groups)


def test_the_choice_reads_a_subset_of_large_data(monkeypatch):
    monkeypatch.setattr("sk_adareg._strength._choice.CV_ROWS", 50)
    X, Y, _ = data(n=120)
    splitter = RecordingKFold(3, shuffle=True, random_state=0)
    est = AdaRegMultiTaskRegressor(hidden_layer_sizes=(8,), max_epochs=5, cv=splitter,
                                   random_state=0).fit(X, Y)
    assert splitter.n_rows_ == 50
    assert est.n_iter_ == 5 and est.strength_method_ in ("evidence", "loo")
    # the final fit reads every row: its input range is that of all of them
    np.testing.assert_array_equal(est._input_bounds_[1], X.max(axis=0).astype(np.float32))
    monkeypatch.setattr("sk_adareg._strength._choice.CV_ROWS", 3000)
    splitter = RecordingKFold(3, shuffle=True, random_state=0)
    AdaRegMultiTaskRegressor(hidden_layer_sizes=(8,), max_epochs=5, cv=splitter,
                             random_state=0).fit(X, Y)
    assert splitter.n_rows_ == 120
