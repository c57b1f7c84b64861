"""Task names from a DataFrame y, and displays and metrics of a pipeline ending in an estimator."""

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sk_adareg import AdaRegClassifier, AdaRegMultiTaskRegressor
from sk_adareg.metrics import weight_norms
from sk_adareg.plotting import CovarianceDisplay, TrainingCurveDisplay

pd = pytest.importorskip("pandas")
matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

TASKS = ["elbow", "wrist", "shoulder"]
FEATURES = ["age", "dose", "height", "weight"]
SMALL = {"hidden_layer_sizes": (), "max_epochs": 3, "random_state": 0}


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def frames(n=60, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 4)), columns=FEATURES)
    Y = pd.DataFrame(X.to_numpy() @ rng.normal(size=(4, 3)), columns=TASKS)
    return X, Y


def ticks(labels):
    return [label.get_text() for label in labels]


def test_target_names_are_kept_from_a_dataframe_and_label_the_tasks():
    X, Y = frames()
    reg = AdaRegMultiTaskRegressor(**SMALL).fit(X, Y)
    assert list(reg.target_names_) == TASKS
    disp = CovarianceDisplay.from_estimator(reg, which="row")
    assert ticks(disp.ax_.get_xticklabels()) == TASKS
    assert disp.ax_.get_xlabel() == "task"
    # the predictions keep the order of the columns
    assert reg.predict(X).shape == (60, 3)


@pytest.mark.parametrize("y", [
    lambda Y: Y.to_numpy(),                                  # no names
    lambda Y: Y.set_axis([0, 1, 2], axis=1),                 # names that are not strings
    lambda Y: Y.set_axis(["elbow", 1, 2], axis=1),
])
def test_without_string_column_names_there_are_no_target_names(y):
    X, Y = frames()
    reg = AdaRegMultiTaskRegressor(**SMALL).fit(X, Y)
    assert hasattr(reg, "target_names_")
    reg.fit(X, y(Y))  # a refit forgets the names of the earlier fit
    assert not hasattr(reg, "target_names_")
    disp = CovarianceDisplay.from_estimator(reg)
    assert ticks(disp.ax_.get_xticklabels()) == ["task 0", "task 1", "task 2"]


def test_a_single_task_frame_names_its_task():
    X, Y = frames()
    reg = AdaRegMultiTaskRegressor(**SMALL).fit(X, Y[["wrist"]])
    assert list(reg.target_names_) == ["wrist"]
    assert reg.predict(X).shape == (60, 1)


def test_displays_and_metrics_accept_a_pipeline():
    X, Y = frames()
    pipe = make_pipeline(StandardScaler(), AdaRegMultiTaskRegressor(**SMALL)).fit(X, Y)
    reg = pipe[-1]
    # the row labels are the tasks, the column labels the names the scaler passes on
    rows = CovarianceDisplay.from_estimator(pipe, which="row")
    assert ticks(rows.ax_.get_xticklabels()) == TASKS
    np.testing.assert_allclose(rows.matrix,
                               CovarianceDisplay.from_estimator(reg, which="row").matrix)
    columns = CovarianceDisplay.from_estimator(pipe, which="column")
    assert ticks(columns.ax_.get_yticklabels()) == FEATURES
    assert columns.ax_.get_ylabel() == "input feature"
    # the last step alone saw no names: its columns are numbered
    alone = CovarianceDisplay.from_estimator(reg, which="column")
    assert ticks(alone.ax_.get_yticklabels()) == ["0", "1", "2", "3"]
    curve = TrainingCurveDisplay.from_estimator(pipe)
    assert curve.name == "AdaRegMultiTaskRegressor"
    assert_array_equal(curve.lines_["train_loss"].get_ydata(),
                       reg.history_[:, "train_data_loss"])
    assert weight_norms(pipe) == weight_norms(reg)


def test_a_nested_pipeline_of_a_classifier_is_unwrapped():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    y = np.array(["cat", "dog", "emu"])[np.arange(60) % 3]
    pipe = make_pipeline(make_pipeline(StandardScaler(), AdaRegClassifier(**SMALL))).fit(X, y)
    disp = CovarianceDisplay.from_estimator(pipe)
    assert ticks(disp.ax_.get_xticklabels()) == ["cat", "dog", "emu"]
    assert set(weight_norms(pipe)) == {"output.weight"}


def test_a_pipeline_ending_in_another_estimator_is_a_type_error():
    pipe = make_pipeline(StandardScaler(), LogisticRegression())
    with pytest.raises(TypeError, match="got Pipeline ending in LogisticRegression"):
        weight_norms(pipe)
    with pytest.raises(TypeError, match="or a Pipeline ending in one"):
        CovarianceDisplay.from_estimator(pipe)
    unfitted = make_pipeline(StandardScaler(), AdaRegMultiTaskRegressor(**SMALL))
    with pytest.raises(NotFittedError):
        TrainingCurveDisplay.from_estimator(unfitted)
