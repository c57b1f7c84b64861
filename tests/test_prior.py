"""Tests of the matrix-normal prior against the paper's Section 3 and scipy."""

import copy
import io
import math
import pickle

import numpy as np
import pytest
import scipy.linalg
import scipy.optimize
import torch
from scipy.stats import matrix_normal

from sk_adareg.prior import (
    MatrixNormalPrior,
    PriorCollection,
    _unit_mean_eigenvalues,
    inv_threshold,
)


def random_precision(rng, size, u, v, unit_mean=False):
    """A random symmetric matrix with eigenvalues in [u, v] (mean 1 if asked)."""
    q, _ = np.linalg.qr(rng.standard_normal((size, size)))
    eig = np.exp(rng.uniform(np.log(u), np.log(v), size))
    if unit_mean:
        # shrink toward 1 just enough to stay in [u, v] with mean exactly 1
        eig = eig / eig.mean()
        eig = 1 + 0.9 * (eig - 1) * min(1.0, (1 - u) / (1 - eig.min() + 1e-12),
                                        (v - 1) / (eig.max() - 1 + 1e-12))
    return (q * eig) @ q.T


def set_precisions(prior, omega_r, omega_c):
    state = {
        "row_precision": torch.as_tensor(omega_r, dtype=torch.float64),
        "column_precision": torch.as_tensor(omega_c, dtype=torch.float64),
        "row_eigenvalues": torch.as_tensor(np.linalg.eigvalsh(omega_r)),
        "column_eigenvalues": torch.as_tensor(np.linalg.eigvalsh(omega_c)),
    }
    prior.load_state_dict(state)


def subproblem(omega, delta, m):
    """Objective (8): Tr(Omega Delta) - m log det Omega."""
    sign, logdet = np.linalg.slogdet(omega)
    assert sign > 0
    return np.trace(omega @ delta) - m * logdet


def assert_feasible(omega, u, v, rtol=1e-9):
    omega = np.asarray(omega)
    np.testing.assert_allclose(omega, omega.T, atol=1e-12 * max(1.0, np.abs(omega).max()))
    eig = np.linalg.eigvalsh(omega)
    assert np.all(np.isfinite(eig))
    assert eig.min() >= u * (1 - rtol) and eig.max() <= v * (1 + rtol)


def assert_minimises(omega, delta, m, u, v, rng, unit_mean=False, n_trials=40):
    """No feasible point on a segment from omega lowers (8) (the set is convex)."""
    best = subproblem(omega, delta, m)
    tol = 1e-10 * max(1.0, abs(best))
    for _ in range(n_trials):
        z = random_precision(rng, omega.shape[0], u, v, unit_mean)
        for t in (1e-4, 1e-2, 0.1, 0.5, 1.0):
            assert subproblem((1 - t) * omega + t * z, delta, m) >= best - tol


SHAPES = [(7, 100), (20, 20), (30, 5)]


@pytest.mark.parametrize("p, d", SHAPES)
def test_objective_is_matrix_normal_neg_log_density(p, d):
    rng = np.random.default_rng(0)
    u, v = 0.05, 20.0
    prior = MatrixNormalPrior((p, d), u, v)
    omega_r, omega_c = random_precision(rng, p, u, v), random_precision(rng, d, u, v)
    set_precisions(prior, omega_r, omega_c)
    w = rng.standard_normal((p, d))
    log_pdf = matrix_normal(
        mean=np.zeros((p, d)), rowcov=np.linalg.inv(omega_r), colcov=np.linalg.inv(omega_c)
    ).logpdf(w)
    expected = -2 * log_pdf - p * d * math.log(2 * math.pi)
    got = prior.objective(torch.as_tensor(w)).item()
    assert got == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("p, d", SHAPES)
