"""Tests of sk_adareg.plotting: what the displays draw, checked on the Agg backend."""

import inspect
import io
import subprocess
import sys

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError

from sk_adareg import AdaRegClassifier, AdaRegMultiTaskRegressor, AdaRegNeuralNet
from sk_adareg.metrics import covariance_to_correlation
from sk_adareg.plotting import CovarianceDisplay, TrainingCurveDisplay

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

DIGIT_NAMES = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven",
                        "eight", "nine"])


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def classifier():
    """Digits with class names, validation data and 3 precision updates, every 2 epochs."""
    X, y = load_digits(n_class=4, return_X_y=True)
    # A fixed strength: learned ones would update a fit this short after steps instead.
    return AdaRegClassifier(hidden_layer_sizes=(16,), reg_lambda=3e-3, adareg_layers="last",
                            max_epochs=6, cov_update_every=2,
                            early_stopping=True, n_iter_no_change=100,
                            random_state=0).fit(X[:200] / 16, DIGIT_NAMES[y[:200]])


def regressor_data():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(80, 4)), columns=["age", "dose", "height", "weight"])
    return X, X.to_numpy() @ rng.normal(size=(4, 3))


@pytest.fixture(scope="module")
def regressor():
    """A linear multitask model on a DataFrame: columns of its weight are the features."""
    return AdaRegMultiTaskRegressor(hidden_layer_sizes=(), max_epochs=5, cov_update_every=2,
                                    random_state=0).fit(*regressor_data())


def tick_texts(labels):
    return [label.get_text() for label in labels]


# -- CovarianceDisplay ---------------------------------------------------------------


def test_row_correlation_image_labels_and_values(classifier):
    disp = CovarianceDisplay.from_estimator(classifier)
    expected = covariance_to_correlation(classifier.row_covariance_)
    assert_allclose(disp.im_.get_array(), expected, rtol=1e-12, atol=0)
    assert_allclose(disp.matrix, expected, rtol=1e-12, atol=0)
    assert disp.im_.get_clim() == (-1.0, 1.0)
    names = list(classifier.classes_)
    assert tick_texts(disp.ax_.get_xticklabels()) == names
    assert tick_texts(disp.ax_.get_yticklabels()) == names
    assert disp.ax_.get_xlabel() == disp.ax_.get_ylabel() == "class"
    assert "output.weight" in disp.ax_.get_title() and "prior" in disp.ax_.get_title()
    assert disp.colorbar_.ax.get_ylabel() == "correlation"
    # The values written in the cells are the matrix entries.
    texts = np.vectorize(lambda t: t.get_text())(disp.text_)
    written = np.vectorize(lambda v: f"{v:.2f}".replace("-0.00", "0.00"))(expected)
    assert_array_equal(texts, written)
    assert disp.ax_ is disp.im_.axes and disp.figure_ is disp.ax_.figure


def test_row_covariance_has_symmetric_color_range(classifier):
    disp = CovarianceDisplay.from_estimator(classifier, kind="covariance", include_values=False)
    assert_allclose(disp.im_.get_array(), classifier.row_covariance_, rtol=1e-12, atol=0)
    limit = np.abs(classifier.row_covariance_).max()
    assert disp.im_.get_clim() == pytest.approx((-limit, limit))
    assert disp.text_ is None
    assert disp.colorbar_.ax.get_ylabel() == "covariance"


def test_column_covariance_has_sparse_ticks(classifier):
    disp = CovarianceDisplay.from_estimator(classifier, which="column", kind="covariance",
                                            max_tick_labels=5)
    assert_allclose(disp.im_.get_array(), classifier.column_covariance_, rtol=1e-12, atol=0)
    ticks = disp.ax_.get_xticks()
    assert 2 <= len(ticks) <= 6 and np.all(np.diff(ticks) > 1)
    # Each tick is labelled with the unit it sits on.
    assert tick_texts(disp.ax_.get_xticklabels()) == [str(int(t)) for t in ticks]
    assert disp.ax_.get_xlabel() == "unit of hidden layer 1"
    assert disp.text_ is None  # 16 x 16: too many cells to write values in


