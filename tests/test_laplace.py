"""Tests of the Kronecker-factored Laplace approximation against dense computations.

The references form the (p d) x (p d) posterior precisions, the full Gauss-Newton
blocks from autograd Jacobians, and the (n p) x (n p) covariance of the exact
Gaussian marginal likelihood, at small sizes.
"""

import numpy as np
import pytest
import scipy.optimize
import torch
from scipy.stats import multivariate_normal
from torch import nn
from torch.func import functional_call, jacrev

from sk_adareg.laplace import (
    KroneckerLaplace,
    fit_hyperparameters,
    kfac,
    kron_log_det,
)
from sk_adareg.prior import MatrixNormalPrior, PriorCollection


def random_precision(rng, size, u=0.3, v=3.0):
    """A random symmetric matrix with eigenvalues in [u, v]."""
    q, _ = np.linalg.qr(rng.standard_normal((size, size)))
    return (q * np.exp(rng.uniform(np.log(u), np.log(v), size))) @ q.T


def make_prior(shape, omega_r, omega_c):
    prior = MatrixNormalPrior(shape)
    prior.load_state_dict({
        "row_precision": torch.as_tensor(omega_r, dtype=torch.float64),
        "column_precision": torch.as_tensor(omega_c, dtype=torch.float64),
        "row_eigenvalues": torch.as_tensor(np.linalg.eigvalsh(omega_r)),
        "column_eigenvalues": torch.as_tensor(np.linalg.eigvalsh(omega_c)),
    })
    return prior


def vec(M):
    """Column-stacked vec of a (p, d) array."""
    return M.T.reshape(-1)


# --------------------------------------------------------------------------- #
# A Bayesian linear model y_n = W x_n + noise, where KFAC and Laplace are exact.
# --------------------------------------------------------------------------- #

class LinearModel:
    """Fixed features X (n, d), p targets, prior lambda Omega_c kron Omega_r on vec(W)."""

    def __init__(self, seed=0, n=30, d=3, p=2):
        rng = np.random.default_rng(seed)
        self.rng, self.n, self.d, self.p = rng, n, d, p
        self.X = rng.standard_normal((n, d))
        self.omega_r = random_precision(rng, p)
        self.omega_c = random_precision(rng, d)
        self.prior = make_prior((p, d), self.omega_r, self.omega_c)
        self.net = nn.Linear(d, p, bias=False).double()

    def draw(self, lam, noise, X=None):
        """(W, Y): W from the prior, Y from the likelihood at inputs X."""
        X = self.X if X is None else X
        cov_r, cov_c = np.linalg.inv(self.omega_r), np.linalg.inv(self.omega_c)
        Z = self.rng.standard_normal((self.p, self.d))
        W = np.linalg.cholesky(cov_r) @ Z @ np.linalg.cholesky(cov_c).T / np.sqrt(lam)
        return W, self.noisy(W, noise, X)

    def noisy(self, W, noise, X):
        return X @ W.T + self.rng.standard_normal((len(X), self.p)) * np.sqrt(noise)

    def precision(self, lam, noise):
        """The dense posterior precision P (pd x pd)."""
        return (np.kron(self.X.T @ self.X, np.diag(1 / np.asarray(noise)))
                + lam * np.kron(self.omega_c, self.omega_r))

    def fit_map(self, Y, lam, noise):
        """The posterior mode, set into the network; returns W."""
        rhs = vec(np.diag(1 / np.asarray(noise)) @ Y.T @ self.X)
        W = np.linalg.solve(self.precision(lam, noise), rhs).reshape(self.d, self.p).T
        with torch.no_grad():
            self.net.weight.copy_(torch.as_tensor(W))
        return W

    def exact_log_evidence(self, Y, lam, noise):
        cov_r, cov_c = np.linalg.inv(self.omega_r), np.linalg.inv(self.omega_c)
        cov = (np.kron(self.X @ cov_c @ self.X.T, cov_r) / lam
               + np.kron(np.eye(self.n), np.diag(noise)))
        return multivariate_normal(np.zeros(self.n * self.p), cov).logpdf(Y.ravel())

    def curvature(self, Y):
        data = [(torch.as_tensor(self.X), torch.as_tensor(Y))]
        return kfac(self.net, data, ["weight"])

    def laplace(self, Y, lam, noise):
        return KroneckerLaplace(self.curvature(Y), {"weight": self.prior}, lam, noise)


