"""Tests of sk_adareg.metrics: stable rank, spectral norm, correlations."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import make_classification
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression

from sk_adareg import AdaRegClassifier, AdaRegNeuralNet
from sk_adareg.metrics import (
    covariance_to_correlation,
    spectral_norm,
    stable_rank,
    weight_norms,
)


@pytest.fixture(scope="module")
def classifier():
    X, y = make_classification(n_samples=60, n_features=6, n_informative=4, n_classes=3,
                               random_state=0)
    return AdaRegClassifier(hidden_layer_sizes=(8,), adareg_layers="all", max_epochs=3,
                            random_state=0).fit(X, y)


def orthogonal(rng, n):
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return q


# -- stable rank and spectral norm ---------------------------------------------------


@pytest.mark.parametrize("shape", [(3, 7), (7, 3), (5, 5), (1, 4), (4, 1)])
def test_spectral_norm_matches_numpy(shape):
    W = np.random.default_rng(0).standard_normal(shape)
    assert spectral_norm(W) == pytest.approx(np.linalg.norm(W, 2), rel=1e-12)
    assert stable_rank(W) == pytest.approx(
        np.linalg.norm(W, "fro") ** 2 / np.linalg.norm(W, 2) ** 2, rel=1e-12)


@pytest.mark.parametrize("rank", [1, 2, 4])
def test_stable_rank_equals_rank_for_equal_singular_values(rank):
    rng = np.random.default_rng(rank)
    s = np.zeros(6)
    s[:rank] = 3.5
    W = orthogonal(rng, 6) @ np.diag(s) @ orthogonal(rng, 6)[:, :6]
    assert stable_rank(W) == pytest.approx(rank, rel=1e-12)
    assert spectral_norm(W) == pytest.approx(3.5, rel=1e-12)


def test_stable_rank_ignores_tiny_singular_values():
    # Rank 3, but two singular values are negligible: the stable rank is about 1.
    W = np.diag([1.0, 1e-4, 1e-4])
    assert np.linalg.matrix_rank(W) == 3
    assert stable_rank(W) == pytest.approx(1.0, abs=1e-7)


@settings(max_examples=50, deadline=None)
@given(
    W=arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 6)),
             elements=st.floats(-1e3, 1e3, allow_subnormal=False)),
    scale=st.floats(1e-3, 1e3),
)
def test_stable_rank_properties(W, scale):
    if not np.any(np.abs(W) > 1e-6):
        return
    srank = stable_rank(W)
    assert 1.0 - 1e-9 <= srank <= np.linalg.matrix_rank(W) + 1e-9
    assert stable_rank(scale * W) == pytest.approx(srank, rel=1e-9)
    assert spectral_norm(scale * W) == pytest.approx(scale * spectral_norm(W), rel=1e-9)


def test_zero_matrix():
    # Documented convention: the stable rank of the zero matrix is its rank, 0.
    assert stable_rank(np.zeros((3, 4))) == 0.0
    assert spectral_norm(np.zeros((3, 4))) == 0.0


def test_returns_python_floats():
    W = np.ones((2, 3), dtype=np.float32)
    assert type(stable_rank(W)) is float
    assert type(spectral_norm(W)) is float


def test_conv_weight_is_seen_as_out_by_rest():
    W = np.random.default_rng(0).standard_normal((4, 3, 2, 2))
    matrix = W.reshape(4, -1)
    assert spectral_norm(W) == pytest.approx(np.linalg.norm(matrix, 2), rel=1e-12)
    assert stable_rank(W) == pytest.approx(stable_rank(matrix), rel=1e-12)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_torch_tensors_of_any_float_dtype(dtype):
    tensor = torch.randn(5, 3, generator=torch.Generator().manual_seed(0)).to(dtype)
    tensor.requires_grad_(True)
    # The reference is the same values in float64: the computation is float64.
    reference = tensor.detach().double().numpy()
    assert spectral_norm(tensor) == pytest.approx(np.linalg.norm(reference, 2), rel=1e-12)
    assert stable_rank(tensor) == pytest.approx(stable_rank(reference), rel=1e-12)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_tensor():
    tensor = torch.randn(6, 4, device="cuda")
    assert spectral_norm(tensor) == pytest.approx(
        np.linalg.norm(tensor.cpu().double().numpy(), 2), rel=1e-12)


@pytest.mark.parametrize(
    "W, error, match",
    [
        (np.ones(3), ValueError, "at least 2 dimensions"),
        (np.ones((0, 3)), ValueError, "must not be empty"),
        (np.array([[1.0, np.nan]]), ValueError, "NaN"),
        (np.array([[1.0, np.inf]]), ValueError, "infinity"),
        (torch.ones(2, 2, dtype=torch.complex64), TypeError, "must be real"),
    ],
)
@pytest.mark.parametrize("func", [stable_rank, spectral_norm])
def test_invalid_weights(func, W, error, match):
    with pytest.raises(error, match=match):
        func(W)


# -- weight_norms --------------------------------------------------------------------


def test_weight_norms_of_fitted_estimator(classifier):
    norms = weight_norms(classifier)
    assert list(norms) == classifier.adareg_layers_ == ["hidden.0.weight", "output.weight"]
    for name, values in norms.items():
        W = classifier.net_.module_.get_parameter(name).detach().double().numpy()
        assert values == {
            "stable_rank": pytest.approx(stable_rank(W), rel=1e-12),
            "spectral_norm": pytest.approx(np.linalg.norm(W, 2), rel=1e-12),
        }


def test_weight_norms_of_a_conv_net():
    module = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3), torch.nn.Flatten(),
                                 torch.nn.Linear(4 * 3 * 3, 2))
    net = AdaRegNeuralNet(module, torch.nn.MSELoss, adareg_layers="all",
                          train_split=None).initialize()
    norms = weight_norms(net)
    assert list(norms) == ["0.weight", "2.weight"]
    conv = net.module_.get_parameter("0.weight").detach().double().numpy()
    assert conv.shape == (4, 2, 3, 3)
    assert norms["0.weight"]["spectral_norm"] == pytest.approx(
        np.linalg.norm(conv.reshape(4, 18), 2), rel=1e-12)


def test_weight_norms_errors():
    with pytest.raises(NotFittedError):
        weight_norms(AdaRegClassifier())
    with pytest.raises(NotFittedError, match="not initialized"):
        weight_norms(AdaRegNeuralNet(torch.nn.Linear(2, 2), torch.nn.MSELoss))
    fitted = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    with pytest.raises(TypeError, match="LogisticRegression"):
        weight_norms(fitted)


# -- covariance_to_correlation -------------------------------------------------------


def test_correlation_matches_numpy_corrcoef():
    X = np.random.default_rng(0).standard_normal((50, 4)) @ np.diag([1.0, 10.0, 0.1, 3.0])
    X[:, 1] += 5 * X[:, 0]
    corr = covariance_to_correlation(np.cov(X.T))
    assert_allclose(corr, np.corrcoef(X.T), atol=1e-12)
    assert_array_equal(np.diag(corr), np.ones(4))  # exactly
    assert_array_equal(corr, corr.T)


def test_correlation_is_invariant_to_rescaling():
    rng = np.random.default_rng(1)
    A = rng.standard_normal((5, 5))
    cov = A @ A.T
    D = np.diag(rng.uniform(0.1, 10, 5))
    assert_allclose(covariance_to_correlation(D @ cov @ D), covariance_to_correlation(cov),
                    atol=1e-12)


def test_correlation_of_learned_covariances(classifier):
    for cov in (classifier.row_covariance_, classifier.column_covariance_,
                torch.as_tensor(classifier.row_covariance_, dtype=torch.float32)):
        corr = covariance_to_correlation(cov)
        assert corr.dtype == np.float64
        assert_array_equal(np.diag(corr), 1.0)
        assert np.all(np.abs(corr) <= 1.0)


def test_perfectly_correlated_pair_is_clipped_to_one():
    v = np.array([1.0, 3.0, 1e-8])
    corr = covariance_to_correlation(np.outer(v, v))
    assert np.all(np.abs(corr) <= 1.0)
    assert_allclose(corr, np.ones((3, 3)), atol=1e-12)


@pytest.mark.parametrize(
    "cov, match",
    [
        (np.ones((2, 3)), "square"),
        (np.ones(3), "square"),
        (np.array([[1.0, 0.5], [0.2, 1.0]]), "symmetric"),
        (np.array([[1.0, 0.0], [0.0, 0.0]]), r"covariance\[1, 1\]=0.0"),
        (np.array([[-1.0, 0.0], [0.0, 1.0]]), "positive diagonal"),
        (np.array([[1.0, np.nan], [np.nan, 1.0]]), "NaN"),
    ],
)
def test_correlation_invalid_input(cov, match):
    with pytest.raises(ValueError, match=match):
        covariance_to_correlation(cov)