def test_penalty_is_tikhonov_norm(p, d):
    rng = np.random.default_rng(1)
    prior = MatrixNormalPrior((p, d), 0.1, 10)
    omega_r, omega_c = random_precision(rng, p, 0.1, 10), random_precision(rng, d, 0.1, 10)
    set_precisions(prior, omega_r, omega_c)
    w = rng.standard_normal((p, d))
    # ||Omega_r^1/2 W Omega_c^1/2||_F^2 with scipy's matrix square roots ...
    sqrt_form = np.linalg.norm(scipy.linalg.sqrtm(omega_r) @ w @ scipy.linalg.sqrtm(omega_c)) ** 2
    # ... and vec(W)^T (Omega_c kron Omega_r) vec(W), the Tikhonov form of Section 3.2
    vec = w.reshape(-1, order="F")
    kron_form = vec @ np.kron(omega_c, omega_r) @ vec
    got = prior.penalty(torch.as_tensor(w)).item()
    assert got == pytest.approx(sqrt_form, rel=1e-9)
    assert got == pytest.approx(kron_form, rel=1e-9)


def test_identity_precisions_give_l2_penalty():
    w = torch.randn(10, 31, requires_grad=True)
    prior = MatrixNormalPrior(w.shape)
    penalty = prior.penalty(w)
    assert penalty.item() == pytest.approx((w**2).sum().item(), rel=1e-6)
    penalty.backward()
    torch.testing.assert_close(w.grad, 2 * w.detach())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_penalty_keeps_weight_dtype(dtype):
    w = torch.randn(4, 6, dtype=dtype)
    assert MatrixNormalPrior(w.shape).penalty(w).dtype == dtype


@pytest.mark.parametrize("numerator", ["paper", "authors"])
@pytest.mark.parametrize("p, d", SHAPES)
def test_update_solves_both_subproblems(p, d, numerator):
    rng = np.random.default_rng(2)
    u, v = 1e-2, 1e2
    prior = MatrixNormalPrior((p, d), u, v, numerator=numerator)
    omega_c_old = random_precision(rng, d, u, v)
    set_precisions(prior, random_precision(rng, p, u, v), omega_c_old)
    w = rng.standard_normal((p, d)) * rng.uniform(0.05, 3)
    prior.update(torch.as_tensor(w))
    omega_r = prior.row_precision.numpy()
    omega_c = prior.column_precision.numpy()
    m_r, m_c = (d, p) if numerator == "paper" else (p, d)
    assert_feasible(omega_r, u, v)
    assert_feasible(omega_c, u, v)
    assert_minimises(omega_r, w @ omega_c_old @ w.T, m_r, u, v, rng)
    assert_minimises(omega_c, w.T @ omega_r @ w, m_c, u, v, rng)
    # the cached eigenvalues are those of the stored precisions
    np.testing.assert_allclose(np.sort(prior.row_eigenvalues.numpy()),
                               np.linalg.eigvalsh(omega_r), rtol=1e-10)
    np.testing.assert_allclose(np.sort(prior.column_eigenvalues.numpy()),
                               np.linalg.eigvalsh(omega_c), rtol=1e-10)


def test_paper_and_authors_numerators_differ_as_documented():
    # The paper (Corollary 1) divides by d when updating the p x p Omega_r; the
    # authors' code divides by p. With W^T W = I-like scaling the two differ by d/p.
    p, d = 4, 16
    w = torch.zeros(p, d, dtype=torch.float64)
    w[:, :p] = torch.eye(p) * 2.0  # W Omega_c W^T = 4 I_p at the first update
    paper = MatrixNormalPrior((p, d), 1e-3, 1e3, numerator="paper").update(w)
    authors = MatrixNormalPrior((p, d), 1e-3, 1e3, numerator="authors").update(w)
    torch.testing.assert_close(paper.row_precision, torch.eye(p, dtype=torch.float64) * d / 4)
    torch.testing.assert_close(authors.row_precision, torch.eye(p, dtype=torch.float64) * p / 4)


@pytest.mark.parametrize("numerator", ["paper", "authors"])
def test_block_coordinate_descent_never_increases_objective(numerator):
    rng = np.random.default_rng(3)
    w = torch.as_tensor(rng.standard_normal((12, 40)) * 0.3)
    prior = MatrixNormalPrior(w.shape, 0.1, 10, numerator=numerator)
    values = [prior.objective(w).item()]
    for _ in range(15):
        prior.update(w)
        values.append(prior.objective(w).item())
    steps = np.diff(values)
    assert np.all(steps <= 1e-10 * np.abs(values[:-1]).max())
    assert values[-1] < values[0]  # it does move