def test_no_ticks_when_asked(classifier):
    disp = CovarianceDisplay.from_estimator(classifier, which="column", max_tick_labels=0)
    assert len(disp.ax_.get_xticks()) == 0


def test_weights_source_is_the_second_moment_of_the_weight(classifier):
    W = classifier.net_.module_.output.weight.detach().double().numpy()
    rows = W / np.linalg.norm(W, axis=1, keepdims=True)
    disp = CovarianceDisplay.from_estimator(classifier, source="weights")
    assert_allclose(disp.im_.get_array(), rows @ rows.T, atol=1e-12)
    assert "weights" in disp.ax_.get_title()
    disp = CovarianceDisplay.from_estimator(classifier, which="column", source="weights",
                                            kind="covariance")
    assert_allclose(disp.im_.get_array(), W.T @ W / W.shape[0], atol=1e-12)


def test_regressor_task_and_feature_labels(regressor):
    disp = CovarianceDisplay.from_estimator(regressor)
    assert tick_texts(disp.ax_.get_xticklabels()) == ["task 0", "task 1", "task 2"]
    assert disp.ax_.get_ylabel() == "task"
    disp = CovarianceDisplay.from_estimator(regressor, which="column")
    assert tick_texts(disp.ax_.get_yticklabels()) == ["age", "dose", "height", "weight"]
    assert disp.ax_.get_xlabel() == "input feature"
    assert_allclose(disp.im_.get_array(),
                    covariance_to_correlation(regressor.column_covariance_), rtol=1e-12)


def test_explicit_labels_and_axes(regressor):
    fig, ax = plt.subplots()
    disp = CovarianceDisplay.from_estimator(regressor, labels=["x", "y", "z"], ax=ax,
                                            colorbar=False)
    assert disp.ax_ is ax and disp.figure_ is fig and disp.colorbar_ is None
    assert tick_texts(ax.get_xticklabels()) == ["x", "y", "z"]
    with pytest.raises(ValueError, match="one entry per row of the 3 x 3 matrix, got 2"):
        CovarianceDisplay.from_estimator(regressor, labels=["x", "y"])


def test_hidden_layer_of_a_fully_regularized_network():
    X, y = load_digits(n_class=3, return_X_y=True)
    clf = AdaRegClassifier(hidden_layer_sizes=(6,), adareg_layers="all", max_epochs=2,
                           random_state=0).fit(X[:60] / 16, y[:60])
    disp = CovarianceDisplay.from_estimator(clf, layer="hidden.0.weight")
    assert_allclose(disp.im_.get_array(),
                    covariance_to_correlation(clf.row_covariances_["hidden.0.weight"]),
                    rtol=1e-12)
    # Rows of a hidden layer are its units, not the classes.
    assert tick_texts(disp.ax_.get_xticklabels()) == [str(i) for i in range(6)]
    assert disp.ax_.get_xlabel() == "unit of hidden layer 1"
    # Its columns are the input pixels.
    disp = CovarianceDisplay.from_estimator(clf, which="column", layer="hidden.0.weight")
    assert disp.ax_.get_xlabel() == "input feature"
    with pytest.raises(ValueError, match=r"one of \['hidden.0.weight', 'output.weight'\]"):
        CovarianceDisplay.from_estimator(clf, layer="hidden.0.bias")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"which": "rows"}, "which must be one of"),
        ({"kind": "precision"}, "kind must be one of"),
        ({"source": "data"}, "source must be one of"),
        ({"layer": "nope"}, "layer must name a regularized weight"),
    ],
)
def test_covariance_display_invalid_options(classifier, kwargs, match):
    with pytest.raises(ValueError, match=match):
        CovarianceDisplay.from_estimator(classifier, **kwargs)


