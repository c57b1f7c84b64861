"""Numerical extremes of the prior update, and the covariances fitted estimators expose.

The update runs in float64 whatever the weight's dtype; it must stay finite and
feasible (every eigenvalue of a precision in ``[u, v]``) for large weights
(4096 x 4096, marked slow), 16-bit weights, rank-deficient and badly
conditioned weights, and any scale float32 can hold.
"""

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sklearn.datasets import make_classification
from sklearn.metrics import log_loss

from sk_adareg import AdaRegClassifier, AdaRegMultiTaskRegressor, MatrixNormalPrior
from sk_adareg.prior import inv_threshold


def assert_feasible_precision(omega, eigenvalues, u, v, unit_mean):
    """Finite, exactly symmetric, spectrum in [u, v] (and mean 1 for unit_mean)."""
    assert omega.dtype == torch.float64 and eigenvalues.dtype == torch.float64
    assert torch.isfinite(omega).all()
    assert torch.equal(omega, omega.T)
    assert eigenvalues.min() >= u and eigenvalues.max() <= v
    # The matrix itself, not only the stored spectrum: Q diag(e) Q^T in float64.
    slack = 1e-9 * v
    spectrum = torch.linalg.eigvalsh(omega)
    assert spectrum.min() >= u - slack and spectrum.max() <= v + slack
    if unit_mean:
        assert eigenvalues.mean().item() == pytest.approx(1.0, abs=1e-9)


def assert_feasible_prior(prior):
    for side in ("row", "column"):
        assert_feasible_precision(getattr(prior, f"{side}_precision"),
                                  getattr(prior, f"{side}_eigenvalues"), prior.u, prior.v,
                                  prior.precision_scale == "unit_mean")
        cov = getattr(prior, f"{side}_covariance")
        omega = getattr(prior, f"{side}_precision")
        torch.testing.assert_close(cov @ omega, torch.eye(len(cov), dtype=torch.float64),
                                   atol=1e-8 * prior.v / prior.u, rtol=0)


def reference_update(w, u, v, numerator="paper"):
    """The paper's update (precision_scale="learned") in numpy, from the eigendecomposition."""
    w = np.asarray(w, dtype=np.float64)
    p, d = w.shape
    m_r, m_c = (d, p) if numerator == "paper" else (p, d)

    def inv_threshold_np(delta, m):
        r, q = np.linalg.eigh((delta + delta.T) / 2)
        r = np.where(r > np.abs(r).max() * len(r) * np.finfo(float).eps, r, 0.0)
        with np.errstate(divide="ignore"):
            lam = np.where(r > 0, np.clip(m / np.where(r > 0, r, 1.0), u, v), v)
        return (q * lam) @ q.T

    omega_r = inv_threshold_np(w @ w.T, m_r)  # Omega_c starts at the identity
    return omega_r, inv_threshold_np(w.T @ omega_r @ w, m_c)


