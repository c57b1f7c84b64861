"""reg_lambda="loo": the approximate leave-one-out error and the estimators that use it.

For a linear model with centred inputs, the bias at its optimum and no correlation
between the targets in the prior, the linearized model is the model, KFAC is exact and
the intercept decouples, so PRESS must equal the leave-one-out error of the ridge fit,
computed here by refitting without each point.
"""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score

from sk_adareg import AdaRegClassifier, AdaRegMultiTaskRegressor
from sk_adareg._strength import _policies
from sk_adareg._strength._loo import SCALES, _Linearized, press_scale, press_values
from sk_adareg.laplace import KroneckerLaplace, kfac
from sk_adareg.prior import PriorCollection

N, D, K = 25, 4, 3


def linear_problem(seed, weighted):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, D))
    w = rng.uniform(0.2, 3.0, size=N) if weighted else np.ones(N)
    X -= np.average(X, axis=0, weights=w)  # centred: the intercept decouples
    Y = X @ rng.normal(size=(D, K)) + rng.standard_t(3, size=(N, K))
    module = torch.nn.Linear(D, K).double()
    with torch.no_grad():  # any weight; the bias at its optimum for centred inputs
        module.weight.copy_(torch.as_tensor(rng.normal(size=(K, D))))
        module.bias.copy_(torch.as_tensor(np.average(Y, axis=0, weights=w)))
    priors = PriorCollection(module, ["weight"], u=1e-3, v=1e3)
    A = rng.normal(size=(D, D))
    priors["weight"].column_precision.copy_(torch.as_tensor(A @ A.T / D + 0.5 * np.eye(D)))
    return X, Y, w, module, priors


def refitted_loo_error(X, Y, w, omega_c, lam):
    """sum_i w_i |y_i - f_{-i}(x_i)|^2, each f_{-i} the penalized fit without point i."""
    Z = np.hstack([X, np.ones((len(X), 1))])
    penalty = np.zeros((D + 1, D + 1))
    penalty[:D, :D] = lam * omega_c
    total = 0.0
    for i in range(len(X)):
        keep = np.arange(len(X)) != i
        Zk, wk = Z[keep], w[keep]
        theta = np.linalg.solve(Zk.T @ (wk[:, None] * Zk) + penalty,
                                Zk.T @ (wk[:, None] * Y[keep]))
        total += w[i] * ((Y[i] - Z[i] @ theta) ** 2).sum()
    return total


@pytest.mark.parametrize("weighted", [False, True])
def test_press_is_the_leave_one_out_error_of_the_refitted_ridge(weighted):
    X, Y, w, module, priors = linear_problem(0, weighted)
    Xt, Yt, wt = (torch.as_tensor(a) for a in (X, Y, w))
    batch = (Xt, Yt, wt) if weighted else (Xt, Yt)
    # The posterior's strength and noise are not read: PRESS takes its own.
    laplace = KroneckerLaplace(kfac(module, [batch], ["weight"], "gaussian"), priors, 5.0,
                               [0.3, 2.0, 1.0])
    lam = 0.7

    def chunks():  # the data in two passes' worth of uneven chunks
        return [tuple(t[:10] for t in batch), tuple(t[10:] for t in batch)]

    press = press_values(module, ["weight"], laplace, chunks, {"weight": lam})
    alpha, searched = press_scale(module, ["weight"], laplace, chunks, {"weight": lam})
    omega_c = priors["weight"].column_precision.numpy()
    expected = np.array([refitted_loo_error(X, Y, w, omega_c, a * lam) for a in SCALES])
    np.testing.assert_allclose(press, expected, rtol=1e-9)
    # the coarse-to-fine search finds the grid's minimizer, evaluating 16 of 37 factors
    assert alpha == SCALES[np.argmin(expected)]
    assert np.isfinite(searched).sum() == 16
    np.testing.assert_allclose(searched[np.isfinite(searched)], press[np.isfinite(searched)],
                               rtol=1e-12)


