"""A compact history by default: per-epoch records kept, per-batch records dropped."""

import pickle
import warnings
from unittest import mock

import numpy as np
import pytest
import torch
from skorch import NeuralNet
from skorch.callbacks import Callback

from sk_adareg import AdaRegClassifier, AdaRegMultiTaskRegressor
from sk_adareg.callbacks import DivergenceCheck, DropBatchHistory
from sk_adareg.exceptions import TrainingDivergedError
from sk_adareg.net import AdaRegMixin, AdaRegNeuralNet

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
    # each of the 1,250 batch records costs at least 20 bytes of pickle (its two floats'
    # and ints' worth: the keys are memoized where the rows share the key strings)
    assert size["full"] - size["many"] >= 20 * 5 * 250
    assert len(pickle.dumps(full)) - len(pickle.dumps(many)) >= 20 * 5 * 250
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


# -- the epoch's losses read in one transfer (AdaRegMixin.run_single_epoch) ------------


def _histories(est):
    return [{k: v for k, v in row.items() if k != "dur"} for row in est.history_]


def _skorch_loop():
    """skorch's own run_single_epoch in place of the mixin's."""
    return mock.patch.object(AdaRegMixin, "run_single_epoch", NeuralNet.run_single_epoch)


@pytest.mark.parametrize("params", [{}, {"early_stopping": True}, {"reg_lambda": 3e-3},
                                    {"reg_lambda": "evidence"}])
@pytest.mark.parametrize("Estimator", [AdaRegClassifier, AdaRegMultiTaskRegressor])
def test_the_records_are_those_of_skorchs_loop(Estimator, params):
    X, y = data(300)
    y = y if Estimator is AdaRegClassifier else np.c_[X[:, :2], y].astype(float)
    quiet = []
    listeners = AdaRegMixin._quiet_batch_listeners

    def spy(self, training, iterator):
        found = listeners(self, training, iterator)
        quiet.append((training, found is not None))
        return found

    def fitted():
        return Estimator(hidden_layer_sizes=(8,), max_epochs=4, batch_size=32,
                         keep_batch_history=True, random_state=0, **params).fit(X, y)

    with mock.patch.object(AdaRegMixin, "_quiet_batch_listeners", spy):
        ours = fitted()
    with _skorch_loop():
        theirs = fitted()
    # the losses read at the epoch's end are the batches' to the last bit, in skorch's order
    assert _histories(ours) == _histories(theirs)
    assert [list(b) for b in ours.history_[-1, "batches"]] == [
        list(b) for b in theirs.history_[-1, "batches"]]
    train = [b for b in ours.history_[-1, "batches"] if "train_batch_size" in b]
    assert len(train) == ours.history_[-1, "train_batch_count"]
    assert all(type(b["train_loss"]) is float for b in train)
    # every training epoch took the quiet loop, no validation pass did
    assert {found for training, found in quiet if training} == {True}
    assert not any(found for training, found in quiet if not training)


def test_no_loss_is_read_to_the_host_per_batch(monkeypatch):
    # The number of host reads of a fit does not grow with its number of batches.
    X, y = data(800)
    reads = {"n": 0}
    item, tolist = torch.Tensor.item, torch.Tensor.tolist

    def counted(method):
        def read(self, *args):
            reads["n"] += 1
            return method(self, *args)
        return read

    def count(batch_size):
        reads["n"] = 0
        monkeypatch.setattr(torch.Tensor, "item", counted(item))
        monkeypatch.setattr(torch.Tensor, "tolist", counted(tolist))
        try:
            # A fixed strength: the evidence's own reads vary with the weights it sees.
            AdaRegClassifier(hidden_layer_sizes=(8,), reg_lambda=3e-3, adareg_layers="last",
                             max_epochs=3, batch_size=batch_size, random_state=0).fit(X, y)
        finally:
            monkeypatch.undo()
        return reads["n"]

    few, many = count(400), count(8)  # 2 and 100 batches an epoch
    assert many == few
    with _skorch_loop():  # skorch reads every batch's loss
        assert count(8) - count(400) == 3 * (100 - 2)


def test_a_callback_reading_the_batch_history_gets_skorchs_loop():
    X, y = data(200)

    class ReadsLoss(Callback):
        def initialize(self):
            self.losses_ = []
            return self

        def on_batch_end(self, net, training=False, **kwargs):
            if training:
                self.losses_.append(net.history[-1, "batches", -1, "train_loss"])

    reader = ReadsLoss()
    est = AdaRegClassifier(hidden_layer_sizes=(8,), max_epochs=2, batch_size=50,
                           keep_batch_history=True, random_state=0,
                           callbacks=[("reads", reader)]).fit(X, y)
    assert reader.losses_ == est.history_[:, "batches", :, "train_loss"][0] + est.history_[
        :, "batches", :, "train_loss"][1]
    assert all(type(loss) is float for loss in reader.losses_)


