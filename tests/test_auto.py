"""Strengths learned by the evidence (reg_lambda="evidence") and predictive uncertainty,
checked at the estimator level.

On a Bayesian linear model (one nn.Linear without bias, identity precisions) the
Laplace evidence is exact, so the evidence fit at the final weights must give the
maximizers of the exact evidence, and return_std the exact posterior predictive.
"""

import copy
import importlib
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.optimize import minimize
from scipy.stats import multivariate_normal
from sklearn.datasets import load_digits
from skorch.dataset import Dataset

from sk_adareg import AdaRegClassifier, AdaRegMultiTaskRegressor
from sk_adareg._strength._evidence import fit_evidence
from sk_adareg._strength._linearized import mode_penalties
from sk_adareg.callbacks import update_steps
from sk_adareg.exceptions import TrainingDivergedError
from sk_adareg.laplace import KroneckerLaplace, fit_tied_noise, kfac

sys.path.insert(0, str(Path(__file__).resolve().parent))
StrengthsInForce = importlib.import_module("_recorders").StrengthsInForce

N, D, K = 60, 4, 2
TRUE_LAMBDA, TRUE_NOISE = 2.0, np.array([0.05, 0.2])


def linear_model_data(n, seed, W=None):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, D))
    if W is None:
        W = rng.normal(size=(K, D)) / np.sqrt(TRUE_LAMBDA)
    return X, X @ W.T + rng.normal(size=(n, K)) * np.sqrt(TRUE_NOISE), W


def exact_log_evidence(X, Y, lam, noise):
    """log p(Y | X) with W ~ N(0, I / lam), independent targets of noise variance noise_k."""
    return sum(multivariate_normal(np.zeros(len(X)),
                                   X @ X.T / lam + noise[k] * np.eye(len(X))).logpdf(Y[:, k])
               for k in range(K))


def linear_estimator(**params):
    # u = v = 1: identity precisions, so the prior is lam * I as in the exact model.
    # clip_inputs=False: the exact model extrapolates linearly, as the network must here.
    torch.manual_seed(0)  # a module instance keeps the weights it was built with
    return AdaRegMultiTaskRegressor(
        module=torch.nn.Linear(D, K, bias=False), reg_lambda="evidence", u=1.0, v=1.0,
        standardize_targets=False, optimizer=torch.optim.Adam, lr=0.05, batch_size=N,
        max_epochs=400, cov_update_every=20, clip_inputs=False, random_state=0, **params)


@pytest.fixture(scope="module")
def fitted_linear():
    X, Y, W = linear_model_data(N, seed=0)
    return X, Y, W, linear_estimator(callbacks=[("strengths", StrengthsInForce())]).fit(X, Y)


def exact_maximum(X, Y):
    """The strength and noise variances that maximize the exact evidence, and its maximum."""
    def negative(t):
        return -exact_log_evidence(X, Y, np.exp(t[0]), np.exp(t[1:]))

    best = minimize(negative, np.log([1.0, 0.1, 0.1]), method="Nelder-Mead",
                    options={"xatol": 1e-8, "fatol": 1e-10, "maxiter": 4000})
    return np.exp(best.x[0]), np.exp(best.x[1:]), -best.fun


def test_the_evidence_fit_at_the_final_weights_maximizes_the_exact_evidence(fitted_linear):
    # The last block of the coordinate descent, which the end of training no longer
    # takes: the strength and noise fitted to the final weights by the evidence.
    X, Y, _, est = fitted_linear
    lam_exact, noise_exact, log_evidence = exact_maximum(X, Y)
    net = copy.deepcopy(est.net_)
    dataset = Dataset(X.astype(np.float32), Y.astype(np.float32))  # the training data
    laplace = fit_evidence(net, dataset, fit_strength=True)
    np.testing.assert_allclose(laplace.noise_variance.numpy(), noise_exact, rtol=1e-3)
    np.testing.assert_allclose(laplace.reg_lambda["weight"], lam_exact, rtol=1e-3)
    assert laplace.log_evidence() == pytest.approx(log_evidence, rel=1e-6)
    # net.reg_lambda_ is in the loss's units: lambda / (n K mean(1 / noise)).
    lam = net.reg_lambda_["weight"] * N * K * np.mean(1 / np.asarray(net.noise_variance_))
    np.testing.assert_allclose(lam, lam_exact, rtol=1e-3)