def test_kron_log_det_matches_dense():
    rng = np.random.default_rng(1)
    p, d = 3, 4
    for rank in (1, 4):  # a rank-deficient factor has zero eigenvalues
        B = rng.standard_normal((d, rank))
        A = B @ B.T
        C = rng.standard_normal((p, p))
        G = C @ C.T
        omega_r, omega_c = random_precision(rng, p), random_precision(rng, d)
        lam = 0.7
        expected = np.linalg.slogdet(np.kron(A, G) + lam * np.kron(omega_c, omega_r))[1]
        t = torch.as_tensor
        got = kron_log_det(t(A), t(G), lam, t(omega_r), t(omega_c))
        np.testing.assert_allclose(float(got), expected, rtol=1e-10)
    # identity precisions by default
    expected = np.linalg.slogdet(np.kron(A, G) + 2.0 * np.eye(p * d))[1]
    np.testing.assert_allclose(float(kron_log_det(t(A), t(G), 2.0)), expected, rtol=1e-10)


def test_linear_model_kfac_is_the_exact_hessian():
    model = LinearModel()
    _, Y = model.draw(2.0, [0.3, 1.5])
    model.fit_map(Y, 2.0, [0.3, 1.5])
    curv = model.curvature(Y)
    factors = curv.layers["weight"]
    np.testing.assert_allclose(factors.A.numpy(), model.X.T @ model.X, rtol=1e-12)
    # one factor per target, at unit noise: e_k e_k^T
    np.testing.assert_allclose(factors.G.numpy(), np.eye(2)[:, :, None] * np.eye(2)[:, None, :],
                               atol=1e-15)
    residuals = Y - model.X @ factors.weight.numpy().T
    np.testing.assert_allclose(curv.sse.numpy(), (residuals**2).sum(0), rtol=1e-12)
    assert curv.n_samples == 30 and curv.n_outputs == 2


@pytest.mark.parametrize("lam, noise", [(2.0, [0.3, 1.5]), (0.05, [2.0, 0.01])])
def test_linear_model_evidence_is_exact(lam, noise):
    model = LinearModel(seed=2)
    _, Y = model.draw(lam, noise)
    model.fit_map(Y, lam, noise)
    la = model.laplace(Y, lam, noise)
    np.testing.assert_allclose(la.log_evidence(), model.exact_log_evidence(Y, lam, noise),
                               rtol=1e-10)
    # gamma = tr(I - lambda Sigma_prior^-1 P^-1) from the dense P
    P = model.precision(lam, noise)
    gamma = 6 - lam * np.trace(np.linalg.solve(P, np.kron(model.omega_c, model.omega_r)))
    np.testing.assert_allclose(la.effective_parameters()["weight"], gamma, rtol=1e-10)


def test_linear_model_learned_hyperparameters_maximize_exact_evidence():
    model = LinearModel(seed=3, n=40)
    _, Y = model.draw(1.5, [0.2, 0.8])

    def negative(log_params):
        return -model.exact_log_evidence(Y, np.exp(log_params[0]), np.exp(log_params[1:]))

    best = scipy.optimize.minimize(negative, np.zeros(3), method="Nelder-Mead",
                                   options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 5000})
    # Interleave posterior modes with evidence maximizations at fixed modes: a
    # fixed point is a stationary point of the exact evidence.
    lam, noise = 1.0, np.ones(2)
    for _ in range(300):
        model.fit_map(Y, lam, noise)
        la = fit_hyperparameters(model.curvature(Y), {"weight": model.prior}, lam, noise)
        new_lam, new_noise = la.reg_lambda["weight"], la.noise_variance.numpy()
        change = abs(np.log(new_lam / lam)) + np.abs(np.log(new_noise / noise)).max()
        lam, noise = new_lam, new_noise
        if change < 1e-11:
            break
    np.testing.assert_allclose(np.log([lam, *noise]), best.x, atol=1e-4)
    np.testing.assert_allclose(-negative(np.log([lam, *noise])), -best.fun, rtol=1e-9)
    # and the evidence at the fixed point is the exact one
    model.fit_map(Y, lam, noise)
    np.testing.assert_allclose(model.laplace(Y, lam, noise).log_evidence(), -best.fun,
                               rtol=1e-9)


def test_linear_model_predictive_matches_exact():
    lam, noise = 2.0, np.array([0.3, 1.5])
    model = LinearModel(seed=4)
    _, Y = model.draw(lam, noise)
    W = model.fit_map(Y, lam, noise)
    la = model.laplace(Y, lam, noise)
    X_test = model.rng.standard_normal((7, 3))
    cov = np.linalg.inv(model.precision(lam, noise))
    # Var f_k(x) = J P^-1 J^T with J = vec(e_k x^T)^T
    expected = np.array([[vec(np.outer(np.eye(2)[k], x)) @ cov @ vec(np.outer(np.eye(2)[k], x))
                          for k in range(2)] for x in X_test])
    got = la.predictive_variance(model.net, torch.as_tensor(X_test))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10)
    got_y = la.predictive_variance(model.net, torch.as_tensor(X_test), observation_noise=True)
    np.testing.assert_allclose(got_y.numpy(), expected + noise, rtol=1e-10)
    np.testing.assert_allclose(model.net(torch.as_tensor(X_test)).detach().numpy(),
                               X_test @ W.T, rtol=1e-12)


