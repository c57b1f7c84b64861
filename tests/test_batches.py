"""Minibatches by slicing and inference in large chunks (sk_adareg._engine, sk_adareg._data)."""

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback
from skorch.dataset import Dataset
from torch.utils.data import DataLoader

from sk_adareg import AdaRegMultiTaskRegressor
from sk_adareg._data import chunked_forward
from sk_adareg._engine import batch_loader


def arrays(n=10):
    X = np.arange(3 * n, dtype=np.float32).reshape(n, 3)
    return X, np.arange(n)


@pytest.mark.parametrize("drop_last", [False, True])
def test_unshuffled_batches_are_those_of_torch_dataloader(drop_last):
    X, y = arrays()
    ours = list(batch_loader(Dataset(X, y), batch_size=4, drop_last=drop_last))
    theirs = list(DataLoader(Dataset(X, y), batch_size=4, drop_last=drop_last))
    assert len(ours) == len(theirs) == len(batch_loader(Dataset(X, y), batch_size=4,
                                                         drop_last=drop_last))
    for (Xa, ya), (Xb, yb) in zip(ours, theirs, strict=True):
        assert torch.equal(Xa, Xb) and torch.equal(ya, yb)


def test_shuffled_batches_cover_every_row_once_and_follow_the_torch_seed():
    X, y = arrays(11)
    loader = batch_loader(Dataset(X, y), batch_size=4, shuffle=True)
    torch.manual_seed(0)
    first = torch.cat([yb for _, yb in loader])
    assert sorted(first.tolist()) == list(range(11))
    assert not torch.equal(first, torch.arange(11))
    torch.manual_seed(0)
    assert torch.equal(torch.cat([yb for _, yb in loader]), first)
    for Xb, yb in loader:  # rows stay paired
        assert torch.equal(Xb[:, 0], 3 * yb.float())


def test_batches_without_a_target_are_dataloaders_and_draw_no_random_number():
    X, _ = arrays(10)
    ours = list(batch_loader(Dataset(X, None), batch_size=4))
    theirs = list(DataLoader(Dataset(X, None), batch_size=4))
    assert len(ours) == len(theirs) == 3
    for (Xa, ya), (Xb, yb) in zip(ours, theirs, strict=True):
        assert torch.equal(Xa, Xb) and torch.equal(ya, yb)  # skorch's placeholder target
    # DataLoader draws a seed from the global generator at every iteration; the batches do not.
    state = torch.get_rng_state()
    list(batch_loader(Dataset(X, None), batch_size=4))
    assert torch.equal(torch.get_rng_state(), state)
    list(DataLoader(Dataset(X, None), batch_size=4))
    assert not torch.equal(torch.get_rng_state(), state)


def test_a_net_predicting_inside_a_training_callback_trains_as_without_it():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)).astype(np.float32), rng.normal(size=(40, 2))

    class Predicts(Callback):
        def on_epoch_end(self, net, **kwargs):
            net.predict(X[:5])

    def fit(callbacks):
        return AdaRegMultiTaskRegressor(hidden_layer_sizes=(8,), max_epochs=4, batch_size=8,
                                        random_state=0, callbacks=callbacks).fit(X, y)

    np.testing.assert_array_equal(fit(None).predict(X), fit([Predicts()]).predict(X))


def test_other_datasets_and_dataloader_options_go_to_torch():
    X, y = arrays()
    assert isinstance(batch_loader(Dataset(X, y), batch_size=4, num_workers=0), DataLoader)
    assert isinstance(batch_loader(torch.utils.data.TensorDataset(torch.from_numpy(X)),
                                   batch_size=4), DataLoader)


def test_chunked_forward_equals_one_forward_and_restores_the_mode(monkeypatch):
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Dropout(0.5),
                                 torch.nn.Linear(5, 2))
    X = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
    monkeypatch.setattr("sk_adareg._data.INFERENCE_BYTES", 4 * 8 * 7)  # 7 rows a chunk
    out, bad = chunked_forward(module, X, "cpu")
    assert bad == 0
    module.eval()
    with torch.no_grad():
        expected = module(torch.from_numpy(X)).double().numpy()
    module.train()
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    assert out.dtype == np.float64 and module.training


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf, 3e38])
def test_chunked_forward_finds_each_non_finite_input_and_output(value, monkeypatch):
    module = torch.nn.Linear(3, 2)
    X = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
    X[33, 1] = value  # in the fifth chunk; 3e38 is finite, and overflows a float32 sum
    monkeypatch.setattr("sk_adareg._data.INFERENCE_BYTES", 4 * 8 * 7)  # 7 rows a chunk
    if np.isfinite(value):
        _, bad = chunked_forward(module, X, "cpu", check_inputs=True)
        expected = ~np.isfinite(module(torch.from_numpy(X)).detach().numpy()).all(axis=1)
        assert bad == expected.sum() and bad <= 1
    else:
        with pytest.raises(ValueError, match=r"Input X contains (NaN|infinity)"):
            chunked_forward(module, X, "cpu", check_inputs=True)
        _, bad = chunked_forward(module, X, "cpu")  # unchecked: its output row is not finite
        assert bad == 1


def test_predict_runs_in_chunks_far_larger_than_the_training_batches():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 4))
    est = AdaRegMultiTaskRegressor(max_epochs=1, batch_size=16, random_state=0)
    est.fit(X[:100], X[:100, :2])
    sizes = []
    est.net_.module_.register_forward_pre_hook(lambda m, args: sizes.append(len(args[0])))
    est.predict(X)
    assert sizes == [3000]