def test_the_fitted_strength_is_the_one_the_final_weights_trained_under(fitted_linear):
    X, Y, _, est = fitted_linear
    in_force = dict(est.net_.callbacks_)["strengths"].strengths_
    assert len(in_force) == 400  # one batch an epoch
    # The last update is at epoch 380: the one that epoch 400's precision update would
    # bring is skipped, so the last 20 steps trained under the strengths reported.
    rows = [row["epoch"] for row in est.history_ if "log_evidence" in row]
    assert rows == list(range(20, 400, 20))
    assert est.history_[-1, "cov_update"] and "log_evidence" not in est.history_[-1]
    assert all(s == in_force[-1] for s in in_force[-20:])
    assert in_force[0] == {"weight": 3e-3} != in_force[-1]  # learned from where they start
    assert est.reg_lambda_ == pytest.approx(in_force[-1], rel=1e-12)
    # Converged by epoch 380, they are the exact maximizers still; only the noise was
    # fitted at the end, to those strengths, so the evidence is at most the maximum.
    lam_exact, noise_exact, log_evidence = exact_maximum(X, Y)
    lam = est.reg_lambda_["weight"] * N * K * np.mean(1 / est.noise_variance_)
    np.testing.assert_allclose(est.noise_variance_, noise_exact, rtol=1e-3)
    np.testing.assert_allclose(lam, lam_exact, rtol=1e-3)
    assert est.log_evidence_ == pytest.approx(log_evidence, rel=1e-6)
    # (to the precision of the float32 weights the evidence is evaluated at)
    assert est.log_evidence_ <= log_evidence + np.finfo(np.float32).eps * abs(log_evidence)


def test_return_std_is_the_exact_posterior_predictive(fitted_linear):
    X, Y, _, est = fitted_linear
    lam = est.reg_lambda_["weight"] * N * K * np.mean(1 / est.noise_variance_)
    X_new = np.random.default_rng(1).normal(size=(7, D))
    mean, std = est.predict(X_new, return_std=True)
    for k in range(K):
        precision = X.T @ X / est.noise_variance_[k] + lam * np.eye(D)
        cov = np.linalg.inv(precision)
        w_mean = cov @ X.T @ Y[:, k] / est.noise_variance_[k]
        np.testing.assert_allclose(mean[:, k], X_new @ w_mean, rtol=1e-3, atol=1e-3)
        variance = np.einsum("nd,de,ne->n", X_new, cov, X_new) + est.noise_variance_[k]
        np.testing.assert_allclose(std[:, k] ** 2, variance, rtol=1e-4)


def test_ninety_percent_intervals_cover_fresh_draws(fitted_linear):
    _, _, W, est = fitted_linear
    X_new, Y_new, _ = linear_model_data(4000, seed=2, W=W)
    mean, std = est.predict(X_new, return_std=True)
    coverage = np.mean(np.abs(Y_new - mean) <= 1.6449 * std, axis=0)
    # 8000 draws: a standard error of 0.003; the rest is the error of the learned noise.
    assert np.all(np.abs(coverage - 0.9) < 0.03), coverage


@pytest.mark.parametrize("reg_lambda", [3e-3, "evidence"])
def test_a_fixed_strength_gets_the_noise_that_maximizes_its_tied_evidence(reg_lambda):
    # A numeric reg_lambda fixes lambda / (n sum(1 / noise)): the noise must maximize the
    # evidence with lambda moving with it. A wide network on few rows has more
    # well-determined weights than target values, where fitting the noise at a held
    # lambda and alternating has no fixed point (the noise grew tens of times past the
    # residuals' variance there). Learned strengths end the same way: held at the
    # strengths the final weights were trained under, with only the noise fitted. The
    # prior's penalty is that of the linearized network's mode (tests/test_honest_std.py).
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 5)).astype(np.float32)
    Y = X @ rng.normal(size=(5, 3)) + 0.3 * rng.normal(size=(40, 3))
    est = AdaRegMultiTaskRegressor(reg_lambda=reg_lambda, adareg_layers="all", max_epochs=30,
                                   random_state=0).fit(X, Y)
    assert est.strength_method_ == ("fixed" if reg_lambda == 3e-3 else "evidence")
    net = est.net_
    targets = torch.as_tensor(est._target_scaler_.transform(Y), dtype=torch.float32)
    names = net.priors_.names
    curvature = kfac(net.regularized_module, [(torch.as_tensor(X), targets)], names)
    sse = curvature.sse.numpy()
    # The penalties at the mode of the training objective (its target weights), linearized.
    t = getattr(net.criterion_, "target_weights", torch.ones(3)).double()
    unit = {name: c * len(X) * float(t.sum()) for name, c in est.reg_lambda_.items()}
    penalties = mode_penalties(net.regularized_module, names,
                               KroneckerLaplace(curvature, net.priors_),
                               lambda: [(torch.as_tensor(X), targets)], unit, t)
    laplace = fit_tied_noise(curvature, net.priors_, est.reg_lambda_, sse / len(X),
                             penalties=penalties)

    def negative(log_noise):
        noise = np.exp(log_noise)
        laplace.reg_lambda = {name: c * len(X) * np.sum(1 / noise)
                              for name, c in est.reg_lambda_.items()}
        laplace.noise_variance = torch.as_tensor(noise)
        return -laplace.log_evidence()

    best = minimize(negative, np.log(sse / len(X)), method="Nelder-Mead",
                    options={"xatol": 1e-9, "fatol": 1e-11, "maxiter": 4000})
    np.testing.assert_allclose(net.noise_variance_, np.exp(best.x), rtol=1e-3)
    assert est.log_evidence_ == pytest.approx(-best.fun, rel=1e-7)
    assert est.log_evidence_ >= -best.fun - 1e-9 * abs(best.fun)  # the maximum, not near it
    # In target units, through the target scaling.
    np.testing.assert_allclose(est.noise_variance_,
                               np.exp(best.x) * est._target_scaler_.scale_**2, rtol=1e-3)