def test_covariance_display_of_an_unfitted_estimator():
    with pytest.raises(NotFittedError):
        CovarianceDisplay.from_estimator(AdaRegClassifier())


def test_covariance_display_constructor():
    matrix = np.array([[2.0, -1.0], [-1.0, 3.0]])
    disp = CovarianceDisplay(matrix, labels=["a", "b"], kind="covariance",
                             axis_label="thing").plot()
    assert_array_equal(disp.im_.get_array(), matrix)
    assert disp.im_.get_clim() == (-3.0, 3.0)  # white is 0
    assert disp.ax_.get_xlabel() == "thing"
    with pytest.raises(ValueError, match="square"):
        CovarianceDisplay(np.ones((2, 3))).plot()


def test_covariance_display_kind_has_one_default():
    def kind_default(function):
        return inspect.signature(function).parameters["kind"].default

    assert kind_default(CovarianceDisplay) == kind_default(CovarianceDisplay.from_estimator)
    assert kind_default(CovarianceDisplay) == "correlation"


def test_values_that_round_to_zero_have_no_sign():
    matrix = np.array([[1.0, -0.001], [-0.001, 1.0]])
    disp = CovarianceDisplay(matrix, kind="correlation").plot(values_format=".2f")
    assert disp.text_[0, 1].get_text() == "0.00"
    disp = CovarianceDisplay(matrix, kind="correlation").plot(values_format=".1e")
    assert disp.text_[0, 1].get_text() == "-1.0e-03"


def shuffled_blocks(sizes=(12, 15, 13), seed=0):
    """Covariance of units in blocks (signs mixed inside a block), units shuffled."""
    rng = np.random.default_rng(seed)
    block = np.repeat(np.arange(len(sizes)), sizes)
    signs = rng.choice([-1.0, 1.0], size=len(block))
    factors = rng.normal(size=(len(sizes), 300))
    units = signs[:, None] * factors[block] + 0.8 * rng.normal(size=(len(block), 300))
    shuffle = rng.permutation(len(block))
    return np.cov(units[shuffle]), block[shuffle]


def test_many_units_are_clustered_into_blocks():
    covariance, block = shuffled_blocks()
    disp = CovarianceDisplay(covariance, kind="covariance", title="units").plot()
    order = disp.order_
    assert_array_equal(np.sort(order), np.arange(40))
    # Each block is one run of consecutive rows: 3 runs, 2 changes of block.
    assert np.count_nonzero(np.diff(block[order])) == 2
    assert_array_equal(disp.im_.get_array(), covariance[np.ix_(order, order)])
    assert disp.ax_.get_title() == "units\n(units clustered by |correlation|)"
    # Sparse ticks, each labelled with the unit drawn there.
    ticks = disp.ax_.get_xticks().astype(int)
    assert len(ticks) <= 11
    assert tick_texts(disp.ax_.get_xticklabels()) == [str(order[t]) for t in ticks]
    # The correlation orders the same way; the order can be reused.
    corr = covariance_to_correlation(covariance)
    assert_array_equal(CovarianceDisplay(corr).plot(order="cluster").order_, order)
    again = CovarianceDisplay(corr).plot(order=order)
    assert_array_equal(again.im_.get_array(), corr[np.ix_(order, order)])
    assert again.ax_.get_title() == "units reordered"


def test_order_none_and_small_matrices_keep_the_units_order(classifier):
    covariance, _ = shuffled_blocks()
    disp = CovarianceDisplay(covariance, title="t").plot(order=None)
    assert_array_equal(disp.order_, np.arange(40)) and disp.ax_.get_title() == "t"
    assert_array_equal(disp.im_.get_array(), covariance)
    disp = CovarianceDisplay.from_estimator(classifier, which="column")  # 16 units
    assert_array_equal(disp.order_, np.arange(16))
    disp = CovarianceDisplay.from_estimator(classifier, which="column", order="cluster")
    assert disp.ax_.get_title().endswith("(units clustered by |correlation|)")
    assert_allclose(disp.im_.get_array(), covariance_to_correlation(
        classifier.column_covariance_)[np.ix_(disp.order_, disp.order_)], rtol=1e-12)