def normalized(delta, m):
    """The scatter the unit-mean update sees: Delta * m / mean eigenvalue."""
    return delta * m / np.trace(delta) * delta.shape[0]


@pytest.mark.parametrize("p, d", SHAPES)
def test_unit_mean_update_is_the_constrained_minimiser(p, d):
    rng = np.random.default_rng(4)
    u, v = 0.1, 10.0
    prior = MatrixNormalPrior((p, d), u, v, precision_scale="unit_mean")
    omega_c_old = random_precision(rng, d, u, v, unit_mean=True)
    set_precisions(prior, random_precision(rng, p, u, v, unit_mean=True), omega_c_old)
    w = rng.standard_normal((p, d)) * 0.05
    prior.update(torch.as_tensor(w))
    omega_r = prior.row_precision.numpy()
    omega_c = prior.column_precision.numpy()
    for omega in (omega_r, omega_c):
        assert_feasible(omega, u, v)
        assert np.trace(omega) / omega.shape[0] == pytest.approx(1.0, abs=1e-9)
    assert_minimises(omega_r, normalized(w @ omega_c_old @ w.T, d), d, u, v, rng,
                     unit_mean=True)
    assert_minimises(omega_c, normalized(w.T @ omega_r @ w, p), p, u, v, rng, unit_mean=True)


@pytest.mark.parametrize("seed", range(30))
def test_unit_mean_shift_is_the_root_scipy_finds(seed):
    """The shift ``mu`` of the unit-mean eigenvalues against scipy's brentq on the mean."""
    rng = np.random.default_rng(seed)
    size = int(rng.integers(1, 150))
    r = np.zeros(size)
    rank = int(rng.integers(0, size + 1))  # rank-deficient scatters included
    r[:rank] = rng.gamma(0.5, 1.0, rank) * 10.0 ** rng.uniform(-4, 4)
    m, u, v = float(rng.integers(1, 300)), 10.0 ** rng.uniform(-3, 0), 10.0 ** rng.uniform(0, 3)
    values = _unit_mean_eigenvalues(torch.as_tensor(r), m, u, v).numpy()
    x = r * m / r.mean() if r.mean() > 0 else r

    def mean_minus_one(shift):
        denom = x + shift
        return np.where(denom > 0, np.clip(m / np.where(denom > 0, denom, 1.0), u, v),
                        v).mean() - 1.0

    shift = scipy.optimize.brentq(mean_minus_one, m / v - x.max(), m / u - x.min(),
                                  xtol=1e-14, rtol=4 * np.finfo(float).eps)
    expected = np.where(x + shift > 0, np.clip(m / np.maximum(x + shift, 1e-300), u, v), v)
    assert values.mean() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(values, expected, rtol=1e-9, atol=1e-12 * v)


@pytest.mark.parametrize("precision_scale, invariant", [("unit_mean", True), ("learned", False)])
def test_unit_mean_precisions_ignore_the_scale_of_the_weights(precision_scale, invariant):
    w = torch.randn(7, 30, dtype=torch.float64)
    small = MatrixNormalPrior(w.shape, 0.01, 100, precision_scale=precision_scale).update(w)
    large = MatrixNormalPrior(w.shape, 0.01, 100, precision_scale=precision_scale)
    large.update(50.0 * w)
    same = torch.allclose(small.row_precision, large.row_precision, rtol=1e-9, atol=1e-12)
    assert same == invariant
    if invariant:
        torch.testing.assert_close(small.column_precision, large.column_precision)
        # ... and they learn structure: not the identity
        assert small.row_eigenvalues.max() / small.row_eigenvalues.min() > 1.5