def test_an_interrupted_epoch_keeps_the_losses_of_its_finished_batches():
    # A step that fails leaves the history as skorch's loop does: the finished batches
    # with their losses and sizes, the failed one's row empty.
    X = torch.as_tensor(data(200)[0], dtype=torch.float32)

    def fitted():
        torch.manual_seed(0)
        net = AdaRegNeuralNet(torch.nn.Linear(5, 3), torch.nn.MSELoss, max_epochs=2,
                              batch_size=40, reg_lambda=0.1, train_split=None, verbose=0)
        calls = {"n": 0}
        step = AdaRegMixin.train_step_single

        def failing(self, batch, **fit_params):
            calls["n"] += 1
            if calls["n"] == 8:  # the third batch of the second epoch
                raise RuntimeError("step failed")
            return step(self, batch, **fit_params)

        with mock.patch.object(AdaRegMixin, "train_step_single", failing), \
                pytest.raises(RuntimeError, match="step failed"):
            net.fit(X, X[:, :3])
        return net.history

    ours = fitted()
    with _skorch_loop():
        theirs = fitted()
    assert ours[-1, "batches"] == theirs[-1, "batches"]
    assert len(ours[-1, "batches"]) == 3 and ours[-1, "batches"][-1] == {}
    assert all(type(b["train_loss"]) is float for b in ours[-1, "batches"][:2])


@pytest.mark.parametrize("params", [{"reg_lambda": 3e-3}, {"reg_lambda": "evidence"}])
def test_the_quiet_epoch_binds_the_penalty_once_and_follows_the_updates(params):
    # A quiet epoch binds the priors' factors once (PriorCollection.penalty_step);
    # skorch's loop binds them at every step. With the precisions (and, with learned
    # strengths, the strengths) updated after every epoch, the two fits agree to the last
    # bit only if each epoch's steps see the update before it.
    from sk_adareg.prior import PriorCollection

    X, y = data(300)
    bound, penalty_step = [], PriorCollection.penalty_step

    def counted(self, *args, **kwargs):
        bound.append(1)
        return penalty_step(self, *args, **kwargs)

    def fitted():
        bound.clear()
        with mock.patch.object(PriorCollection, "penalty_step", counted):
            est = AdaRegClassifier(hidden_layer_sizes=(8,), max_epochs=4, batch_size=32,
                                   adareg_layers="all", cov_update_every=1,
                                   keep_batch_history=True, random_state=0, **params)
            return est.fit(X, y), len(bound)

    ours, ours_bound = fitted()
    with _skorch_loop():
        theirs, theirs_bound = fitted()
    assert ours_bound == 4
    assert theirs_bound == sum(ours.history_[:, "train_batch_count"]) == 4 * 10
    assert _histories(ours) == _histories(theirs)
    for a, b in zip(ours.net_.module_.parameters(), theirs.net_.module_.parameters(),
                    strict=True):
        assert torch.equal(a, b)


def test_the_quiet_epoch_keeps_a_tensor_per_chunk_not_per_batch():
    # The losses waiting for the epoch's end are stacked every 256 batches: between the
    # 10th and the 266th step of an epoch the live tensors grow by the one stack.
    import gc

    X = torch.as_tensor(data(3000)[0], dtype=torch.float32)
    counts, step = {}, AdaRegMixin.train_step_single

    def counting(self, batch, **fit_params):
        done = len(self.history[-1, "batches"]) - 1  # this step's row is open already
        if done in (10, 266):
            gc.collect()
            with warnings.catch_warnings():  # isinstance on torch's deprecated aliases
                warnings.simplefilter("ignore", FutureWarning)
                counts[done] = sum(isinstance(o, torch.Tensor) for o in gc.get_objects())
        return step(self, batch, **fit_params)

    net = AdaRegNeuralNet(torch.nn.Linear(5, 3), torch.nn.MSELoss, max_epochs=1,
                          batch_size=8, reg_lambda=0.1, train_split=None, verbose=0)
    with mock.patch.object(AdaRegMixin, "train_step_single", counting):
        net.fit(X, X[:, :3])
    assert 0 <= counts[266] - counts[10] < 5, counts


def test_the_loss_tape_reads_as_item_does():
    from sk_adareg._engine import LossTape as _LossTape

    losses = [torch.tensor(v, dtype=torch.float32) for v in np.linspace(0, 1, 7)]
    losses += [torch.tensor([0.25], dtype=torch.float64), torch.tensor(3.0).expand(1)[0]]
    tape = _LossTape(chunk=3)
    for loss in losses:
        tape.append(loss)
    values = tape.values()
    assert values == [loss.item() for loss in losses]
    assert all(type(v) is float for v in values)
    assert _LossTape().values() == []
    wide = _LossTape(chunk=2)
    wide.append(torch.ones(2))
    with pytest.raises(RuntimeError, match="cannot be converted to Scalar"):
        wide.values()
