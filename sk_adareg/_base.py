"""What the two AdaReg estimators share: parameters, validation and the fit loop."""

# SPDX-License-Identifier: BSD-3-Clause

import contextlib
import copy
import math
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted, validate_data
from skorch.callbacks import EarlyStopping
from skorch.dataset import Dataset
from skorch.helper import predefined_split
from skorch.utils import to_numpy

from ._batches import batch_loader, chunked_forward
from ._evidence import fit_evidence, map_curvature
from ._kfac import resolve_kfac_layers
from ._mlp import MLP
from ._params import (
    ADAREG_PARAMS,
    DEFAULTS,
    check_params,
    parameter_constraints,
    parameters_doc,
)
from .exceptions import TrainingDivergedError

__all__ = []


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


class _BaseAdaReg(BaseEstimator):
    """Base class of :class:`AdaRegClassifier` and :class:`AdaRegMultiTaskRegressor`.

    Subclasses set ``_net_class``, ``_criterion`` and ``_output_nonlinearity``
    (applied to the network's outputs at prediction) and implement
    ``_encode_targets`` (validate ``y`` at fit, return the training targets
    and the number of network outputs).
    """

    _output_nonlinearity = None
    # Whether the fit computes the Laplace posterior for every reg_lambda.
    _predictive = False

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
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "device": [str, torch.device],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "callbacks": [None, list],
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
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        device="cpu",
        random_state=None,
        verbose=0,
        callbacks=None,
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

    def _validate_X(self, X, reset):
        # Image-shaped input (n, channels, height, width) is for a custom module.
        X = validate_data(
            self, X, reset=reset, dtype=np.float32, order="C", allow_nd=self.module is not None,
        )
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

    def _build_module(self, n_features, n_outputs):
        if self.module is None:
            return MLP(n_features, n_outputs, self._hidden_layer_sizes(),
                       dropout=self.dropout, batch_norm=self.batch_norm)
        if isinstance(self.module, torch.nn.Module):
            # Never train the user's instance in place: fits stay independent.
            return copy.deepcopy(self.module)
        module = self.module()
        if not isinstance(module, torch.nn.Module):
            raise TypeError(
                "module must be None, a torch.nn.Module instance, or a class or callable "
                f"that returns one; module={self.module!r} returned {type(module).__name__}."
            )
        return module

    def _split_validation(self, X, y, seed):
        stratify = None
        if self._stratify_validation:
            _, counts = np.unique(y, return_counts=True)
            # Stratifying needs 2 samples per class and room for every class in both
            # parts (train_test_split's own rule); otherwise split at random.
            n_valid = math.ceil(self.validation_fraction * len(y))
            if counts.min() >= 2 and min(n_valid, len(y) - n_valid) >= len(counts):
                stratify = y
        X_train, X_valid, y_train, y_valid = train_test_split(
            X, y, test_size=self.validation_fraction, random_state=seed, stratify=stratify)
        return X_train, y_train, predefined_split(Dataset(X_valid, y_valid))

    def _make_net(self, module, train_split, n_outputs):
        callbacks = list(self.callbacks or [])
        if self.early_stopping:
            callbacks.append(("early_stopping", EarlyStopping(
                monitor="valid_loss", patience=self.n_iter_no_change, threshold=self.tol,
                threshold_mode="rel", load_best=True)))
        # Integers may come as numpy integers from a parameter grid; torch's
        # DataLoader accepts only Python ints.
        return self._net_class(
            module=module,
            optimizer=self.optimizer,
            lr=self.lr,
            optimizer__weight_decay=self.weight_decay,
            max_epochs=int(self.max_epochs),
            batch_size=int(self.batch_size),
            iterator_train=batch_loader,
            iterator_train__shuffle=True,
            iterator_valid=batch_loader,
            train_split=train_split,
            callbacks=callbacks,
            device=self.device,
            verbose=self.verbose,
            # skorch's PrintLog formats its table every epoch even when silent.
            **({} if self.verbose else {"callbacks__print_log": None}),
            **{name: getattr(self, name) for name in ADAREG_PARAMS},
            **{"criterion": self._criterion, **self._net_kwargs(n_outputs)},
        )

    def _net_kwargs(self, n_outputs):
        return {}

    def _fit(self, X, y):
        try:
            return self._fit_unchecked(X, y)
        except BaseException:
            # A failed fit leaves the estimator unfitted, not half-fitted.
            for name in [k for k in vars(self) if k.endswith("_") and not k.startswith("__")]:
                delattr(self, name)
            raise

    def _fit_unchecked(self, X, y):
        self._check_params()
        X = self._validate_X(X, reset=True)
        y, n_outputs = self._encode_targets(X, y)
        seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        train_split = None
        if self.early_stopping:
            X, y, train_split = self._split_validation(X, y, seed)
        batch_norm = bool(self.module is None and self.batch_norm and self._hidden_layer_sizes())
        if batch_norm and min(len(X), self.batch_size) < 2:
            raise ValueError(
                "batch_norm=True cannot train on batches of one sample: it needs "
                f"batch_size >= 2 and 2 training samples, got batch_size={self.batch_size} "
                f"and {len(X)} sample(s){' after the validation split' * self.early_stopping}.")
        with _torch_seed(seed, self.device):
            module = self._build_module(self.n_features_in_, n_outputs)
            net = self._make_net(module, train_split, n_outputs)
            if batch_norm:
                # Batch normalization cannot train on a batch of one sample: drop
                # such a last batch (a different sample each epoch, as they are shuffled).
                net.set_params(iterator_train__drop_last=len(X) % self.batch_size == 1)
            # Builds the priors, so a bad adareg_layers fails here, before training.
            net.initialize()
            net.fit(X, y)
            laplace = self._fit_posterior(net, X, y)
        self._set_fitted_attributes(net, laplace)
        return self

    def _fit_posterior(self, net, X, y):
        """The Laplace posterior at the final weights, when it is needed.

        With ``reg_lambda="auto"`` it also fits the strengths to the final
        weights and precisions: the last block of the coordinate descent.
        """
        auto = isinstance(self.reg_lambda, str)
        if not (auto or self._predictive):
            return None
        if not auto:
            try:
                resolve_kfac_layers(net.module_, net.priors_.names)
            except ValueError:  # a prior on another weight: no posterior, no return_std
                return None
        try:
            return fit_evidence(net, net.get_dataset(X, y), fit_strength=auto)
        except FloatingPointError as exc:
            raise TrainingDivergedError(
                f"The Laplace evidence at the end of training is NaN or infinite ({exc}). "
                f"Lower the learning rate (lr={self.lr!r}) or scale the inputs.") from exc

    def _set_fitted_attributes(self, net, laplace):
        self.net_ = net
        self.reg_lambda_ = dict(net.reg_lambda_)
        if laplace is not None:
            self.log_evidence_ = laplace.log_evidence()
            # What predict(return_std=True) rebuilds the posterior from.
            self._posterior_ = (map_curvature(laplace.curvature, to_numpy),
                                dict(laplace.reg_lambda), net.noise_variance_)
        self.history_ = net.history
        # Complete epochs only: an interrupted epoch has no train_loss.
        self.loss_curve_ = [row["train_loss"] for row in net.history if "train_loss" in row]
        self.n_iter_ = len(self.loss_curve_)
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
        return self._validate_X(X, reset=False)

    def _forward(self, X):
        """Network outputs for new data, as a float64 array."""
        return self._outputs(self._check_X_for_predict(X))

    def _outputs(self, X):
        """Network outputs for validated data, as a float64 array."""
        outputs = chunked_forward(self.net_.module_, X, self.net_.device,
                                  self._output_nonlinearity)
        finite = np.isfinite(outputs).reshape(len(outputs), -1).all(axis=1)
        if not finite.all():
            raise FloatingPointError(
                f"The network's outputs are NaN or infinite for {np.sum(~finite)} of "
                f"{len(outputs)} samples. The network computes in float32: scale the "
                "inputs like the training data; if they are, the fit diverged in its last "
                f"steps: refit with a lower lr (lr={self.lr!r}) or reg_lambda "
                f"(reg_lambda={self.reg_lambda!r}).")
        return outputs

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags


# numpydoc text of the parameters both estimators share, formatted into their docstrings.
_SHARED_PARAMETERS_TEMPLATE = """\
module : torch.nn.Module class, instance or callable, default=None
        The network. ``None`` builds a multilayer perceptron from the data's
        shape at fit time (``hidden_layer_sizes``, ``dropout``, ``batch_norm``).
        A class (or any callable returning a module) is called without
        arguments inside the seeded context of ``random_state``; an instance
        is copied, never trained in place. It must map a batch of ``X`` to
        {outputs}. With a custom module, ``X`` may have more than two
        dimensions (e.g. images of shape (n, channels, height, width)).

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
        Called as ``optimizer(params, lr=lr, weight_decay=weight_decay)``.

    weight_decay : float, default=0.0
        The optimizer's weight decay, on all parameters.

    early_stopping : bool, default=False
        Whether to hold out ``validation_fraction`` of the training data{stratified}
        and stop when the validation loss (without the penalty) has not
        improved by ``tol`` (relative) for ``n_iter_no_change`` epochs; the
        best weights are restored and the precisions updated for them.

    validation_fraction : float, default=0.1
        Fraction of the training data held out when ``early_stopping``.

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
        Print one line per epoch when > 0.

    callbacks : list of skorch callbacks or (name, callback) tuples, default=None
        Passed on to the skorch net."""