def test_unit_mean_is_the_paper_update_of_the_normalized_scatter():
    # When the paper's update of the normalized scatter already has mean 1, they agree.
    delta = torch.eye(5, dtype=torch.float64) * 12.0
    learned = inv_threshold(delta, 3.0, 0.1, 10)
    unit = inv_threshold(delta, 3.0, 0.1, 10, unit_mean=True)
    torch.testing.assert_close(learned, 0.25 * torch.eye(5, dtype=torch.float64))
    torch.testing.assert_close(unit, torch.eye(5, dtype=torch.float64))
    torch.testing.assert_close(inv_threshold(delta / 4, 3.0, 0.1, 10), unit)
    zero = inv_threshold(torch.zeros(4, 4), 3.0, 0.1, 10, unit_mean=True)
    torch.testing.assert_close(zero, torch.eye(4, dtype=torch.float64))


def test_inv_threshold_matches_numpy_reference():
    rng = np.random.default_rng(5)
    a = rng.standard_normal((9, 4))
    delta = a @ a.T  # rank 4 of 9
    r, q = np.linalg.eigh(delta)
    r[r < 1e-10] = 0.0
    with np.errstate(divide="ignore"):
        expected = (q * np.clip(np.where(r > 0, 4.0 / r, np.inf), 0.01, 50)) @ q.T
    got = inv_threshold(torch.as_tensor(delta, dtype=torch.float32), 4.0, 0.01, 50)
    assert got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_zero_weight_maps_everything_to_v():
    prior = MatrixNormalPrior((3, 8), 0.5, 2.0).update(torch.zeros(3, 8))
    torch.testing.assert_close(prior.row_precision, 2.0 * torch.eye(3, dtype=torch.float64))
    torch.testing.assert_close(prior.column_precision, 2.0 * torch.eye(8, dtype=torch.float64))
    expected = -(8 * 3 + 3 * 8) * math.log(2)  # -d log det(2 I_p) - p log det(2 I_d)
    assert prior.objective(torch.zeros(3, 8)).item() == pytest.approx(expected)


@pytest.mark.parametrize("scale", [1.0, 1e6, 1e9])
def test_rank_one_and_huge_weights_keep_null_space_at_v(scale):
    u, v = 1e-3, 1e3
    a, b = torch.randn(6, 1, dtype=torch.float64), torch.randn(1, 50, dtype=torch.float64)
    w = scale * a @ b
    prior = MatrixNormalPrior(w.shape, u, v).update(w)
    for omega, eig in ((prior.row_precision, prior.row_eigenvalues),
                       (prior.column_precision, prior.column_eigenvalues)):
        assert_feasible(omega.numpy(), u, v)
        # rank 1: every eigenvalue but one sits exactly at v, whatever the scale
        assert (eig == v).sum().item() == omega.shape[0] - 1
    assert math.isfinite(prior.objective(w).item())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_update_is_float64_for_any_weight_dtype(dtype):
    w = torch.randn(5, 9, dtype=dtype)
    prior = MatrixNormalPrior(w.shape, 0.1, 10).update(w)
    reference = MatrixNormalPrior(w.shape, 0.1, 10).update(w.to(torch.float64))
    assert prior.row_precision.dtype == torch.float64
    torch.testing.assert_close(prior.row_precision, reference.row_precision)
    torch.testing.assert_close(prior.column_precision, reference.column_precision)


def test_covariances_are_inverse_precisions():
    w = torch.randn(6, 15, dtype=torch.float64)
    prior = MatrixNormalPrior(w.shape, 0.1, 10).update(w)
    eye = torch.eye
    torch.testing.assert_close(prior.row_covariance @ prior.row_precision,
                               eye(6, dtype=torch.float64))
    torch.testing.assert_close(prior.column_covariance @ prior.column_precision,
                               eye(15, dtype=torch.float64))


