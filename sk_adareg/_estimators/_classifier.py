"""AdaReg for classification."""

# SPDX-License-Identifier: BSD-3-Clause

import math
from functools import partial
from numbers import Real

import numpy as np
import torch
from sklearn.base import ClassifierMixin, _fit_context
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import column_or_1d

from .._params import DEFAULTS
from ..net import AdaRegNeuralNetClassifier
from ._base import SHARED_ATTRIBUTES, SHARED_NOTES, SHARED_PARAMETERS, BaseAdaReg
from ._weights import check_weight_total

__all__ = ["AdaRegClassifier"]


class AdaRegClassifier(ClassifierMixin, BaseAdaReg):
    __doc__ = f"""Neural network classifier with adaptive regularization (AdaReg).

    Trains a PyTorch network (through skorch) with a matrix-variate normal
    prior ``MN(0, Sigma_r, Sigma_c)`` on each layer's weight matrix: the loss is
    the cross-entropy plus ``reg_lambda * Tr(Omega_r W Omega_c W^T)`` per layer,
    and every ``cov_update_every`` epochs the
    precisions ``Omega_r = Sigma_r^-1``, ``Omega_c = Sigma_c^-1`` get their
    closed-form update with eigenvalues clipped to ``[u, v]`` (Algorithm 1 of
    Zhao et al., 2019). The learned row covariance relates the classes.

    Parameters
    ----------
    {SHARED_PARAMETERS.format(outputs="one logit per class", targets="classes",
                               stratified=" (stratified by class)",
                               min_train="2 samples and one per class")}

    class_weight : dict, "balanced" or None, default=None
        Weights of the classes, as in scikit-learn's linear models: a dict
        from class label to a finite weight ``>= 0`` (classes not in it weigh
        1), or
        ``"balanced"``, ``n_samples / (n_classes * np.bincount(y))``. They
        multiply ``sample_weight``. ``partial_fit`` takes a dict only.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.

    {SHARED_ATTRIBUTES.format(p="n_classes", p_name="one row per class")}

    See Also
    --------
    AdaRegMultiTaskRegressor : The same prior for multitask regression.
    sk_adareg.net.AdaRegNeuralNetClassifier : The skorch net it trains.

    Notes
    -----
    The penalty's gradient costs two matrix products per batch; the update
    costs an eigendecomposition of each precision, O(p**3 + d**3), once
    every ``cov_update_every`` epochs.

    {SHARED_NOTES}

    References
    ----------
    .. [1] H. Zhao, Y.-H. H. Tsai, R. Salakhutdinov and G. J. Gordon,
       "Learning Neural Networks with Adaptive Regularization", NeurIPS 2019.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sk_adareg import AdaRegClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = AdaRegClassifier(max_epochs=20, random_state=0).fit(X / 16, y)
    >>> clf.row_covariance_.shape, clf.column_covariance_.shape
    ((10, 10), (100, 100))
    >>> clf.predict_proba(X[:2] / 16).shape
    (2, 10)
    """

    _net_class = AdaRegNeuralNetClassifier
    _criterion = torch.nn.CrossEntropyLoss
    _output_nonlinearity = staticmethod(partial(torch.softmax, dim=-1))
    _likelihood = "categorical"
    _stratify_validation = True
    _validation_score = "accuracy"
    _outputs_doc = "one logit per class"

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
        class_weight=None,
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
        self.class_weight = class_weight

    _parameter_constraints: dict = {  # noqa: RUF012 (scikit-learn convention)
        **BaseAdaReg._parameter_constraints,
        "class_weight": [None, StrOptions({"balanced"}), dict],
    }

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None, groups=None):
        """Fit the network and the prior to training data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data; with a custom ``module``, any shape
            (n_samples, ...) it accepts. A sparse matrix (any scipy format,
            held as CSR) is densified one batch at a time, never whole.
        y : array-like of shape (n_samples,)
            Class labels, of any type.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the samples (times ``class_weight``): each
            batch's loss is the weighted mean of its samples' losses, as in
            scikit-learn's MLPs. None weighs all equally. Their sum must be
            positive (on the training and the validation part) and finite in
            float32.

        groups : array-like of shape (n_samples,), default=None
            Group labels of the samples, for the folds of ``cv`` when it is a
            group splitter (``GroupKFold``, ...), as ``reg_lambda="auto"``
            chooses how to set the strength: samples of one group then never
            serve to train and to score the same fold's fit.

        Returns
        -------
        self : AdaRegClassifier
            The fitted estimator.
        """
        return self._fit(X, y, sample_weight, groups)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Train for one epoch on the given data, continuing from the current state.

        As ``MLPClassifier.partial_fit``: the first call builds the network
        (and needs ``classes``); each call is one pass over ``X`` in
        minibatches, without validation split or early stopping. The
        precisions are updated after the first pass and then every
        ``cov_update_every`` passes, counted across calls. It never sees the
        whole training set, so it cannot learn the strength: with
        ``reg_lambda="auto"`` it trains under the fixed 3e-3.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            A batch of training data, with the features of the first call.
        y : array-like of shape (n_samples,)
            Its labels, among ``classes``.
        classes : array-like of shape (n_classes,), default=None
            All the classes that will ever be seen, without NaN; required on
            the first call, and if given later equal to ``classes_``.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the samples, as in :meth:`fit`.

        Returns
        -------
        self : AdaRegClassifier
            The updated estimator.

        Examples
        --------
        >>> import numpy as np
        >>> from sk_adareg import AdaRegClassifier
        >>> rng = np.random.default_rng(0)
        >>> clf = AdaRegClassifier(random_state=0)
        >>> for _ in range(3):
        ...     X = rng.normal(size=(50, 4))
        ...     clf = clf.partial_fit(X, X[:, 0] > 0, classes=[False, True])
        >>> clf.n_iter_
        3
        """
        if classes is None and not hasattr(self, "net_"):
            raise ValueError("classes must be passed on the first call to partial_fit.")
        return self._partial_fit(X, y, sample_weight, classes=classes)

    def _check_classes(self, classes):
        if classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(
                f"classes={classes!r} is not the same as on the first call of partial_fit, "
                f"{self.classes_!r}.")

    def _class_weighted(self, y, sample_weight, incremental=False):
        """``sample_weight`` times the weight of each sample's class."""
        if self.class_weight is None:
            return sample_weight
        if incremental and isinstance(self.class_weight, str):
            raise ValueError(
                "class_weight='balanced' needs the class counts of all the data; "
                "partial_fit needs class_weight=None or a dict.")
        if isinstance(self.class_weight, dict):
            unknown = [c for c in self.class_weight if c not in set(self.classes_.tolist())]
            if unknown:
                raise ValueError(
                    f"class_weight names classes {unknown!r} that are not among the classes "
                    f"{self.classes_.tolist()!r}.")
        # Classes are encoded 0..k-1: the weights are keyed by their codes.
        weights = self.class_weight
        if isinstance(weights, dict):
            weights = {code: weights.get(label, 1.0) for code, label in enumerate(self.classes_)}
        else:  # "balanced", over the codes present in y
            weights = dict(zip(range(len(self.classes_)), compute_class_weight(
                "balanced", classes=np.arange(len(self.classes_)), y=y), strict=True))
        factor = np.array([weights[code] for code in range(len(self.classes_))], dtype=float)[y]
        weighted = factor if sample_weight is None else sample_weight * factor
        check_weight_total(weighted, f"class_weight={self.class_weight!r} times sample_weight")
        return weighted

    def _check_params(self):
        super()._check_params()
        if isinstance(self.class_weight, dict):
            for label, weight in self.class_weight.items():
                # A negative weight trains toward the other classes; NaN and inf break it.
                if isinstance(weight, bool) or not isinstance(weight, Real) or not (
                        math.isfinite(weight) and weight >= 0):
                    raise ValueError(
                        "class_weight must map each class to a finite weight >= 0; "
                        f"class_weight={self.class_weight!r} gives {label!r} the weight "
                        f"{weight!r}.")

    def _encode_targets(self, X, y, classes=None, reset=True, sample_weight=None):
        if y is None:
            raise ValueError("AdaRegClassifier requires y to be passed, but the target y is None.")
        y = column_or_1d(y, warn=True)
        if len(y) != X.shape[0]:
            raise ValueError(
                f"X and y have inconsistent numbers of samples: {X.shape[0]} and {len(y)}.")
        if y.dtype == object and len(y) and isinstance(y[0], str):
            # scikit-learn sorts such labels, and fails with numpy's bare TypeError
            # when another type (None, NaN, a number) is among them.
            try:
                np.unique(y)
            except TypeError:
                types = sorted({type(label).__name__ for label in y})
                raise TypeError(
                    f"y mixes labels of types {types} that cannot be compared; use labels "
                    "of one type, all strings or all numbers, with no missing values."
                ) from None
        check_classification_targets(y)
        if not reset:
            return self._encode_known(y), len(self.classes_)
        if classes is not None:
            return self._encode_with_classes(y, classes), len(self.classes_)
        self.classes_, encoded = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(
                "AdaRegClassifier needs samples of at least 2 classes in the data, but "
                f"the data contains only one class: {self.classes_[0]!r}."
            )
        return encoded.astype(np.int64), len(self.classes_)

    def _encode_known(self, y):
        """Codes of labels among ``classes_``; a ValueError for any other."""
        codes = np.searchsorted(self.classes_, y)
        codes = np.clip(codes, 0, len(self.classes_) - 1)
        unknown = self.classes_[codes] != y
        if unknown.any():
            raise ValueError(
                f"y contains labels not among the classes {self.classes_.tolist()!r}: "
                f"{np.unique(y[unknown]).tolist()!r}.")
        return codes.astype(np.int64)

    def _encode_with_classes(self, y, classes):
        """partial_fit's first call: ``classes_`` from ``classes``, then codes of ``y``."""
        classes = column_or_1d(classes)
        if any(isinstance(label, float) and math.isnan(label) for label in classes):
            raise ValueError(
                f"classes must not contain NaN, got classes={classes.tolist()!r}.")
        classes = np.unique(classes)
        if len(classes) < 2:
            raise ValueError(
                f"classes must hold at least 2 classes, got {classes.tolist()!r}.")
        self.classes_ = classes
        return self._encode_known(y)

    def _min_train_samples(self, n_outputs):
        """More than one sample, and as many as there are classes."""
        return max(2, n_outputs)

    def _net_kwargs(self, n_outputs):
        # valid_score (ValidationScore) replaces skorch's valid_acc, and weighs the samples.
        return {"classes": np.arange(n_outputs), "callbacks__valid_acc": None}

    def predict_proba(self, X):
        """Class probabilities.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probabilities of the classes in ``classes_`` order, float64.
        """
        proba = self._forward(X)
        # The softmax ran in float32: make each row sum to 1 to float64 precision.
        return proba / proba.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X):
        """Logarithm of the class probabilities.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            ``log(predict_proba(X))``, float64; ``-inf`` where a probability
            underflowed to 0 in float32.
        """
        proba = self.predict_proba(X)
        with np.errstate(divide="ignore"):
            return np.log(proba, out=proba)

    def predict(self, X):
        """Most probable class.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data.

        Returns
        -------
        y : ndarray of shape (n_samples,)
            Predicted labels, of the type of the training labels.
        """
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(axis=1)]