def test_linear_model_intervals_cover_90_percent():
    # Over weights drawn from the prior and data drawn from the model, the
    # exact posterior predictive is calibrated: 90 % intervals cover 90 % of
    # fresh targets on average. 300 replicates x 10 points x 2 targets; the
    # spread of the replicates' coverages gives a standard error near 0.005,
    # so 0.02 is four standard errors.
    lam, noise = 1.0, np.array([0.5, 0.1])
    model = LinearModel(seed=5, n=15)
    covered = []
    for _ in range(300):
        W, Y = model.draw(lam, noise)
        model.fit_map(Y, lam, noise)
        la = model.laplace(Y, lam, noise)
        X_new = model.rng.standard_normal((10, 3))
        y_new = model.noisy(W, noise, X_new)
        X_new = torch.as_tensor(X_new)
        mean = model.net(X_new).detach().numpy()
        std = la.predictive_variance(model.net, X_new, observation_noise=True).sqrt().numpy()
        covered.append((np.abs(y_new - mean) <= 1.6448536 * std).mean())
    covered = np.array(covered)
    assert covered.std() / np.sqrt(len(covered)) < 0.007
    assert abs(covered.mean() - 0.9) < 0.02


def test_linear_model_intervals_with_learned_hyperparameters_cover_90_percent():
    # As above, but with the strength and the noise learned from each training
    # set (interleaved modes and evidence maximizations, no held-out data):
    # empirical Bayes at n = 40 for 6 weights stays close to calibrated.
    # 80 replicates x 20 points x 2 targets; standard error near 0.007, so 0.03
    # is about four standard errors.
    lam, noise = 1.0, np.array([0.5, 0.1])
    model = LinearModel(seed=9, n=40)
    covered = []
    for _ in range(80):
        W, Y = model.draw(lam, noise)
        learned_lam, learned_noise = 1.0, Y.var(0)
        for _ in range(50):
            model.fit_map(Y, learned_lam, learned_noise)
            la = fit_hyperparameters(model.curvature(Y), {"weight": model.prior},
                                     learned_lam, learned_noise)
            change = (abs(np.log(la.reg_lambda["weight"] / learned_lam))
                      + np.abs(np.log(la.noise_variance.numpy() / learned_noise)).max())
            learned_lam, learned_noise = la.reg_lambda["weight"], la.noise_variance.numpy()
            if change < 1e-6:
                break
        model.fit_map(Y, learned_lam, learned_noise)
        la = model.laplace(Y, learned_lam, learned_noise)
        X_new = model.rng.standard_normal((20, 3))
        y_new = model.noisy(W, noise, X_new)
        X_new = torch.as_tensor(X_new)
        mean = model.net(X_new).detach().numpy()
        std = la.predictive_variance(model.net, X_new, observation_noise=True).sqrt().numpy()
        covered.append((np.abs(y_new - mean) <= 1.6448536 * std).mean())
    covered = np.array(covered)
    assert covered.std() / np.sqrt(len(covered)) < 0.009
    assert abs(covered.mean() - 0.9) < 0.03

def test_expected_scatter_matches_dense():
    lam, noise = 0.5, np.array([0.3, 1.5])
    model = LinearModel(seed=6, n=5, d=4, p=2)
    _, Y = model.draw(lam, noise)
    W = model.fit_map(Y, lam, noise)
    la = model.laplace(Y, lam, noise)
    p, d = 2, 4
    # Cov[W_ra, W_sb] from the dense P^-1, indices (column a, row r) column-stacked
    cov = np.linalg.inv(model.precision(lam, noise)).reshape(d, p, d, p)
    M_c, M_r = model.omega_c, random_precision(model.rng, p)
    expected_row = W @ M_c @ W.T + np.einsum("ab,arbs->rs", M_c, cov)
    expected_col = W.T @ M_r @ W + np.einsum("rs,arbs->ab", M_r, cov)
    np.testing.assert_allclose(la.expected_scatter("weight").numpy(), expected_row, rtol=1e-10)
    np.testing.assert_allclose(
        la.expected_scatter("weight", "column", torch.as_tensor(M_r)).numpy(), expected_col,
        rtol=1e-10)
    expected_col_default = W.T @ model.omega_r @ W + np.einsum("rs,arbs->ab", model.omega_r, cov)
    np.testing.assert_allclose(la.expected_scatter("weight", "column").numpy(),
                               expected_col_default, rtol=1e-10)