def test_convolution_weight_is_out_by_in_kh_kw():
    conv = torch.nn.Conv2d(3, 10, kernel_size=5)
    prior = MatrixNormalPrior(conv.weight.shape, 0.1, 10)
    assert prior.shape == (10, 75)
    prior.update(conv.weight)
    matrix = MatrixNormalPrior((10, 75), 0.1, 10).update(conv.weight.reshape(10, 75))
    torch.testing.assert_close(prior.row_precision, matrix.row_precision)
    torch.testing.assert_close(prior.penalty(conv.weight),
                               matrix.penalty(conv.weight.reshape(10, 75)))
    assert prior.row_covariance.shape == (10, 10)
    assert prior.column_covariance.shape == (75, 75)


def test_precisions_are_buffers_that_travel():
    w = torch.randn(4, 7)
    prior = MatrixNormalPrior(w.shape, 0.1, 10).update(w)
    assert set(prior.state_dict()) == {
        "row_precision", "column_precision", "row_eigenvalues", "column_eigenvalues"}
    assert list(prior.parameters()) == []
    buffer = io.BytesIO()
    torch.save(prior, buffer)
    buffer.seek(0)
    for clone in (pickle.loads(pickle.dumps(prior)), copy.deepcopy(prior),
                  torch.load(buffer, weights_only=False)):
        torch.testing.assert_close(clone.row_precision, prior.row_precision)
        assert clone.penalty(w).item() == prior.penalty(w).item()
    fresh = MatrixNormalPrior(w.shape, 0.1, 10)
    fresh.load_state_dict(prior.state_dict())
    assert fresh.penalty(w).item() == prior.penalty(w).item()
    fresh.reset()
    torch.testing.assert_close(fresh.row_precision, torch.eye(4, dtype=torch.float64))


def test_diagnostics_read_the_extremes():
    w = torch.randn(3, 20, dtype=torch.float64)
    prior = MatrixNormalPrior(w.shape, 0.1, 10).update(w)
    readings = prior.diagnostics(w)
    assert readings["penalty"] == pytest.approx(prior.penalty(w).item())
    assert readings["objective"] == pytest.approx(prior.objective(w).item())
    eig_c = np.linalg.eigvalsh(prior.column_precision.numpy())
    assert readings["column_precision_min"] == pytest.approx(eig_c.min())
    assert readings["column_precision_max"] == pytest.approx(eig_c.max())
    assert readings["column_precision_max"] == 10  # rank 3 of 20: null space at v
    # The readings of the spectrum, kept between updates, follow an update.
    for _ in range(2):
        eig_r = np.linalg.eigvalsh(prior.row_precision.numpy())
        assert readings["row_precision_min"] == pytest.approx(eig_r.min())
        assert readings["row_precision_max"] == pytest.approx(eig_r.max())
        assert readings["objective"] == pytest.approx(prior.objective(w).item())
        w = 5 * torch.randn(3, 20, dtype=torch.float64)
        readings = prior.update(w).diagnostics(w)
    assert readings != prior.update(w / 10).diagnostics(w / 10)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"u": 0.0}, r"'u' parameter of MatrixNormalPrior must be a float in the range \(0"),
        ({"u": -1.0}, r"'u' parameter .* Got -1.0 instead"),
        ({"v": math.inf}, r"'v' parameter .*range \(0.0, inf\). Got inf"),
        ({"u": 2.0, "v": 1.0}, "u must be <= v"),
        ({"u": 2.0, "v": 3.0, "precision_scale": "unit_mean"}, "u <= 1 <= v"),
        ({"numerator": "mine"}, r"'numerator' parameter .* must be a str among"),
        ({"precision_scale": "fixed"}, r"'precision_scale' parameter .* must be a str among"),
    ],
)
def test_bad_parameters_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MatrixNormalPrior((3, 4), **kwargs)


def test_bad_types_and_shapes_raise():
    with pytest.raises(TypeError, match=r"'u' parameter .* must be a float"):
        MatrixNormalPrior((3, 4), u="1")
    with pytest.raises(ValueError, match="weight_shape must be 2-D"):
        MatrixNormalPrior((3, 4, 5))
    prior = MatrixNormalPrior((3, 4))
    with pytest.raises(ValueError, match=r"shape \(4, 3\).*\(3, 4\)"):
        prior.penalty(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="square"):
        inv_threshold(torch.zeros(3, 4), 1, 0.1, 10)
    with pytest.raises(ValueError, match="m must be > 0"):
        inv_threshold(torch.eye(3), 0, 0.1, 10)