def test_the_search_reads_the_data_again_when_it_does_not_keep_it(monkeypatch):
    X, Y, _, module, priors = linear_problem(2, False)
    batch = (torch.as_tensor(X), torch.as_tensor(Y))
    laplace = KroneckerLaplace(kfac(module, [batch], ["weight"]), priors)
    reads = []

    def chunks():
        reads.append(1)
        return [tuple(t[:10] for t in batch), tuple(t[10:] for t in batch)]

    kept = press_scale(module, ["weight"], laplace, chunks, {"weight": 0.7})
    assert len(reads) == 2  # the gradient, then the Jacobians once for both passes
    monkeypatch.setattr("sk_adareg._strength._loo._CACHE_BYTES", 0)
    reads.clear()
    again = press_scale(module, ["weight"], laplace, chunks, {"weight": 0.7})
    assert len(reads) == 3
    assert kept[0] == again[0]
    np.testing.assert_array_equal(kept[1], again[1])


def heavy_tailed(n=80, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6))
    return X, np.c_[X[:, 0] + rng.standard_t(2, n), X[:, 1] ** 2 + rng.normal(size=n)]


def test_loo_scales_every_evidence_strength_by_one_factor(monkeypatch):
    seen = []
    rescale = _policies.rescale_strengths

    def recorded(net, dataset, laplace):
        before = dict(net.reg_lambda_)
        alpha, mse = rescale(net, dataset, laplace)
        seen.append((before, dict(net.reg_lambda_), alpha,
                     net.criterion_.target_weights.tolist(), net.priors_.strengths.tolist()))
        return alpha, mse

    searched = []

    def search(*args):
        alpha, press = press_scale(*args)
        searched.append(press)
        return alpha, press

    monkeypatch.setattr(_policies, "rescale_strengths", recorded)
    monkeypatch.setattr("sk_adareg._strength._loo.press_scale", search)
    X, Y = heavy_tailed()
    est = AdaRegMultiTaskRegressor(hidden_layer_sizes=(16,), reg_lambda="loo",
                                   adareg_layers="all", max_epochs=12, cov_update_every=3,
                                   random_state=0).fit(X, Y)
    rows = [row for row in est.history_ if "log_evidence" in row]
    # no update of the strengths after the last epoch's precision update
    assert [row["epoch"] for row in rows] == [3, 6, 9]
    assert est.history_[-1, "cov_update"] and "loo_scale" not in est.history_[-1]
    assert [row["loo_scale"] for row in rows] == [alpha for *_, alpha, _, _ in seen]
    # loo_mse: PRESS at the chosen factor over the n K target values
    for row, press in zip(rows, searched, strict=True):
        assert press[list(SCALES).index(row["loo_scale"])] == np.nanmin(press)
        assert row["loo_mse"] == pytest.approx(np.nanmin(press) / Y.size, rel=1e-12)
    for before, after, alpha, target_weights, strengths in seen:
        assert alpha in SCALES
        for name in before:  # the evidence's strengths, all times the one factor
            assert after[name] == pytest.approx(alpha * before[name], rel=1e-12)
        assert target_weights == [1.0, 1.0]  # the targets count alike, as in PRESS
        np.testing.assert_allclose(strengths, list(after.values()), rtol=1e-12)
    # the strengths in force at the end are the last update's; only the noise is fitted
    assert est.reg_lambda_ == seen[-1][1]
    assert est.noise_variance_.shape == (2,) and (est.noise_variance_ > 0).all()
    mean, std = est.predict(X[:4], return_std=True)
    assert mean.shape == std.shape == (4, 2) and (std > 0).all()


