"""Pickle and joblib round trips, loaded in a fresh Python process.

The in-process round trip is tested in test_estimators.py; here the loading
process has imported nothing (not even sk_adareg: unpickling must import what it
needs), which is how a saved model is used in practice.
"""

import importlib
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from sk_adareg import AdaRegClassifier, AdaRegMultiTaskRegressor

TESTS_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS_DIR))
_modules = importlib.import_module("_modules")  # importable by name in the fresh process too

COMMON = {"max_epochs": 4, "batch_size": 16, "reg_lambda": 1e-2, "u": 0.1, "v": 10.0,
          "precision_scale": "unit_mean", "cov_update_every": 2, "lr": 1e-3,
          "random_state": 0}

# Runs in the fresh process: for each name, load the model, record its predictions and
# covariances, and whether it came back fitted; unfitted models are fitted on X, y.
LOADER = textwrap.dedent("""
    import pickle, sys
    import joblib, numpy as np, torch
    torch.set_num_threads(1)
    assert "sk_adareg" not in sys.modules
    X, y, Y = (np.load(f"{name}.npy", allow_pickle=True) for name in ("X", "y", "Y"))
    for name in sys.argv[1:]:
        if name.endswith(".joblib"):
            est = joblib.load(name)
        else:
            with open(name, "rb") as f:
                est = pickle.load(f)
        fitted = hasattr(est, "net_")
        if not fitted:
            est.fit(X, y if type(est).__name__ == "AdaRegClassifier" else Y)
        outputs = {"predict": est.predict(X), "row_covariance": est.row_covariance_,
                   "column_covariance": est.column_covariance_}
        if hasattr(est, "predict_proba"):
            outputs["predict_proba"] = est.predict_proba(X)
        np.savez(name + ".out.npz", fitted=fitted, **outputs)
    print("modules:", sorted(m for m in sys.modules if m in ("sk_adareg", "_modules")))
""")


def run_fresh(code, args, cwd, extra_env=None):
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")]),
           **(extra_env or {})}
    result = subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


def save_data(path):
    X, y = make_classification(n_samples=80, n_features=5, n_informative=3, n_classes=3,
                               random_state=0)
    labels = np.array(["ant", "bee", "cow"])[y]
    Y = X @ np.random.default_rng(0).normal(size=(5, 3))
    for name, array in (("X", X), ("y", labels), ("Y", Y)):
        np.save(path / f"{name}.npy", array)
    return X, labels, Y


def outputs_of(est, X):
    outputs = {"predict": est.predict(X), "row_covariance": est.row_covariance_,
               "column_covariance": est.column_covariance_}
    if hasattr(est, "predict_proba"):
        outputs["predict_proba"] = est.predict_proba(X)
    return outputs


def dump(est, path):
    if path.suffix == ".joblib":
        joblib.dump(est, path)
    else:
        path.write_bytes(pickle.dumps(est))


def models():
    """name: (estimator, whether it is fitted before being saved)."""
    return {
        "classifier.pkl": (AdaRegClassifier(hidden_layer_sizes=(8,), **COMMON), True),
        "classifier.joblib": (AdaRegClassifier(hidden_layer_sizes=(8,), **COMMON), True),
        "regressor.pkl": (AdaRegMultiTaskRegressor(hidden_layer_sizes=(8,), **COMMON), True),
        "regressor.joblib": (AdaRegMultiTaskRegressor(hidden_layer_sizes=(8,), **COMMON),
                             True),
        # a module class, and an instance, from a module of the user's (tests/_modules.py)
        "custom_module_class.pkl": (AdaRegClassifier(module=_modules.TinyNet, **COMMON), True),
        "custom_module_instance.joblib": (
            AdaRegMultiTaskRegressor(module=_modules.TinyNet(), adareg_layers="all", **COMMON),
            True),
        # DeCov's forward hook on the last layer travels with the module
        "decov.pkl": (AdaRegClassifier(hidden_layer_sizes=(8,), decov_lambda=0.1, **COMMON),
                      True),
        # the validation split, batch norm's running statistics, dropout (off at predict)
        "early_stopping_batch_norm_dropout.pkl": (
            AdaRegMultiTaskRegressor(hidden_layer_sizes=(8,), early_stopping=True,
                                     batch_norm=True, dropout=0.2, **COMMON), True),
        "unfitted_classifier.pkl": (
            AdaRegClassifier(hidden_layer_sizes=(8, 4), optimizer=torch.optim.SGD,
                             **{**COMMON, "lr": 0.05}), False),
        "unfitted_custom_module.joblib": (
            AdaRegMultiTaskRegressor(module=_modules.TinyNet(), **COMMON), False),
    }


def test_fitted_and_unfitted_estimators_round_trip_into_a_fresh_process(tmp_path):
    X, y, Y = save_data(tmp_path)
    expected = {}
    for name, (est, fit) in models().items():
        target = y if isinstance(est, AdaRegClassifier) else Y
        if fit:
            expected[name] = outputs_of(est.fit(X, target), X)
        else:
            # the fresh process fits the loaded copy: it must match a fit of the original
            expected[name] = outputs_of(pickle.loads(pickle.dumps(est)).fit(X, target), X)
            with pytest.raises(NotFittedError):
                check_is_fitted(est)
        dump(est, tmp_path / name)
    stdout = run_fresh(LOADER, list(expected), tmp_path)
    assert "'_modules'" in stdout and "'sk_adareg'" in stdout
    for name, (_, fit) in models().items():
        got = np.load(tmp_path / f"{name}.out.npz", allow_pickle=True)
        assert bool(got["fitted"]) == fit, name
        assert set(got.files) == {"fitted", *expected[name]}
        for key, value in expected[name].items():
            np.testing.assert_array_equal(got[key], value, err_msg=f"{name}: {key}")


