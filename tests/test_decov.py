"""The DeCov baseline penalty."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from torch import nn

from sk_adareg import AdaRegClassifier, AdaRegNeuralNet
from sk_adareg.decov import InputRecorder, decov_penalty


def test_decov_matches_numpy_covariance():
    rng = np.random.default_rng(0)
    h = rng.normal(size=(50, 6)) @ rng.normal(size=(6, 6))
    cov = np.cov(h, rowvar=False, bias=True)
    expected = 0.5 * ((cov**2).sum() - (np.diag(cov) ** 2).sum())
    assert decov_penalty(torch.as_tensor(h)).item() == pytest.approx(expected, rel=1e-10)


def test_decov_ignores_offsets_and_variances_but_not_correlation():
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.normal(size=(40, 4)))
    q -= q.mean(axis=0)
    q, _ = np.linalg.qr(q)  # centred orthonormal columns: zero covariance
    h = torch.as_tensor(q * [1.0, 5.0, 0.1, 3.0] + [10.0, -2.0, 0.0, 7.0])
    assert decov_penalty(h).item() == pytest.approx(0.0, abs=1e-12)
    h[:, 1] = h[:, 0]  # now cov(h0, h1) = var(h0) = 1 / 40, the only nonzero off-diagonal
    assert decov_penalty(h).item() == pytest.approx((1 / 40) ** 2, rel=1e-9)


def test_decov_penalises_the_penultimate_activations_during_training():
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3))
    net = AdaRegNeuralNet(module, nn.MSELoss, reg_lambda=0.0, decov_lambda=0.3,
                          max_epochs=1, train_split=None, verbose=0)
    X, y = torch.randn(32, 5), torch.randn(32, 3)
    net.fit(X, y)
    net.module_.train()
    y_pred = net.module_(X)
    hidden = module[1](module[0](X))
    expected = nn.functional.mse_loss(y_pred, y) + 0.3 * decov_penalty(hidden)
    torch.testing.assert_close(net.get_loss(y_pred, y, training=True), expected)
    # evaluation passes record nothing, so the validation loss is the data loss
    net.module_.eval()
    with torch.no_grad():
        net.module_(X)
    assert net.decov_recorder_.value is None


def test_one_recorder_across_fits_and_pickling():
    X, y = make_classification(n_samples=60, n_features=5, random_state=0)
    clf = AdaRegClassifier(reg_lambda=0.0, decov_lambda=0.1, max_epochs=3, random_state=0)
    clf.fit(X, y).fit(X, y)
    layer = clf.net_.module_.output
    assert sum(isinstance(h, InputRecorder) for h in layer._forward_pre_hooks.values()) == 1
    copy = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(copy.predict_proba(X), clf.predict_proba(X))
    copy.net_.partial_fit(X.astype(np.float32), y)
    hooks = copy.net_.module_.output._forward_pre_hooks.values()
    assert sum(isinstance(h, InputRecorder) for h in hooks) == 1
    assert copy.net_.decov_recorder_ in hooks


def test_decov_changes_the_fit_and_needs_a_linear_layer():
    X, y = make_classification(n_samples=60, n_features=5, random_state=0)
    plain = AdaRegClassifier(reg_lambda=0.0, max_epochs=5, random_state=0).fit(X, y)
    decov = AdaRegClassifier(reg_lambda=0.0, decov_lambda=1.0, max_epochs=5,
                             random_state=0).fit(X, y)
    gap = np.subtract(decov.history_[:, "train_loss"], decov.history_[:, "train_data_loss"])
    assert np.all(gap > 0)
    assert not np.array_equal(plain.predict_proba(X), decov.predict_proba(X))
    conv_only = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten())
    net = AdaRegNeuralNet(conv_only, nn.MSELoss, adareg_layers="conv",
                          decov_lambda=1.0, train_split=None, verbose=0)
    with pytest.raises(ValueError, match=r"needs an nn\.Linear"):
        net.fit(torch.randn(4, 1, 5, 5), torch.randn(4, 18))