def badly_conditioned(p, d, condition, dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    k = min(p, d)
    left, _ = torch.linalg.qr(torch.randn(p, k, generator=gen, dtype=torch.float64))
    right, _ = torch.linalg.qr(torch.randn(d, k, generator=gen, dtype=torch.float64))
    s = torch.logspace(0, -math.log10(condition), k, dtype=torch.float64)
    return ((left * s) @ right.T).to(dtype)


# -- large weights ------------------------------------------------------------------------


def _large_update(p, d, precision_scale):
    w = torch.randn(p, d, generator=torch.Generator().manual_seed(0))
    prior = MatrixNormalPrior(w.shape, 0.1, 10.0, precision_scale=precision_scale).update(w)
    for side in ("row", "column"):
        omega = getattr(prior, f"{side}_precision")
        eig = getattr(prior, f"{side}_eigenvalues")
        assert torch.isfinite(omega).all() and torch.equal(omega, omega.T)
        assert eig.min() >= 0.1 and eig.max() <= 10.0
        # spectrum of the matrix in [u, v], by two Cholesky factorizations (cheaper than
        # a second eigendecomposition at this size)
        eye = torch.eye(len(omega), dtype=torch.float64)
        for shifted in (omega - (0.1 - 1e-8) * eye, (10.0 + 1e-8) * eye - omega):
            assert torch.linalg.cholesky_ex(shifted).info.item() == 0
        if precision_scale == "unit_mean":
            assert eig.mean().item() == pytest.approx(1.0, abs=1e-9)
    assert math.isfinite(prior.objective(w).item())
    assert math.isfinite(prior.penalty(w).item())


@pytest.mark.parametrize("precision_scale", ["learned", "unit_mean"])
def test_update_of_a_1024_by_768_weight_is_finite_and_feasible(precision_scale):
    _large_update(1024, 768, precision_scale)


@pytest.mark.slow
@pytest.mark.parametrize("precision_scale", ["learned", "unit_mean"])
def test_update_of_a_4096_by_4096_weight_is_finite_and_feasible(precision_scale):
    # About a minute per update on one CPU thread: two 4096 x 4096 eigendecompositions.
    _large_update(4096, 4096, precision_scale)


# -- 16-bit weights -----------------------------------------------------------------------


@pytest.mark.parametrize("dtype, rtol", [(torch.float16, 2e-3), (torch.bfloat16, 1e-2)])
@pytest.mark.parametrize("precision_scale", ["learned", "unit_mean"])
def test_16_bit_weights_update_in_float64_and_penalize_in_their_dtype(dtype, rtol,
                                                                      precision_scale):
    w = torch.randn(10, 40, generator=torch.Generator().manual_seed(0)).to(dtype)
    prior = MatrixNormalPrior(w.shape, 0.1, 10.0, precision_scale=precision_scale).update(w)
    # The update sees the weight cast exactly to float64.
    exact = MatrixNormalPrior(w.shape, 0.1, 10.0, precision_scale=precision_scale)
    exact.update(w.to(torch.float64))
    for key, tensor in prior.state_dict().items():
        assert tensor.dtype == torch.float64
        assert torch.equal(tensor, exact.state_dict()[key]), key
    assert_feasible_prior(prior)
    # The penalty (two matrix products per batch) runs in the weight's dtype, on CPU too.
    w.requires_grad_(True)
    penalty = prior.penalty(w)
    assert penalty.dtype == dtype
    reference = prior.penalty(w.detach().to(torch.float64))
    assert penalty.item() == pytest.approx(reference.item(), rel=rtol)
    penalty.backward()
    assert w.grad.dtype == dtype and torch.isfinite(w.grad).all()
    expected = 2 * prior.row_precision @ w.detach().double() @ prior.column_precision
    error = torch.linalg.norm(w.grad.double() - expected) / torch.linalg.norm(expected)
    # the precisions are rounded to the weight's dtype too: a few dozen units of round-off
    assert error.item() < 16 * torch.finfo(dtype).eps


# -- rank-deficient and badly conditioned weights -------------------------------------------


@pytest.mark.parametrize("precision_scale", ["learned", "unit_mean"])
@pytest.mark.parametrize("numerator", ["paper", "authors"])
@pytest.mark.parametrize("make_weight", [
    pytest.param(lambda: torch.outer(torch.arange(1.0, 7.0), torch.linspace(-1, 2, 30)),
                 id="rank-1"),
    pytest.param(lambda: torch.outer(torch.ones(6), torch.ones(30)) * 1e15, id="rank-1-huge"),
    pytest.param(lambda: badly_conditioned(6, 30, 1e12), id="cond-1e12"),
    pytest.param(lambda: badly_conditioned(30, 6, 1e12), id="cond-1e12-tall"),
    pytest.param(lambda: badly_conditioned(8, 8, 1e12, torch.float32), id="cond-1e12-float32"),
    pytest.param(lambda: badly_conditioned(6, 30, 1e12) * 1e-20, id="cond-1e12-tiny"),
    pytest.param(lambda: torch.zeros(6, 30), id="zero"),
])
def test_degenerate_weights_give_feasible_precisions(make_weight, numerator, precision_scale):
    w = make_weight()
    prior = MatrixNormalPrior(w.shape, 1e-3, 1e3, numerator=numerator,
                              precision_scale=precision_scale)
    for _ in range(3):  # a few block steps, as during training
        prior.update(w)
        assert_feasible_prior(prior)
    assert math.isfinite(prior.objective(w).item())
    if precision_scale == "learned":
        prior = MatrixNormalPrior(w.shape, 1e-3, 1e3, numerator=numerator).update(w)
        omega_r, omega_c = reference_update(w, 1e-3, 1e3, numerator)
        np.testing.assert_allclose(prior.row_precision.numpy(), omega_r, rtol=1e-6,
                                   atol=1e-9 * 1e3)
        np.testing.assert_allclose(prior.column_precision.numpy(), omega_c, rtol=1e-6,
                                   atol=1e-9 * 1e3)


PRIOR_SETTINGS = settings(max_examples=300, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])


@PRIOR_SETTINGS
@given(p=st.integers(1, 8), d=st.integers(1, 8), rank=st.sampled_from(range(9)),
       exponent=st.integers(-30, 30), dtype=st.sampled_from(
           [torch.float64, torch.float32, torch.float16, torch.bfloat16]),
       bounds=st.sampled_from([(1e-3, 1e3), (0.1, 10.0), (0.5, 2.0), (1.0, 1.0), (0.9, 1.0),
                               (1.0, 5.0)]),
       precision_scale=st.sampled_from(["learned", "unit_mean"]),
       numerator=st.sampled_from(["paper", "authors"]), seed=st.integers(0, 2**16))