def test_the_tied_noise_fit_converges_as_newtons_method_does(monkeypatch):
    # With the exact Hessian of the tied evidence, Newton's method from SSE / n needs three
    # evaluations of the derivatives here; a Hessian missing any term of the chain rule
    # (still an ascent, by the line search) needs 5 to 12.
    rng = np.random.default_rng(1)
    X = rng.normal(size=(50, 5)).astype(np.float32)
    Y = X @ rng.normal(size=(5, 4)) + rng.normal(size=(50, 4)) * [0.1, 0.3, 1.0, 3.0]
    est = AdaRegMultiTaskRegressor(hidden_layer_sizes=(16,), reg_lambda=3e-3,
                                   adareg_layers="all", max_epochs=20, random_state=0).fit(X, Y)
    net = est.net_
    targets = torch.as_tensor(est._target_scaler_.transform(Y), dtype=torch.float32)
    curvature = kfac(net.regularized_module, [(torch.as_tensor(X), targets)], net.priors_.names)
    calls = []
    evidence = KroneckerLaplace._evidence

    def counted(self, lam, beta, derivatives=False):
        calls.append(derivatives)
        return evidence(self, lam, beta, derivatives)

    monkeypatch.setattr(KroneckerLaplace, "_evidence", counted)
    start = (curvature.sse / len(X)).tolist()
    laplace = fit_tied_noise(curvature, net.priors_, dict(est.reg_lambda_), start)
    assert sum(calls) <= 4, calls
    best = laplace.log_evidence()
    lam = {name: c * len(X) * float((1 / laplace.noise_variance).sum())
           for name, c in est.reg_lambda_.items()}
    assert lam == pytest.approx(laplace.reg_lambda, rel=1e-12)  # the strengths stay tied
    for k in range(4):  # no single noise variance, moved with the tied strengths, does better
        for factor in (0.99, 1.01):
            noise = laplace.noise_variance.clone()
            noise[k] *= factor
            moved = {name: c * len(X) * float((1 / noise).sum())
                     for name, c in est.reg_lambda_.items()}
            assert KroneckerLaplace(curvature, net.priors_, moved, noise).log_evidence() < best


def test_a_fixed_strength_posterior_of_a_classifier_takes_the_loss_strength():
    # Cross-entropy: the mean loss's c_l is lambda_l / (2 n), with no noise to fit.
    X, y = load_digits(return_X_y=True)
    X, y = (X[:200] / 16).astype(np.float32), y[:200]
    clf = AdaRegClassifier(reg_lambda=3e-3, max_epochs=2, random_state=0).fit(X, y)
    laplace = fit_evidence(clf.net_, Dataset(X, y), fit_strength=False)
    assert list(clf.reg_lambda_) == ["hidden.0.weight", "output.weight"]
    assert laplace.noise_variance is None
    for name, c in clf.reg_lambda_.items():
        assert c == 3e-3
        assert laplace.reg_lambda[name] == pytest.approx(c * 2 * len(X), rel=1e-12)


def test_noise_variance_is_in_target_units():
    X, Y, _ = linear_model_data(N, seed=3)
    params = dict(hidden_layer_sizes=(8,), reg_lambda=3e-3, adareg_layers="last",
                  max_epochs=30, random_state=0)
    a = AdaRegMultiTaskRegressor(**params).fit(X, Y)
    b = AdaRegMultiTaskRegressor(**params).fit(X, 10 * Y)
    np.testing.assert_allclose(b.noise_variance_, 100 * a.noise_variance_, rtol=1e-3)
    std_a = a.predict(X[:5], return_std=True)[1]
    std_b = b.predict(X[:5], return_std=True)[1]
    np.testing.assert_allclose(std_b, 10 * std_a, rtol=1e-3)
    assert a.reg_lambda_ == {"output.weight": a.reg_lambda}


def test_one_target_gives_one_dimensional_std():
    X, Y, _ = linear_model_data(N, seed=4)
    est = AdaRegMultiTaskRegressor(hidden_layer_sizes=(8,), max_epochs=5, random_state=0)
    mean, std = est.fit(X, Y[:, 0]).predict(X[:3], return_std=True)
    assert mean.shape == std.shape == (3,) and (std > 0).all()