@pytest.mark.parametrize("Estimator", [AdaRegClassifier, AdaRegMultiTaskRegressor])
@pytest.mark.parametrize("via", ["pickle", "joblib"])
def test_an_unfitted_estimator_round_trips_with_its_parameters(Estimator, via, tmp_path):
    est = Estimator(module=_modules.TinyNet, optimizer=torch.optim.SGD, early_stopping=True,
                    **{**COMMON, "lr": 0.05})
    path = tmp_path / f"model.{via}"
    dump(est, path)
    copy = joblib.load(path) if via == "joblib" else pickle.loads(path.read_bytes())
    assert copy is not est
    assert copy.get_params() == est.get_params()
    assert [k for k in vars(copy) if k.endswith("_")] == []
    with pytest.raises(NotFittedError):
        copy.predict(np.zeros((2, 5)))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device to fit on")
@pytest.mark.parametrize("Estimator", [AdaRegClassifier, AdaRegMultiTaskRegressor])
def test_a_model_fitted_on_gpu_predicts_on_a_machine_without_one(Estimator, tmp_path):
    X, y, Y = save_data(tmp_path)
    est = Estimator(hidden_layer_sizes=(8,), device="cuda", **COMMON)
    est.fit(X, y if Estimator is AdaRegClassifier else Y)
    assert est.net_.priors_.priors[0].row_precision.is_cuda
    dump(est, tmp_path / "gpu.pkl")
    run_fresh(LOADER, ["gpu.pkl"], tmp_path, extra_env={"CUDA_VISIBLE_DEVICES": ""})
    got = np.load(tmp_path / "gpu.pkl.out.npz", allow_pickle=True)
    expected = outputs_of(est, X)
    np.testing.assert_allclose(got["row_covariance"], expected["row_covariance"], rtol=1e-6,
                               atol=1e-9)
    if Estimator is AdaRegClassifier:
        np.testing.assert_allclose(got["predict_proba"], expected["predict_proba"],
                                   rtol=1e-4, atol=1e-6)
    else:
        np.testing.assert_allclose(got["predict"], expected["predict"], rtol=1e-4, atol=1e-5)


def _tensors(obj, path, seen, found):
    """The paths of the tensors reachable from ``obj`` (through containers and objects)."""
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, torch.Tensor):
        found.append(path)
    elif isinstance(obj, dict):
        for key, value in obj.items():
            _tensors(value, f"{path}[{key!r}]", seen, found)
    elif isinstance(obj, (list, tuple, set)):
        for i, value in enumerate(obj):
            _tensors(value, f"{path}[{i}]", seen, found)
    elif (hasattr(obj, "__dict__") and not isinstance(obj, type) and not callable(obj)) or (
            isinstance(obj, torch.nn.Module)):
        _tensors(vars(obj), f"{path}.", seen, found)


@pytest.mark.parametrize("Estimator", [AdaRegClassifier, AdaRegMultiTaskRegressor])
@pytest.mark.parametrize("params", [
    {}, {"reg_lambda": 1e-2, "adareg_layers": "last"}, {"early_stopping": True},
    {"decov_lambda": 0.1, "reg_lambda": 0.0}, {"validation_fraction": 0.2},
    {"module": "instance"}])
def test_only_what_skorch_maps_to_a_device_holds_tensors(Estimator, params):
    # skorch loads a net's modules, criteria, optimizers (and what the nets add to them)
    # with a map_location: a model fitted on a GPU loads on a machine without one. Any
    # tensor pickled elsewhere would be loaded on the device it was saved from.
    X, y = make_classification(n_samples=60, n_features=5, n_informative=3, n_classes=3,
                               random_state=0)
    target = y if Estimator is AdaRegClassifier else X[:, :3]
    if params.get("module") == "instance":  # an instance of the user's: 5 inputs, 3 outputs
        params = {"module": _modules.TinyNet()}
    est = Estimator(hidden_layer_sizes=(8,), max_epochs=12, random_state=0, **params)
    est.fit(X, target)
    state = est.net_.__getstate__()
    found = []
    for key, value in state.items():
        if key != "__cuda_dependent_attributes__":
            _tensors(value, f"net_.{key}", set(), found)
    for key, value in vars(est).items():  # the fitted state (the parameters are the user's)
        if key != "net_" and key not in est.get_params():
            _tensors(value, key, set(), found)
    assert found == []
    # The mapped part holds the trained module once, as the module parameter too.
    copy = pickle.loads(pickle.dumps(est))
    assert copy.net_.module_ is copy.net_.module or not isinstance(est.net_.module,
                                                                   torch.nn.Module)
    np.testing.assert_array_equal(copy.predict(X), est.predict(X))