def test_loo_refuses_classification_convolutions_and_one_sample_before_training():
    X, Y = heavy_tailed(40)
    with pytest.raises(ValueError, match="at least 2 training samples, got 1 sample"):
        AdaRegMultiTaskRegressor(reg_lambda="loo", max_epochs=2).fit(X[:1], Y[:1])
    with pytest.raises(ValueError, match=r"reg_lambda='loo'.*squared-error criterion"):
        AdaRegClassifier(reg_lambda="loo", max_epochs=2).fit(X, (Y[:, 0] > 0).astype(int))

    class Conv(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 2, 2)
            self.out = torch.nn.Linear(4, 2)

        def forward(self, X):  # the six inputs as a 2 x 3 image
            return self.out(torch.relu(self.conv(X.reshape(-1, 1, 2, 3))).flatten(1))

    est = AdaRegMultiTaskRegressor(module=Conv, reg_lambda="loo", adareg_layers="all",
                                   max_epochs=2)
    with pytest.raises(ValueError, match=r"'conv\.weight' is the weight of a Conv2d"):
        est.fit(X, Y)
    assert not hasattr(est, "net_")


def linearized_network():
    """The linearized two-layer network of a short "loo" fit, at strengths 2."""
    X, Y = heavy_tailed(30)
    est = AdaRegMultiTaskRegressor(hidden_layer_sizes=(8,), reg_lambda="loo", adareg_layers="all",
                                   max_epochs=3, cov_update_every=3, random_state=0).fit(X, Y)
    module, names = est.net_.module_, est.net_.priors_.names
    Xt = torch.as_tensor(X, dtype=torch.float32)
    Yt = torch.as_tensor(est._target_scaler_.transform(Y), dtype=torch.float32)
    laplace = KroneckerLaplace(kfac(module, [(Xt, Yt)], names), est.net_.priors_)
    return _Linearized(module, names, laplace, lambda: [(Xt[:17], Yt[:17]), (Xt[17:], Yt[17:])],
                       dict.fromkeys(names, 2.0))


def test_a_factor_per_layer_agrees_with_one_factor_for_all():
    one, per_layer, mixed = linearized_network().press([3.0, [3.0, 3.0], [3.0, 30.0]])
    assert one == per_layer and mixed != one


def test_the_factors_taken_together_give_each_ones_press():
    # press() takes all its factors in one pass over the data: each factor's PRESS is
    # the one it has alone, whatever its neighbours.
    linearized = linearized_network()
    factors = [1e-3, 3.0, [3.0, 30.0], [30.0, 0.3], 1e4]
    together = linearized.press(factors)
    alone = [linearized.press([factor])[0] for factor in factors]
    np.testing.assert_allclose(together, alone, rtol=1e-12)
    np.testing.assert_allclose(linearized.press(factors[::-1]), alone[::-1], rtol=1e-12)
    assert len(set(together.tolist())) == len(factors)


def test_a_grid_search_chooses_between_evidence_and_loo():
    # The recipe of the user guide: GridSearchCV over the two learned strengths. Each
    # candidate must really be fitted with its own reg_lambda (clone and set_params keep
    # the string), score as cross_val_score scores it alone, and the refit must be the
    # winner, with its uncertainty.
    X, Y = heavy_tailed(60)
    base = AdaRegMultiTaskRegressor(hidden_layer_sizes=(8,), adareg_layers="all",
                                    max_epochs=12, cov_update_every=4, random_state=0)
    cv = KFold(3, shuffle=True, random_state=0)
    search = GridSearchCV(base, {"reg_lambda": ["evidence", "loo"]}, cv=cv).fit(X, Y)
    scores = search.cv_results_["mean_test_score"]
    for value, score in zip(search.cv_results_["param_reg_lambda"], scores, strict=True):
        alone = cross_val_score(clone(base).set_params(reg_lambda=value), X, Y, cv=cv)
        assert score == pytest.approx(alone.mean(), abs=1e-12)
    assert scores[0] != scores[1]
    winner = ["evidence", "loo"][int(np.argmax(scores))]
    assert search.best_params_ == {"reg_lambda": winner}
    assert search.best_estimator_.reg_lambda == winner
    mean, std = search.best_estimator_.predict(X[:5], return_std=True)
    assert mean.shape == std.shape == (5, 2) and (std > 0).all()
