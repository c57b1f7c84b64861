"""What the two AdaReg estimators share: parameters, validation and the fit loop."""

# SPDX-License-Identifier: BSD-3-Clause

import contextlib
import copy
import inspect
import math
from numbers import Integral, Real

import numpy as np
import scipy.sparse
import torch
from sklearn.base import BaseEstimator, clone
from sklearn.model_selection import KFold, StratifiedKFold, check_cv, train_test_split
from sklearn.utils import _safe_indexing, check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data
from skorch.callbacks import EarlyStopping
from skorch.dataset import Dataset
from skorch.helper import predefined_split
from skorch.utils import to_numpy

from .._data import WeightedDataset, chunked_forward
from .._engine import batch_loader
from .._kfac import map_curvature
from .._params import (
    ADAREG_PARAMS,
    AUTO_START,
    DEFAULTS,
    check_params,
    parameter_constraints,
    parameters_doc,
)
from .._strength import choose_by_cv, cv_rows, fold_epochs, mean_score, strength_policy
from ..callbacks import DropBatchHistory, EpochProgressBar, EpochTable, ValidationScore
from ..exceptions import TrainingDivergedError
from ._inputs import clip_to, input_bounds, union_bounds, widened
from ._mlp import MLP
from ._passthrough import check_callbacks, check_nested_params
from ._state import restored_on_failure
from ._weights import check_weight_total

__all__ = ["SHARED_ATTRIBUTES", "SHARED_NOTES", "SHARED_PARAMETERS", "BaseAdaReg"]


@contextlib.contextmanager
def _torch_seed(seed, device):
    """Seed torch inside the block and restore the caller's RNG state after it."""
    device = torch.device(device)
    devices = []
    if device.type == "cuda":
        devices = [device.index if device.index is not None else torch.cuda.current_device()]
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


# The components of the skorch net whose parameters the estimators route as skorch does
# (``module__width=4`` goes to the module, ``optimizer__momentum=0.9`` to the optimizer).
NESTED_PREFIXES = ("module", "criterion", "optimizer", "iterator_train", "iterator_valid",
                   "callbacks")


# The folds of reg_lambda="auto" when cv is None.
_CV_FOLDS = 3

# The fraction early stopping holds out when validation_fraction is None (scikit-learn's).
_EARLY_STOPPING_FRACTION = 0.1


def _dataset(X, y, sample_weight):
    """The skorch dataset of training arrays, with their weights when given."""
    return Dataset(X, y) if sample_weight is None else WeightedDataset(X, y, sample_weight)


@contextlib.contextmanager
def _incremental(net):
    """One call of ``partial_fit``: no validation split and no early stopping.

    As in scikit-learn's MLPs, whose ``partial_fit`` ignores ``early_stopping``.
    """
    train_split, callbacks = net.train_split, net.callbacks_
    net.train_split = None
    net.callbacks_ = [(name, cb) for name, cb in callbacks if not isinstance(cb, EarlyStopping)]
    bars = [cb for _, cb in callbacks if isinstance(cb, EpochProgressBar)]
    totals = [bar.total for bar in bars]
    for bar in bars:  # one epoch per call, not max_epochs
        bar.total = 1
    try:
        yield
    finally:
        net.train_split, net.callbacks_ = train_split, callbacks
        for bar, total in zip(bars, totals, strict=True):
            bar.total = total


# Optimizer options that pick or exclude its implementation (torch's fused kernels do not
# combine with foreach or differentiable).
_IMPLEMENTATION_OPTIONS = ("fused", "foreach", "differentiable", "capturable")


def _fused_available(optimizer, device):
    """Whether ``optimizer(params, fused=True)`` works on ``device`` (torch's Adam, AdamW,
    SGD, ... since torch 2.4 on CPU): one kernel per step instead of several per weight,
    the same update to float rounding (a sixth of a small network's step on a CPU)."""
    if "fused" not in _keyword_names(optimizer)[0]:
        return False
    try:
        optimizer([torch.zeros(1, device=device, requires_grad=True)], lr=1e-3, fused=True)
    except (RuntimeError, ValueError, TypeError, NotImplementedError):
        return False
    return True


def _is_nested(name):
    prefix, sep, rest = name.partition("__")
    return bool(sep and rest) and prefix in NESTED_PREFIXES