# --------------------------------------------------------------------------- #
# Networks: KFAC against exact Gauss-Newton blocks.
# --------------------------------------------------------------------------- #

def mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 4), nn.Tanh(),
                         nn.Linear(4, 2)).double()


def jacobians(net, x, names):
    """Per weight, the Jacobian of the outputs at one point, (k, p * d) column-stacked."""
    params = dict(net.named_parameters())

    def f(weights):
        return functional_call(net, {**params, **weights}, (x,))[0]

    jac = jacrev(f)({name: params[name].detach() for name in names})
    result = {}
    for name in names:
        J = jac[name]  # (k, *weight shape)
        k, p = J.shape[:2]
        result[name] = J.reshape(k, p, -1).transpose(1, 2).reshape(k, -1).detach().numpy()
    return result


NAMES = ["0.weight", "2.weight", "4.weight"]


def test_kfac_mlp_single_point_matches_exact_ggn_per_target():
    net = mlp()
    x = torch.randn(1, 3, dtype=torch.float64)
    curv = kfac(net, [(x, torch.zeros(1, 2, dtype=torch.float64))], NAMES)
    J = jacobians(net, x, NAMES)
    for name in NAMES:
        A, G = curv.layers[name].A.numpy(), curv.layers[name].G.numpy()
        for k in range(2):
            np.testing.assert_allclose(np.kron(A, G[k]), np.outer(J[name][k], J[name][k]),
                                       atol=1e-13)


def test_kfac_mlp_single_point_matches_exact_ggn_categorical():
    net = mlp(1)
    x = torch.randn(1, 3, dtype=torch.float64)
    curv = kfac(net, [(x, torch.tensor([1]))], NAMES, likelihood="categorical")
    pi = torch.softmax(net(x), 1).detach().numpy()[0]
    hessian = np.diag(pi) - np.outer(pi, pi)
    J = jacobians(net, x, NAMES)
    for name in NAMES:
        factors = curv.layers[name]
        assert factors.G.shape[0] == 1
        np.testing.assert_allclose(np.kron(factors.A.numpy(), factors.G[0].numpy()),
                                   J[name].T @ hessian @ J[name], atol=1e-13)
    expected_nll = -np.log(pi[1])
    np.testing.assert_allclose(float(curv.nll), expected_nll, rtol=1e-12)


def test_kfac_batches_sum_and_scale():
    net = mlp(2)
    X, Y = torch.randn(12, 3, dtype=torch.float64), torch.randn(12, 2, dtype=torch.float64)
    whole = kfac(net, [(X, Y)], NAMES)
    parts = kfac(net, [(X[:5], Y[:5]), (X[5:], Y[5:])], NAMES)
    for name in NAMES:
        np.testing.assert_allclose(parts.layers[name].A, whole.layers[name].A, rtol=1e-12)
        np.testing.assert_allclose(parts.layers[name].G, whole.layers[name].G, rtol=1e-12)
    np.testing.assert_allclose(parts.sse, whole.sse, rtol=1e-12)
    # A sums the inputs' second moments; G averages: for a single point it is
    # b b^T, so the batch's G is the mean of the points' G.
    np.testing.assert_allclose(whole.layers["0.weight"].A.numpy(), X.T @ X, rtol=1e-12)
    singles = [kfac(net, [(X[i:i + 1], Y[i:i + 1])], NAMES) for i in range(12)]
    for name in NAMES:
        mean_G = sum(s.layers[name].G for s in singles) / 12
        np.testing.assert_allclose(whole.layers[name].G, mean_G, rtol=1e-12)
    # the last layer's per-target factors are exact at any n: e_k e_k^T
    np.testing.assert_allclose(whole.layers["4.weight"].G.numpy(),
                               np.eye(2)[:, :, None] * np.eye(2)[:, None, :], atol=1e-15)


def test_kfac_restores_modes_and_leaves_gradients():
    net = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5), nn.Linear(4, 1))
    net.train()
    X, y = torch.randn(6, 3), torch.randn(6)
    curv = kfac(net, [(X, y)], ["0.weight", "2.weight"])
    assert net.training and net[1].training
    assert all(p.grad is None for p in net.parameters())
    # the dropout was off: the residuals are those of the eval-mode network
    net.eval()
    np.testing.assert_allclose(curv.sse.numpy(),
                               ((net(X)[:, 0] - y) ** 2).sum().detach().numpy(), rtol=1e-5)
    # float32 networks give float64 factors
    assert curv.layers["0.weight"].A.dtype == torch.float64


