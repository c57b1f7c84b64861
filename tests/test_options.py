"""Options met by new users: devices, validation split, other optimizers, keywords, threads."""

import numpy as np
import pytest
import torch
from skorch import NeuralNet

from sk_adareg import AdaRegClassifier, AdaRegMultiTaskRegressor

SMALL = {"max_epochs": 2, "random_state": 0}
ESTIMATORS = [AdaRegClassifier, AdaRegMultiTaskRegressor]


def data(n=60, p=5, k=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    return X, np.arange(n) % k, X @ rng.normal(size=(p, k))


def target(Estimator, y, Y):
    return y if Estimator is AdaRegClassifier else Y


@pytest.fixture
def no_training(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(NeuralNet, "fit_loop", fail)


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="this machine has MPS")
@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_mps_without_mps_is_a_value_error(Estimator, no_training):
    X, y, Y = data()
    est = Estimator(device="mps", **SMALL)
    with pytest.raises(ValueError, match="device='mps', but MPS is not available here"):
        est.fit(X, target(Estimator, y, Y))
    assert not hasattr(est, "net_")


def test_a_device_this_machine_lacks_is_a_value_error(no_training):
    X, y, _ = data()
    device = f"cuda:{torch.cuda.device_count()}" if torch.cuda.is_available() else "xpu"
    with pytest.raises(ValueError, match=f"device='{device}'.* not available here"):
        AdaRegClassifier(device=device, **SMALL).fit(X, y)


@pytest.mark.parametrize("Estimator, n, fraction, left, needed", [
    (AdaRegClassifier, 200, 0.99, 2, 3),        # 2 rows left, fewer than the 3 classes
    (AdaRegClassifier, 30, 0.95, 1, 3),
    (AdaRegMultiTaskRegressor, 200, 0.995, 1, 2),
    (AdaRegMultiTaskRegressor, 5, 0.9, 0, 2),
])
def test_a_validation_fraction_leaving_too_few_training_samples_is_refused(
        Estimator, n, fraction, left, needed, no_training):
    X, y, Y = data(n=n)
    est = Estimator(early_stopping=True, validation_fraction=fraction, **SMALL)
    with pytest.raises(ValueError, match=rf"validation_fraction={fraction} holds out "
                                         rf"{n - left} of {n} samples.*leaves {left} to train "
                                         rf"on; {Estimator.__name__} needs at least {needed}"):
        est.fit(X, target(Estimator, y, Y))


@pytest.mark.parametrize("Estimator, n, fraction", [
    (AdaRegClassifier, 200, 0.985),             # leaves 3 rows: one per class
    (AdaRegMultiTaskRegressor, 200, 0.99),      # leaves 2 rows
])
def test_the_smallest_allowed_training_part_trains(Estimator, n, fraction):
    X, y, Y = data(n=n)
    # A fixed strength: reg_lambda="auto" would fit on 2/3 of the rows for its
    # cross-validation, which leave too few to train on.
    est = Estimator(early_stopping=True, validation_fraction=fraction, reg_lambda=3e-3,
                    **SMALL)
    est.fit(X, target(Estimator, y, Y))
    assert len(est.net_.train_split.keywords["valid_ds"]) == n - (3 if fraction == 0.985 else 2)
    # without early stopping the fraction still holds out validation data, scored each epoch
    est.set_params(early_stopping=False).fit(X, target(Estimator, y, Y))
    assert est.n_iter_ == 2 and len(est.validation_scores_) == 2
    assert est.best_validation_score_ == max(est.validation_scores_)
    # and None holds out nothing
    est.set_params(validation_fraction=None).fit(X, target(Estimator, y, Y))
    assert est.net_.train_split is None and est.validation_scores_ is None
    assert "valid_loss" not in est.history_[-1]


@pytest.mark.parametrize("Estimator", ESTIMATORS)
@pytest.mark.parametrize("params", [{}, {"reg_lambda": 3e-3, "adareg_layers": "last"}])
def test_lbfgs_trains(Estimator, params):
    X, y, Y = data()
    est = Estimator(optimizer=torch.optim.LBFGS, lr=0.5, max_epochs=5, batch_size=60,
                    hidden_layer_sizes=(8,), random_state=0, **params)
    est.fit(X, target(Estimator, y, Y))
    assert isinstance(est.net_.optimizer_, torch.optim.LBFGS)
    assert "weight_decay" not in est.net_.optimizer_.defaults
    assert len(est.history_) == 5 and np.isfinite(est.predict(X).astype(float)).all()
    if params:  # under a fixed objective; learned strengths change it as it trains
        assert est.loss_curve_[-1] < 0.8 * est.loss_curve_[0]


def test_weight_decay_needs_an_optimizer_that_takes_it(no_training):
    X, y, _ = data()
    with pytest.raises(ValueError, match=r"weight_decay=0\.01 needs an optimizer that takes "
                                         "weight_decay; optimizer=LBFGS does not"):
        AdaRegClassifier(optimizer=torch.optim.LBFGS, weight_decay=0.01, **SMALL).fit(X, y)


def test_weight_decay_zero_reaches_an_optimizer_with_another_default():
    # AdamW decays by 0.01 by default: weight_decay=0.0 must still mean none.
    X, y, _ = data()
    clf = AdaRegClassifier(optimizer=torch.optim.AdamW, **SMALL).fit(X, y)
    assert clf.net_.optimizer_.param_groups[0]["weight_decay"] == 0.0


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_an_unknown_keyword_names_the_public_class(Estimator):
    with pytest.raises(TypeError, match=rf"^{Estimator.__name__}.__init__\(\) got an "
                                        "unexpected keyword argument 'hidden_layers'"):
        Estimator(hidden_layers=(8,))


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_fit_and_predict_leave_the_callers_thread_settings_alone(Estimator):
    before = torch.get_num_threads()
    X, y, Y = data()
    try:
        torch.set_num_threads(3)
        est = Estimator(**SMALL).fit(X, target(Estimator, y, Y))
        assert torch.get_num_threads() == 3
        est.predict(X)
        assert torch.get_num_threads() == 3
        torch.set_num_threads(1)
        Estimator(**SMALL).fit(X, target(Estimator, y, Y)).predict(X)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_a_fused_optimizer_kernel_is_used_where_there_is_one(Estimator):
    # Adam's fused kernel (torch >= 2.4 on CPU) is the same update to float rounding.
    X, y, Y = data(n=120)
    fits = {}
    for fused in (True, False):
        est = Estimator(hidden_layer_sizes=(16,), max_epochs=5, batch_size=16, random_state=0)
        if not fused:
            est.set_params(optimizer__fused=False)
        fits[fused] = est.fit(X, target(Estimator, y, Y))
    expected = torch.__version__ >= "2.4"
    assert bool(fits[True].net_.optimizer_.defaults.get("fused")) is expected
    assert not fits[False].net_.optimizer_.defaults.get("fused")
    for a, b in zip(fits[True].net_.module_.parameters(), fits[False].net_.module_.parameters(),
                    strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_an_implementation_chosen_by_the_user_gets_no_fused_argument():
    # Adam refuses fused=True with foreach=True.
    X, y, _ = data()
    clf = AdaRegClassifier(**SMALL).set_params(optimizer__foreach=True).fit(X, y)
    assert clf.net_.optimizer_.defaults["foreach"] is True
    assert not clf.net_.optimizer_.defaults.get("fused")


def test_an_optimizer_without_a_fused_kernel_gets_no_fused_argument():
    X, y, _ = data()
    clf = AdaRegClassifier(optimizer=torch.optim.RMSprop, **SMALL).fit(X, y)
    assert isinstance(clf.net_.optimizer_, torch.optim.RMSprop)
    assert not clf.net_.optimizer_.defaults.get("fused")
