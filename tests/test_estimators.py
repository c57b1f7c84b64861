"""Behaviour of AdaRegClassifier and AdaRegMultiTaskRegressor as scikit-learn estimators."""

import pickle
import warnings

import joblib
import numpy as np
import pytest
import scipy.ndimage
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits, make_classification
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from skorch import NeuralNet
from torch import nn

from sk_adareg import AdaRegClassifier, AdaRegMultiTaskRegressor
from sk_adareg.prior import inv_threshold


def multitask_data(n=120, n_features=6, n_tasks=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_features))
    shared = rng.normal(size=(n_features, 1))
    B = shared + 0.3 * rng.normal(size=(n_features, n_tasks))  # correlated tasks
    Y = np.tanh(X) @ B + 0.1 * rng.normal(size=(n, n_tasks))
    return X, Y * np.array([1.0, 10.0, 0.5])[:n_tasks]


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:300] / 16.0, y[:300]


FAST = {"max_epochs": 20, "random_state": 0}


# -- the classifier ------------------------------------------------------------


def test_classifier_string_labels_and_probabilities(digits):
    X, y = digits
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven",
                      "eight", "nine"])[y]
    clf = AdaRegClassifier(**FAST).fit(X, names)
    assert list(clf.classes_) == sorted(set(names))
    proba = clf.predict_proba(X)
    assert proba.dtype == np.float64 and proba.shape == (len(X), 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    pred = clf.predict(X)
    np.testing.assert_array_equal(pred, clf.classes_[proba.argmax(axis=1)])
    assert clf.score(X, names) == pytest.approx(np.mean(pred == names))
    assert clf.score(X, names) > 0.9
    assert clf.row_covariance_.shape == (10, 10)
    assert clf.column_covariance_.shape == (100, 100)
    # every layer by default; the covariances above are the last one's
    assert clf.adareg_layers_ == ["hidden.0.weight", "output.weight"]
    assert clf.row_covariance_ is clf.row_covariances_["output.weight"]


def test_binary_classification():
    X, y = make_classification(n_samples=100, n_features=5, random_state=0)
    clf = AdaRegClassifier(**FAST).fit(X, y.astype(bool))
    assert clf.predict_proba(X).shape == (100, 2)
    assert clf.predict(X).dtype == bool
    assert clf.row_covariance_.shape == (2, 2)
    assert clf.score(X, y.astype(bool)) > 0.8


def test_fitted_covariances_are_spd_inverses_within_bounds(digits):
    X, y = digits
    clf = AdaRegClassifier(u=0.2, v=5.0, precision_scale="learned", **FAST).fit(X, y)
    for cov, prec in ((clf.row_covariance_, clf.row_precision_),
                      (clf.column_covariance_, clf.column_precision_)):
        assert cov.dtype == np.float64
        np.testing.assert_allclose(cov, cov.T)
        eig = np.linalg.eigvalsh(cov)
        assert eig.min() >= 1 / 5.0 * (1 - 1e-9) and eig.max() <= 1 / 0.2 * (1 + 1e-9)
        np.testing.assert_allclose(cov @ prec, np.eye(len(cov)), atol=1e-9)


def test_precisions_are_the_closed_form_update_of_the_final_weights(digits):
    # max_epochs is a multiple of cov_update_every: the fit ends on a precision step.
    # (A fixed strength: a short fit with learned ones updates at steps instead.)
    X, y = digits
    clf = AdaRegClassifier(reg_lambda=3e-3, adareg_layers="last", max_epochs=10,
                           cov_update_every=5, random_state=0).fit(X, y)
    w = clf.net_.module_.output.weight.detach().double()
    history = clf.history_
    assert history[:, "cov_update"] == [False] * 4 + [True] + [False] * 4 + [True]
    omega_r = clf.row_precision_
    # Omega_c is the update of W^T Omega_r W with the final Omega_r (Algorithm 1, line 4)
    expected_c = inv_threshold(w.T @ torch.as_tensor(omega_r) @ w, w.shape[0], 0.1, 10,
                               unit_mean=True)
    np.testing.assert_allclose(clf.column_precision_, expected_c.numpy(), atol=1e-8)


# -- the regressor ------------------------------------------------------------


def test_regressor_shapes_follow_y():
    X, Y = multitask_data()
    reg = AdaRegMultiTaskRegressor(**FAST).fit(X, Y)
    assert reg.n_outputs_ == 3
    pred = reg.predict(X)
    assert pred.shape == Y.shape and pred.dtype == np.float64
    assert reg.row_covariance_.shape == (3, 3)
    scores = [reg.score(X[:, :], Y)]
    reg1 = AdaRegMultiTaskRegressor(**FAST).fit(X, Y[:, 0])
    assert reg1.predict(X).shape == (len(X),)
    assert reg1.n_outputs_ == 1
    assert scores[0] > 0.5


def test_standardized_targets_make_the_fit_unit_free():
    X, Y = multitask_data()
    reg = AdaRegMultiTaskRegressor(**FAST).fit(X, Y)
    scaled = AdaRegMultiTaskRegressor(**FAST).fit(X, 1000.0 * Y + 7.0)
    np.testing.assert_allclose(scaled.predict(X), 1000.0 * reg.predict(X) + 7.0, rtol=1e-6,
                               atol=1e-3)
    np.testing.assert_allclose(scaled.row_covariance_, reg.row_covariance_, rtol=1e-6)


def test_without_standardization_the_loss_sees_raw_targets():
    X, Y = multitask_data()
    raw = AdaRegMultiTaskRegressor(standardize_targets=False, **FAST).fit(X, Y)
    std = AdaRegMultiTaskRegressor(**FAST).fit(X, Y)
    # the task with scale 10 dominates the raw mean squared error
    assert raw.history_[0, "train_data_loss"] > 5 * std.history_[0, "train_data_loss"]


def test_grid_search_in_a_pipeline_exposes_covariances():
    X, Y = multitask_data(n=90)
    pipe = Pipeline([("scale", StandardScaler()),
                     ("net", AdaRegMultiTaskRegressor(max_epochs=10, random_state=0))])
    grid = GridSearchCV(
        pipe,
        {"net__reg_lambda": [1e-3, 1e-1], "net__u": [0.1, 0.5], "net__v": [2.0, 10.0]},
        cv=2,
    ).fit(X, Y)
    assert len(grid.cv_results_["params"]) == 8
    best = grid.best_estimator_.named_steps["net"]
    assert best.row_covariance_.shape == (3, 3)
    assert best.get_params()["reg_lambda"] == grid.best_params_["net__reg_lambda"]
    assert np.isfinite(grid.best_score_)


@pytest.mark.parametrize("Estimator", [AdaRegClassifier, AdaRegMultiTaskRegressor])
def test_clone_pickle_and_joblib_round_trips_predict_identically(Estimator, tmp_path, digits):
    X, y = digits
    est = Estimator(**FAST).fit(X, y)
    expected = est.predict(X)
    path = tmp_path / "model.joblib"
    joblib.dump(est, path)
    for copy in (pickle.loads(pickle.dumps(est)), joblib.load(path)):
        np.testing.assert_array_equal(copy.predict(X), expected)
        np.testing.assert_array_equal(copy.row_covariance_, est.row_covariance_)
    refit = clone(est).fit(X, y)
    np.testing.assert_array_equal(refit.predict(X), expected)


# -- reproducibility --------------------------------------------------------------


def test_random_state_reproduces_bit_for_bit_and_leaves_global_rng_alone(digits):
    X, y = digits
    torch_state = torch.get_rng_state()
    numpy_state = np.random.get_state()[1].copy()  # noqa: NPY002 (the global state)
    a = AdaRegClassifier(**FAST).fit(X, y)
    b = AdaRegClassifier(**FAST).fit(X, y)
    assert torch.equal(torch.get_rng_state(), torch_state)
    np.testing.assert_array_equal(np.random.get_state()[1], numpy_state)  # noqa: NPY002
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    np.testing.assert_array_equal(a.row_covariance_, b.row_covariance_)
    np.testing.assert_array_equal(a.column_covariance_, b.column_covariance_)
    c = AdaRegClassifier(max_epochs=20, random_state=1).fit(X, y)
    assert not np.array_equal(a.predict_proba(X), c.predict_proba(X))


def test_float32_float64_and_pandas_inputs_agree(digits):
    pd = pytest.importorskip("pandas")
    X, y = digits
    a = AdaRegClassifier(**FAST).fit(X.astype(np.float64), y)
    b = AdaRegClassifier(**FAST).fit(X.astype(np.float32), y)
    frame = pd.DataFrame(X, columns=[f"pixel_{i}" for i in range(64)])
    c = AdaRegClassifier(**FAST).fit(frame, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    np.testing.assert_array_equal(a.predict_proba(X), c.predict_proba(frame))
    assert list(c.feature_names_in_) == list(frame.columns)


# -- the penalty and the history ------------------------------------------------


def test_reg_lambda_changes_the_weights_and_zero_means_no_penalty(digits):
    X, y = digits
    none = AdaRegClassifier(reg_lambda=0.0, **FAST).fit(X, y)
    strong = AdaRegClassifier(reg_lambda=1e-1, **FAST).fit(X, y)
    h = none.history_
    np.testing.assert_allclose(h[:, "train_loss"], h[:, "train_data_loss"], rtol=1e-6)
    norm = lambda est: est.net_.module_.output.weight.detach().norm().item()  # noqa: E731
    assert norm(strong) < 0.7 * norm(none)
    gap = np.subtract(strong.history_[:, "train_loss"], strong.history_[:, "train_data_loss"])
    assert np.all(gap > 0)


def test_validation_loss_excludes_the_penalty(digits):
    X, y = digits
    clf = AdaRegClassifier(reg_lambda=1.0, early_stopping=True, max_epochs=3,
                           random_state=0).fit(X, y)
    net = clf.net_
    valid = net.train_split.keywords["valid_ds"]
    logits = net.forward(valid.X)
    data_loss = nn.functional.cross_entropy(logits, torch.as_tensor(valid.y)).item()
    assert net.history[-1, "valid_loss"] == pytest.approx(data_loss, rel=1e-5)
    assert net.get_loss(logits, torch.as_tensor(valid.y), training=True).item() > data_loss


def test_early_stopping_stops_and_refreshes_the_precisions(digits):
    X, y = digits
    clf = AdaRegClassifier(early_stopping=True, n_iter_no_change=3, max_epochs=300,
                           lr=1e-2, random_state=0).fit(X, y)
    assert clf.n_iter_ < 300
    assert len(clf.loss_curve_) == clf.n_iter_
    assert all(np.isfinite(clf.history_[:, "valid_loss"]))


def test_history_records_the_diagnostics(digits):
    X, y = digits
    clf = AdaRegClassifier(**FAST).fit(X, y)
    h = clf.history_
    for key in ("adareg_penalty", "adareg_objective", "row_precision_min",
                "row_precision_max", "column_precision_min", "column_precision_max"):
        values = np.array(h[:, key])
        assert values.shape == (20,) and np.all(np.isfinite(values))
    assert np.all(np.array(h[:, "row_precision_min"]) >= 0.1 - 1e-12)
    assert np.all(np.array(h[:, "column_precision_max"]) <= 10 + 1e-12)
    # the penalties of every regularized layer (all by default), summed without strengths
    module = clf.net_.module_
    assert list(clf.net_.priors_.names) == ["hidden.0.weight", "output.weight"]
    assert h[-1, "adareg_penalty"] == pytest.approx(sum(
        prior.penalty(module.get_parameter(name).double()).item()
        for name, prior in clf.net_.priors_.items()))


# -- networks of one's own ------------------------------------------------------


class PaperMNISTNet(nn.Module):
    """CONV5x5x1x10 - CONV5x5x10x20 - FC320x50 - FC50x10 (Appendix B.1)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.fc1 = nn.Linear(320, 50)
        self.fc2 = nn.Linear(50, 10)

    def forward(self, X):
        X = nn.functional.max_pool2d(torch.relu(self.conv1(X)), 2)
        X = nn.functional.max_pool2d(torch.relu(self.conv2(X)), 2)
        return self.fc2(torch.relu(self.fc1(X.flatten(1))))


@pytest.fixture(scope="module")
def digit_images():
    X, y = load_digits(return_X_y=True)
    images = scipy.ndimage.zoom(X[:200].reshape(-1, 8, 8) / 16.0, (1, 3.5, 3.5), order=1)
    return images[:, None].astype(np.float32), y[:200]


def test_paper_mnist_network_last_layer(digit_images):
    X, y = digit_images
    assert X.shape == (200, 1, 28, 28)
    clf = AdaRegClassifier(module=PaperMNISTNet, adareg_layers="last", max_epochs=4,
                           random_state=0).fit(X, y)
    assert clf.adareg_layers_ == ["fc2.weight"]
    assert clf.row_covariance_.shape == (10, 10)
    assert clf.column_covariance_.shape == (50, 50)
    assert clf.predict_proba(X[:5]).shape == (5, 10)
    with pytest.raises(ValueError, match="features"):
        clf.predict(X[:5, :, :20].reshape(5, 20, 28))


def test_paper_mnist_network_all_layers(digit_images):
    X, y = digit_images
    clf = AdaRegClassifier(module=PaperMNISTNet(), adareg_layers="all", max_epochs=2,
                           cov_update_every=1, random_state=0).fit(X, y)
    shapes = {name: (clf.row_covariances_[name].shape[0],
                     clf.column_covariances_[name].shape[0])
              for name in clf.adareg_layers_}
    assert shapes == {"conv1.weight": (10, 25), "conv2.weight": (20, 250),
                      "fc1.weight": (50, 320), "fc2.weight": (10, 50)}
    assert clf.row_covariance_ is clf.row_covariances_["fc2.weight"]


def test_module_instance_is_not_trained_in_place(digits):
    X, y = digits
    module = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    before = [p.detach().clone() for p in module.parameters()]
    clf = AdaRegClassifier(module=module, **FAST).fit(X, y)
    for p, q in zip(module.parameters(), before, strict=True):
        assert torch.equal(p, q)
    assert clf.adareg_layers_ == ["0.weight", "2.weight"]  # every layer by default
    assert clf.column_covariances_["0.weight"].shape == (64, 64)
    named = AdaRegClassifier(module=module, adareg_layers=["0.weight"], **FAST).fit(X, y)
    for p, q in zip(module.parameters(), before, strict=True):
        assert torch.equal(p, q)
    assert named.adareg_layers_ == ["0.weight"]
    assert named.column_covariance_.shape == (64, 64)


# -- errors before any training -----------------------------------------------------


@pytest.fixture
def no_training(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(NeuralNet, "fit_loop", fail)


@pytest.mark.parametrize(
    "params, error, match",
    [
        ({"u": 0.0}, ValueError, "'u' parameter"),
        ({"u": -1.0}, ValueError, "'u' parameter"),
        ({"u": 2.0, "v": 1.0}, ValueError, "u must be <= v"),
        ({"u": 2.0, "v": 3.0}, ValueError, "u <= 1 <= v"),
        ({"reg_lambda": -1e-3}, ValueError, "'reg_lambda' parameter"),
        ({"cov_update_every": 0}, ValueError, "'cov_update_every' parameter"),
        ({"adareg_layers": "first"}, ValueError, "'adareg_layers' parameter"),
        ({"adareg_layers": ["nope.weight"]}, ValueError, "'nope.weight'"),
        ({"adareg_layers": ["output.bias"]}, ValueError, "2-D"),
        ({"module": nn.Sequential}, ValueError, "selects no layer"),
        ({"module": lambda: "net"}, TypeError, "returned str"),
        ({"device": "cuda:0"} if not torch.cuda.is_available() else {"device": "tpu"},
         ValueError, "device"),
        ({"lr": 0}, ValueError, "'lr' parameter"),
        ({"precision_scale": "none"}, ValueError, "'precision_scale' parameter"),
    ],
)
def test_bad_parameters_raise_before_training(params, error, match, no_training):
    X, y = make_classification(n_samples=30, n_features=4, random_state=0)
    clf = AdaRegClassifier(**params)
    with pytest.raises(error, match=match):
        clf.fit(X, y)
    with pytest.raises(NotFittedError):
        clf.predict(X)


@pytest.mark.parametrize(
    "X_change, y_change, match",
    [
        (lambda X: np.where(X > 1, np.nan, X), None, "NaN"),
        (lambda X: np.where(X > 1, np.inf, X), None, "infinity"),
        (None, lambda y: np.zeros_like(y), "only one class"),
        (None, lambda y: y[:-1], "inconsistent numbers of samples"),
        (lambda X: X[:, 0], None, "Expected 2D array"),
        (None, lambda y: y + 0.5, "Unknown label type"),
    ],
)
def test_bad_data_raises_before_training(X_change, y_change, match, no_training):
    X, y = make_classification(n_samples=30, n_features=4, random_state=0)
    X = X_change(X) if X_change else X
    y = y_change(y) if y_change else y
    with pytest.raises(ValueError, match=match):
        AdaRegClassifier().fit(X, y)


def test_new_data_is_checked_against_the_training_shape(digits):
    X, y = digits
    clf = AdaRegClassifier(max_epochs=1, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="64 features"):
        clf.predict(X[:, :10])
    reg = AdaRegMultiTaskRegressor(max_epochs=1, random_state=0).fit(*multitask_data())
    with pytest.raises(ValueError, match="6 features"):
        reg.predict(np.zeros((2, 5)))


def test_read_only_input_trains_without_torch_warnings(digits):
    X, y = digits
    X = X.astype(np.float32)
    X.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        clf = AdaRegClassifier(max_epochs=2, random_state=0).fit(X, y)
        clf.predict(X)


def test_numpy_integer_parameters_from_a_grid_are_accepted(digits):
    X, y = digits
    clf = AdaRegClassifier(reg_lambda=np.float64(3e-3), max_epochs=np.int64(4),
                           cov_update_every=np.int64(2), batch_size=np.int64(32),
                           random_state=0).fit(X, y)
    assert clf.history_[:, "cov_update"] == [False, True, False, True]
    # learned strengths plan a short fit's updates from them too: after steps 10, 20
    # and 30 of the 4 x 10 (in epochs 1, 2 and 3)
    clf = AdaRegClassifier(reg_lambda="evidence", max_epochs=np.int64(4),
                           cov_update_every=np.int64(2), batch_size=np.int64(32),
                           random_state=0).fit(X, y)
    assert clf.history_[:, "cov_update"] == [True, True, True, False]


def test_classifier_log_probabilities_are_the_log_of_the_probabilities(digits):
    X, y = digits
    clf = AdaRegClassifier(**FAST).fit(X, y)
    log_proba = clf.predict_log_proba(X[:20])
    assert log_proba.dtype == np.float64 and log_proba.shape == (20, 10)
    np.testing.assert_allclose(np.exp(log_proba), clf.predict_proba(X[:20]), rtol=1e-12)
    np.testing.assert_array_equal(clf.classes_[log_proba.argmax(axis=1)], clf.predict(X[:20]))