def dense_predictive_variance(net, X, curv, priors, lam, noise):
    """Sum over layers of J P^-1 J^T, with P formed densely."""
    names = list(curv.layers)
    result = np.zeros((len(X), curv.n_outputs))
    for i in range(len(X)):
        J = jacobians(net, X[i:i + 1], names)
        for name in names:
            factors = curv.layers[name]
            A, G = factors.A.numpy(), factors.G.numpy()
            if noise is not None:
                G = np.einsum("k,kpq->pq", 1 / np.asarray(noise), G)
            else:
                G = G[0]
            prior = priors[name]
            P = np.kron(A, G) + lam[name] * np.kron(prior.column_precision.numpy(),
                                                    prior.row_precision.numpy())
            result[i] += np.einsum("kx,xy,ky->k", J[name], np.linalg.inv(P), J[name])
    return result


def random_priors(net, names, seed):
    rng = np.random.default_rng(seed)
    priors = PriorCollection(net, names)
    for prior in priors.priors:
        p, d = prior.shape
        state = make_prior((p, d), random_precision(rng, p), random_precision(rng, d))
        prior.load_state_dict(state.state_dict())
    return priors


@pytest.mark.parametrize("likelihood", ["gaussian", "categorical"])
def test_mlp_predictive_variance_matches_dense(likelihood):
    net = mlp(3)
    X = torch.randn(20, 3, dtype=torch.float64)
    y = torch.randn(20, 2, dtype=torch.float64) if likelihood == "gaussian" else (
        torch.randint(0, 2, (20,)))
    curv = kfac(net, [(X, y)], NAMES, likelihood)
    priors = random_priors(net, NAMES, 3)
    lam = {"0.weight": 0.5, "2.weight": 2.0, "4.weight": 7.0}
    noise = [0.2, 3.0] if likelihood == "gaussian" else None
    la = KroneckerLaplace(curv, priors, lam, noise)
    X_test = torch.randn(4, 3, dtype=torch.float64)
    expected = dense_predictive_variance(net, X_test, curv, priors, lam, noise)
    np.testing.assert_allclose(la.predictive_variance(net, X_test).numpy(), expected,
                               rtol=1e-9)
    # and the evidence's log-determinants are those of the dense P
    for name in NAMES:
        prior, factors = priors[name], curv.layers[name]
        G = (factors.G[0] if noise is None
             else torch.einsum("k,kpq->pq", 1 / torch.tensor(noise, dtype=torch.float64),
                               factors.G))
        P = (np.kron(factors.A.numpy(), G.numpy())
             + lam[name] * np.kron(prior.column_precision.numpy(), prior.row_precision.numpy()))
        got = kron_log_det(factors.A, G, lam[name], prior.row_precision, prior.column_precision)
        np.testing.assert_allclose(float(got), np.linalg.slogdet(P)[1], rtol=1e-10)


@pytest.mark.parametrize("likelihood", ["gaussian", "categorical"])
def test_fit_hyperparameters_maximizes_the_evidence(likelihood):
    # At fixed weights, the returned hyperparameters maximize log_evidence:
    # compare with a derivative-free search over the same function.
    net = mlp(4)
    X = torch.randn(25, 3, dtype=torch.float64)
    y = torch.randn(25, 2, dtype=torch.float64) if likelihood == "gaussian" else (
        torch.randint(0, 2, (25,)))
    curv = kfac(net, [(X, y)], NAMES, likelihood)
    priors = random_priors(net, NAMES, 4)
    la = fit_hyperparameters(curv, priors, 1.0)
    n_noise = 2 if likelihood == "gaussian" else 0

    def negative(log_params):
        lam = dict(zip(NAMES, np.exp(log_params[:3]), strict=True))
        noise = np.exp(log_params[3:]) if n_noise else None
        return -KroneckerLaplace(curv, priors, lam, noise).log_evidence()

    found = np.log([*la.reg_lambda.values(), *([] if not n_noise else la.noise_variance)])
    best = scipy.optimize.minimize(negative, np.zeros(3 + n_noise), method="Nelder-Mead",
                                   options={"xatol": 1e-9, "fatol": 1e-12, "maxiter": 20000})
    assert -negative(found) >= -best.fun - 1e-9
    np.testing.assert_allclose(found, best.x, atol=1e-3)
    assert la.log_evidence() == pytest.approx(-negative(found), rel=1e-12)
    # MacKay's fixed points hold at the maximum
    gamma = la.effective_parameters()
    for name in NAMES:
        W = curv.layers[name].weight
        prior = priors[name]
        penalty = float(prior.penalty(W.reshape(prior.weight_shape)))
        assert la.reg_lambda[name] == pytest.approx(gamma[name] / penalty, rel=1e-6)


# --------------------------------------------------------------------------- #
# Convolutions
# --------------------------------------------------------------------------- #

