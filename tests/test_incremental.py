"""partial_fit, warm_start, validation scores and verbosity, as scikit-learn's MLPs have them."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted

from sk_adareg import AdaRegClassifier, AdaRegMultiTaskRegressor

SMALL = {"hidden_layer_sizes": (8,), "cov_update_every": 3, "random_state": 0}


def data(n=80, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    Y = np.column_stack([X[:, 0] + X[:, 1], X[:, 2] - X[:, 1]])
    y = np.where(X[:, 0] > 0, "a", "b")
    return X, y, Y


def partial_fit(est, X, target):
    if isinstance(est, AdaRegClassifier):
        return est.partial_fit(X, target, classes=["a", "b"])
    return est.partial_fit(X, target)


def target(Estimator, y, Y):
    return y if Estimator is AdaRegClassifier else Y


def state(est):
    """A copy of what training changes."""
    return ({k: v.clone() for k, v in est.net_.module_.state_dict().items()},
            est.row_precision_.copy(), est.n_iter_)


def same_state(a, b):
    return (all(np.array_equal(a[0][k], b[0][k]) for k in a[0])
            and np.array_equal(a[1], b[1]) and a[2] == b[2])


@pytest.mark.parametrize("Estimator", [AdaRegClassifier, AdaRegMultiTaskRegressor])
def test_each_call_is_one_pass_and_the_precisions_follow_the_epoch_count(Estimator):
    X, y, Y = data()
    est = Estimator(**SMALL)
    precisions, changed = [], []
    for call in range(7):
        part = slice(10 * call, 10 * call + 30)
        partial_fit(est, X[part], target(Estimator, y, Y)[part])
        assert est.n_iter_ == call + 1 and len(est.history_) == call + 1
        changed.append(not precisions or not np.array_equal(precisions[-1],
                                                             est.row_precision_))
        precisions.append(est.row_precision_.copy())
    # After the first pass (nothing to start from), then every cov_update_every passes.
    assert changed == [True, False, True, False, False, True, False]
    assert est.history_[:, "cov_update"] == [False, False, True, False, False, True, False]
    assert len(est.history_[-1, "batches"]) == 0 and est.validation_scores_ is None


@pytest.mark.parametrize("Estimator", [AdaRegClassifier, AdaRegMultiTaskRegressor])
def test_partial_fit_learns(Estimator):
    X, y, Y = data(n=400)
    est = Estimator(**SMALL, lr=1e-2)
    first = None
    for _ in range(15):
        partial_fit(est, X[:300], target(Estimator, y, Y)[:300])
        first = first or est.score(X[300:], target(Estimator, y, Y)[300:])
    assert est.score(X[300:], target(Estimator, y, Y)[300:]) > max(first, 0.8)


@pytest.mark.parametrize("Estimator", [AdaRegClassifier, AdaRegMultiTaskRegressor])
@pytest.mark.parametrize("bad, message", [
    (lambda X, t: (X[:, :3], t), "X has 3 features"),
    (lambda X, t: (X, t[:10]), "inconsistent numbers of samples"),
])
def test_a_bad_call_leaves_the_model_untouched(Estimator, bad, message):
    X, y, Y = data()
    est = partial_fit(Estimator(**SMALL), X, target(Estimator, y, Y))
    before = state(est)
    with pytest.raises(ValueError, match=message):
        partial_fit(est, *bad(X, target(Estimator, y, Y)))
    assert same_state(before, state(est))


def test_targets_must_match_the_first_call():
    X, y, Y = data()
    clf = AdaRegClassifier(**SMALL)
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        clf.partial_fit(X, y)
    with pytest.raises(ValueError, match="classes must hold at least 2"):
        clf.partial_fit(X, y, classes=["a"])
    clf.partial_fit(X, y, classes=["a", "b", "c"])
    before = state(clf)
    with pytest.raises(ValueError, match=r"labels not among the classes .*\['z'\]"):
        clf.partial_fit(X, np.where(y == "a", "a", "z"))
    with pytest.raises(ValueError, match="is not the same as on the first call"):
        clf.partial_fit(X, y, classes=["a", "b"])
    assert same_state(before, state(clf))
    reg = AdaRegMultiTaskRegressor(**SMALL).partial_fit(X, Y)
    before = state(reg)
    with pytest.raises(ValueError, match="y has 3 target"):
        reg.partial_fit(X, np.column_stack([Y, Y[:, 0]]))
    assert same_state(before, state(reg))


def test_partial_fit_ignores_early_stopping_and_cannot_learn_the_strength():
    X, _, Y = data()
    reg = AdaRegMultiTaskRegressor(early_stopping=True, **SMALL).partial_fit(X, Y)
    assert "valid_loss" not in reg.history_[-1]
    with pytest.raises(ValueError, match="return_std=True needs the Laplace posterior"):
        reg.predict(X, return_std=True)
    assert not hasattr(reg, "noise_variance_")
    # reg_lambda="auto" (the default) trains under a fixed strength; the others refuse
    assert reg.strength_method_ == "fixed" and reg.cv_scores_ is None
    assert reg.reg_lambda_ == dict.fromkeys(reg.adareg_layers_, 3e-3)
    for learned in ("evidence", "loo"):
        est = AdaRegMultiTaskRegressor(reg_lambda=learned, **SMALL)
        with pytest.raises(ValueError, match=f"reg_lambda='{learned}' learns the strength "
                                             "from the whole training set, which partial_fit"):
            est.partial_fit(X, Y)
        assert not hasattr(est, "net_")
    # a fit then partial_fit: the fit's posterior is gone with its data, and its learned
    # strengths give way to the fixed one
    reg = AdaRegMultiTaskRegressor(max_epochs=3, **SMALL).fit(X, Y)
    assert hasattr(reg, "noise_variance_") and reg.strength_method_ in ("evidence", "loo")
    reg.partial_fit(X, Y)
    assert reg.n_iter_ == 4 and not hasattr(reg, "noise_variance_")
    assert reg.strength_method_ == "fixed"
    assert reg.reg_lambda_ == dict.fromkeys(reg.adareg_layers_, 3e-3)


@pytest.mark.parametrize("Estimator", [AdaRegClassifier, AdaRegMultiTaskRegressor])
def test_warm_start_continues_from_the_fitted_state(Estimator):
    X, y, Y = data()
    t = target(Estimator, y, Y)
    # A fixed strength: with learned ones, a 1-epoch fit updates its prior after a step.
    est = Estimator(max_epochs=6, warm_start=True, reg_lambda=3e-3, **SMALL).fit(X, t)
    weights, precision = state(est)[0], est.row_precision_.copy()
    est.set_params(max_epochs=1, lr=1e-5).fit(X, t)
    assert est.n_iter_ == 7 and est.net_.optimizer_.param_groups[0]["lr"] == 1e-5
    # one tiny step from where it was, not a new network
    for name, value in state(est)[0].items():
        np.testing.assert_allclose(value, weights[name], atol=1e-3)
    # epoch 7 is no update epoch: the precisions are carried over, not started anew
    assert not est.history_[-1, "cov_update"]
    np.testing.assert_array_equal(est.row_precision_, precision)
    # warm_start=False starts anew
    est.set_params(warm_start=False, max_epochs=2).fit(X, t)
    assert est.n_iter_ == 2
    # a warm start sees all its data: it may learn the strengths, from where they were
    weights = state(est)[0]
    est.set_params(warm_start=True, reg_lambda="evidence").fit(X, t)
    assert est.n_iter_ == 4 and est.strength_method_ == "evidence"
    assert [any(key == "log_evidence" for key in row) for row in est.history_] == [
        False, False, True, True]  # (a short fit: updates after 3 of its 4 steps)
    assert all(value != 3e-3 for value in est.reg_lambda_.values())
    assert not any(np.array_equal(value, weights[name])
                   for name, value in state(est)[0].items())
    check_is_fitted(est)


def test_a_warm_start_under_auto_keeps_the_first_fits_choice(monkeypatch):
    X, _, Y = data()
    reg = AdaRegMultiTaskRegressor(max_epochs=10, warm_start=True, **SMALL).fit(X, Y)
    chosen, scores = reg.strength_method_, reg.cv_scores_
    assert chosen in ("evidence", "loo") and set(scores) == {"evidence", "loo"}
    assert chosen == max(scores, key=lambda method: scores[method].mean())
    # no cross-validation again: the folds' fits would call _strength_method's chooser
    calls = []
    monkeypatch.setattr("sk_adareg._estimators._base.choose_by_cv",
                        lambda *args: calls.append(args))
    reg.set_params(max_epochs=3).fit(X, Y)
    assert calls == [] and reg.n_iter_ == 13
    assert reg.strength_method_ == chosen and reg.cv_scores_ is scores
    assert reg.net_.reg_lambda == chosen
    assert any("log_evidence" in row for row in reg.history_[10:])  # it learns on


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("Estimator", [AdaRegClassifier, AdaRegMultiTaskRegressor])
def test_validation_scores_without_early_stopping(Estimator):
    X, y, Y = data(n=120)
    est = Estimator(max_epochs=5, validation_fraction=0.25, **SMALL).fit(X, target(
        Estimator, y, Y))
    assert len(est.validation_scores_) == 5 == est.n_iter_
    assert est.best_validation_score_ == max(est.validation_scores_)
    valid = est.net_.train_split.keywords["valid_ds"]
    if Estimator is AdaRegClassifier:
        y_valid = est.classes_[valid.y]
    else:
        y_valid = est._target_scaler_.inverse_transform(valid.y)
    assert len(valid.y) == 30
    assert est.validation_scores_[-1] == pytest.approx(est.score(valid.X, y_valid), abs=1e-6)
    none = clone(est).set_params(validation_fraction=None).fit(X, target(Estimator, y, Y))
    assert none.validation_scores_ is None and none.best_validation_score_ is None
    stopped = clone(est).set_params(validation_fraction=None, early_stopping=True).fit(
        X, target(Estimator, y, Y))
    assert len(stopped.net_.train_split.keywords["valid_ds"]) == 12  # 0.1 by default


# --------------------------------------------------------------------------- verbose


def test_verbose_levels(capfd):
    X, y, _ = data()
    AdaRegClassifier(max_epochs=3, verbose=0, **SMALL).fit(X, y)
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    AdaRegClassifier(max_epochs=3, verbose=1, validation_fraction=0.2, **SMALL).fit(X, y)
    out, err = capfd.readouterr()
    assert "3/3" in err and "train_loss=" in err and "valid_score=" in err
    assert "Re-initializing" not in out + err and "epoch " not in out
    AdaRegClassifier(verbose=1, **SMALL).partial_fit(X, y, classes=["a", "b"])
    _, err = capfd.readouterr()
    assert "1/1" in err and "/200" not in err  # one pass per call, not max_epochs
    AdaRegClassifier(max_epochs=3, verbose=2, **SMALL).fit(X, y)
    out, err = capfd.readouterr()
    assert "train_loss" in out and len(out.strip().splitlines()) == 5  # header, rule, 3 rows
    assert "Re-initializing" not in out + err


def test_partial_fit_with_batch_norm_drops_a_last_batch_of_one():
    X, _, Y = data(n=200)
    reg = AdaRegMultiTaskRegressor(batch_norm=True, batch_size=16, **SMALL)
    for size in (33, 17, 40):  # 2 * 16 + 1, 16 + 1, no remainder
        reg.partial_fit(X[:size], Y[:size])
        assert reg.net_.iterator_train__drop_last == (size % 16 == 1)
    assert reg.n_iter_ == 3


def test_warm_start_reads_early_stopping_again():
    X, y, _ = data(n=150)
    clf = AdaRegClassifier(max_epochs=4, warm_start=True, **SMALL).fit(X, y)
    # noise labels: the validation loss stops improving at once
    noise = np.random.default_rng(1).permutation(y)
    clf.set_params(early_stopping=True, n_iter_no_change=2, max_epochs=50, lr=1e-2).fit(X, noise)
    assert 4 < clf.n_iter_ < 4 + 50 and "valid_loss" in clf.history_[-1]
    n_iter = clf.n_iter_
    scores = list(clf.validation_scores_)
    clf.set_params(early_stopping=False, max_epochs=2).fit(X, y)
    assert clf.n_iter_ == n_iter + 2
    assert clf.net_.train_split is None and "valid_loss" not in clf.history_[-1]
    # as scikit-learn's MLPs under warm_start, the curves run on over the fits
    assert clf.validation_scores_ == scores and len(clf.loss_curve_) == n_iter + 2