@pytest.mark.parametrize("order", ["sorted", [0, 0, 1], [0, 1], [0.0, 1.0, 2.0]])
def test_invalid_order(order):
    with pytest.raises(ValueError, match="order must be"):
        CovarianceDisplay(np.eye(3)).plot(order=order)


def test_clustering_copes_with_dead_units():
    covariance, block = shuffled_blocks()
    covariance[:, :5] = covariance[:5, :] = 0.0  # no variance, as a dead ReLU's weights
    disp = CovarianceDisplay(covariance, kind="covariance").plot()
    assert_array_equal(np.sort(disp.order_), np.arange(40))
    alive = disp.order_[disp.order_ >= 5]
    assert np.count_nonzero(np.diff(block[alive])) == 2


def drawn_tick_labels(ax):
    """The tick labels of both axes that are drawn: those of ticks within the view."""
    labels = []
    for axis in (ax.xaxis, ax.yaxis):
        low, high = sorted(axis.get_view_interval())
        for tick in axis.get_major_ticks() + axis.get_minor_ticks():
            if low <= tick.get_loc() <= high:
                labels += [label for label in (tick.label1, tick.label2)
                           if label.get_visible()]
    return labels


def assert_inside_saved_figure(fig, texts):
    """Every non-empty text lies inside the figure, once saved as a PNG."""
    fig.savefig(io.BytesIO(), format="png", dpi=80)
    renderer = fig.canvas.get_renderer()
    box = fig.bbox
    texts = [t for t in texts if t.get_visible() and t.get_text()]
    assert texts
    for text in texts:
        extent = text.get_window_extent(renderer)
        # within a pixel: matplotlib's layouts differ by fractions of one between versions
        assert (extent.x0 >= box.x0 - 1 and extent.y0 >= box.y0 - 1
                and extent.x1 <= box.x1 + 1 and extent.y1 <= box.y1 + 1), (
            text.get_text(), extent, box)


def test_long_rotated_tick_labels_are_not_cut():
    names = [f"joint_torque_{k}" for k in range(1, 8)]
    corr = covariance_to_correlation(np.cov(np.random.default_rng(0).normal(size=(7, 30))))
    disp = CovarianceDisplay(corr, labels=names, axis_label="task", title="tasks").plot()
    assert disp.ax_.get_xticklabels()[0].get_rotation() == 45
    ax = disp.ax_
    assert_inside_saved_figure(disp.figure_, [
        *drawn_tick_labels(ax), ax.xaxis.label, ax.yaxis.label, ax.title,
        disp.colorbar_.ax.yaxis.label, *drawn_tick_labels(disp.colorbar_.ax)])


# -- TrainingCurveDisplay ------------------------------------------------------------


def test_training_curves_follow_the_history(classifier):
    history = classifier.history_
    epochs = np.asarray(history[:, "epoch"], dtype=float)
    disp = TrainingCurveDisplay.from_estimator(classifier)
    assert len(disp.axes_) == 4 and disp.ax_ is disp.axes_[0]
    assert [ax.get_ylabel() for ax in disp.axes_] == [
        "cross-entropy", "penalty", "prior objective", "precision eigenvalue"]
    expected = {
        "train_loss": history[:, "train_data_loss"],
        "valid_loss": history[:, "valid_loss"],
        "penalty": history[:, "adareg_penalty"],
        "objective": history[:, "adareg_objective"],
        "row_precision_min": history[:, "row_precision_min"],
        "row_precision_max": history[:, "row_precision_max"],
        "column_precision_min": history[:, "column_precision_min"],
        "column_precision_max": history[:, "column_precision_max"],
    }
    assert set(disp.lines_) == set(expected)
    for key, values in expected.items():
        assert_array_equal(disp.lines_[key].get_xdata(), epochs)
        assert_array_equal(disp.lines_[key].get_ydata(), values)
    assert disp.axes_[0].get_yscale() == "log" and disp.axes_[3].get_yscale() == "log"


