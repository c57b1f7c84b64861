"""Weights, classes, skorch pass-through parameters and tuple outputs (issue 39, cases 2, 4-7).

Each bad setting is refused with a ``ValueError`` or ``TypeError`` that names the
parameter, before skorch's training loop runs; none reaches an internal error or a
message about something else. A module returning a tuple trains and predicts on its
first element, as in skorch.
"""

import numpy as np
import pytest
import torch
from torch import nn

from sk_adareg import AdaRegClassifier, AdaRegMultiTaskRegressor

KW = {"hidden_layer_sizes": (8,), "max_epochs": 10, "random_state": 0}
rng = np.random.default_rng(0)
X = rng.normal(size=(40, 3))
Y = X[:, :2]
y = (X[:, 0] > 0).astype(int)


def targets(Estimator):
    return y if Estimator is AdaRegClassifier else Y


# -- case 2: "loo" where a few rows carry all the weight -----------------------------------


@pytest.mark.parametrize("sample_weight", [np.r_[1e6, np.ones(39)], np.r_[1.0, np.zeros(39)]])
def test_loo_refuses_weights_carried_by_one_sample(sample_weight, training_runs):
    est = AdaRegMultiTaskRegressor(reg_lambda="loo", **KW)
    with pytest.raises(ValueError, match=r"sample_weight.*effective number of samples") as info:
        est.fit(X, Y, sample_weight=sample_weight)
    assert "reg_lambda='evidence'" in str(info.value)
    assert training_runs == []


def test_auto_learns_by_the_evidence_where_loo_is_undefined():
    est = AdaRegMultiTaskRegressor(**KW).fit(X, Y, sample_weight=np.r_[1e6, np.ones(39)])
    assert est.strength_method_ == "evidence" and est.cv_scores_ is None
    assert np.isfinite(est.predict(X, return_std=True)[1]).all()


@pytest.mark.parametrize("random_state", [0, 1, 4])
def test_loo_with_an_uneven_but_spread_weight_gives_sensible_intervals(random_state):
    # 30x on one sample: about 5 effective samples. The std stays near the targets'
    # spread (it was 176-242 at these seeds).
    weights = np.ones(40)
    weights[5] = 30.0
    _, std = AdaRegMultiTaskRegressor(reg_lambda="loo", **{**KW, "random_state": random_state}
                                      ).fit(X, Y, sample_weight=weights).predict(
                                          X, return_std=True)
    assert np.all(std > 0) and std.mean() < 1.5 * Y.std()


# -- case 4: a module that returns a tuple ------------------------------------------------


class Plain(nn.Module):
    def __init__(self, n_features, n_outputs):
        super().__init__()
        self.hidden = nn.Linear(n_features, 8)
        self.out = nn.Linear(8, n_outputs)

    def forward(self, X):
        return self.out(torch.relu(self.hidden(X)))


class WithExtras(Plain):
    """skorch's convention: the prediction first, then anything else."""

    def forward(self, X):
        out = super().forward(X)
        return out, out.detach() * 0


