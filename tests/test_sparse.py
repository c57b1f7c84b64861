"""Sparse X: accepted by both estimators, densified batch by batch, never whole."""

import numpy as np
import pytest
import scipy.sparse
from sklearn.base import clone
from sklearn.compose import make_column_transformer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from sk_adareg import AdaRegClassifier, AdaRegMultiTaskRegressor, _data

FORMATS = [scipy.sparse.csr_matrix, scipy.sparse.csc_matrix, scipy.sparse.csr_array,
           scipy.sparse.csc_array]
SPARSE_CLASSES = [*FORMATS, scipy.sparse.coo_matrix, scipy.sparse.coo_array]


def sparse_data(n=150, p=40, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)) * (rng.random((n, p)) < 0.1)
    return X, (X[:, :3].sum(axis=1) > 0).astype(int), X @ rng.normal(size=(p, 2))


@pytest.fixture
def densified(monkeypatch):
    """The shapes of every sparse matrix densified while the fixture is active."""
    shapes = []
    for cls in SPARSE_CLASSES:
        for name in ("toarray", "todense"):
            original = getattr(cls, name)

            def spy(self, *args, _original=original, **kwargs):
                shapes.append(self.shape)
                return _original(self, *args, **kwargs)

            monkeypatch.setattr(cls, name, spy)
    return shapes


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("Estimator", [AdaRegClassifier, AdaRegMultiTaskRegressor])
def test_sparse_fit_equals_the_dense_fit_and_is_densified_by_batch(Estimator, fmt, densified,
                                                                   monkeypatch):
    X, y, Y = sparse_data()
    target = y if Estimator is AdaRegClassifier else Y
    est = Estimator(max_epochs=3, batch_size=16, early_stopping=True, random_state=0)
    dense = clone(est).fit(X, target)
    assert densified == []
    # Memory-sized chunks (the evidence's curvature, the regressor's end-of-fit posterior)
    # as small as a batch here.
    monkeypatch.setattr(_data, "INFERENCE_BYTES", 1)
    sparse = est.fit(fmt(X), target)
    # training batches (16 rows), validation batches, the output check's batch and the
    # chunks of the curvature; besides them, only each input's range (1-D with sparse
    # arrays, a row with sparse matrices)
    rows = [shape[0] for shape in densified if len(shape) == 2]
    assert all(shape == (40,) for shape in densified if len(shape) != 2)
    assert rows and max(rows) <= 16
    assert sum(rows) >= 3 * 135  # every epoch's training rows
    np.testing.assert_array_equal(sparse.loss_curve_, dense.loss_curve_)
    np.testing.assert_array_equal(sparse.row_covariance_, dense.row_covariance_)
    # prediction in chunks of 40 rows here
    monkeypatch.setattr(_data, "INFERENCE_BYTES", 40 * 4 * (40 + 100 + 2))
    densified.clear()
    method = "predict_proba" if Estimator is AdaRegClassifier else "predict"
    np.testing.assert_array_equal(getattr(sparse, method)(fmt(X)), getattr(dense, method)(X))
    assert densified == [(40, 40), (40, 40), (40, 40), (30, 40)]


def test_a_one_hot_encoded_column_trains_in_a_pipeline(densified, monkeypatch):
    # The default output of a ColumnTransformer one-hot encoding a 60-level column.
    rng = np.random.default_rng(0)
    levels = rng.integers(0, 60, size=300)
    X = np.c_[levels, rng.normal(size=300)].astype(object)
    y = (levels % 3 == 0).astype(int)
    encode = make_column_transformer((OneHotEncoder(), [0]), remainder="passthrough")
    assert scipy.sparse.issparse(encode.fit_transform(X))
    densified.clear()
    # The evidence's curvature reads memory-sized chunks (all 300 rows here): a batch's.
    monkeypatch.setattr(_data, "INFERENCE_BYTES", 1)
    model = make_pipeline(encode, AdaRegClassifier(max_epochs=30, lr=1e-2, reg_lambda="evidence",
                                                   random_state=0))
    model.fit(X, y)
    assert model[-1].strength_method_ == "evidence"
    assert max(shape[0] for shape in densified) <= 64  # batches of 64 rows
    assert model.score(X, y) > 0.9


def test_sparse_input_is_checked_like_dense_input():
    X, y, _ = sparse_data()
    X = scipy.sparse.csr_matrix(X)
    bad = X.copy()
    bad.data[0] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        AdaRegClassifier(max_epochs=1).fit(bad, y)
    clf = AdaRegClassifier(max_epochs=1, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="40 features"):
        clf.predict(X[:, :10])
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        AdaRegClassifier(max_epochs=1).fit(X, y[:-1])


def test_return_std_and_sample_weight_take_sparse_input():
    rng = np.random.default_rng(0)
    X = scipy.sparse.random(80, 12, density=0.3, format="csr", random_state=0)
    Y = rng.normal(size=(80, 2))
    w = rng.uniform(0.5, 1.5, size=80)
    params = {"max_epochs": 3, "reg_lambda": "auto", "random_state": 0}
    sparse = AdaRegMultiTaskRegressor(**params).fit(X, Y, sample_weight=w)
    dense = AdaRegMultiTaskRegressor(**params).fit(X.toarray(), Y, sample_weight=w)
    # the cross-validation of "auto" too, fold by fold
    assert sparse.strength_method_ == dense.strength_method_
    for method, scores in dense.cv_scores_.items():
        np.testing.assert_allclose(sparse.cv_scores_[method], scores, rtol=1e-5)
    mean, std = sparse.predict(X, return_std=True)
    expected_mean, expected_std = dense.predict(X.toarray(), return_std=True)
    np.testing.assert_allclose(mean, expected_mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(std, expected_std, rtol=1e-5)