def test_any_weight_gives_finite_feasible_precisions(p, d, rank, exponent, dtype, bounds,
                                                     precision_scale, numerator, seed):
    u, v = bounds
    gen = torch.Generator().manual_seed(seed)
    rank = min(rank, p, d)
    w = (torch.randn(p, rank, generator=gen, dtype=torch.float64)
         @ torch.randn(rank, d, generator=gen, dtype=torch.float64))
    # scales the dtype can hold without overflowing or flushing everything to zero
    limit = {torch.float64: 30, torch.float32: 15, torch.float16: 2, torch.bfloat16: 15}
    exponent = max(-limit[dtype], min(limit[dtype], exponent))
    w = (w * 10.0**exponent).to(dtype)
    event(f"rank {'0' if rank == 0 else 'full' if rank == min(p, d) else 'deficient'}")
    event(f"dtype {dtype}")
    prior = MatrixNormalPrior((p, d), u, v, numerator=numerator,
                              precision_scale=precision_scale)
    prior.update(w).update(w)
    assert_feasible_prior(prior)
    assert math.isfinite(prior.objective(w).item())
    assert torch.isfinite(prior.penalty(w.to(torch.float64)))


def test_inv_threshold_of_a_huge_scatter_is_exact_and_feasible():
    delta = torch.diag(torch.tensor([1e300, 1e-300, 0.0, 4.0], dtype=torch.float64))
    omega = inv_threshold(delta, m=2, u=0.1, v=10.0)
    # tiny eigenvalues are zero within round-off of the largest: they map to v
    torch.testing.assert_close(torch.diag(omega),
                               torch.tensor([0.1, 10.0, 10.0, 10.0], dtype=torch.float64))


# -- the covariances of fitted estimators -------------------------------------------------------


@pytest.mark.parametrize("Estimator", [AdaRegClassifier, AdaRegMultiTaskRegressor])
@pytest.mark.parametrize("precision_scale, u, v", [
    ("learned", 0.5, 2.0), ("learned", 2.0, 4.0), ("learned", 1e-3, 1e3),
    ("unit_mean", 0.1, 10.0), ("unit_mean", 1.0, 1.0), ("unit_mean", 0.9, 1.5),
])
@pytest.mark.parametrize("cov_update_every", [1, 5])  # 5 > max_epochs: no update in the loop
def test_fitted_covariances_are_spd_with_eigenvalues_in_the_inverse_bounds(
        Estimator, precision_scale, u, v, cov_update_every):
    X, y = make_classification(n_samples=60, n_features=6, n_classes=3, n_informative=4,
                               random_state=0)
    if Estimator is AdaRegMultiTaskRegressor:
        y = X @ np.random.default_rng(0).normal(size=(6, 3))
    est = Estimator(hidden_layer_sizes=(8,), adareg_layers="all", max_epochs=3,
                    cov_update_every=cov_update_every, reg_lambda=1e-2, u=u, v=v,
                    precision_scale=precision_scale, batch_size=16, random_state=0).fit(X, y)
    assert est.adareg_layers_ == ["hidden.0.weight", "output.weight"]
    for side in ("row", "column"):
        for name in est.adareg_layers_:
            cov = getattr(est, f"{side}_covariances_")[name]
            precision = getattr(est, f"{side}_precisions_")[name]
            assert cov.dtype == np.float64 and np.isfinite(cov).all()
            np.testing.assert_array_equal(cov, cov.T)
            eig = np.linalg.eigvalsh(cov)
            assert eig.min() > 0
            assert eig.min() >= (1 / v) * (1 - 1e-9) and eig.max() <= (1 / u) * (1 + 1e-9)
            np.testing.assert_allclose(cov @ precision, np.eye(len(cov)), atol=1e-9 * v / u)
            if precision_scale == "unit_mean":
                assert np.trace(precision) / len(precision) == pytest.approx(1.0, abs=1e-9)


def test_probabilities_sum_to_one_in_float64():
    # The network's softmax is float32; scikit-learn's log_loss checks the sums to
    # float64 precision and warns on every fold of a search scored with it.
    X, y = make_classification(n_samples=200, n_features=6, n_classes=4, n_informative=4,
                               random_state=0)
    clf = AdaRegClassifier(hidden_layer_sizes=(8,), max_epochs=3, reg_lambda=1e-2, u=0.1,
                           v=10.0, precision_scale="unit_mean", random_state=0).fit(X, y)
    proba = clf.predict_proba(X * 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=4 * np.finfo(float).eps)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isfinite(log_loss(y, proba))