@pytest.mark.parametrize("reg_lambda", [1e-2, "evidence", "loo"])
def test_a_tuple_output_trains_and_predicts_on_its_first_element_regressor(reg_lambda):
    plain = AdaRegMultiTaskRegressor(module=Plain, reg_lambda=reg_lambda, **KW).fit(X, Y)
    extras = AdaRegMultiTaskRegressor(module=WithExtras, reg_lambda=reg_lambda, **KW).fit(X, Y)
    for a, b in zip(plain.predict(X, return_std=True), extras.predict(X, return_std=True),
                    strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    np.testing.assert_allclose(plain.loss_curve_, extras.loss_curve_, rtol=1e-6)


def test_a_tuple_output_trains_and_predicts_on_its_first_element_classifier():
    kw = {**KW, "validation_fraction": 0.2}  # the validation loss and score too
    plain = AdaRegClassifier(module=Plain, **kw).fit(X, y)
    extras = AdaRegClassifier(module=WithExtras, **kw).fit(X, y)
    np.testing.assert_allclose(plain.predict_proba(X), extras.predict_proba(X), rtol=1e-6)
    np.testing.assert_allclose(plain.validation_scores_, extras.validation_scores_)


# -- case 5: class weights, sample weights and classes -----------------------------------


@pytest.mark.parametrize("class_weight", [{0: -1.0, 1: 5.0}, {0: np.nan}, {0: np.inf},
                                          {0: "1"}])
def test_class_weights_must_be_finite_and_non_negative(class_weight, training_runs):
    with pytest.raises(ValueError, match=r"class_weight must map each class to a finite "
                                         r"weight >= 0.*gives 0 the weight"):
        AdaRegClassifier(class_weight=class_weight, **KW).fit(X, y)
    assert training_runs == []


@pytest.mark.parametrize("Estimator", [AdaRegClassifier, AdaRegMultiTaskRegressor])
@pytest.mark.parametrize("weight", [1e308, 1e37])
def test_sample_weights_summing_past_float32_are_refused(Estimator, weight, training_runs):
    with pytest.raises(ValueError, match=r"sample_weight sums to .*float32.*Scale the weights"):
        Estimator(**KW).fit(X, targets(Estimator), sample_weight=np.full(40, weight))
    assert training_runs == []


def test_class_weight_times_sample_weight_past_float32_is_refused(training_runs):
    with pytest.raises(ValueError, match=r"class_weight=\{0: 1e\+37\} times sample_weight sums"):
        AdaRegClassifier(class_weight={0: 1e37}, **KW).fit(X, y, sample_weight=np.ones(40) * 10)
    assert training_runs == []


def test_partial_fit_classes_must_not_hold_nan(training_runs):
    clf = AdaRegClassifier(**KW)
    with pytest.raises(ValueError, match=r"classes must not contain NaN"):
        clf.partial_fit(X, y.astype(float), classes=[0.0, 1.0, np.nan])
    assert training_runs == [] and not hasattr(clf, "classes_")


# -- case 6: the weights of the part that validation_fraction leaves to train on ------------


@pytest.mark.parametrize("Estimator", [AdaRegClassifier, AdaRegMultiTaskRegressor])
@pytest.mark.parametrize("random_state", range(4))
def test_a_split_that_leaves_no_weight_on_a_part_is_refused(Estimator, random_state,
                                                            training_runs):
    # One sample carries all the weight: one of the two parts has none.
    weights = np.r_[1.0, np.zeros(39)]
    est = Estimator(**{**KW, "random_state": random_state}, validation_fraction=0.5,
                    reg_lambda=1e-2)
    with pytest.raises(ValueError, match=r"sample_weight is zero on all 20 samples that "
                                         r"validation_fraction=0.5 leaves to (train|validate) on"):
        est.fit(X, targets(Estimator), sample_weight=weights)
    assert training_runs == []


# -- case 7: skorch's pass-through parameters and callbacks ------------------------------


@pytest.mark.parametrize("Estimator", [AdaRegClassifier, AdaRegMultiTaskRegressor])
@pytest.mark.parametrize("params, error, match", [
    ({"iterator_train__drop_last": True, "batch_size": 64}, ValueError,
     r"iterator_train__drop_last=True drops the only batch.*40 samples.*batch_size=64"),
    ({"iterator_train__drop_last": True, "iterator_train__batch_size": 50}, ValueError,
     r"iterator_train__drop_last=True.*iterator_train__batch_size=50"),
    ({"iterator_train__batch_size": 0}, ValueError, r"iterator_train__batch_size=0"),
    ({"iterator_valid__batch_size": -1, "validation_fraction": 0.2}, ValueError,
     r"iterator_valid__batch_size=-1"),
    ({"iterator_train__batch_size": 2.5}, ValueError, r"iterator_train__batch_size=2.5"),
    ({"criterion__reduction": "none"}, ValueError, r"criterion__reduction='none'"),
    ({"criterion__reduction": "sum"}, ValueError, r"criterion__reduction='sum'"),
    ({"criterion__n_outputs": 5}, ValueError, r"criterion__n_outputs=5"),
    ({"criterion__n_outputs": 5, "reg_lambda": "evidence"}, ValueError,
     r"criterion__n_outputs=5"),
    ({"callbacks": ["x"]}, TypeError, r"callbacks must be .*holds 'x'"),
    ({"callbacks": [("name", 3)]}, TypeError, r"callbacks must be .*holds \('name', 3\)"),
    ({"device": "meta"}, ValueError, r"device='meta' is not available"),
])
def test_pass_through_settings_that_break_training_are_refused(Estimator, params, error,
                                                               match, training_runs):
    with pytest.raises(error, match=match):
        Estimator(**KW).set_params(**params).fit(X, targets(Estimator))
    assert training_runs == []


def test_well_formed_callbacks_and_drop_last_still_train():
    from skorch.callbacks import EpochTimer

    est = AdaRegMultiTaskRegressor(**KW, batch_size=16, callbacks=[
        EpochTimer, EpochTimer(), ("timer", EpochTimer()), ("off", None)]).set_params(
            iterator_train__drop_last=True).fit(X, Y)
    assert est.n_iter_ == KW["max_epochs"]
    assert est.history_[-1, "train_batch_count"] == 40 // 16
