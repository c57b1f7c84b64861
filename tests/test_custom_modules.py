"""Custom modules: their sizes at fit, their output checked, and skorch-style nested parameters."""

import importlib
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skorch import NeuralNet
from torch import nn

from sk_adareg import AdaRegClassifier, AdaRegMultiTaskRegressor

# Module classes that worker processes and pickles import by name (see tests/_modules.py).
sys.path.insert(0, str(Path(__file__).resolve().parent))
_modules = importlib.import_module("_modules")

# A fixed strength: reg_lambda="auto" would build a module for each fold of its choice too.
SMALL = {"max_epochs": 2, "reg_lambda": 3e-3, "random_state": 0}


def data(n=60, p=5, k=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    return X, np.arange(n) % k, X @ rng.normal(size=(p, k))


@pytest.fixture
def no_training(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(NeuralNet, "fit_loop", fail)


# -- item 1: output size --------------------------------------------------------------------


@pytest.mark.parametrize("module, n_classes, got", [
    (nn.Linear(5, 10), 9, 10),          # one logit too many: predict would index out of range
    (nn.Linear(5, 4), 3, 4),
    (nn.Linear(5, 2), 3, 2),
    (lambda: nn.Linear(5, 4), 3, 4),    # a callable
])
def test_classifier_refuses_a_module_with_the_wrong_number_of_logits(module, n_classes, got,
                                                                     no_training):
    X, y, _ = data(n=90, k=n_classes)
    clf = AdaRegClassifier(module=module, **SMALL)
    with pytest.raises(ValueError, match=rf"outputs of shape \({got},\) per sample.*"
                                         rf"AdaRegClassifier needs {n_classes} outputs"):
        clf.fit(X, y)
    assert not hasattr(clf, "net_")


@pytest.mark.parametrize("module, y_shape, got", [
    (nn.Linear(5, 10), (60,), r"\(10,\)"),
    (nn.Linear(5, 1), (60, 3), r"\(1,\)"),
    (nn.Sequential(nn.Linear(5, 1), nn.Flatten(0)), (60,), r"\(\)"),  # 1-D outputs
])
def test_regressor_refuses_a_module_with_the_wrong_output_shape(module, y_shape, got,
                                                                no_training):
    X, _, Y = data()
    y = Y[:, 0] if len(y_shape) == 1 else Y
    n_outputs = 1 if len(y_shape) == 1 else y_shape[1]
    with pytest.raises(ValueError, match=rf"outputs of shape {got} per sample.*"
                                         rf"needs {n_outputs} output"):
        AdaRegMultiTaskRegressor(module=module, **SMALL).fit(X, y)


def test_cross_val_predict_with_a_module_class_fits_the_classes_of_each_fold():
    # The module class receives n_features and n_outputs: 3 columns for 3 classes.
    X, y, _ = data(k=3)
    proba = cross_val_predict(AdaRegClassifier(module=_modules.TinyNet, **SMALL), X, y, cv=3,
                              method="predict_proba")
    assert proba.shape == (60, 3)
    # ... and a class with other sizes than its defaults (TinyNet's are 5 and 3).
    X7, y4, Y2 = np.c_[X, X[:, :2]], np.arange(60) % 4, data(k=2)[2]
    clf = AdaRegClassifier(module=_modules.TinyNet, **SMALL).fit(X7, y4)
    assert clf.net_.module_.body[0].in_features == 7
    assert clf.predict_proba(X7).shape == (60, 4) and clf.row_covariance_.shape == (4, 4)
    reg = AdaRegMultiTaskRegressor(module=_modules.TinyNet, **SMALL).fit(X, Y2)
    assert reg.predict(X).shape == (60, 2)


def test_sizes_go_only_to_the_keywords_a_module_names():
    seen = []

    def only_outputs(n_outputs, width=4):
        seen.append((n_outputs, width))
        return nn.Sequential(nn.Linear(5, width), nn.ReLU(), nn.Linear(width, n_outputs))

    X, y, _ = data(k=3)
    AdaRegClassifier(module=only_outputs, **SMALL).fit(X, y)
    # module__* take precedence over the sizes
    AdaRegClassifier(module=only_outputs, **SMALL).set_params(module__width=6).fit(X, y)
    assert seen == [(3, 4), (3, 6)]
    with pytest.raises(ValueError, match="outputs of shape \\(2,\\)"):
        AdaRegClassifier(module=only_outputs, **SMALL).set_params(module__n_outputs=2).fit(X, y)


def test_an_instance_with_module_parameters_is_built_anew_from_its_class():
    X, y, _ = data(k=3)
    instance = _modules.TinyNet(width=8)
    clf = AdaRegClassifier(module=instance, **SMALL).set_params(module__width=3).fit(X, y)
    assert clf.net_.module_.head.in_features == 3
    assert instance.head.in_features == 8


def test_module_parameters_need_a_custom_module(no_training):
    X, y, _ = data()
    with pytest.raises(ValueError, match=r"module__width.*need a custom module"):
        AdaRegClassifier(**SMALL).set_params(module__width=3).fit(X, y)


# -- item 2: nested parameters ------------------------------------------------------------------


def test_nested_parameters_reach_the_net_components():
    X, y, _ = data()
    clf = AdaRegClassifier(module=_modules.TinyNet, optimizer=torch.optim.SGD, **SMALL)
    clf.set_params(module__width=4, optimizer__momentum=0.9, criterion__label_smoothing=0.2,
                   iterator_train__drop_last=True, iterator_valid__batch_size=7,
                   callbacks__print_log=None, batch_size=16)
    clf.fit(X, y)
    net = clf.net_
    assert net.module_.head.in_features == 4
    assert net.optimizer_.param_groups[0]["momentum"] == 0.9
    assert net.criterion_.label_smoothing == 0.2
    assert net.history_[-1, "train_batch_count"] == 60 // 16  # the last short batch dropped
    assert net.iterator_valid__batch_size == 7
    params = clf.get_params()
    assert params["module__width"] == 4 and params["optimizer__momentum"] == 0.9


def test_nested_optimizer_parameters_override_the_estimators_own():
    X, y, _ = data()
    clf = AdaRegClassifier(weight_decay=0.5, **SMALL).set_params(optimizer__weight_decay=0.0,
                                                                 optimizer__lr=0.25)
    group = clf.fit(X, y).net_.optimizer_.param_groups[0]
    assert group["weight_decay"] == 0.0 and group["lr"] == 0.25


def test_iterator_options_fall_back_to_torch_dataloader():
    X, y, _ = data()
    clf = AdaRegClassifier(**SMALL, batch_size=16).set_params(iterator_train__num_workers=0)
    loader = clf.fit(X, y).net_.get_iterator(clf.net_.get_dataset(X.astype(np.float32), y),
                                             training=True)
    assert isinstance(loader, torch.utils.data.DataLoader)
    assert np.isfinite(clf.predict_proba(X)).all()


def test_nested_parameters_survive_clone_pickle_and_repr():
    clf = AdaRegClassifier(module=_modules.TinyNet, **SMALL).set_params(
        module__width=4, optimizer__eps=1e-6, callbacks__print_log=None)
    twin = clone(clf)
    assert twin is not clf
    assert twin.get_params() == clf.get_params()
    assert twin.get_params(deep=False)["module__width"] == 4
    assert "module__width=4" in repr(clf)
    X, y, _ = data()
    fitted = pickle.loads(pickle.dumps(clf.fit(X, y)))
    assert fitted.module__width == 4 and fitted.net_.module_.head.in_features == 4
    # a clone does not share the nested values it was given as objects
    clf.set_params(iterator_train__collate_fn=[1])
    assert clone(clf).iterator_train__collate_fn == [1]
    assert clone(clf).iterator_train__collate_fn is not clf.iterator_train__collate_fn


def test_unknown_prefixes_stay_errors_naming_the_public_class():
    clf = AdaRegClassifier()
    for name in ("modul__width", "module_width", "dataset__length", "net__lr"):
        with pytest.raises(ValueError, match="for estimator AdaRegClassifier"):
            clf.set_params(**{name: 1})
    with pytest.raises(TypeError, match=r"AdaRegClassifier.__init__\(\) got an unexpected"):
        AdaRegClassifier(module__width=4)


def test_grid_search_over_a_module_parameter_in_parallel():
    X, y, _ = data(n=90)
    pipe = make_pipeline(StandardScaler(), AdaRegClassifier(module=_modules.TinyNet, **SMALL))
    grid = GridSearchCV(pipe, {"adaregclassifier__module__width": [2, 9]}, cv=2, n_jobs=2)
    grid.fit(X, y)
    widths = [p["adaregclassifier__module__width"] for p in grid.cv_results_["params"]]
    assert widths == [2, 9]
    best = grid.best_estimator_[-1]
    assert best.net_.module_.head.in_features == best.module__width
    search = GridSearchCV(AdaRegClassifier(module=_modules.TinyNet, **SMALL),
                          {"module__width": [3], "optimizer__betas": [(0.8, 0.9)]},
                          cv=2, n_jobs=2).fit(X, y)
    assert search.best_estimator_.net_.optimizer_.param_groups[0]["betas"] == (0.8, 0.9)
    assert search.best_estimator_.net_.module_.head.in_features == 3