# The AdaReg parameters' text comes from their one definition (escaped for .format).
_SHARED_PARAMETERS = _SHARED_PARAMETERS_TEMPLATE.replace(
    "{adareg_parameters}", parameters_doc().replace("{", "{{").replace("}", "}}"))

_SHARED_ATTRIBUTES = """\
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
        The strength in force for each regularized weight, in the units of
        ``reg_lambda`` (the factor of its penalty in the mean loss): the
        learned strengths with ``reg_lambda="auto"``, ``reg_lambda`` otherwise.

    log_evidence_ : float
        The Laplace approximation of the log marginal likelihood of the
        training data at the final weights (with ``reg_lambda="auto"``, and
        for every ``reg_lambda`` on the regressor), in the units of the
        targets the network trained on.

    n_features_in_ : int
        Number of features seen during fit (``X.shape[1]``).

    feature_names_in_ : ndarray of shape (``n_features_in_``,)
        Names of features seen during fit, when ``X`` has string column names.

    net_ : skorch net
        The trained skorch net (:mod:`sk_adareg.net`).

    history_ : skorch.History
        Per-epoch records: ``train_loss`` (with the penalty),
        ``train_data_loss``, ``valid_loss`` (with early stopping),
        ``adareg_penalty``, ``adareg_objective``, ``row_precision_min``,
        ``row_precision_max``, ``column_precision_min``,
        ``column_precision_max``, ``cov_update``, and ``log_evidence`` at
        each update with ``reg_lambda="auto"``.

    loss_curve_ : list of float
        Training loss (with the penalty) at each completed epoch.

    n_iter_ : int
        Number of epochs completed."""

_SHARED_NOTES = """The precisions are those of the last update (every ``cov_update_every``
    epochs, and after early stopping restores the best weights); a fit that
    made no update (``max_epochs < cov_update_every``) updates them once at
    the end, so they always lie within ``[u, v]``.

    A ``fit`` that raises leaves the estimator unfitted, even one fitted
    before: :class:`~sk_adareg.exceptions.TrainingDivergedError` when the
    training loss or the weights become NaN or infinite, ``ValueError`` for
    bad input before training starts. A ``KeyboardInterrupt`` (Ctrl-C, or a
    callback raising it) during training stops it, as in scikit-learn's
    ``MLPClassifier``, and ``fit`` returns normally: the network keeps the
    weights of the interruption (with ``early_stopping``, the best ones so
    far), ``n_iter_`` and ``loss_curve_`` count the completed epochs
    (``history_`` may end with the interrupted one), and the precisions
    follow the rule above. An interruption before training starts propagates
    and leaves the estimator unfitted."""