def test_update_epochs_are_marked(classifier):
    history = classifier.history_
    updates = [row["epoch"] for row in history if row["cov_update"]]
    assert updates == [2, 4, 6]
    disp = TrainingCurveDisplay.from_estimator(classifier)
    for panel, lines in disp.update_lines_.items():
        assert [line.get_xdata()[0] for line in lines] == updates, panel
    # One legend entry for all markers, in the top panel only.
    legends = [tick_texts(ax.get_legend().get_texts()) for ax in disp.axes_]
    assert legends[0] == ["training", "validation", "precision update"]
    assert all("precision update" not in legend for legend in legends[1:])


def test_precision_bounds_are_drawn(classifier):
    disp = TrainingCurveDisplay.from_estimator(classifier)
    levels = [line.get_ydata()[0] for line in disp.axes_[3].get_lines()
              if line.get_linestyle() == "--"]
    assert levels == [classifier.u, classifier.v]


def test_bounds_say_what_touching_them_means(classifier):
    disp = TrainingCurveDisplay.from_estimator(classifier)
    legend = tick_texts(disp.axes_[3].get_legend().get_texts())
    assert legend[2:] == [
        "$u$ = 0.1: a direction on it is penalised as little as allowed "
        "(10× less than the mean)",
        "$v$ = 10: a direction on it is penalised as much as allowed (10× more than the mean)"]
    # Without the prior's scale, no ratio to the mean.
    disp = TrainingCurveDisplay.from_history(classifier.history_, precision_bounds=(1e-3, 1e3))
    legend = tick_texts(disp.axes_[-1].get_legend().get_texts())
    assert legend[2:] == ["$u$ = 0.001: a direction on it is penalised as little as allowed",
                          "$v$ = 1000: a direction on it is penalised as much as allowed"]


def test_training_curve_labels_and_legends_are_not_cut(classifier):
    disp = TrainingCurveDisplay.from_estimator(classifier)
    texts = [disp.axes_[0].title]
    for ax in disp.axes_:
        texts += [*drawn_tick_labels(ax), ax.xaxis.label, ax.yaxis.label,
                  *ax.get_legend().get_texts()]
    assert_inside_saved_figure(disp.figure_, texts)
    # The precision panel's legend sits between it and the panel above, over neither.
    renderer = disp.figure_.canvas.get_renderer()
    legend = disp.axes_[3].get_legend().get_window_extent(renderer)
    assert legend.y0 >= disp.axes_[3].get_window_extent(renderer).y1
    assert legend.y1 <= disp.axes_[2].get_window_extent(renderer).y0


def test_no_validation_curve_without_early_stopping(regressor):
    disp = TrainingCurveDisplay.from_estimator(regressor)
    assert "valid_loss" not in disp.lines_
    assert tick_texts(disp.ax_.get_legend().get_texts()) == ["training", "precision update"]
    # learned strengths (the default) weigh each target by its noise precision
    assert regressor.strength_method_ in ("evidence", "loo")
    assert disp.ax_.get_ylabel() == "weighted mean squared error\n(standardized targets)"
    assert disp.ax_.get_title() == "Training of AdaRegMultiTaskRegressor"
    fixed = clone(regressor).set_params(reg_lambda=3e-3).fit(*regressor_data())
    disp = TrainingCurveDisplay.from_estimator(fixed)
    assert disp.ax_.get_ylabel() == "mean squared error\n(standardized targets)"