def _keyword_names(func):
    """``(names, any)``: the parameters ``func`` takes by keyword, and whether it takes
    ``**kwargs``; ``(set(), True)`` when its signature cannot be read."""
    try:
        parameters = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return set(), True
    names = {p.name for p in parameters
             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return names, any(p.kind == p.VAR_KEYWORD for p in parameters)


# All-zero weights are refused by check_weight_total, whose message names sample_weight
# (scikit-learn >= 1.7 would refuse them first, naming "Sample weights").
_ALL_ZERO_WEIGHTS = ({"allow_all_zero_weights": True}
                     if "allow_all_zero_weights" in _keyword_names(_check_sample_weight)[0]
                     else {})


class BaseAdaReg(BaseEstimator):
    """Base class of :class:`AdaRegClassifier` and :class:`AdaRegMultiTaskRegressor`.

    Subclasses set ``_net_class``, ``_criterion`` and ``_output_nonlinearity``
    (applied to the network's outputs at prediction) and implement
    ``_encode_targets`` (validate ``y`` at fit, return the training targets
    and the number of network outputs).
    """

    _output_nonlinearity = None
    # The likelihood of the training criterion: "gaussian" or "categorical".
    _likelihood = None
    # Whether the fit computes the Laplace posterior for every reg_lambda.
    _predictive = False
    # What the network's outputs are, for the docs and the output-size error.
    _outputs_doc = None

    _parameter_constraints: dict = {  # noqa: RUF012 (scikit-learn convention)
        "module": [None, callable],
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "batch_norm": ["boolean"],
        **parameter_constraints(),
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "optimizer": [callable],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [None, Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "device": [str, torch.device],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "callbacks": [None, list],
        "keep_batch_history": ["boolean"],
        "warm_start": ["boolean"],
        "cv": [None, "cv_object"],
        "clip_inputs": ["boolean"],
    }

    def __init__(
        self,
        *,
        module=None,
        hidden_layer_sizes=(100,),
        dropout=0.0,
        batch_norm=False,
        reg_lambda=DEFAULTS["reg_lambda"],
        u=DEFAULTS["u"],
        v=DEFAULTS["v"],
        precision_scale=DEFAULTS["precision_scale"],
        numerator=DEFAULTS["numerator"],
        cov_update_every=DEFAULTS["cov_update_every"],
        adareg_layers=DEFAULTS["adareg_layers"],
        decov_lambda=DEFAULTS["decov_lambda"],
        max_epochs=200,
        batch_size=64,
        lr=1e-3,
        optimizer=torch.optim.Adam,
        weight_decay=0.0,
        early_stopping=False,
        validation_fraction=None,
        n_iter_no_change=10,
        tol=1e-4,
        device="cpu",
        random_state=None,
        verbose=0,
        callbacks=None,
        keep_batch_history=False,
        warm_start=False,
        cv=None,
        clip_inputs=True,
    ):
        self.module = module
        self.hidden_layer_sizes = hidden_layer_sizes
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.reg_lambda = reg_lambda
        self.u = u
        self.v = v
        self.precision_scale = precision_scale
        self.numerator = numerator
        self.cov_update_every = cov_update_every
        self.adareg_layers = adareg_layers
        self.decov_lambda = decov_lambda
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks
        self.keep_batch_history = keep_batch_history
        self.warm_start = warm_start
        self.cv = cv
        self.clip_inputs = clip_inputs

    # -- nested parameters, as skorch routes them -------------------------------

    def _nested_params(self):
        """The ``module__*``, ``optimizer__*``, ... parameters set through ``set_params``."""
        return {name: value for name, value in vars(self).items() if _is_nested(name)}

    def get_params(self, deep=True):
        """Get parameters for this estimator.

        Parameters
        ----------
        deep : bool, default=True
            If True, will return the parameters for this estimator and
            contained subobjects that are estimators.

        Returns
        -------
        params : dict
            Parameter names mapped to their values, with the nested parameters
            (``module__*``, ``optimizer__*``, ...) set through :meth:`set_params`.
        """
        return {**super().get_params(deep=deep), **self._nested_params()}

    def set_params(self, **params):
        """Set the parameters of this estimator.

        Besides the parameters of ``__init__``, it takes the nested parameters
        of the skorch net's components, as skorch routes them: ``module__*``
        (keyword arguments of the module class), ``optimizer__*``,
        ``criterion__*``, ``iterator_train__*``, ``iterator_valid__*`` and
        ``callbacks__*``.

        Parameters
        ----------
        **params : dict
            Estimator parameters.

        Returns
        -------
        self : estimator instance
            Estimator instance.
        """
        nested = {name: params.pop(name) for name in list(params) if _is_nested(name)}
        super().set_params(**params)
        vars(self).update(nested)
        return self

    def __sklearn_clone__(self):
        # scikit-learn's clone passes the parameters to __init__, which takes no
        # nested ones: clone without them, then set them on the clone.
        nested = self._nested_params()
        bare = copy.copy(self)
        for name in nested:
            delattr(bare, name)
        return super(BaseAdaReg, bare).__sklearn_clone__().set_params(
            **clone(nested, safe=False))

    # -- validation ---------------------------------------------------------

    def _check_params(self):
        """Checks across parameters, after the per-parameter constraints."""
        check_params({name: getattr(self, name) for name in ADAREG_PARAMS}, type(self).__name__)
        if self.module is None:
            self._hidden_layer_sizes()
        try:
            device = torch.device(self.device)
        except RuntimeError as exc:
            raise ValueError(f"device={self.device!r} is not a torch device: {exc}") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device={self.device!r}, but CUDA is not available here.")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise ValueError(f"device={self.device!r}, but MPS is not available here.")
        if device.type != "cpu":
            try:  # any other backend, a device index this machine lacks ("cuda:3"), or
                # one without storage ("meta"): a value must come back from it
                torch.zeros(1, device=device).cpu()
            except (RuntimeError, AssertionError, NotImplementedError) as exc:
                reason = (str(exc).split(". ")[0] or type(exc).__name__)[:200]
                raise ValueError(
                    f"device={self.device!r} is not available here: {reason}.") from None
        self._optimizer_kwargs()  # raises if weight_decay is set for an optimizer without it
        check_callbacks(self.callbacks)
        check_nested_params(self._nested_params())

    def _optimizer_kwargs(self):
        """``weight_decay`` for the optimizer, if it takes one (``LBFGS`` does not), and
        ``fused=True`` where the optimizer has a fused kernel for the device."""
        names, any_keyword = _keyword_names(self.optimizer)
        # Not where the user chose the implementation (foreach and fused exclude each other).
        chosen = {f"optimizer__{name}" for name in _IMPLEMENTATION_OPTIONS} & set(vars(self))
        kwargs = ({"optimizer__fused": True}
                  if not chosen and _fused_available(self.optimizer, self.device) else {})
        if "weight_decay" in names or any_keyword:
            return {**kwargs, "optimizer__weight_decay": self.weight_decay}
        if self.weight_decay:
            raise ValueError(
                f"weight_decay={self.weight_decay!r} needs an optimizer that takes "
                f"weight_decay; optimizer={getattr(self.optimizer, '__name__', self.optimizer)}"
                " does not. Set weight_decay=0.")
        return kwargs

    def _validate_X(self, X, reset, ensure_all_finite=True):
        # Image-shaped input (n, channels, height, width) is for a custom module.
        X = validate_data(
            self, X, reset=reset, dtype=np.float32, order="C", allow_nd=self.module is not None,
            accept_sparse=("csr", "csc"), ensure_all_finite=ensure_all_finite,
        )
        if scipy.sparse.issparse(X):
            # Rows are cut from CSR; the batches are densified one by one (_batches).
            return X.tocsr()
        # torch warns about read-only arrays (memory maps, pandas' copy-on-write), though
        # nothing writes to them: give it a writable copy.
        return X if X.flags.writeable else X.copy()

    # -- fitting --------------------------------------------------------------

    def _hidden_layer_sizes(self):
        sizes = self.hidden_layer_sizes
        sizes = (sizes,) if isinstance(sizes, Integral) else tuple(sizes)
        if not all(isinstance(s, Integral) and not isinstance(s, bool) and s >= 1
                   for s in sizes):
            raise ValueError(
                f"hidden_layer_sizes must be an int or a sequence of ints >= 1, got "
                f"{self.hidden_layer_sizes!r}.")
        return tuple(int(s) for s in sizes)

    def _build_module(self, n_features, n_outputs, kwargs):
        """The network; ``kwargs`` are the ``module__*`` parameters, without the prefix."""
        if self.module is None:
            if kwargs:
                raise ValueError(
                    f"module__* parameters ({', '.join(f'module__{k}' for k in kwargs)}) "
                    "need a custom module; the default network takes hidden_layer_sizes, "
                    "dropout and batch_norm.")
            return MLP(n_features, n_outputs, self._hidden_layer_sizes(),
                       dropout=self.dropout, batch_norm=self.batch_norm)
        if isinstance(self.module, torch.nn.Module) and not kwargs:
            # Never train the user's instance in place: fits stay independent.
            return copy.deepcopy(self.module)
        # As skorch does, an instance with module__* parameters is built anew from its class.
        factory = type(self.module) if isinstance(self.module, torch.nn.Module) else self.module
        names, _ = _keyword_names(factory)
        sizes = {"n_features": n_features, "n_outputs": n_outputs}
        # The data's sizes, where the signature names them; module__* take precedence.
        module = factory(**{**{k: v for k, v in sizes.items() if k in names}, **kwargs})
        if not isinstance(module, torch.nn.Module):
            raise TypeError(
                "module must be None, a torch.nn.Module instance, or a class or callable "
                f"that returns one; module={self.module!r} returned {type(module).__name__}."
            )
        return module

    def _check_output_size(self, net, X, n_outputs):
        """One forward pass on a batch of ``X``: the network must give ``n_outputs`` per sample."""
        outputs, _ = chunked_forward(net.module_, X[:self.batch_size], net.device)
        if outputs.shape[1:] != (n_outputs,):
            raise ValueError(
                f"The module returns outputs of shape {outputs.shape[1:]} per sample (on a "
                f"batch of X: {outputs.shape}), but {type(self).__name__} needs {n_outputs} "
                f"output{'s' * (n_outputs != 1)} ({self._outputs_doc}), i.e. shape "
                f"({n_outputs},). A module class whose signature takes n_outputs (and "
                "n_features) receives them at fit.")

    def _min_train_samples(self, n_outputs):
        """The fewest samples early stopping may leave to train on: more than one."""
        return 2

    def _validation_fraction(self):
        """The fraction held out: ``validation_fraction``, or 0.1 for early stopping."""
        if self.validation_fraction is None and self.early_stopping:
            return _EARLY_STOPPING_FRACTION
        return self.validation_fraction

    def _split_validation(self, X, y, sample_weight, seed, n_outputs, bounds=None):
        """Training arrays, the skorch ``train_split`` of the validation part, and the
        inputs' range: that of the training part (with ``bounds``, those of earlier data
        too), to which the validation part is clipped as ``predict`` would clip it."""
        fraction = self._validation_fraction()
        if fraction is None:
            return X, y, sample_weight, None, self._bounds(X, bounds, sample_weight)
        self._check_validation_size(len(y), n_outputs)
        n_valid = math.ceil(fraction * len(y))  # train_test_split's count
        stratify = None
        if self._stratify_validation:
            _, counts = np.unique(y, return_counts=True)
            # Stratifying needs 2 samples per class and room for every class in both
            # parts (train_test_split's own rule); otherwise split at random.
            if counts.min() >= 2 and min(n_valid, len(y) - n_valid) >= len(counts):
                stratify = y
        rows = np.arange(len(y))
        train, valid = train_test_split(rows, test_size=fraction, random_state=seed,
                                        stratify=stratify)
        w_train, w_valid = (None, None) if sample_weight is None else (
            sample_weight[train], sample_weight[valid])
        for part, weights in (("train on", w_train), ("validate on", w_valid)):
            if weights is not None and not weights.sum() > 0:
                raise ValueError(
                    f"sample_weight is zero on all {len(weights)} samples that "
                    f"validation_fraction={fraction!r} leaves to {part}: there is nothing "
                    "to learn from or to score. Give some of them weight, or change "
                    "validation_fraction (or random_state, which draws the split).")
        bounds = self._bounds(X[train], bounds, w_train)
        X_valid = clip_to(X[valid], widened(bounds)) if self.clip_inputs else X[valid]
        return (X[train], y[train], w_train,
                predefined_split(_dataset(X_valid, y[valid], w_valid)), bounds)

    def _check_validation_size(self, n_samples, n_outputs):
        """Raise if the validation split would leave too few samples to train on; return
        how many it leaves."""
        fraction = self._validation_fraction()
        if fraction is None:
            return n_samples
        n_valid = math.ceil(fraction * n_samples)  # train_test_split's count
        needed = self._min_train_samples(n_outputs)
        if n_samples - n_valid < needed:
            raise ValueError(
                f"validation_fraction={fraction!r} holds out {n_valid} of "
                f"{n_samples} samples for validation, which leaves {n_samples - n_valid} to "
                f"train on; {type(self).__name__} needs at least {needed}. Lower "
                "validation_fraction, or set it to None (and early_stopping=False).")
        return n_samples - n_valid

    @staticmethod
    def _bounds(X, earlier=None, sample_weight=None):
        """The range of each input over ``X`` and the ``earlier`` bounds.

        Rows of zero weight do not count: they are not training data, as if removed
        (integer weights are repeated rows).
        """
        if sample_weight is not None and (sample_weight > 0).any():
            X = X[np.flatnonzero(sample_weight > 0)]
        bounds = input_bounds(X)
        return bounds if earlier is None else union_bounds(earlier, bounds)

    def _callbacks(self):
        """The user's callbacks, then the estimator's own."""
        callbacks = [*(self.callbacks or []),
                     ("valid_score", ValidationScore(self._validation_score))]
        if self.early_stopping:
            callbacks.append(("early_stopping", EarlyStopping(
                monitor="valid_loss", patience=self.n_iter_no_change, threshold=self.tol,
                threshold_mode="rel", load_best=True)))
        if self.verbose == 1:
            callbacks.append(("progress_bar", EpochProgressBar()))
        if not self.keep_batch_history:
            # After every callback that reads the epoch's batches (DivergenceCheck).
            callbacks.append(("drop_batch_history", DropBatchHistory()))
        return callbacks

    def _make_net(self, module, train_split, n_outputs, nested, reg_lambda):
        """The skorch net; ``nested`` (``optimizer__*``, ...) override its other settings.

        ``reg_lambda`` is the strength it trains under: the estimator's, or with
        ``reg_lambda="auto"`` the candidate that cross-validation chose.
        """
        callbacks = self._callbacks()
        # Integers may come as numpy integers from a parameter grid; torch's
        # DataLoader accepts only Python ints.
        params = {
            "module": module,
            "criterion": self._criterion,
            "optimizer": self.optimizer,
            "lr": self.lr,
            **self._optimizer_kwargs(),
            "max_epochs": int(self.max_epochs),
            "batch_size": int(self.batch_size),
            "iterator_train": batch_loader,
            "iterator_train__shuffle": True,
            "iterator_valid": batch_loader,
            "train_split": train_split,
            "callbacks": callbacks,
            "device": self.device,
            # 1 is the progress bar; 2 and more skorch's table (PrintLog).
            "verbose": int(self.verbose >= 2),
            # skorch's PrintLog formats its table every epoch even when silent.
            "callbacks__print_log": EpochTable() if self.verbose >= 2 else None,
            **{name: getattr(self, name) for name in ADAREG_PARAMS},
            "reg_lambda": reg_lambda,
            **self._net_kwargs(n_outputs),
        }
        return self._net_class(**{**params, **nested})

    def _net_kwargs(self, n_outputs):
        return {}

    def _fit(self, X, y, sample_weight=None, groups=None):
        warm = self.warm_start and hasattr(self, "net_")
        with restored_on_failure(self, net_changes=warm):
            if warm:
                return self._continue(X, y, sample_weight, epochs=None)
            return self._fit_unchecked(X, y, sample_weight, groups)

    def _sample_weight(self, X, sample_weight):
        """Validated weights (float64), or None for equal weights."""
        if sample_weight is None:
            return None
        sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64,
                                             ensure_non_negative=True, **_ALL_ZERO_WEIGHTS)
        check_weight_total(sample_weight, "sample_weight")
        return sample_weight

    def _fit_unchecked(self, X, y, sample_weight=None, groups=None, posterior=True):
        """One fit; ``posterior=False`` skips the Laplace posterior (a fold of the CV)."""
        self._check_params()
        X = self._validate_X(X, reset=True)
        sample_weight = self._sample_weight(X, sample_weight)
        seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        # The targets and the validation split are checked before any fold's fit: a bad
        # y fails as without cross-validation, with the numbers of the data given.
        y_raw = y
        y, n_outputs = self._encode_targets(X, y, sample_weight=sample_weight)
        # Checked on the whole training part before the folds' fits.
        self._check_batches(self._check_validation_size(len(y), n_outputs))
        method, cv_scores = self._strength_method(X, y_raw, sample_weight, groups, seed)
        sample_weight = self._class_weighted(y, sample_weight)
        X, y, sample_weight, train_split, bounds = self._split_validation(
            X, y, sample_weight, seed, n_outputs)
        self._check_batches(X.shape[0])
        dataset = _dataset(X, y, sample_weight)
        with _torch_seed(seed, self.device):
            net = self._new_net(X, n_outputs, train_split, method)
            # partial_fit: the net is initialized (fit would initialize it again).
            net.partial_fit(dataset, None)
            self._check_trained_outputs(net, X)
            laplace = self._fit_posterior(net, dataset) if posterior else None
        self._set_fitted_attributes(net, laplace, bounds)
        self.strength_method_ = net.strength_policy.name
        self.cv_scores_ = cv_scores
        self.best_score_ = None if cv_scores is None else mean_score(cv_scores[method])
        return self

    def _strength_method(self, X, y, sample_weight, groups, seed):
        """What the net trains under, and the cross-validation scores that chose it.

        ``reg_lambda`` itself, or with ``"auto"`` the candidate of the strength
        policy with the best mean score over the folds of ``cv`` (scored as
        :meth:`score` scores, on fits of a fraction of ``max_epochs``), on at most
        :data:`~sk_adareg._strength._choice.CV_ROWS` rows.
        """
        policy = strength_policy(self.reg_lambda)
        policy.check_weights(sample_weight)  # before any training
        if not policy.chooses:
            return self.reg_lambda, None
        candidates = policy.candidates(self._likelihood, sample_weight)
        if not hasattr(y, "iloc"):  # a list, or an array-like _safe_indexing cannot index
            y = np.asarray(y)
        subset = cv_rows(X.shape[0], seed)
        if subset is not None:  # large data: the choice is made on a subset
            X, y = X[subset], _safe_indexing(y, subset)
            sample_weight = None if sample_weight is None else sample_weight[subset]
            groups = None if groups is None else np.asarray(groups)[subset]
        # Rows of zero weight are not data (as if removed): the default folds split the others.
        rows = (np.arange(X.shape[0]) if sample_weight is None
                else np.flatnonzero(sample_weight > 0))
        # The default folds score on 2 samples at least (R² needs them); fewer: the first.
        if len(candidates) == 1 or (self.cv is None and len(rows) < 2 * _CV_FOLDS):
            return candidates[0], None
        classifier = self._likelihood == "categorical"
        if self.cv is None:  # shuffled folds: data files are often sorted
            cv = (StratifiedKFold if classifier else KFold)(_CV_FOLDS, shuffle=True,
                                                            random_state=seed)
            folds = [(rows[train], rows[test])
                     for train, test in cv.split(rows, _safe_indexing(y, rows))]
        else:
            cv = check_cv(self.cv, y, classifier=classifier)
            folds = list(cv.split(X, y, groups))
        epochs = fold_epochs(self.max_epochs)

        def fit_and_score(candidate, train, test):
            fold = clone(self).set_params(reg_lambda=candidate, max_epochs=epochs, verbose=0,
                                          warm_start=False)
            weights = (None, None) if sample_weight is None else (
                sample_weight[train], sample_weight[test])
            if weights[0] is not None and not (weights[0].sum() > 0 and weights[1].sum() > 0):
                return np.nan  # a fold of the user's cv without weight: no score, for any
            if not strength_policy(candidate).accepts(weights[0]):
                return -np.inf  # e.g. "loo" where one sample carries the fold's weight
            fold._fit_unchecked(X[train], _safe_indexing(y, train), weights[0],
                                posterior=False)
            return fold.score(X[test], _safe_indexing(y, test), sample_weight=weights[1])

        return choose_by_cv(candidates, folds, fit_and_score)

    def _new_net(self, X, n_outputs, train_split, reg_lambda):
        """The initialized skorch net for training data ``X``, its output size checked."""
        nested = self._nested_params()
        module_kwargs = {name[len("module__"):]: nested.pop(name)
                         for name in list(nested) if name.startswith("module__")}
        module = self._build_module(self.n_features_in_, n_outputs, module_kwargs)
        net = self._make_net(module, train_split, n_outputs, nested, reg_lambda)
        self._drop_last(net, X)
        # Builds the priors, so a bad adareg_layers fails here, before training.
        net.initialize()
        self._check_output_size(net, X, n_outputs)
        return net

    def _drop_last(self, net, X):
        """Batch normalization cannot train on a batch of one sample: drop such a last batch.

        A different sample each epoch, as they are shuffled; set for each call's data.
        """
        if (self._check_batch_norm(X.shape[0])
                and "iterator_train__drop_last" not in self._nested_params()):
            # As skorch stores it; its set_params refuses iterator_* on an initialized net.
            vars(net)["iterator_train__drop_last"] = X.shape[0] % self.batch_size == 1

    def _check_batches(self, n_samples):
        """Raise where ``n_samples`` training samples would give no batch to train on (or
        batch normalization a batch of one sample)."""
        nested = self._nested_params()
        name = ("iterator_train__batch_size" if "iterator_train__batch_size" in nested
                else "batch_size")
        size = nested.get(name, self.batch_size)
        if nested.get("iterator_train__drop_last") and n_samples < size:
            raise ValueError(
                "iterator_train__drop_last=True drops the only batch: the training data has "
                f"{n_samples} samples, fewer than {name}={size}. Lower {name} or leave "
                "iterator_train__drop_last unset.")
        self._check_batch_norm(n_samples)

    def _check_batch_norm(self, n_samples):
        """Whether the default network has batch normalization, which needs 2 samples."""
        batch_norm = bool(self.module is None and self.batch_norm and self._hidden_layer_sizes())
        if batch_norm and min(n_samples, self.batch_size) < 2:
            raise ValueError(
                "batch_norm=True cannot train on batches of one sample: it needs "
                f"batch_size >= 2 and 2 training samples, got batch_size={self.batch_size} "
                f"and {n_samples} sample(s).")
        return batch_norm

    # -- incremental fitting ------------------------------------------------------

    def _partial_fit(self, X, y, sample_weight, classes=None):
        fitted = hasattr(self, "net_")
        with restored_on_failure(self, net_changes=fitted):
            if not fitted:
                return self._first_partial_fit(X, y, sample_weight, classes)
            return self._continue(X, y, sample_weight, epochs=1, classes=classes)

    def _continued_reg_lambda(self, net, incremental):
        """What the net trains under when training continues.

        ``partial_fit`` never sees the whole training set, so it cannot learn the
        strength: it trains under a number, with ``"auto"`` the strength learned
        strengths start at (:data:`~sk_adareg._params.AUTO_START`). A warm-started
        fit sees all its data: it learns the strength as a fresh fit would,
        ``"auto"`` under the way the first fit chose, without a new
        cross-validation.
        """
        policy = strength_policy(self.reg_lambda)
        if not policy.learned:
            return self.reg_lambda
        if incremental:
            if policy.chooses:
                return AUTO_START
            raise ValueError(
                f"reg_lambda={self.reg_lambda!r} learns the strength from the whole "
                "training set, which partial_fit never sees; partial_fit needs a numeric "
                "reg_lambda or 'auto' (which then trains under a fixed "
                f"strength, {AUTO_START}).")
        if policy.chooses and net is not None:
            return net.reg_lambda
        return self.reg_lambda

    def _first_partial_fit(self, X, y, sample_weight, classes):
        self._check_params()
        reg_lambda = self._continued_reg_lambda(None, incremental=True)
        X = self._validate_X(X, reset=True)
        sample_weight = self._sample_weight(X, sample_weight)
        y, n_outputs = self._encode_targets(X, y, classes=classes, sample_weight=sample_weight)
        sample_weight = self._class_weighted(y, sample_weight, incremental=True)
        self._check_batches(X.shape[0])
        seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        with _torch_seed(seed, self.device):
            net = self._new_net(X, n_outputs, None, reg_lambda)
            with _incremental(net):
                net.partial_fit(_dataset(X, y, sample_weight), None, epochs=1)
            self._check_trained_outputs(net, X[:self.batch_size])
        self._set_fitted_attributes(net, None, self._bounds(X, sample_weight=sample_weight))
        self.strength_method_, self.cv_scores_, self.best_score_ = "fixed", None, None
        return self

    def _continue(self, X, y, sample_weight, epochs, classes=None):
        """Train the fitted net further: ``epochs=1`` for partial_fit, None for warm_start.

        Everything is checked before the model changes: a bad call leaves it as it was.
        """
        check_is_fitted(self)
        self._check_params()
        reg_lambda = self._continued_reg_lambda(self.net_, incremental=epochs is not None)
        self._check_classes(classes)
        X = self._validate_X(X, reset=False)
        sample_weight = self._sample_weight(X, sample_weight)
        y, n_outputs = self._encode_targets(X, y, reset=False)
        sample_weight = self._class_weighted(y, sample_weight, incremental=epochs is not None)
        net = self.net_
        # A different seed at each call: each pass shuffles the batches anew.
        seed = (check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
                + len(net.history)) % np.iinfo(np.int32).max
        train_split = None
        if epochs is None:  # warm_start: a fit, with its validation split
            X, y, sample_weight, train_split, bounds = self._split_validation(
                X, y, sample_weight, seed, n_outputs, self._input_bounds_)
        else:
            bounds = self._bounds(X, self._input_bounds_, sample_weight)
        self._check_batches(X.shape[0])
        dataset = _dataset(X, y, sample_weight)
        # The estimator's parameters now, for what they do not rebuild.
        previous = type(net.strength_policy)
        vars(net).update({name: getattr(self, name) for name in ADAREG_PARAMS},
                         reg_lambda=reg_lambda)
        if type(net.strength_policy) is not previous:  # the strengths start anew
            net.strength_policy.initialize(net, net.priors_.names)
        net.set_params(lr=self.lr, max_epochs=int(self.max_epochs))
        self._drop_last(net, X)
        laplace = None
        with _torch_seed(seed, self.device):
            if epochs is None:
                # skorch's set_params(callbacks=...) does not rebuild callbacks_: initialize.
                net.set_params(train_split=train_split, callbacks=self._callbacks())
                net.initialize_callbacks()
                net.partial_fit(dataset, None)
                self._check_trained_outputs(net, X)
                laplace = self._fit_posterior(net, dataset)
            else:
                with _incremental(net):
                    net.partial_fit(dataset, None, epochs=1)
                self._check_trained_outputs(net, X[:self.batch_size])
        self._set_fitted_attributes(net, laplace, bounds)
        self.strength_method_ = net.strength_policy.name
        return self

    def _check_classes(self, classes):
        """partial_fit's ``classes`` after the first call (the classifier checks them)."""

    def _class_weighted(self, y, sample_weight, incremental=False):
        """The sample weights times the class weights (the classifier's)."""
        return sample_weight

    def _check_trained_outputs(self, net, X):
        """Raise if the trained network's outputs on training data ``X`` are not finite.

        The last step can leave huge but finite weights, which the divergence check
        of the epoch passes, whose outputs overflow: the call that took the step
        raises, not the next ``predict``. ``partial_fit`` checks its first batch.
        """
        _, bad = chunked_forward(net.module_, X, net.device, self._output_nonlinearity,
                                 affine=self._output_affine())
        if bad:
            raise TrainingDivergedError(
                "The network's outputs on the training data are NaN or infinite after "
                f"training (for {bad} of the {X.shape[0]} samples checked). Lower the "
                f"learning rate (lr={self.lr!r}) or the prior's strength "
                f"(reg_lambda={self.reg_lambda!r}), or scale the inputs.")

    def _fit_posterior(self, net, dataset):
        """The Laplace posterior at the final weights, when it is needed.

        The strengths stay those the final weights were trained under; the
        regressor's noise variances are fitted to them.
        """
        try:
            return net.strength_policy.posterior(net, dataset, self._predictive)
        except FloatingPointError as exc:
            raise TrainingDivergedError(
                f"The Laplace evidence at the end of training is NaN or infinite ({exc}). "
                f"Lower the learning rate (lr={self.lr!r}) or scale the inputs.") from exc

    def _set_fitted_attributes(self, net, laplace, bounds):
        self.net_ = net
        # What clip_inputs clips new inputs to.
        self._input_bounds_ = bounds
        self.reg_lambda_ = dict(net.reg_lambda_)
        for name in ("log_evidence_", "_posterior_"):  # of an earlier fit
            if hasattr(self, name):
                delattr(self, name)
        if laplace is not None:
            self.log_evidence_ = laplace.log_evidence()
            # What predict(return_std=True) rebuilds the posterior from.
            self._posterior_ = (map_curvature(laplace.curvature, to_numpy),
                                dict(laplace.reg_lambda), net.noise_variance_)
        self.history_ = net.history
        # Complete epochs only: an interrupted epoch has no train_loss.
        self.loss_curve_ = [row["train_loss"] for row in net.history if "train_loss" in row]
        self.n_iter_ = len(self.loss_curve_)
        scores = [row["valid_score"] for row in net.history if "valid_score" in row]
        # As scikit-learn's MLPs: None without validation data.
        self.validation_scores_ = scores or None
        self.best_validation_score_ = max(scores) if scores else None
        self.adareg_layers_ = list(net.priors_.names)
        self.row_precisions_, self.column_precisions_ = {}, {}
        self.row_covariances_, self.column_covariances_ = {}, {}
        for name, prior in net.priors_.items():
            self.row_precisions_[name] = prior.row_precision.cpu().numpy().copy()
            self.column_precisions_[name] = prior.column_precision.cpu().numpy().copy()
            self.row_covariances_[name] = prior.row_covariance.cpu().numpy()
            self.column_covariances_[name] = prior.column_covariance.cpu().numpy()
        last = self.adareg_layers_[-1]
        self.row_precision_ = self.row_precisions_[last]
        self.column_precision_ = self.column_precisions_[last]
        self.row_covariance_ = self.row_covariances_[last]
        self.column_covariance_ = self.column_covariances_[last]

    # -- prediction -----------------------------------------------------------

    def _check_X_for_predict(self, X):
        check_is_fitted(self)
        # Finiteness is checked where the network runs (chunked_forward): on a GPU, the
        # host's pass over the inputs would cost more than the forward itself.
        return self._validate_X(X, reset=False, ensure_all_finite=False)

    def _forward(self, X):
        """Network outputs for new data, as a float64 array."""
        return self._outputs(self._check_X_for_predict(X))

    def _clip_bounds(self):
        """The bounds new inputs are clipped to, or None (``clip_inputs=False``)."""
        return widened(self._input_bounds_) if self.clip_inputs else None

    def _output_affine(self):
        """``(scale, offset)`` from the network's outputs to predictions, or None."""
        return None

    def _outputs(self, X):
        """Predictions from validated data, as a float64 array; its inputs checked finite."""
        outputs, bad = chunked_forward(
            self.net_.module_, X, self.net_.device, self._output_nonlinearity,
            bounds=self._clip_bounds(), affine=self._output_affine(), check_inputs=True)
        if bad:
            raise FloatingPointError(
                f"The network's outputs are NaN or infinite for {bad} of "
                f"{len(outputs)} samples. The network computes in float32: scale the "
                "inputs like the training data; if they are, the fit diverged in its last "
                f"steps: refit with a lower lr (lr={self.lr!r}) or reg_lambda "
                f"(reg_lambda={self.reg_lambda!r}).")
        return outputs

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = True
        return tags


# numpydoc text of the parameters both estimators share, formatted into their docstrings.
SHARED_PARAMETERS_TEMPLATE = """\
module : torch.nn.Module class, instance or callable, default=None
        The network. ``None`` builds a multilayer perceptron from the data's
        shape at fit time (``hidden_layer_sizes``, ``dropout``, ``batch_norm``).
        A class (or any callable returning a module) is called inside the
        seeded context of ``random_state``, with the keyword arguments
        ``n_features`` (``n_features_in_``; the channels of image-shaped
        ``X``) and ``n_outputs`` (the number of {targets}) where its signature
        names them, so that it fits every fold, and the ``module__*``
        parameters (see :meth:`set_params`), which take precedence. An
        instance is copied, never trained in place; with ``module__*``
        parameters it is built anew from its class, as skorch does. It must
        map a batch of ``X`` to {outputs}, of shape (batch, n_{targets}),
        which fit checks on one batch before training; a module that returns
        a tuple is taken at its first element (skorch's convention), in the
        loss, the prior's curvature and the predictions. With a custom module,
        ``X`` may have more than two dimensions (e.g. images of shape (n,
        channels, height, width)).

    hidden_layer_sizes : tuple of int, default=(100,)
        Hidden layer widths of the default network.

    dropout : float, default=0.0
        Dropout probability after each hidden activation of the default
        network.

    batch_norm : bool, default=False
        Whether the default network uses batch normalization.

    {adareg_parameters}

    max_epochs : int, default=200
        Number of training epochs.

    batch_size : int, default=64
        Minibatch size.

    lr : float, default=1e-3
        Learning rate.

    optimizer : torch optimizer class, default=torch.optim.Adam
        Called as ``optimizer(params, lr=lr, weight_decay=weight_decay)``,
        with the ``optimizer__*`` parameters; ``weight_decay`` is passed only
        to an optimizer whose signature takes it (``torch.optim.LBFGS`` does
        not; skorch gives it the closure it needs). ``fused=True`` is passed
        too where the optimizer has a fused kernel for ``device`` (torch's
        ``Adam``, ``AdamW`` and ``SGD`` on CPU and CUDA since torch 2.4): the
        same update to float rounding, in one kernel per step. Set
        ``optimizer__fused=False`` (with :meth:`set_params`) to opt out.

    weight_decay : float, default=0.0
        The optimizer's weight decay, on all parameters. It must be 0 for an
        optimizer that does not take it.

    early_stopping : bool, default=False
        Whether to stop when the validation loss (without the penalty) has
        not improved by ``tol`` (relative) for ``n_iter_no_change`` epochs;
        the best weights are restored and the precisions updated for them.
        It holds out ``validation_fraction`` of the training data, 0.1 when
        that is None. ``partial_fit`` ignores it, as scikit-learn's MLPs do.

    validation_fraction : float or None, default=None
        Fraction of the training data held out{stratified} as validation data
        (``ceil(validation_fraction * n_samples)`` samples), whose loss
        (``valid_loss``) and score (``validation_scores_``) are recorded at
        every epoch, with or without early stopping. The rest must hold at
        least {min_train}, or fit raises a ``ValueError``. None holds out
        nothing, unless ``early_stopping``.

    n_iter_no_change : int, default=10
        Patience of early stopping, in epochs.

    tol : float, default=1e-4
        Relative improvement of the validation loss that counts for early
        stopping.

    device : str or torch.device, default="cpu"
        Where to train, e.g. ``"cuda"``. A model fitted on a GPU unpickles on
        a machine without one.

    random_state : int, RandomState instance or None, default=None
        Seeds the weights' initialization, the shuffling and the validation
        split. With an int, CPU fits are reproducible bit for bit, and the
        global random state of torch is left as it was.

    verbose : int, default=0
        0 is silent; 1 shows a progress bar over the epochs with the latest
        losses (:class:`~sk_adareg.callbacks.EpochProgressBar`); 2 and more
        print skorch's table, one line per epoch, without the AdaReg
        diagnostics and in plain text unless standard output is a terminal
        (:class:`~sk_adareg.callbacks.EpochTable`).

    callbacks : list of skorch callbacks or (name, callback) tuples, default=None
        Passed on to the skorch net: instances or classes of
        ``skorch.callbacks.Callback`` (a ``TypeError`` for anything else).

    keep_batch_history : bool, default=False
        Whether ``history_`` keeps skorch's per-batch records. By default
        they are dropped at the end of each epoch, after every callback has
        read them (:class:`~sk_adareg.callbacks.DropBatchHistory`), so that
        the history, and the pickle, grow with the epochs only.

    warm_start : bool, default=False
        Whether ``fit`` continues from the fitted network and precisions
        (for ``max_epochs`` more epochs, on the data it is given) instead of
        starting anew. The network, optimizer and their nested parameters
        stay those of the first fit; ``lr``, ``max_epochs``, the AdaReg
        hyperparameters, early stopping and the validation split are read
        again. Learned strengths keep learning; ``reg_lambda="auto"``
        continues under the candidate the first fit chose. (``partial_fit`` cannot
        learn the strength: with ``"auto"`` it trains under the fixed 3e-3.)

    cv : int, cross-validation generator or iterable, default=None
        The folds on which ``reg_lambda="auto"`` scores each candidate
        strength, as in scikit-learn's ``*CV`` estimators: None gives 3
        shuffled folds (stratified for the classifier), or with fewer than 6
        samples, too few to score, takes ``"evidence"``; an int, that many
        unshuffled ones; a splitter such as ``GroupKFold`` uses the
        ``groups`` given to :meth:`fit`. Each fold's fit trains for 15 % of
        ``max_epochs``; above 3,000 training rows, the choice is made on a
        random 3,000 of them. Unused with any other ``reg_lambda``.

    clip_inputs : bool, default=True
        Whether ``predict`` (and ``predict_proba``, ``return_std`` and the
        validation data) clips each input to its range in the training
        data, widened by a quarter of that range on each side. A ReLU
        network extrapolates linearly, so its predictions run away far from
        the training inputs; clipped, they stay near what it learned at the
        edge of the data, as tree ensembles do."""

# The AdaReg parameters' text comes from their one definition (escaped for .format).
SHARED_PARAMETERS = SHARED_PARAMETERS_TEMPLATE.replace(
    "{adareg_parameters}", parameters_doc().replace("{", "{{").replace("}", "}}"))

SHARED_ATTRIBUTES = """\
row_covariance_ : ndarray of shape ({p}, {p})
        Row covariance ``Sigma_r`` of the prior on the last regularized
        weight, float64 ({p_name}).

    column_covariance_ : ndarray of shape (d, d)
        Column covariance ``Sigma_c`` of that weight (d: its input size, e.g.
        the width of the last hidden layer).

    row_precision_, column_precision_ : ndarray
        Their inverses ``Omega_r``, ``Omega_c``.

    row_covariances_, column_covariances_, row_precisions_, column_precisions_ : dict
        The same for every regularized weight, keyed by parameter name.

    adareg_layers_ : list of str
        Names of the regularized weights.

    reg_lambda_ : dict of str to float
        The strength of each regularized weight that the final weights were
        trained under, in the units of ``reg_lambda`` (the factor of its
        penalty in the mean loss): the learned strengths of the last update
        during training, or ``reg_lambda`` itself.

    strength_method_ : str
        How the strength was set: ``"evidence"`` or ``"loo"`` (learned), or
        ``"fixed"``; with ``reg_lambda="auto"``, what cross-validation chose.

    cv_scores_ : dict or None
        With ``reg_lambda="auto"``: the score (as :meth:`score`) on each fold
        of ``cv`` (an ndarray of shape (n_folds,)) of each value of
        ``reg_lambda`` compared (``-inf`` where the fold's fit diverged or the
        way cannot learn from its weights, NaN where the fold has no score);
        None when nothing was chosen by cross-validation. The default folds
        split the samples of positive weight.

    best_score_ : float or None
        The mean of ``cv_scores_`` of the chosen way, over the folds with a
        score; None without it.

    log_evidence_ : float
        The Laplace approximation of the log marginal likelihood of the
        training data at the final weights and strengths (with learned
        strengths, and for every ``reg_lambda`` on the regressor), in the
        units of the targets the network trained on. The regressor takes the
        prior's penalty at the mode of the network linearized at the final
        weights (where training reached the mode, the final weights' own).

    n_features_in_ : int
        Number of features seen during fit (``X.shape[1]``).

    feature_names_in_ : ndarray of shape (``n_features_in_``,)
        Names of features seen during fit, when ``X`` has string column names.

    net_ : skorch net
        The trained skorch net (:mod:`sk_adareg.net`).

    history_ : skorch.History
        Per-epoch records (the per-batch ones, under ``"batches"``, only with
        ``keep_batch_history=True``): ``train_loss`` (with the penalty),
        ``train_data_loss``, ``valid_loss`` and ``valid_score`` (with
        validation data),
        ``adareg_penalty``, ``adareg_objective``, ``row_precision_min``,
        ``row_precision_max``, ``column_precision_min``,
        ``column_precision_max``, ``cov_update``, ``log_evidence`` at each
        update of learned strengths, and ``loo_scale``
        (the factor leave-one-out put on the evidence's strengths) and
        ``loo_mse`` (the approximate leave-one-out mean squared error there,
        per target value, in the standardized units the network trains on)
        with ``"loo"``.

    loss_curve_ : list of float
        Training loss (with the penalty) at each completed epoch.

    validation_scores_ : list of float or None
        The score (as :meth:`score`) on the validation data at each epoch,
        when some was held out (``validation_fraction``, or early
        stopping); None otherwise.

    best_validation_score_ : float or None
        The best of ``validation_scores_``; None without validation data.

    n_iter_ : int
        Number of epochs completed."""

SHARED_NOTES = """Nested parameters of the skorch net's components, ``module__*``,
    ``optimizer__*``, ``criterion__*``, ``iterator_train__*``,
    ``iterator_valid__*`` and ``callbacks__*``, are set with
    :meth:`set_params` (as in ``GridSearchCV(est, {"module__width": [8,
    16]})``), not in the constructor; skorch routes them, and they override
    the estimator's own settings of the same component (e.g.
    ``optimizer__weight_decay`` over ``weight_decay``).

    The precisions are those of the last update (every ``cov_update_every``
    epochs, and after early stopping restores the best weights); a fit that
    made no update (``max_epochs < cov_update_every``) updates them once at
    the end, so they always lie within ``[u, v]``. With learned strengths a
    short fit (``max_epochs`` below about ``3 * cov_update_every``) updates
    its prior after three evenly spaced optimizer steps instead
    (:func:`sk_adareg.callbacks.update_steps`).

    A ``fit``, warm-started fit or ``partial_fit`` that raises, whatever it
    raises, leaves the estimator as it was before the call: unfitted, or with
    its earlier fit (weights, optimizer state, precisions, strengths, history
    and fitted attributes); the callbacks passed in ``callbacks`` stay the
    objects given. It raises
    :class:`~sk_adareg.exceptions.TrainingDivergedError` when the training
    loss or the weights become NaN or infinite, or when the network's outputs
    on the training data overflow after the last step (``partial_fit`` checks
    its first batch), and ``ValueError`` or ``TypeError`` for bad input or
    settings before training starts. A ``KeyboardInterrupt`` (Ctrl-C, or a
    callback raising it) during training stops it, as in scikit-learn's
    ``MLPClassifier``, and ``fit`` returns normally: the network keeps the
    weights of the interruption (with ``early_stopping``, the best ones so
    far), ``n_iter_`` and ``loss_curve_`` count the completed epochs
    (``history_`` may end with the interrupted one), and the precisions
    follow the rule above. An interruption before training starts propagates
    and leaves the estimator as it was."""