class ConvNet(nn.Module):
    def __init__(self, conv):
        super().__init__()
        self.conv = conv
        out = conv(torch.zeros(1, 2, 5, 6))
        self.head = nn.Linear(out[0].numel(), 2)

    def forward(self, x):
        return self.head(torch.tanh(self.conv(x)).flatten(1))


CONVS = [
    dict(kernel_size=3),
    dict(kernel_size=3, padding="same"),
    dict(kernel_size=(2, 3), padding="same", dilation=2),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=3, padding=1, padding_mode="reflect"),
]


@pytest.mark.parametrize("options", CONVS)
def test_conv_factors_and_predictive_match_dense(options):
    torch.manual_seed(5)
    net = ConvNet(nn.Conv2d(2, 3, **options)).double()
    X = torch.randn(6, 2, 5, 6, dtype=torch.float64)
    y = torch.randn(6, 2, dtype=torch.float64)
    names = ["conv.weight", "head.weight"]
    curv = kfac(net, [(X, y)], names)
    conv = curv.layers["conv.weight"]
    kh, kw = net.conv.kernel_size
    assert conv.A.shape == (2 * kh * kw, 2 * kh * kw) and conv.G.shape == (2, 3, 3)
    assert conv.weight.shape == (3, 2 * kh * kw)
    n_positions = net.conv(X[:1]).shape[-2:].numel()
    assert conv.n_positions == 6 * n_positions
    # The summed gradients of the outputs equal autograd's weight gradient,
    # which checks the patches (a) and the output gradients (b) together.
    from sk_adareg._kfac import output_gradients
    _, factors = output_gradients(net, X, names)
    for k in range(2):
        a, b = factors[k]["conv.weight"]
        grad = torch.autograd.grad(net(X)[:, k].sum(), net.conv.weight)[0]
        np.testing.assert_allclose(torch.einsum("ntp,ntd->pd", b, a).numpy(),
                                   grad.reshape(3, -1).numpy(), atol=1e-12)
    priors = random_priors(net, names, 5)
    lam = {"conv.weight": 0.3, "head.weight": 4.0}
    la = KroneckerLaplace(curv, priors, lam, [0.5, 2.0])
    X_test = torch.randn(3, 2, 5, 6, dtype=torch.float64)
    expected = dense_predictive_variance(net, X_test, curv, priors, lam, [0.5, 2.0])
    np.testing.assert_allclose(la.predictive_variance(net, X_test).numpy(), expected, rtol=1e-9)


def test_conv_single_position_single_point_is_exact():
    # A kernel covering the whole input has one output position: KFAC is then
    # the exact Gauss-Newton block for one data point.
    torch.manual_seed(6)
    net = nn.Sequential(nn.Conv2d(2, 4, kernel_size=(3, 3)), nn.Tanh(), nn.Flatten(),
                        nn.Linear(4, 2)).double()
    x = torch.randn(1, 2, 3, 3, dtype=torch.float64)
    names = ["0.weight", "3.weight"]
    curv = kfac(net, [(x, torch.zeros(1, 2, dtype=torch.float64))], names)
    J = jacobians(net, x, names)
    for name in names:
        A, G = curv.layers[name].A.numpy(), curv.layers[name].G.numpy()
        for k in range(2):
            np.testing.assert_allclose(np.kron(A, G[k]), np.outer(J[name][k], J[name][k]),
                                       atol=1e-13)


# --------------------------------------------------------------------------- #
# Bad inputs
# --------------------------------------------------------------------------- #

