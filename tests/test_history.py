"""A compact history by default: per-epoch records kept, per-batch records dropped."""

import pickle

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

from sk_adareg import AdaRegClassifier, AdaRegMultiTaskRegressor
from sk_adareg.callbacks import DivergenceCheck, DropBatchHistory
from sk_adareg.exceptions import TrainingDivergedError

EPOCH_KEYS = {"epoch", "train_loss", "train_data_loss", "train_batch_count", "dur",
              "adareg_penalty", "adareg_objective", "cov_update", "row_precision_min",
              "row_precision_max", "column_precision_min", "column_precision_max"}


def data(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    return X, (X[:, 0] > 0).astype(int)


def fit(batch_size, keep, **params):
    X, y = data()
    return AdaRegClassifier(hidden_layer_sizes=(8,), max_epochs=5, batch_size=batch_size,
                            keep_batch_history=keep, random_state=0, **params).fit(X, y)


def test_the_compact_history_does_not_grow_with_the_batches():
    many, few = fit(8, keep=False), fit(200, keep=False)      # 250 and 10 batches an epoch
    full = fit(8, keep=True)
    size = {name: len(pickle.dumps(est.history_))
            for name, est in (("many", many), ("few", few), ("full", full))}
    # the same records whatever the number of batches: a few floats' width apart at most
    assert abs(size["many"] - size["few"]) <= 64
    assert size["many"] < 400 * 5                              # bounded per epoch
    # each of the 1,250 batch records costs at least 30 bytes of pickle
    assert size["full"] - size["many"] >= 30 * 5 * 250
    assert len(pickle.dumps(full)) - len(pickle.dumps(many)) >= 30 * 5 * 250
    # the training itself does not change
    assert many.loss_curve_ == full.loss_curve_


def test_epoch_records_stay_and_batch_records_go():
    compact, full = fit(200, keep=False), fit(200, keep=True)
    for est in (compact, full):
        assert len(est.history_) == 5
        assert all(EPOCH_KEYS <= set(row) for row in est.history_)
        assert est.history_[:, "train_batch_count"] == [10] * 5
    assert compact.history_[:, "batches"] == [[]] * 5
    batches = full.history_[-1, "batches"]
    assert len(batches) == 10 and all("train_loss" in batch for batch in batches)
    # skorch's epoch train_loss is the size-weighted mean of the batches'
    np.testing.assert_allclose(
        full.history_[-1, "train_loss"],
        np.average(full.history_[-1, "batches", :, "train_loss"],
                   weights=full.history_[-1, "batches", :, "train_batch_size"]))


class BatchCounter(Callback):
    """Records how many batch records the history holds at each epoch's end."""

    def initialize(self):
        self.seen_ = []
        return self

    def on_epoch_end(self, net, **kwargs):
        self.seen_.append(len(net.history[-1, "batches"]))


@pytest.mark.parametrize("Estimator", [AdaRegClassifier, AdaRegMultiTaskRegressor])
def test_batches_are_dropped_after_every_other_callback_read_them(Estimator):
    X, y = data(n=100)
    counter = BatchCounter()
    est = Estimator(hidden_layer_sizes=(4,), max_epochs=3, batch_size=25, random_state=0,
                    callbacks=[("counter", counter)], early_stopping=True)
    est.fit(X, y if Estimator is AdaRegClassifier else X[:, :2])
    assert est.net_.callbacks_[-1][0] == "prior_refresh"  # still last
    names = [name for name, _ in est.net_.callbacks_]
    dropper = names.index("drop_batch_history")
    assert isinstance(est.net_.callbacks_[dropper][1], DropBatchHistory)
    for name in ("train_loss", "valid_loss", "divergence_check", "counter", "early_stopping"):
        assert names.index(name) < dropper
    assert counter.seen_ == [4 + 1] * 3  # 90 training rows in 4 batches, 10 validation rows
    assert est.history_[:, "batches"] == [[]] * 3


def test_divergence_is_still_caught_from_the_batch_losses(monkeypatch):
    seen = []
    original = DivergenceCheck.on_epoch_end

    def spy(self, net, **kwargs):
        seen.append(net.history[-1, "batches", :, "train_loss"])
        return original(self, net, **kwargs)

    monkeypatch.setattr(DivergenceCheck, "on_epoch_end", spy)
    X, y = data(n=64)
    # "training loss" (not "weights") comes from the batch losses, checked first
    with pytest.raises(TrainingDivergedError, match="The training loss became NaN"):
        AdaRegClassifier(hidden_layer_sizes=(4,), max_epochs=3, batch_size=16,
                         optimizer=torch.optim.SGD, lr=1.0, reg_lambda=1e30,
                         random_state=0).fit(X, y)
    assert seen and len(seen[0]) == 4


def test_keep_batch_history_is_validated():
    X, y = data(n=40)
    with pytest.raises(ValueError, match="'keep_batch_history' parameter"):
        AdaRegClassifier(keep_batch_history="yes").fit(X, y)