def test_the_history_records_the_evidence_at_each_update():
    X, Y, _ = linear_model_data(N, seed=5)
    est = AdaRegMultiTaskRegressor(hidden_layer_sizes=(8,), reg_lambda="evidence",
                                   adareg_layers="all", max_epochs=12, cov_update_every=3,
                                   random_state=0).fit(X, Y)
    # Precisions every 3 epochs; the strengths after each, but for the last epoch's.
    assert [row["epoch"] for row in est.history_ if row["cov_update"]] == [3, 6, 9, 12]
    rows = [row for row in est.history_ if "log_evidence" in row]
    assert [row["epoch"] for row in rows] == [3, 6, 9]
    assert all(np.isfinite(row["log_evidence"]) for row in rows)
    assert set(est.reg_lambda_) == {"hidden.0.weight", "output.weight"}
    assert all(v > 0 for v in est.reg_lambda_.values())
    # Fewer than 3 updates before the last epoch: the prior is updated after 3 evenly
    # spaced steps instead (one batch an epoch here: steps are epochs), epochs 2, 4, 7.
    short = AdaRegMultiTaskRegressor(hidden_layer_sizes=(8,), reg_lambda="evidence",
                                     adareg_layers="all", max_epochs=9, cov_update_every=3,
                                     random_state=0).fit(X, Y)
    assert update_steps(short.net_, Dataset(X, Y)) == {2, 4, 7}
    assert [row["epoch"] for row in short.history_ if row["cov_update"]] == [2, 4, 7]
    assert [row["epoch"] for row in short.history_ if "log_evidence" in row] == [2, 4, 7]


class SmallConvNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3)
        self.fc = torch.nn.Linear(4 * 6 * 6, 10)

    def forward(self, X):
        return self.fc(torch.relu(self.conv(X)).flatten(1))


def test_the_classifier_learns_strengths_for_convolutions_and_linear_layers():
    X, y = load_digits(return_X_y=True)
    X = (X[:300] / 16).reshape(-1, 1, 8, 8)
    clf = AdaRegClassifier(module=SmallConvNet, reg_lambda="evidence", adareg_layers="all",
                           max_epochs=6, cov_update_every=3, random_state=0).fit(X, y[:300])
    assert set(clf.reg_lambda_) == {"conv.weight", "fc.weight"}
    assert all(np.isfinite(v) and v > 0 for v in clf.reg_lambda_.values())
    assert np.isfinite(clf.log_evidence_)
    assert clf.score(X, y[:300]) > 0.5


@pytest.mark.parametrize("reg_lambda", ["evidence", "auto"])
def test_learned_strengths_reject_a_weight_that_is_neither_linear_nor_convolutional(
        reg_lambda):
    class WithEmbedding(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.table = torch.nn.Embedding(4, 3)
            self.out = torch.nn.Linear(3, 2)

        def forward(self, X):
            return self.out(X[:, :3] + self.table.weight.sum(0))

    X, Y, _ = linear_model_data(N, seed=6)
    est = AdaRegMultiTaskRegressor(module=WithEmbedding, reg_lambda=reg_lambda,
                                   adareg_layers=["table.weight"], max_epochs=2)
    with pytest.raises(ValueError, match=r"'table\.weight' is the 'weight' of a Embedding"):
        est.fit(X, Y)
    # a numeric strength accepts it (the prior works on any 2-D weight), without return_std
    est.set_params(reg_lambda=1e-3).fit(X, Y)
    assert not hasattr(est, "noise_variance_")
    with pytest.raises(ValueError, match="return_std=True needs the Laplace posterior"):
        est.predict(X, return_std=True)


def test_a_non_finite_evidence_is_a_divergence_naming_the_epoch(monkeypatch):
    def broken(*args, **kwargs):
        raise FloatingPointError("The log evidence is NaN or infinite.")

    monkeypatch.setattr("sk_adareg._strength._evidence.fit_hyperparameters", broken)
    X, Y, _ = linear_model_data(N, seed=7)
    # 8 epochs: the epoch schedule (3 updates before the last epoch), the first at epoch 2.
    est = AdaRegMultiTaskRegressor(hidden_layer_sizes=(8,), reg_lambda="evidence",
                                   max_epochs=8, cov_update_every=2, random_state=0)
    with pytest.raises(TrainingDivergedError, match="epoch 2"):
        est.fit(X, Y)
    assert not hasattr(est, "net_")
    # With "auto" every fold's fit of both candidates diverges: nothing to choose from.
    est.set_params(reg_lambda="auto")
    with pytest.raises(TrainingDivergedError, match="Every fit of the cross-validation"):
        est.fit(X, Y)
    assert not hasattr(est, "net_")