def test_bad_inputs_raise_clear_errors():
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    X, y = torch.randn(5, 3), torch.randn(5, 2)
    data = [(X, y)]
    with pytest.raises(ValueError, match=r"'1\.weight' is the 'weight' of a BatchNorm1d"):
        kfac(net, data, ["1.weight"])
    with pytest.raises(ValueError, match=r"'0\.bias' is the 'bias' of a Linear"):
        kfac(net, data, ["0.bias"])
    with pytest.raises(ValueError, match="'nope' is not a parameter"):
        kfac(net, data, ["nope"])
    with pytest.raises(ValueError, match="named twice"):
        kfac(net, data, ["0.weight", "0.weight"])
    with pytest.raises(ValueError, match="at least one"):
        kfac(net, data, [])
    with pytest.raises(ValueError, match="likelihood must be one of"):
        kfac(net, data, ["0.weight"], likelihood="poisson")
    with pytest.raises(ValueError, match="y has shape"):
        kfac(net, [(X, torch.randn(5, 3))], ["0.weight"])
    with pytest.raises(ValueError, match="integer class indices"):
        kfac(net, [(X, y)], ["0.weight"], likelihood="categorical")
    with pytest.raises(ValueError, match="no data points"):
        kfac(net, [], ["0.weight"])
    with pytest.raises(ValueError, match=r"\(X, y\) pairs"):
        kfac(net, [X], ["0.weight"])
    grouped = nn.Sequential(nn.Conv2d(2, 4, 3, groups=2), nn.Flatten())
    with pytest.raises(ValueError, match="groups=2"):
        kfac(grouped, [(torch.randn(2, 2, 3, 3), torch.randn(2, 4))], ["0.weight"])
    unused = nn.ModuleDict({"a": nn.Linear(3, 2), "b": nn.Linear(3, 2)})
    unused.forward = lambda x: unused["a"](x)
    with pytest.raises(ValueError, match=r"'b\.weight' was not used"):
        kfac(unused, data, ["b.weight"])

    curv = kfac(net, data, ["0.weight", "2.weight"])
    with pytest.raises(ValueError, match="reg_lambda must be a finite number > 0"):
        KroneckerLaplace(curv, reg_lambda=0.0)
    with pytest.raises(ValueError, match="reg_lambda has no value for"):
        KroneckerLaplace(curv, reg_lambda={"0.weight": 1.0})
    with pytest.raises(ValueError, match="noise_variance must be finite and > 0"):
        KroneckerLaplace(curv, noise_variance=[1.0, -1.0])
    zero = kfac(net, [(X, net.eval()(X).detach())], ["0.weight"])
    with pytest.raises(ValueError, match="residuals of a target are zero"):
        KroneckerLaplace(zero)
    with pytest.raises(ValueError, match="one value per target"):
        KroneckerLaplace(curv, noise_variance=[1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match=r"no prior for the weight '2\.weight'"):
        KroneckerLaplace(curv, {"0.weight": MatrixNormalPrior((4, 3))})
    with pytest.raises(ValueError, match=r"row precision of '0\.weight' has shape"):
        KroneckerLaplace(curv, {"0.weight": MatrixNormalPrior((5, 3)),
                                "2.weight": MatrixNormalPrior((2, 4))})
    with pytest.raises(ValueError, match="must be a KFACCurvature"):
        KroneckerLaplace("curvature")
    with pytest.raises(ValueError, match="lambda_bounds must be"):
        fit_hyperparameters(curv, lambda_bounds=(2.0, 1.0))
    la = KroneckerLaplace(curv)
    with pytest.raises(ValueError, match="side must be"):
        la.expected_scatter("0.weight", side="both")
    with pytest.raises(ValueError, match="not a weight of the curvature"):
        la.expected_scatter("1.weight")
    classes = kfac(net, [(X, torch.tensor([0, 1, 1, 0, 1]))], ["2.weight"], "categorical")
    with pytest.raises(ValueError, match="Gaussian likelihood only"):
        KroneckerLaplace(classes, noise_variance=1.0)
    with pytest.raises(ValueError, match="needs a Gaussian likelihood"):
        KroneckerLaplace(classes).predictive_variance(net, X, observation_noise=True)
    broken = kfac(net, data, ["0.weight"])
    broken.layers["0.weight"].A[0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match=r"'0\.weight'"):
        KroneckerLaplace(broken)


def test_evidence_gradient_and_hessian_match_finite_differences():
    # The Newton system of fit_hyperparameters, in (log lambda_l, log beta_k).
    net = mlp(7)
    X, y = torch.randn(15, 3, dtype=torch.float64), torch.randn(15, 2, dtype=torch.float64)
    curv = kfac(net, [(X, y)], NAMES)
    la = KroneckerLaplace(curv, random_priors(net, NAMES, 7))
    t0 = torch.tensor([-0.5, 0.3, 1.2, 0.4, -1.0], dtype=torch.float64)

    def evidence(t, derivatives=False):
        return la._evidence(t[:3].exp(), t[3:].exp(), derivatives)

    _, grad, hess = evidence(t0, True)
    h = 1e-5
    eye = torch.eye(5, dtype=torch.float64)
    fd_grad = torch.stack([(evidence(t0 + h * e)[0] - evidence(t0 - h * e)[0]) / (2 * h)
                           for e in eye])
    fd_hess = torch.stack([(evidence(t0 + h * e, True)[1] - evidence(t0 - h * e, True)[1])
                           / (2 * h) for e in eye])
    np.testing.assert_allclose(grad.numpy(), fd_grad.numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(hess.numpy(), fd_hess.numpy(), rtol=1e-6, atol=1e-6)
    # concave: the Hessian is negative definite
    assert torch.linalg.eigvalsh(hess).max() < 0


def test_hyperparameters_stop_at_the_bounds_when_the_data_cannot_fix_them():
    net = nn.Linear(3, 2, bias=False).double()
    with torch.no_grad():
        net.weight.zero_()
    X = torch.randn(10, 3, dtype=torch.float64)
    # zero weight: the penalty vanishes and the evidence grows with lambda;
    # zero targets: zero residuals, the evidence grows as the noise shrinks
    la = fit_hyperparameters(kfac(net, [(X, torch.zeros(10, 2, dtype=torch.float64))],
                                  ["weight"]),
                             lambda_bounds=(1e-3, 1e3), noise_bounds=(1e-6, 1e6))
    assert la.reg_lambda["weight"] == pytest.approx(1e3)
    np.testing.assert_allclose(la.noise_variance.numpy(), 1e-6, rtol=1e-9)
    assert np.isfinite(la.log_evidence())


def test_conv_factors_follow_the_expand_convention():
    # A = sum over points and output positions of patch outer products;
    # G = their mean of output-gradient outer products, from an independent
    # route: explicit unfold and the gradient at the convolution's output.
    torch.manual_seed(8)
    net = ConvNet(nn.Conv2d(2, 3, kernel_size=3, padding=1)).double()
    X = torch.randn(4, 2, 5, 6, dtype=torch.float64)
    curv = kfac(net, [(X, torch.randn(4, 2, dtype=torch.float64))], ["conv.weight"])
    patches = torch.nn.functional.unfold(X, 3, padding=1)  # (n, d, T)
    A = torch.einsum("ndt,net->de", patches, patches)
    np.testing.assert_allclose(curv.layers["conv.weight"].A.numpy(), A.numpy(), rtol=1e-12)
    s = net.conv(X)
    out = net.head(torch.tanh(s).flatten(1))
    n_positions = 4 * 5 * 6
    for k in range(2):
        b = torch.autograd.grad(out[:, k].sum(), s, retain_graph=True)[0]  # (n, p, h, w)
        G = torch.einsum("nphw,nqhw->pq", b, b) / n_positions
        np.testing.assert_allclose(curv.layers["conv.weight"].G[k].numpy(), G.numpy(),
                                   rtol=1e-12)


def test_fit_hyperparameters_refits_a_laplace_of_the_same_curvature():
    # Reusing a posterior's factorizations gives the fit of a fresh one, from the new start.
    net = mlp(4)
    X = torch.randn(25, 3, dtype=torch.float64)
    y = torch.randn(25, 2, dtype=torch.float64)
    curv = kfac(net, [(X, y)], NAMES)
    priors = random_priors(net, NAMES, 4)
    first = fit_hyperparameters(curv, priors, 1.0, [0.5, 0.5], fit_noise=False, max_iter=0)
    fresh = fit_hyperparameters(curv, priors, 0.3, [2.0, 0.1])
    again = fit_hyperparameters(curv, priors, 0.3, [2.0, 0.1], laplace=first)
    assert again is first
    assert again.reg_lambda == pytest.approx(fresh.reg_lambda, rel=1e-10)
    np.testing.assert_allclose(again.noise_variance, fresh.noise_variance, rtol=1e-10)
    assert again.log_evidence() == pytest.approx(fresh.log_evidence(), rel=1e-12)
    other = kfac(net, [(X, y)], NAMES)
    with pytest.raises(ValueError, match="same curvature"):
        fit_hyperparameters(other, priors, 1.0, laplace=first)


@pytest.mark.parametrize("names", [["2.weight"], ["0.weight", "2.weight"]])
def test_output_gradients_skip_the_backward_pass_at_the_modules_own_output(names, monkeypatch):
    # The last layer's output gradient is v itself: no backward pass runs for it, and the
    # factors give the Jacobians of autograd (jacrev).
    from sk_adareg import _kfac

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3)).double()
    X = torch.randn(5, 4, dtype=torch.float64)
    calls, grad = [], torch.autograd.grad

    def counted(outputs, inputs, *args, **kwargs):
        calls.append(len(inputs))
        return grad(outputs, inputs, *args, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", counted)
    _, factors = _kfac.output_gradients(net, X, names)
    monkeypatch.undo()
    assert calls == ([] if names == ["2.weight"] else [1] * 3)
    params = dict(net.named_parameters())
    for k, per_output in enumerate(factors):
        for name, (a, b) in per_output.items():
            jac = jacrev(lambda w, x, name=name, k=k: functional_call(
                net, {**params, name: w}, (x[None],))[0, k])
            for i in range(len(X)):
                exact = jac(params[name], X[i])
                torch.testing.assert_close(b[i, 0][:, None] * a[i, 0][None, :], exact,
                                           rtol=1e-12, atol=1e-14)
            if name == "2.weight":  # the output's own gradient: the unit vector
                assert torch.equal(b[:, 0], torch.eye(3, dtype=torch.float64)[k].expand(5, 3))