def test_a_bound_penalty_step_keeps_the_factors_it_was_made_with():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3))
    priors = PriorCollection(net, ["0.weight", "2.weight"], u=0.1, v=10.0)

    def run(step):
        for p in net.parameters():
            p.grad = None
        value = step()
        return float(value), [net.get_parameter(n).grad.clone().tolist() for n in priors.names]

    bound = priors.penalty_step(net, 0.3)
    before = run(bound)
    assert before == run(lambda: priors.add_penalty_gradients(net, 0.3))
    priors.set_strengths({"0.weight": 2.0, "2.weight": 0.5})
    assert run(bound) == before  # bound: the strengths of its making
    value, grads = run(lambda: priors.add_penalty_gradients(net, 0.3))
    assert value != before[0]
    # the gradient of the first weight's penalty doubles with its strength
    torch.testing.assert_close(torch.tensor(grads[0]), 2 * torch.tensor(before[1][0]))


def test_penalty_casts_are_cached_and_follow_every_change():
    # The float32 copies of the float64 precisions are made once per change, not per batch.
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3))
    priors = PriorCollection(net, ["0.weight", "2.weight"], u=0.1, v=10.0,
                             precision_scale="unit_mean")

    def fresh():
        return sum(float(s) * float(torch.trace(
            p.row_precision @ net.get_parameter(n).detach().double() @ p.column_precision
            @ net.get_parameter(n).detach().double().T))
            for s, (n, p) in zip(priors.strengths, priors.items(), strict=True))

    def gradients_match():
        # The per-batch gradient path (its own cached, scaled casts) against autograd.
        for p in net.parameters():
            p.grad = None
        value = priors.add_penalty_gradients(net, 0.3)
        added = [net.get_parameter(n).grad.clone() for n in priors.names]
        for p in net.parameters():
            p.grad = None
        (0.3 * priors.penalty(net)).backward()
        for name, grad in zip(priors.names, added, strict=True):
            torch.testing.assert_close(grad, net.get_parameter(name).grad, rtol=1e-5, atol=1e-7)
        return float(value) == pytest.approx(0.3 * fresh(), rel=1e-5)

    def casts():
        slot = (torch.float32, "row_precision", "column_precision")
        return priors["2.weight"].__dict__["_cast_cache"][slot][-1]

    priors.penalty(net)
    cached = casts()
    priors.penalty(net)
    assert casts() is cached  # no new cast
    priors.diagnostics(net)  # a float64 reading between batches keeps the float32 casts
    assert casts() is cached
    assert gradients_match()
    priors.update(net)                                      # in-place precision update
    assert float(priors.penalty(net)) == pytest.approx(fresh(), rel=1e-5)
    assert gradients_match()
    priors.set_strengths({"0.weight": 2.0, "2.weight": 0.5})
    assert float(priors.penalty(net)) == pytest.approx(fresh(), rel=1e-5)
    assert gradients_match()
    state = {k: v * 2 for k, v in priors.state_dict().items()}
    priors.load_state_dict(state)
    assert float(priors.penalty(net)) == pytest.approx(fresh(), rel=1e-5)
    assert gradients_match()
    prior = priors["2.weight"]  # a buffer replaced by another tensor
    prior.column_precision = 3.0 * torch.eye(4, dtype=torch.float64)
    assert float(priors.penalty(net)) == pytest.approx(fresh(), rel=1e-5)
    assert gradients_match()
    restored = pickle.loads(pickle.dumps(priors))
    assert "_cast_cache" not in restored.__dict__
    assert "_cast_cache" not in restored["2.weight"].__dict__
    assert float(restored.penalty(net)) == pytest.approx(fresh(), rel=1e-5)
    net.double()  # another dtype: a new cast
    assert priors.penalty(net).dtype == torch.float64
    assert priors.add_penalty_gradients(net, 0.3).dtype == torch.float64
    assert gradients_match()
