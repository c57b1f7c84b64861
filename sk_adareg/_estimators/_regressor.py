"""AdaReg for (multitask) regression."""

# SPDX-License-Identifier: BSD-3-Clause

from functools import partial

import numpy as np
import torch
from sklearn.base import RegressorMixin, _fit_context
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_array

from .._data import dense
from .._kfac import map_curvature
from .._losses import TargetWeightedMSELoss
from .._params import DEFAULTS
from .._strength import strength_policy
from ..laplace import KroneckerLaplace
from ..net import AdaRegNeuralNetRegressor
from ._base import SHARED_ATTRIBUTES, SHARED_NOTES, SHARED_PARAMETERS, BaseAdaReg
from ._inputs import clip_to

__all__ = ["AdaRegMultiTaskRegressor"]

# Rows per chunk of the predictive variance (one backward pass per task each).
_STD_CHUNK = 4096


class AdaRegMultiTaskRegressor(RegressorMixin, BaseAdaReg):
    __doc__ = f"""Multitask neural network regressor with adaptive regularization (AdaReg).

    Trains a PyTorch network (through skorch) with a matrix-variate normal
    prior ``MN(0, Sigma_r, Sigma_c)`` on each layer's weight matrix (the last
    layer's rows are the tasks): the loss is the mean squared error plus
    ``reg_lambda * Tr(Omega_r W Omega_c W^T)`` per layer, and every
    ``cov_update_every`` epochs the precisions get their closed-form update
    with eigenvalues clipped to ``[u, v]`` (Algorithm 1 of Zhao et al.,
    2019). The learned row covariance relates the tasks.

    Parameters
    ----------
    {SHARED_PARAMETERS.format(outputs="one value per task", targets="tasks",
                               stratified="", min_train="2 samples")}

    standardize_targets : bool, default=True
        Whether to train on targets centred and scaled to unit variance per
        task (predictions are mapped back). Tasks on different scales (the
        SARCOS torques differ by about 10x) then weigh equally in the loss,
        and the row covariance describes how tasks relate rather than their
        units.

    Attributes
    ----------
    n_outputs_ : int
        Number of tasks.

    noise_variance_ : ndarray of shape (n_outputs,)
        The noise variance of each task, in target units, learned from the
        training data by the Laplace evidence for the strengths the final
        weights were trained under (the given one, or the last update's), with
        the prior's penalty at the linearized network's mode: a strong prior
        gives about the residuals' variance, not more. It is the
        variance that ``predict(X, return_std=True)`` adds to the network's
        own uncertainty. Absent when a regularized weight is neither linear
        nor convolutional (the Laplace posterior needs it).

    target_names_ : ndarray of shape (``n_outputs_``,)
        Names of the tasks: the column names of ``y`` when it is a DataFrame
        whose column names are all strings (defined only then, as
        ``feature_names_in_``). The displays of :mod:`sk_adareg.plotting`
        label the tasks with them.

    {SHARED_ATTRIBUTES.format(p="n_outputs", p_name="one row per task")}

    See Also
    --------
    AdaRegClassifier : The same prior for classification.
    sk_adareg.net.AdaRegNeuralNetRegressor : The skorch net it trains.

    Notes
    -----
    {SHARED_NOTES}

    References
    ----------
    .. [1] H. Zhao, Y.-H. H. Tsai, R. Salakhutdinov and G. J. Gordon,
       "Learning Neural Networks with Adaptive Regularization", NeurIPS 2019.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_adareg import AdaRegMultiTaskRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 5))
    >>> Y = X @ rng.normal(size=(5, 3))
    >>> reg = AdaRegMultiTaskRegressor(max_epochs=30, random_state=0).fit(X, Y)
    >>> reg.row_covariance_.shape
    (3, 3)
    >>> reg.predict(X[:4]).shape
    (4, 3)
    >>> mean, std = reg.predict(X[:4], return_std=True)
    >>> std.shape
    (4, 3)
    """

    _net_class = AdaRegNeuralNetRegressor
    _criterion = torch.nn.MSELoss
    _likelihood = "gaussian"
    _stratify_validation = False
    _validation_score = "r2"
    _predictive = True
    _outputs_doc = "one value per task"
    _parameter_constraints: dict = {  # noqa: RUF012 (scikit-learn convention)
        **BaseAdaReg._parameter_constraints,
        "standardize_targets": ["boolean"],
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
        standardize_targets=True,
    ):
        super().__init__(
            module=module,
            hidden_layer_sizes=hidden_layer_sizes,
            dropout=dropout,
            batch_norm=batch_norm,
            reg_lambda=reg_lambda,
            u=u,
            v=v,
            precision_scale=precision_scale,
            numerator=numerator,
            cov_update_every=cov_update_every,
            adareg_layers=adareg_layers,
            decov_lambda=decov_lambda,
            max_epochs=max_epochs,
            batch_size=batch_size,
            lr=lr,
            optimizer=optimizer,
            weight_decay=weight_decay,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            tol=tol,
            device=device,
            random_state=random_state,
            verbose=verbose,
            callbacks=callbacks,
            keep_batch_history=keep_batch_history,
            warm_start=warm_start,
            cv=cv,
            clip_inputs=clip_inputs,
        )
        self.standardize_targets = standardize_targets

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None, groups=None):
        """Fit the network and the prior to training data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data; with a custom ``module``, any shape
            (n_samples, ...) it accepts. A sparse matrix (any scipy format,
            held as CSR) is densified one batch at a time, never whole.
        y : array-like of shape (n_samples,) or (n_samples, n_tasks)
            Targets. The column names of a DataFrame become ``target_names_``.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the samples: each batch's loss is the
            weighted mean of its samples' losses, as in scikit-learn's MLPs,
            and the Laplace posterior counts a sample ``w`` times. None weighs
            all equally. Their sum must be positive (on the training and the
            validation part) and finite in float32; ``reg_lambda="loo"``
            needs them spread over at least 2 effective samples,
            ``(sum w)^2 / sum w^2`` (``"auto"`` then learns by the evidence).

        groups : array-like of shape (n_samples,), default=None
            Group labels of the samples, for the folds of ``cv`` when it is a
            group splitter (``GroupKFold``, ...), as ``reg_lambda="auto"``
            chooses how to learn the strength: samples of one group then never
            serve to train and to score the same fold's fit.

        Returns
        -------
        self : AdaRegMultiTaskRegressor
            The fitted estimator.
        """
        return self._fit(X, y, sample_weight, groups)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """Train for one epoch on the given data, continuing from the current state.

        As ``MLPRegressor.partial_fit``: the first call builds the network,
        and fixes the targets' standardization (``standardize_targets``) to
        the first batch's means and scales; each call is one pass over ``X``
        in minibatches, without validation split or early stopping. The
        precisions are updated after the first pass and then every
        ``cov_update_every`` passes, counted across calls. ``noise_variance_``,
        ``log_evidence_`` and ``predict(X, return_std=True)``, which need the
        whole training set, are not available after it. It never sees
        the whole training set either, so it cannot learn the strength: with
        ``reg_lambda="auto"`` it trains under the fixed 3e-3.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            A batch of training data, with the features of the first call.
        y : array-like of shape (n_samples,) or (n_samples, n_tasks)
            Its targets, with the tasks of the first call.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the samples, as in :meth:`fit`.

        Returns
        -------
        self : AdaRegMultiTaskRegressor
            The updated estimator.

        Examples
        --------
        >>> import numpy as np
        >>> from sk_adareg import AdaRegMultiTaskRegressor
        >>> rng = np.random.default_rng(0)
        >>> reg = AdaRegMultiTaskRegressor(random_state=0)
        >>> for _ in range(3):
        ...     X = rng.normal(size=(50, 4))
        ...     reg = reg.partial_fit(X, X[:, :2] * 2)
        >>> reg.n_iter_, reg.predict(X[:5]).shape
        (3, (5, 2))
        """
        return self._partial_fit(X, y, sample_weight)

    def _encode_targets(self, X, y, classes=None, reset=True, sample_weight=None):
        if y is None:
            raise ValueError(
                "AdaRegMultiTaskRegressor requires y to be passed, but the target y is None.")
        columns = getattr(y, "columns", None)  # a DataFrame's: the tasks' names
        y = check_array(y, ensure_2d=False, dtype=np.float64, input_name="y")
        if y.ndim not in (1, 2):
            raise ValueError(f"y must be 1-D or 2-D, got an array of shape {y.shape}.")
        if len(y) != X.shape[0]:
            raise ValueError(
                f"X and y have inconsistent numbers of samples: {X.shape[0]} and {len(y)}.")
        if not reset:
            y = y.reshape(len(y), -1)
            if y.shape[1] != self.n_outputs_:
                raise ValueError(
                    f"y has {y.shape[1]} target(s), but {type(self).__name__} was fitted "
                    f"with {self.n_outputs_}.")
            return self._scaled_targets(y), self.n_outputs_
        self._y_ndim_ = y.ndim
        y = y.reshape(len(y), -1)
        self.n_outputs_ = y.shape[1]
        if columns is not None and all(isinstance(name, str) for name in columns):
            self.target_names_ = np.asarray(columns, dtype=object)
        elif hasattr(self, "target_names_"):  # from an earlier fit
            del self.target_names_
        self._target_scaler_ = StandardScaler(with_mean=self.standardize_targets,
                                             with_std=self.standardize_targets).fit(
                                                 y, sample_weight=sample_weight)
        return self._scaled_targets(y), self.n_outputs_

    def _scaled_targets(self, y):
        """The targets as the network trains on them, checked finite."""
        y_train = self._target_scaler_.transform(y).astype(np.float32)
        if not np.isfinite(y_train).all():
            how = "standardized" if self.standardize_targets else "cast to float32"
            raise ValueError(
                f"y is too large to train on: once {how}, as the network sees it, it has "
                "NaN or infinite values. Scale y down.")
        return y_train

    def _net_kwargs(self, n_outputs):
        # The estimator's reg_lambda, not the net's: a partial_fit under "auto" trains at a
        # fixed strength, and a later warm start learns the strengths on the same net.
        if strength_policy(self.reg_lambda).learned:
            # Learned strengths come with a noise variance per task: the loss weighs each
            # task by its precision.
            return {"criterion": TargetWeightedMSELoss, "criterion__n_outputs": n_outputs}
        return {}

    def _set_fitted_attributes(self, net, laplace, bounds):
        super()._set_fitted_attributes(net, laplace, bounds)
        if laplace is None:
            if hasattr(self, "noise_variance_"):  # of an earlier fit
                del self.noise_variance_
            return
        scale = self._target_scaler_.scale_
        scale = np.ones(self.n_outputs_) if scale is None else scale
        self.noise_variance_ = np.asarray(net.noise_variance_, dtype=np.float64) * scale**2

    def predict(self, X, return_std=False):
        """Predict the targets, and their uncertainty.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data.
        return_std : bool, default=False
            Also return the standard deviation of the predictive distribution
            of each target: the linearized Laplace posterior of the
            regularized weights (their uncertainty given the training data,
            the prior and the noise) plus the noise variance
            ``noise_variance_``. Weights without a prior, such as biases, are
            taken as known.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_tasks)
            Predictions, float64, with the shape of the training targets.
        std : ndarray of the shape of ``y``
            Only with ``return_std=True``: standard deviations, in target
            units.
        """
        X = self._check_X_for_predict(X)
        y = self._outputs(X)
        if return_std:
            scale = self._target_scaler_.scale_
            std = np.sqrt(self._predictive_variance(X)) * (1.0 if scale is None else scale)
            return (y.ravel(), std.ravel()) if self._y_ndim_ == 1 else (y, std)
        return y.ravel() if self._y_ndim_ == 1 else y

    def _output_affine(self):
        # The targets' standardization undone where the network runs, in float64.
        scaler = self._target_scaler_
        if scaler.scale_ is None:
            return None
        return scaler.scale_, scaler.mean_

    def _predictive_variance(self, X):
        """Predictive variance of the targets the network trained on, in chunks."""
        if not hasattr(self, "_posterior_"):
            raise ValueError(
                "return_std=True needs the Laplace posterior of the regularized weights, "
                "which fit computes (partial_fit does not: it never sees the whole "
                "training set) when each is the weight of an nn.Linear or nn.Conv2d; "
                f"adareg_layers_ is {self.adareg_layers_}.")
        curvature, reg_lambda, noise = self._posterior_
        net = self.net_
        if self.clip_inputs:  # the uncertainty of the prediction made
            X = clip_to(X, self._clip_bounds())
        curvature = map_curvature(curvature, partial(torch.as_tensor, device=net.device))
        laplace = KroneckerLaplace(curvature, net.priors_, reg_lambda, noise)
        # A sparse X is densified chunk by chunk, as at prediction.
        chunks = [laplace.predictive_variance(
            net.module_, torch.as_tensor(dense(X[i:i + _STD_CHUNK]), device=net.device),
            observation_noise=True).cpu().numpy() for i in range(0, X.shape[0], _STD_CHUNK)]
        return np.concatenate(chunks)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags
