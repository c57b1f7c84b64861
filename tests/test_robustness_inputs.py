"""Any input either fits and predicts finite values, or is rejected before training.

The property tests generate inputs (shapes, dtypes, NaN and infinity placements,
constant features, duplicated rows, scales from 1e-8 to 1e8, classes with one
sample, string, bool and mixed labels, y with the wrong number of rows, empty
input) and hold the estimators to a dichotomy: either ``fit`` and ``predict``
succeed with finite outputs of the right shape and type, or ``fit`` raises a
``ValueError`` (a ``TypeError`` for wrong types, as scikit-learn does) whose
message names one of the faults the input was built with, before skorch's
training loop runs, and the estimator is left unfitted. An input built without
a fault must fit. ``--hypothesis-show-statistics`` shows how often each fault
and outcome occurred.

The cases decided one by one follow the property tests.
"""

import contextlib
import math
import re
import warnings
from unittest import mock

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sklearn.exceptions import DataConversionWarning, NotFittedError
from skorch import NeuralNet

from sk_adareg import AdaRegClassifier, AdaRegMultiTaskRegressor
from sk_adareg.exceptions import TrainingDivergedError

FLOAT32_MAX = float(np.finfo(np.float32).max)
U, V = 0.5, 2.0
# Everything the tests rely on is passed explicitly: the defaults are being re-tuned.
TINY = {"hidden_layer_sizes": (8,), "max_epochs": 2, "reg_lambda": 1e-2, "u": U, "v": V,
        "precision_scale": "unit_mean", "cov_update_every": 1, "lr": 1e-3, "random_state": 0}

# What the error message says for each fault an input can be built with.
MESSAGES = {
    "no samples": r"0 sample\(s\)|Expected 2D array",
    # scikit-learn's own message for a DataFrame without columns is the second
    "no features": r"0 feature\(s\)|at least one array or dtype is required",
    "NaN in X": r"Input X contains NaN",
    "inf in X": r"Input X contains infinity",
    "strings in X": r"could not convert string to float",
    # a list of complex numbers fails numpy's conversion first, with a TypeError
    "complex X": r"Complex data not supported|not 'complex'",
    "wrong rows": r"inconsistent numbers of samples",
    "one class": r"only one class",
    "continuous labels": r"Unknown label type",
    # an object array whose first label is not a string is of unknown type to
    # scikit-learn; strings mixed with other types cannot be sorted
    "labels of mixed or unknown type": r"Unknown label type|y mixes labels of types",
    "NaN in y": r"Input y contains NaN",
    "inf in y": r"Input y contains infinity",
    "strings in y": r"could not convert string to float",
    "2 columns of labels": r"y should be a 1d array",
    "3-D y": r"Found array with dim 3",
    "too few training samples": r"validation_fraction=.* leaves \d+ to train on",
    "batch norm on one sample": r"batch_norm=True cannot train on batches of one sample",
}


@contextlib.contextmanager
def recording_training():
    """Yields a list that gets an entry each time skorch's training loop starts."""
    runs = []
    original = NeuralNet.fit_loop

    def fit_loop(self, *args, **kwargs):
        runs.append(1)
        return original(self, *args, **kwargs)

    with mock.patch.object(NeuralNet, "fit_loop", fit_loop):
        yield runs


def fitted_attributes(est):
    return [k for k in vars(est) if k.endswith("_") and not k.startswith("__")]


# -- strategies ----------------------------------------------------------------------------
# Each fault has a small probability, so that about half the inputs are clean and fit.


def weighted(choices):
    """A strategy drawing from {value: weight}."""
    return st.sampled_from([value for value, weight in choices.items() for _ in range(weight)])


X_KINDS = {"float64": 6, "float32": 3, "float16": 2, "int64": 2, "uint8": 1, "bool": 2,
           "numeric strings": 2, "words": 1, "complex": 1}
SAMPLE_COUNTS = weighted({0: 1, 1: 1, 2: 1, 3: 1, **{n: 2 for n in range(4, 13)}})


@st.composite
def feature_matrices(draw, n):
    """(X, faults): X of n rows in some dtype and container, and the faults it was built with."""
    p = draw(weighted({0: 1, 1: 3, 2: 3, 3: 3, 4: 3}))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    exponent = draw(st.integers(-8, 8))
    event("X scale " + ("1e-8" if exponent == -8 else "1e+8" if exponent == 8
                        else "1e-7..1e-4" if exponent <= -4 else "1e+4..1e+7" if exponent >= 4
                        else "1e-3..1e+3"))
    X = rng.normal(size=(n, p)) * 10.0**exponent
    if n and p and draw(st.booleans()):
        X[:, draw(st.integers(0, p - 1))] = draw(st.sampled_from([0.0, 1.0, -3e7]))
        event("constant feature")
    if n > 1 and draw(st.booleans()):
        X[n // 2: 2 * (n // 2)] = X[: n // 2]
        event("duplicated rows")
    special = draw(weighted({None: 16, np.nan: 1, np.inf: 1, -np.inf: 1, 1e39: 1}))
    if special is not None and n * p:
        where = rng.choice(n * p, size=draw(st.integers(1, n * p)), replace=False)
        X.flat[where] = special
    kind = draw(weighted(X_KINDS))
    event(f"X dtype {kind}")
    with np.errstate(over="ignore", invalid="ignore"):
        if kind in ("float64", "float32", "float16"):
            X = X.astype(kind)  # float16 overflows to inf from 65520 on
        elif kind in ("int64", "uint8"):
            info = np.iinfo(kind)
            X = np.clip(np.nan_to_num(X.round()), info.min / 2, info.max / 2).astype(kind)
        elif kind == "bool":
            X = X > 0
        elif kind == "numeric strings":
            X = X.astype(str).astype(object)  # "nan", "inf" and "1e+39" parse back
        elif kind == "words":
            X = X.astype(object)
            if n * p:
                X.flat[draw(st.integers(0, n * p - 1))] = "seven"
        else:
            X = X + 1j
    faults = set()
    if n == 0:
        faults.add("no samples")
    if p == 0:
        faults.add("no features")
    if kind == "complex":
        faults.add("complex X")
    elif kind == "words" and n * p:
        faults.add("strings in X")
    elif kind != "words":
        values = np.asarray(X, dtype=np.float64)
        if np.isnan(values).any():
            faults.add("NaN in X")
        if (np.abs(values[~np.isnan(values)]) > FLOAT32_MAX).any():
            faults.add("inf in X")
    container = draw(st.sampled_from(["ndarray", "list", "DataFrame"]))
    if container == "list":
        X = X.tolist()
    elif container == "DataFrame" and kind not in ("complex", "words"):
        X = pd.DataFrame(X, columns=[f"x{j}" for j in range(p)])
    return X, faults, exponent


def _n_train(n, early_stopping):
    return n - math.ceil(0.1 * n) if early_stopping else n


@st.composite
def estimator_params(draw):
    params = {
        "early_stopping": draw(st.booleans()),
        "batch_norm": draw(st.booleans()),
        "batch_size": draw(st.sampled_from([1, 2, 3, 4, 5, 6])),
        "hidden_layer_sizes": draw(st.sampled_from([(8,), (8,), ()])),
        "precision_scale": draw(st.sampled_from(["learned", "unit_mean"])),
    }
    return {**TINY, **params}


def parameter_faults(params, n, n_classes=0):
    """Faults that come from the parameters meeting the data (n_classes: of a classifier)."""
    faults = set()
    n_train = _n_train(n, params["early_stopping"])
    # Early stopping must leave 2 training samples, and one per class.
    if params["early_stopping"] and n >= 1 and n_train < max(2, n_classes):
        faults.add("too few training samples")
    if (params["batch_norm"] and params["hidden_layer_sizes"]
            and min(n_train, params["batch_size"]) < 2):
        faults.add("batch norm on one sample")
    return faults


@st.composite
def class_labels(draw, n):
    """(y, faults): labels for n samples of some type, and the faults they were built with."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    k = draw(weighted({1: 1, 2: 4, 3: 4}))
    codes = rng.integers(0, k, size=n)
    if n >= 3 and draw(st.booleans()):
        codes[rng.integers(n)] = k  # a class with a single sample
        event("a class with one sample")
    kind = draw(weighted({"int": 6, "str": 6, "bool": 3, "integral float": 3, "continuous": 1,
                          "int and str": 1, "None among str": 1, "NaN among str": 1,
                          "NaN among floats": 1}))
    event(f"labels {kind}")
    words = np.array(["cat", "dog", "emu", "fox"], dtype=object)
    if kind == "int":
        y = codes * 7 - 5
    elif kind == "str":
        y = words[codes].astype(str)
    elif kind == "bool":
        y = codes == 0
    elif kind == "integral float":
        y = codes.astype(float) * 2.0
    elif kind == "continuous":
        y = codes + 0.5
    elif kind == "int and str":
        y = np.where(codes == 0, 1, words[codes]).astype(object)
    elif kind in ("None among str", "NaN among str"):
        y = np.where(codes == 0, None if kind.startswith("None") else np.nan, words[codes])
    else:
        y = np.where(codes == 0, np.nan, codes.astype(float))
    faults = set()
    present = set(y.tolist())
    if kind == "continuous" and n:
        faults.add("continuous labels")
    elif y.dtype == object and not all(isinstance(label, str) for label in present):
        faults.add("labels of mixed or unknown type")
    elif kind == "NaN among floats" and (codes == 0).any():
        faults.add("NaN in y")
    elif len(present) < 2:
        faults.add("one class")
    shape = draw(weighted({"1-D": 8, "column": 1, "2 columns": 1}))
    if shape == "column":
        y = y[:, None]
    elif shape == "2 columns":
        y = np.c_[y, y]
        faults.add("2 columns of labels")
    return y, faults


@st.composite
def regression_targets(draw, n):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n_tasks = draw(st.integers(1, 3))
    shape = (n,) if n_tasks == 1 and draw(st.booleans()) else (n, n_tasks)
    if draw(weighted({False: 19, True: 1})):
        shape = (n, n_tasks, 2)
    exponent = draw(st.integers(-8, 8))
    y = rng.normal(size=shape) * 10.0**exponent
    special = draw(weighted({None: 12, np.nan: 1, np.inf: 1, -np.inf: 1}))
    if special is not None and y.size:
        y.flat[rng.choice(y.size, size=draw(st.integers(1, y.size)), replace=False)] = special
    kind = draw(weighted({"float64": 6, "float32": 3, "int64": 2, "bool": 1,
                          "numeric strings": 1, "words": 1}))
    event(f"y dtype {kind}")
    faults = set()
    if kind in ("float64", "float32", "numeric strings"):
        y = y.astype(kind if kind != "numeric strings" else str)
        if np.isnan(y.astype(float)).any():
            faults.add("NaN in y")
        if np.isinf(y.astype(float)).any():
            faults.add("inf in y")
    elif kind == "int64":
        y = np.nan_to_num(y).clip(-1e15, 1e15).round().astype(np.int64)
    elif kind == "bool":
        y = y > 0
    else:
        y = y.astype(object)
        if y.size:
            y.flat[0] = "seven"
            faults.add("strings in y")
    if len(shape) == 3:
        faults.add("3-D y")
    return y, faults, exponent


def with_wrong_rows(draw, n):
    """The number of rows of y: n, or (one time in four) one more or one fewer."""
    delta = draw(weighted({0: 18, -1: 1, 1: 1}))
    return max(n + delta, 0)


# -- the dichotomy -------------------------------------------------------------------------


def fit_or_reject(est, X, y, faults, may_diverge):
    """Fit; return the fitted estimator, or None once a rejection has been checked."""
    event(f"fault: {', '.join(sorted(faults))}" if faults else "fault: none")
    with recording_training() as runs, warnings.catch_warnings():
        warnings.simplefilter("ignore", DataConversionWarning)  # y as a column: accepted
        try:
            est.fit(X, y)
        except (ValueError, TypeError) as exc:
            message = f"{type(exc).__name__}: {exc}"
            assert not runs, f"raised after training started: {message}"
            assert faults, f"an input without faults was rejected: {message}"
            assert any(re.search(MESSAGES[f], str(exc)) for f in faults), (faults, message)
            assert fitted_attributes(est) == []
            event(f"outcome: {type(exc).__name__}")
            return None
        except TrainingDivergedError as exc:
            assert may_diverge, f"diverged on a moderate input: {exc}"
            assert re.search(r"at epoch \d+\b.*lr=.*reg_lambda=", str(exc)), str(exc)
            assert fitted_attributes(est) == []
            event("outcome: TrainingDivergedError")
            return None
    assert not faults, f"an input with faults {faults} was accepted"
    assert len(runs) == 1
    event("outcome: fitted")
    return est


def assert_feasible_covariances(est):
    for cov in (*est.row_covariances_.values(), *est.column_covariances_.values()):
        assert np.isfinite(cov).all()
        np.testing.assert_allclose(cov, cov.T)
        eig = np.linalg.eigvalsh(cov)
        assert eig.min() >= (1 / V) * (1 - 1e-9) and eig.max() <= (1 / U) * (1 + 1e-9)


SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@SETTINGS
@given(data=st.data())
def test_classifier_fits_or_rejects_any_input(data):
    n = data.draw(SAMPLE_COUNTS, label="n")
    X, x_faults, exponent = data.draw(feature_matrices(n), label="X")
    y, y_faults = data.draw(class_labels(with_wrong_rows(data.draw, n)), label="y")
    params = data.draw(estimator_params(), label="params")
    faults = x_faults | y_faults | parameter_faults(params, n, len(set(np.ravel(y).tolist())))
    if len(y) != n:
        faults |= {"wrong rows", "no samples"} if len(y) == 0 else {"wrong rows"}
    clf = fit_or_reject(AdaRegClassifier(**params), X, y, faults, may_diverge=exponent >= 4)
    if clf is None:
        return
    labels = np.ravel(y)
    np.testing.assert_array_equal(clf.classes_, np.unique(labels))
    proba = clf.predict_proba(X)
    assert proba.shape == (n, len(clf.classes_)) and proba.dtype == np.float64
    assert np.isfinite(proba).all() and (proba >= 0).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    pred = clf.predict(X)
    assert pred.shape == (n,) and pred.dtype == clf.classes_.dtype
    assert np.isin(pred, clf.classes_).all()
    assert_feasible_covariances(clf)


@SETTINGS
@given(data=st.data())
def test_regressor_fits_or_rejects_any_input(data):
    n = data.draw(SAMPLE_COUNTS, label="n")
    X, x_faults, x_exponent = data.draw(feature_matrices(n), label="X")
    y, y_faults, y_exponent = data.draw(regression_targets(with_wrong_rows(data.draw, n)),
                                        label="y")
    params = data.draw(estimator_params(), label="params")
    params["standardize_targets"] = data.draw(st.booleans(), label="standardize_targets")
    faults = x_faults | y_faults | parameter_faults(params, n)
    if len(y) != n:
        faults |= {"wrong rows", "no samples"} if len(y) == 0 else {"wrong rows"}
    may_diverge = x_exponent >= 4 or (y_exponent >= 4 and not params["standardize_targets"])
    reg = fit_or_reject(AdaRegMultiTaskRegressor(**params), X, y, faults, may_diverge)
    if reg is None:
        return
    pred = reg.predict(X)
    assert pred.shape == np.shape(y) and pred.dtype == np.float64
    assert np.isfinite(pred).all()
    assert reg.n_outputs_ == (1 if np.ndim(y) == 1 else np.shape(y)[1])
    assert_feasible_covariances(reg)


@settings(max_examples=60, deadline=None)
@given(n_classes=st.integers(2, 6), per_class=st.integers(1, 3), singles=st.integers(0, 3),
       fraction=st.sampled_from([0.1, 0.3, 0.5]), seed=st.integers(0, 2**16))
def test_early_stopping_splits_any_small_classification_set(n_classes, per_class, singles,
                                                            fraction, seed):
    # Stratified when it can be, at random otherwise; an error before training when
    # the training part would have fewer than 2 samples or fewer samples than classes.
    y = np.r_[np.repeat(np.arange(n_classes), per_class), n_classes + np.arange(singles)]
    X = np.random.default_rng(seed).normal(size=(len(y), 3))
    clf = AdaRegClassifier(**TINY, early_stopping=True, validation_fraction=fraction,
                           batch_size=4)
    n_valid = math.ceil(fraction * len(y))
    n_train, needed = len(y) - n_valid, max(2, n_classes + singles)
    with recording_training() as runs:
        if n_train < needed:
            with pytest.raises(ValueError, match=f"leaves {n_train} to train on; "
                               f"AdaRegClassifier needs at least {needed}"):
                clf.fit(X, y)
            assert runs == []
            return
        clf.fit(X, y)
    assert len(runs) == 1
    assert len(clf.net_.train_split.keywords["valid_ds"]) == n_valid
    assert np.isfinite(clf.predict_proba(X)).all()
    assert np.isin(clf.predict(X), clf.classes_).all()


# -- cases decided one by one --------------------------------------------------------------


def numbers(n=30, p=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    return X, (X[:, 0] > 0).astype(int), X @ rng.normal(size=(p, 2))


@pytest.mark.parametrize("convert", [
    lambda X: X.astype(str).astype(object),  # numeric strings are numbers
    lambda X: X.astype(str),
    lambda X: pd.DataFrame(X.astype(str)),
    lambda X: X.tolist(),
])
def test_numeric_strings_and_lists_fit_like_the_numbers(convert):
    X, y, _ = numbers()
    reference = AdaRegClassifier(**TINY).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(AdaRegClassifier(**TINY).fit(convert(X), y)
                                  .predict_proba(convert(X)), reference)


def test_bool_and_int_inputs_are_numbers():
    X, y, Y = numbers()
    Xb = X > 0
    np.testing.assert_array_equal(
        AdaRegClassifier(**TINY).fit(Xb, y).predict_proba(Xb),
        AdaRegClassifier(**TINY).fit(Xb.astype(np.float64), y).predict_proba(Xb))
    Yi = np.round(Y * 10).astype(np.int64)
    np.testing.assert_array_equal(
        AdaRegMultiTaskRegressor(**TINY).fit(X, Yi).predict(X),
        AdaRegMultiTaskRegressor(**TINY).fit(X, Yi.astype(np.float64)).predict(X))
    yb = Y[:, 0] > 0
    np.testing.assert_array_equal(
        AdaRegMultiTaskRegressor(**TINY).fit(X, yb).predict(X),
        AdaRegMultiTaskRegressor(**TINY).fit(X, yb.astype(float)).predict(X))


@pytest.mark.parametrize("early_stopping", [False, True])
def test_a_class_with_one_sample_is_learned(early_stopping):
    # scikit-learn classifiers accept it; with early stopping, the split is not
    # stratified (it cannot be), so the single sample may land in either part.
    X, y, _ = numbers()
    y = y.astype(str)
    y[0] = "rare"
    clf = AdaRegClassifier(**TINY, early_stopping=early_stopping).fit(X, y)
    assert list(clf.classes_) == ["0", "1", "rare"]
    assert clf.predict_proba(X).shape == (30, 3)
    assert clf.row_covariance_.shape == (3, 3)


def test_too_many_classes_for_a_stratified_validation_split_fall_back_to_random():
    # 10 classes of 2 samples: the 10% validation split has 2 samples, fewer than the
    # classes, which train_test_split refuses to stratify.
    X = np.random.default_rng(0).normal(size=(20, 3))
    y = np.arange(20) % 10
    clf = AdaRegClassifier(**TINY, early_stopping=True).fit(X, y)
    assert len(clf.net_.train_split.keywords["valid_ds"]) == 2
    assert clf.predict_proba(X).shape == (20, 10)


@pytest.mark.parametrize("scale", [1e-8, 1e8])
@pytest.mark.parametrize("Estimator", [AdaRegClassifier, AdaRegMultiTaskRegressor])
def test_extreme_feature_scales_fit_without_diverging(Estimator, scale):
    # With Adam (lr=1e-3) neither 1e-8 nor 1e8 features diverge in 20 epochs: the
    # network's float32 range is far away, and Adam's steps do not scale with them.
    X, y, Y = numbers()
    target = y if Estimator is AdaRegClassifier else Y
    est = Estimator(**{**TINY, "max_epochs": 20}).fit(X * scale, target)
    assert np.all(np.isfinite(est.loss_curve_))
    pred = est.predict(X * scale)
    assert np.isfinite(pred.astype(float)).all()
    assert_feasible_covariances(est)


def test_none_among_string_labels_is_a_clear_type_error():
    X, y, _ = numbers()
    labels = np.where(y == 0, None, "yes")
    labels[0] = "yes"  # scikit-learn calls labels of unknown type those that start otherwise
    with recording_training() as runs, pytest.raises(
            TypeError, match=r"y mixes labels of types \['NoneType', 'str'\]"):
        AdaRegClassifier(**TINY).fit(X, labels)
    assert runs == []


@pytest.mark.parametrize("n, batch_size", [(17, 8), (9, 4), (5, 2), (2, 64)])
@pytest.mark.parametrize("Estimator", [AdaRegClassifier, AdaRegMultiTaskRegressor])
def test_batch_norm_trains_when_the_last_batch_has_one_sample(Estimator, n, batch_size):
    X, y, Y = numbers(n=n)
    y[:2] = [0, 1]
    est = Estimator(**TINY, batch_norm=True, batch_size=batch_size)
    est.fit(X, y if Estimator is AdaRegClassifier else Y)
    # every epoch trained on all samples but the odd one out
    n_batches = n // batch_size if n > batch_size else 1
    assert est.history_[-1, "train_batch_count"] == n_batches
    assert np.isfinite(est.predict(X[:1]).astype(float)).all()


# (early stopping leaves at least 2 training samples: see validation_fraction's rule)
@pytest.mark.parametrize("n, batch_size, early_stopping", [(1, 8, False), (10, 1, False),
                                                           (3, 1, True)])
def test_batch_norm_on_batches_of_one_is_refused_before_training(n, batch_size,
                                                                 early_stopping):
    X, _, Y = numbers(n=n)
    reg = AdaRegMultiTaskRegressor(**TINY, batch_norm=True, batch_size=batch_size,
                                   early_stopping=early_stopping)
    with recording_training() as runs, pytest.raises(ValueError, match="batch_norm=True"):
        reg.fit(X, Y)
    assert runs == []
    # without hidden layers there is no batch normalization to refuse
    assert np.isfinite(reg.set_params(hidden_layer_sizes=()).fit(X, Y).predict(X)).all()


@pytest.mark.parametrize("sizes, ok", [
    (5, True), ([4, 3], True), ((np.int64(4),), True), ((), True),
    ((0,), False), ((-1,), False), ((2.5,), False), ((True,), False), ([[4]], False),
])
def test_hidden_layer_sizes_are_checked_before_training(sizes, ok):
    X, y, _ = numbers()
    clf = AdaRegClassifier(**{**TINY, "hidden_layer_sizes": sizes})
    if ok:
        widths = [m.out_features for m in clf.fit(X, y).net_.module_.hidden
                  if isinstance(m, torch.nn.Linear)]
        assert widths == list(np.atleast_1d(np.asarray(sizes, dtype=int)))
        return
    with recording_training() as runs, pytest.raises(ValueError, match="hidden_layer_sizes"):
        clf.fit(X, y)
    assert runs == []


@pytest.mark.parametrize("make, error, match", [
    (lambda X, y: (X, None), ValueError, "requires y to be passed"),
    (lambda X, y: (X[:0], y[:0]), ValueError, r"0 sample\(s\)"),
    (lambda X, y: (X, y[:0]), ValueError, "inconsistent numbers of samples"),
    (lambda X, y: (X[:, :, None], y), ValueError, "dim 3"),
    (lambda X, y: (X, np.array([b"a", b"b"])[y]), TypeError, "bytes"),
    (lambda X, y: (X, np.array([1] + ["one"] * (len(y) - 1), dtype=object)), ValueError,
     "Unknown label type"),
    (lambda X, y: (X, np.array(["one"] + [1] * (len(y) - 1), dtype=object)), TypeError,
     r"y mixes labels of types \['int', 'str'\]"),
])
def test_wrong_types_and_shapes_raise_before_training(make, error, match):
    X, y, _ = numbers()
    X, y = make(X, y)
    clf = AdaRegClassifier(**TINY)
    with recording_training() as runs, pytest.raises(error, match=match):
        clf.fit(X, y)
    assert runs == []
    with pytest.raises(NotFittedError):
        clf.predict(np.zeros((1, 4)))


@pytest.mark.parametrize("Estimator", [AdaRegClassifier, AdaRegMultiTaskRegressor])
@pytest.mark.parametrize("change, match", [
    (lambda X: np.where(X > 1, np.nan, X), "NaN"),
    (lambda X: np.where(X > 1, np.inf, X), "infinity"),
    (lambda X: np.where(X > 1, 1e39, X), "too large"),
    (lambda X: X.astype(str).astype(object) + "x", "could not convert"),
    (lambda X: X[:0], r"0 sample\(s\)"),
])
def test_bad_data_at_predict_raises_a_value_error(Estimator, change, match):
    X, y, Y = numbers()
    est = Estimator(**TINY).fit(X, y if Estimator is AdaRegClassifier else Y)
    with pytest.raises(ValueError, match=match):
        est.predict(change(X))