def test_panels_on_given_axes(classifier):
    fig, ax = plt.subplots()
    disp = TrainingCurveDisplay.from_estimator(classifier, ax=ax)  # one Axes: the loss
    assert disp.ax_ is ax and list(disp.axes_) == [ax] and disp.figure_ is fig
    assert set(disp.lines_) == {"train_loss", "valid_loss"}
    assert list(disp.update_lines_) == ["loss"]
    fig, axes = plt.subplots(1, 2)
    disp = TrainingCurveDisplay.from_estimator(classifier, ax=axes,
                                               panels=["precision", "penalty"])
    assert axes[0].get_ylabel() == "precision eigenvalue"
    assert axes[1].get_ylabel() == "penalty"
    with pytest.raises(ValueError, match="one Axes per panel"):
        TrainingCurveDisplay.from_estimator(classifier, ax=axes)
    with pytest.raises(ValueError, match="panels entry must be one of"):
        TrainingCurveDisplay.from_estimator(classifier, panels=["accuracy"])
    with pytest.raises(ValueError, match="without repeats"):
        TrainingCurveDisplay.from_estimator(classifier, panels=["loss", "loss"])


def test_training_display_constructor():
    disp = TrainingCurveDisplay([1, 2, 3], [3.0, 2.0, 1.0], cov_update_epochs=[3]).plot()
    assert len(disp.axes_) == 1  # only the panel with data
    assert_array_equal(disp.lines_["train_loss"].get_ydata(), [3.0, 2.0, 1.0])
    with pytest.raises(ValueError, match="has no data"):
        TrainingCurveDisplay([1, 2], [1.0, 0.5]).plot(panels=["penalty"])
    with pytest.raises(ValueError, match=r"penalty must have shape \(2,\)"):
        TrainingCurveDisplay([1, 2], [1.0, 0.5], penalty=[1.0]).plot()


def test_from_history_skips_keys_missing_at_some_epoch():
    rows = [{"epoch": 1, "train_data_loss": 1.0, "valid_loss": 1.2},
            {"epoch": 2, "train_data_loss": 0.5}]  # e.g. an interrupted epoch
    disp = TrainingCurveDisplay.from_history(rows)
    assert set(disp.lines_) == {"train_loss"}
    with pytest.raises(ValueError, match="fit the model first"):
        TrainingCurveDisplay.from_history([])
    with pytest.raises(ValueError, match=r"'train_data_loss'.*keys \['epoch', 'train_loss'\]"):
        TrainingCurveDisplay.from_history([{"epoch": 1, "train_loss": 1.0}])


def test_displays_of_a_skorch_net():
    net = AdaRegNeuralNet(torch.nn.Linear(3, 2), torch.nn.MSELoss, max_epochs=2,
                          cov_update_every=1, train_split=None, verbose=0)
    X = torch.randn(20, 3, generator=torch.Generator().manual_seed(0))
    net.fit(X, 2 * X[:, :2])
    disp = TrainingCurveDisplay.from_estimator(net)
    assert disp.ax_.get_ylabel() == "mean squared error"
    assert [line.get_xdata()[0] for line in disp.update_lines_["loss"]] == [1, 2]
    disp = CovarianceDisplay.from_estimator(net, which="column")
    assert_allclose(disp.im_.get_array(),
                    covariance_to_correlation(net.priors_["weight"].column_covariance),
                    rtol=1e-12)
    assert disp.ax_.get_xlabel() == "input unit of weight"


def test_training_display_of_an_unfitted_estimator():
    with pytest.raises(NotFittedError):
        TrainingCurveDisplay.from_estimator(AdaRegMultiTaskRegressor())


# -- matplotlib stays optional -------------------------------------------------------


def test_importing_does_not_import_matplotlib():
    code = ("import sys, sk_adareg, sk_adareg.metrics, sk_adareg.plotting; "
            "sys.exit('matplotlib' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0


def test_clear_error_without_matplotlib(monkeypatch, classifier):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"pip install sk-adareg\[plot\]"):
        CovarianceDisplay.from_estimator(classifier)
    with pytest.raises(ImportError, match=r"TrainingCurveDisplay\.plot requires matplotlib"):
        TrainingCurveDisplay.from_estimator(classifier)
