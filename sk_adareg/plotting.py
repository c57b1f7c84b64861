"""Displays of what AdaReg learned, in scikit-learn's ``Display`` style.

- :class:`CovarianceDisplay`: heatmap of the learned row or column
  covariance (or correlation) of a regularized weight, with class or task
  names on the axes (Fig. 5 and Fig. 8 of the paper); more than 30 units
  are reordered by hierarchical clustering so that groups show.
- :class:`TrainingCurveDisplay`: per-epoch data loss, penalty, prior
  objective and range of the precision eigenvalues against their bounds
  ``u`` and ``v``, with the epochs of the precision updates marked (Fig. 3).

The figures a display creates use matplotlib's constrained layout, so that
long or rotated tick labels are not cut off in a saved image.

Matplotlib is an optional dependency (``pip install sk-adareg[plot]``): it is
imported when a display is drawn, never when this module is imported.
"""

# SPDX-License-Identifier: BSD-3-Clause

import numpy as np
from sklearn.covariance import empirical_covariance

from ._fitted import fitted_model
from .metrics import covariance_to_correlation

__all__ = ["CovarianceDisplay", "TrainingCurveDisplay"]

_WHICH = ("row", "column")
_KINDS = ("correlation", "covariance")
_SOURCES = ("prior", "weights")
_PANELS = ("loss", "penalty", "objective", "precision")
_LOSS_NAMES = {"CrossEntropyLoss": "cross-entropy", "MSELoss": "mean squared error",
               # Learned strengths weigh each target by its noise precision.
               "TargetWeightedMSELoss": "weighted mean squared error"}
#: ``order="auto"`` clusters matrices larger than this: below it, the units'
#: own order is readable; above it, a heatmap in index order looks like noise.
_CLUSTER_ABOVE = 30
#: Optimal leaf ordering costs O(k^3): 0.05 s at 300 units, 2 s at 1000.
_OPTIMAL_LEAF_ORDERING_UP_TO = 500


def _pyplot(caller):
    """Import matplotlib.pyplot, or say how to install it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            f"{caller} requires matplotlib: install it with `pip install matplotlib` "
            "or `pip install sk-adareg[plot]`."
        ) from exc
    return plt


def _log_scale(ax):
    """Log y-axis with plain tick labels ("0.3", not "3x10^-1")."""
    from matplotlib.ticker import LogFormatter

    class PlainLogFormatter(LogFormatter):
        # LogFormatter decides which ticks get a label; write those as %g.
        def __call__(self, x, pos=None):
            return f"{x:g}" if super().__call__(x, pos) else ""

    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(PlainLogFormatter(labelOnlyBase=False))
    ax.yaxis.set_minor_formatter(PlainLogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))


def _check_option(name, value, options):
    if not (isinstance(value, str) and value in options):
        raise ValueError(f"{name} must be one of {options}, got {name}={value!r}.")


def _cluster_order(matrix):
    """Order of the units of a covariance or correlation that groups correlated ones.

    Average-linkage hierarchical clustering with the distance
    ``1 - |correlation|``, so that units that move together, or in opposite
    directions, end up in one cluster; within the tree, the leaves are put in
    the order that places positively correlated units side by side (optimal
    leaf ordering on ``1 - correlation``, for up to 500 units). A heatmap of
    ``matrix[order][:, order]`` shows a block structure as blocks along the
    diagonal.

    Parameters
    ----------
    matrix : array-like of shape (k, k)
        A symmetric covariance or correlation matrix. Units with zero
        variance count as uncorrelated with every other one.

    Returns
    -------
    order : ndarray of shape (k,) of int
        A permutation of ``range(k)``.
    """
    from scipy.cluster.hierarchy import leaves_list, linkage, optimal_leaf_ordering
    from scipy.spatial.distance import squareform

    matrix = np.nan_to_num(np.asarray(matrix, dtype=np.float64), nan=0.0, posinf=0.0,
                           neginf=0.0)
    n = len(matrix)
    if n < 3:
        return np.arange(n)
    # The correlation of a covariance, or of a correlation (a no-op); a unit
    # without variance (a dead ReLU's column) correlates with nothing.
    scale = np.sqrt(np.clip(np.diag(matrix), 0.0, None))
    outer = np.outer(scale, scale)
    corr = np.divide(matrix, outer, out=np.zeros_like(matrix), where=outer > 0)
    corr = np.clip((corr + corr.T) / 2, -1.0, 1.0)
    np.fill_diagonal(corr, 1.0)
    tree = linkage(squareform(1.0 - np.abs(corr), checks=False), method="average")
    if n <= _OPTIMAL_LEAF_ORDERING_UP_TO:
        # Signed: inside a cluster, the units of one sign come before those of the other.
        tree = optimal_leaf_ordering(tree, squareform(1.0 - corr, checks=False))
    return leaves_list(tree)


class CovarianceDisplay:
    """Heatmap of a learned row or column covariance (or correlation) matrix.

    The row covariance ``Sigma_r`` of the prior on the last layer relates the
    outputs (classes or tasks); the column covariance ``Sigma_c`` relates
    the layer's inputs (hidden units, or features for a linear model).
    Create it with :meth:`from_estimator`; all parameters are stored as
    attributes.

    Parameters
    ----------
    matrix : ndarray of shape (k, k)
        The symmetric matrix to draw.
    labels : array-like of shape (k,), default=None
        Names of the rows and columns; ``None`` numbers them from 0.
    kind : {"correlation", "covariance"}, default="correlation"
        What ``matrix`` holds (the default is that of :meth:`from_estimator`);
        sets the colour range (``[-1, 1]`` for a
        correlation, ``[-m, m]`` with ``m = max |matrix|`` for a
        covariance, so that white is 0 either way) and the colorbar's label.
    axis_label : str, default=None
        Label of both axes, e.g. ``"class"``.
    title : str, default=None
        Title of the axes.

    Attributes
    ----------
    order_ : ndarray of shape (k,) of int
        The order in which the units are drawn: ``im_.get_array()`` is
        ``matrix[order_][:, order_]``, the label of drawn row ``i`` is
        ``labels[order_[i]]``. ``arange(k)`` unless :meth:`plot` reordered
        them; pass it as ``order`` to draw another matrix in the same order.
    im_ : matplotlib AxesImage
        The heatmap; ``im_.get_array()`` is ``matrix``, reordered by
        ``order_``.
    text_ : ndarray of shape (k, k) of matplotlib Text, or None
        The values written in the cells, ``None`` when not written.
    colorbar_ : matplotlib Colorbar or None
        The colorbar, ``None`` when not drawn.
    ax_ : matplotlib Axes
        Axes with the heatmap.
    figure_ : matplotlib Figure
        Figure containing the heatmap.

    See Also
    --------
    sk_adareg.metrics.covariance_to_correlation : The correlation of a covariance.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from sklearn.datasets import load_digits
    >>> from sk_adareg import AdaRegClassifier
    >>> from sk_adareg.plotting import CovarianceDisplay
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = AdaRegClassifier(max_epochs=3, random_state=0).fit(X[:300] / 16, y[:300])
    >>> disp = CovarianceDisplay.from_estimator(clf, which="row", kind="correlation")
    >>> disp.im_.get_array().shape, [t.get_text() for t in disp.ax_.get_xticklabels()][:3]
    ((10, 10), ['0', '1', '2'])
    >>> plt.close("all")
    """

    def __init__(self, matrix, *, labels=None, kind="correlation", axis_label=None, title=None):
        self.matrix = matrix
        self.labels = labels
        self.kind = kind
        self.axis_label = axis_label
        self.title = title

    def plot(self, *, ax=None, order="auto", cmap="RdBu_r", colorbar=True,
             include_values=None, values_format=".2f", max_tick_labels=30,
             xticks_rotation=None, im_kw=None, text_kw=None):
        """Draw the heatmap.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Where to draw; ``None`` makes a new figure, with constrained
            layout so that no label is cut off. On a figure of your own, use
            ``layout="constrained"`` for the same.
        order : {"auto", "cluster"}, array-like of int or None, default="auto"
            The order in which to draw the units. ``"cluster"``: by
            hierarchical clustering of their correlations (average linkage
            on ``1 - |correlation|``), so that groups of units that move
            together, or oppositely, form blocks along the diagonal.
            ``"auto"``: ``"cluster"`` for more than 30 units, whose index
            order means nothing to a reader, ``None`` otherwise. ``None``:
            the order of ``matrix``. An array: a permutation of the units,
            e.g. ``order_`` of another display. The title says when the units
            are reordered.
        cmap : str or matplotlib Colormap, default="RdBu_r"
            A diverging colormap: with the symmetric colour range, its centre
            (white) is 0, red positive and blue negative.
        colorbar : bool, default=True
            Whether to draw a colorbar.
        include_values : bool, default=None
            Whether to write the values in the cells; ``None`` writes them
            for matrices up to 10 x 10.
        values_format : str, default=".2f"
            Format of the written values.
        max_tick_labels : int, default=30
            Up to this size every row and column is labelled; a larger
            matrix gets at most about 10 evenly spaced labels (0: none).
        xticks_rotation : float, default=None
            Rotation of the column labels in degrees; ``None`` turns labels
            longer than 3 characters by 45 degrees.
        im_kw : dict, default=None
            Passed on to ``ax.imshow``; overrides the defaults (e.g.
            ``{"vmin": -0.1, "vmax": 0.1}`` to zoom on weak correlations).
        text_kw : dict, default=None
            Passed on to ``ax.text`` for the written values.

        Returns
        -------
        display : CovarianceDisplay
            ``self``, with ``order_``, ``im_``, ``text_``, ``colorbar_``,
            ``ax_`` and ``figure_`` set.

        Raises
        ------
        ValueError
            If ``kind`` or ``order`` is not one of its options, ``matrix`` is
            not square or ``labels`` has the wrong length.
        """
        plt = _pyplot("CovarianceDisplay.plot")
        from matplotlib.ticker import MaxNLocator

        _check_option("kind", self.kind, _KINDS)
        matrix = np.asarray(self.matrix, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.size == 0:
            raise ValueError(
                f"matrix must be a non-empty square matrix, got shape {matrix.shape}.")
        n = matrix.shape[0]
        labels = np.arange(n) if self.labels is None else np.asarray(self.labels)
        if labels.shape != (n,):
            raise ValueError(
                f"labels must have one entry per row of the {n} x {n} matrix, got "
                f"{labels.shape[0] if labels.ndim == 1 else labels.shape} labels."
            )
        labels = [str(label) for label in labels]
        self.order_, order_note = _resolve_order(order, matrix)
        matrix = matrix[np.ix_(self.order_, self.order_)]
        labels = [labels[i] for i in self.order_]

        if ax is None:
            fig, ax = plt.subplots(layout="constrained")
        else:
            fig = ax.figure

        limit = 1.0 if self.kind == "correlation" else float(np.abs(matrix).max()) or 1.0
        im_kw = {"cmap": cmap, "vmin": -limit, "vmax": limit, "interpolation": "nearest",
                 **(im_kw or {})}
        self.im_ = ax.imshow(matrix, **im_kw)

        self.text_ = None
        if include_values is None:
            include_values = n <= 10
        if include_values:
            self.text_ = np.empty((n, n), dtype=object)
            # White text on the dark ends of the diverging colormap.
            vmin, vmax = self.im_.get_clim()
            dark = 0.6 * max(abs(vmin), abs(vmax))
            for i in range(n):
                for j in range(n):
                    color = "white" if abs(matrix[i, j]) > dark else "black"
                    kwargs = {"ha": "center", "va": "center", "color": color,
                              "fontsize": "small", **(text_kw or {})}
                    self.text_[i, j] = ax.text(j, i, _format(matrix[i, j], values_format),
                                               **kwargs)

        if n <= max_tick_labels:
            ticks = np.arange(n)
        elif max_tick_labels <= 0:
            ticks = np.array([], dtype=int)
        else:
            ticks = MaxNLocator(nbins=min(max_tick_labels, 10), integer=True).tick_values(0, n - 1)
            ticks = ticks[(ticks >= 0) & (ticks <= n - 1)].astype(int)
        if xticks_rotation is None:
            xticks_rotation = 45 if max((len(label) for label in labels), default=0) > 3 else 0
        ax.set_xticks(ticks, [labels[t] for t in ticks], rotation=xticks_rotation,
                      ha="right" if xticks_rotation else "center",
                      rotation_mode="anchor")
        ax.set_yticks(ticks, [labels[t] for t in ticks])
        if self.axis_label is not None:
            ax.set_xlabel(self.axis_label)
            ax.set_ylabel(self.axis_label)
        title = self.title
        if order_note is not None:
            title = order_note if title is None else f"{title}\n({order_note})"
        if title is not None:
            ax.set_title(title)

        self.colorbar_ = None
        if colorbar:
            self.colorbar_ = fig.colorbar(self.im_, ax=ax)
            self.colorbar_.set_label(self.kind)
        self.ax_ = ax
        self.figure_ = fig
        return self

    @classmethod
    def from_estimator(cls, estimator, *, which="row", kind="correlation", layer=None,
                       source="prior", labels=None, ax=None, **plot_kw):
        """Draw the row or column covariance (or correlation) learned by an estimator.

        Parameters
        ----------
        estimator : AdaRegClassifier, AdaRegMultiTaskRegressor, Pipeline or AdaReg skorch net
            A fitted estimator, a fitted pipeline whose last step is one, or a
            fitted net of :mod:`sk_adareg.net`.
        which : {"row", "column"}, default="row"
            ``"row"``: the matrix over the weight's rows (output units:
            classes or tasks for the last layer, Fig. 5 and Fig. 8a);
            ``"column"``: over its columns (input units, Fig. 8b).
        kind : {"correlation", "covariance"}, default="correlation"
            Draw the covariance, or the correlation it implies (see
            :func:`~sk_adareg.metrics.covariance_to_correlation`).
        layer : str, default=None
            Name of a regularized weight, one of ``estimator.adareg_layers_``;
            ``None`` takes the last one (the one of ``row_covariance_``).
        source : {"prior", "weights"}, default="prior"
            ``"prior"``: the covariance learned by the prior (``Sigma_r`` or
            ``Sigma_c``, Fig. 8). ``"weights"``: the second moment of the
            learned weight itself, ``W W^T / d`` over rows or ``W^T W / p``
            over columns, centred at 0 as the prior is (Fig. 5 draws its
            correlation). It is the maximum-likelihood ``Sigma_r`` when
            ``Sigma_c = I``.
        labels : array-like, default=None
            Names of the rows/columns drawn. ``None``: for the rows of the
            output layer, ``classes_`` of a classifier and ``target_names_``
            (the column names of a DataFrame ``y``) or ``"task 0"``,
            ``"task 1"``, ... for a regressor; for the columns of the first
            layer of the default network, ``feature_names_in_`` when the
            estimator saw them (in a pipeline, the names the steps before
            it give their outputs); unit indices otherwise. The axis label says
            which (e.g. ``"class"``, ``"unit of hidden layer 1"``).
        ax : matplotlib Axes, default=None
            Where to draw; ``None`` makes a new figure.
        **plot_kw
            Passed on to :meth:`plot` (``order``, ``cmap``, ``colorbar``,
            ``include_values``, ``values_format``, ``max_tick_labels``,
            ``xticks_rotation``, ``im_kw``, ``text_kw``). A matrix of more
            than 30 units, e.g. the column covariance of a hidden layer, is
            drawn with its units clustered by correlation (``order="auto"``).

        Returns
        -------
        display : CovarianceDisplay
            The drawn display; ``display.matrix`` is what was drawn.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If the estimator is not fitted.
        ValueError
            If ``which``, ``kind``, ``source`` or ``layer`` is not one of its
            options, or ``labels`` has the wrong length.
        """
        _check_option("which", which, _WHICH)
        _check_option("kind", kind, _KINDS)
        _check_option("source", source, _SOURCES)
        model = fitted_model(estimator)
        names = model.layers
        if layer is None:
            layer = names[-1]
        elif layer not in names:
            raise ValueError(
                f"layer must name a regularized weight, one of {names}; got layer={layer!r}."
            )
        if source == "prior":
            cov = getattr(model.priors[layer], f"{which}_covariance").cpu().numpy()
        else:
            w = model.weight(layer)
            # Rows (or columns) are the variables, the other axis the observations.
            cov = empirical_covariance(w.T if which == "row" else w, assume_centered=True)
        matrix = covariance_to_correlation(cov) if kind == "correlation" else cov

        default_labels, axis_label = model.axis_labels(layer, which, len(matrix))
        labels = default_labels if labels is None else labels
        symbol = {"row": r"$\Sigma_r$", "column": r"$\Sigma_c$"}[which]
        if source == "prior":
            title = f"{which.capitalize()} {kind} of the prior ({symbol} of {layer})"
        else:
            moment = r"$WW^\top/d$" if which == "row" else r"$W^\top W/p$"
            title = f"{which.capitalize()} {kind} of the weights ({moment}, {layer})"
        display = cls(matrix, labels=labels, kind=kind, axis_label=axis_label, title=title)
        return display.plot(ax=ax, **plot_kw)


def _resolve_order(order, matrix):
    """The permutation that ``order`` asks for, and what the title should say of it."""
    n = len(matrix)
    if isinstance(order, str):
        _check_option("order", order, ("auto", "cluster"))
        if order == "cluster" or n > _CLUSTER_ABOVE:
            return _cluster_order(matrix), "units clustered by |correlation|"
        return np.arange(n), None
    if order is None:
        return np.arange(n), None
    perm = np.asarray(order)
    if not (perm.shape == (n,) and perm.dtype.kind in "iu"
            and np.array_equal(np.sort(perm), np.arange(n))):
        raise ValueError(
            f'order must be "auto", "cluster", None or a permutation of the {n} units '
            f"(integers 0 to {n - 1}), got {order!r}.")
    return perm, None if np.array_equal(perm, np.arange(n)) else "units reordered"


def _format(value, values_format):
    """``format(value, values_format)``, without the sign of a value that rounds to zero."""
    text = format(value, values_format)
    try:
        return format(0.0, values_format) if float(text) == 0 else text
    except ValueError:  # a format float() cannot read back, e.g. ".1%"
        return text


class TrainingCurveDisplay:
    """Training trajectory of an AdaReg model, epoch by epoch (Fig. 3 of the paper).

    Up to four panels sharing the epoch axis: the data loss on the training
    (and validation) data, the penalty ``Tr(Omega_r W Omega_c W^T)``, the
    prior's objective (penalty minus the log-determinant terms), and the
    range of the eigenvalues of both precisions between their bounds ``u``
    and ``v``, whose legend says what an eigenvalue on a bound means: the
    prior penalises some direction of the weights as little (``u``) or as
    much (``v``) as it may, and would go further without the bound. Dotted
    vertical lines mark the epochs whose end updated the precisions. Create
    it with :meth:`from_estimator` or :meth:`from_history`; all parameters
    are stored as attributes.

    Parameters
    ----------
    epochs : array-like of shape (n_epochs,)
        Epoch numbers (from 1).
    train_loss : array-like of shape (n_epochs,)
        Data loss on the training data, without the penalty.
    valid_loss : array-like of shape (n_epochs,), default=None
        Data loss on the validation data.
    penalty : array-like of shape (n_epochs,), default=None
        The penalty at each epoch's end (summed over the regularized weights).
    objective : array-like of shape (n_epochs,), default=None
        The prior's part of objective (4) at each epoch's end.
    row_precision_range, column_precision_range : array-like of shape (n_epochs, 2), default=None
        Smallest and largest eigenvalue of the row (column) precisions.
    cov_update_epochs : array-like of int, default=None
        Epochs at whose end the precisions were updated.
    precision_bounds : tuple of float (u, v), default=None
        The bounds of the eigenvalues, drawn in the precision panel.
    loss_name : str, default="data loss"
        Label of the loss, e.g. ``"cross-entropy"``.
    name : str, default=None
        Name of the model, in the title.
    precision_scale : {"unit_mean", "learned"}, default=None
        The prior's ``precision_scale``, for the legend of the bounds: with
        ``"unit_mean"`` the precisions have mean eigenvalue 1, so an
        eigenvalue at ``u`` penalises its direction ``1 / u`` times less than
        the mean one (at ``v``, ``v`` times more). ``None``: not said.

    Attributes
    ----------
    axes_ : ndarray of matplotlib Axes of shape (n_panels,)
        The panels, top to bottom.
    ax_ : matplotlib Axes
        The top panel (the loss one, unless ``panels`` says otherwise).
    lines_ : dict of str to matplotlib Line2D
        The curves: ``"train_loss"``, ``"valid_loss"``, ``"penalty"``,
        ``"objective"``, ``"row_precision_min"``, ``"row_precision_max"``,
        ``"column_precision_min"``, ``"column_precision_max"``, those drawn.
    update_lines_ : dict of str to list of matplotlib Line2D
        Per panel, the vertical lines at ``cov_update_epochs``.
    figure_ : matplotlib Figure
        Figure containing the panels.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from sklearn.datasets import load_digits
    >>> from sk_adareg import AdaRegClassifier
    >>> from sk_adareg.plotting import TrainingCurveDisplay
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = AdaRegClassifier(max_epochs=8, cov_update_every=2, random_state=0)
    >>> disp = TrainingCurveDisplay.from_estimator(clf.fit(X[:300] / 16, y[:300]))
    >>> [ax.get_ylabel() for ax in disp.axes_]
    ['cross-entropy', 'penalty', 'prior objective', 'precision eigenvalue']
    >>> [float(line.get_xdata()[0]) for line in disp.update_lines_["loss"]]
    [2.0, 4.0, 6.0, 8.0]
    >>> plt.close("all")
    """

    def __init__(self, epochs, train_loss, *, valid_loss=None, penalty=None, objective=None,
                 row_precision_range=None, column_precision_range=None,
                 cov_update_epochs=None, precision_bounds=None, loss_name="data loss",
                 name=None, precision_scale=None):
        self.epochs = epochs
        self.train_loss = train_loss
        self.valid_loss = valid_loss
        self.penalty = penalty
        self.objective = objective
        self.row_precision_range = row_precision_range
        self.column_precision_range = column_precision_range
        self.cov_update_epochs = cov_update_epochs
        self.precision_bounds = precision_bounds
        self.loss_name = loss_name
        self.name = name
        self.precision_scale = precision_scale

    def _panel_data(self):
        """Validated arrays; a panel is available when its data is."""
        epochs = np.asarray(self.epochs, dtype=np.float64)
        n = len(epochs)
        if epochs.ndim != 1 or n == 0:
            raise ValueError(f"epochs must be a non-empty 1-D array, got shape {epochs.shape}.")
        data = {}
        for key, shape in (("train_loss", (n,)), ("valid_loss", (n,)), ("penalty", (n,)),
                           ("objective", (n,)), ("row_precision_range", (n, 2)),
                           ("column_precision_range", (n, 2))):
            value = getattr(self, key)
            if value is None:
                continue
            value = np.asarray(value, dtype=np.float64)
            if value.shape != shape:
                raise ValueError(
                    f"{key} must have shape {shape} (one entry per epoch), got {value.shape}."
                )
            data[key] = value
        if "train_loss" not in data:
            raise ValueError("train_loss is required.")
        available = ["loss"] + [p for p in ("penalty", "objective") if p in data]
        if "row_precision_range" in data or "column_precision_range" in data:
            available.append("precision")
        return epochs, data, available

    def plot(self, *, ax=None, panels=None):
        """Draw the panels.

        Parameters
        ----------
        ax : matplotlib Axes or array-like of Axes, default=None
            One Axes per panel; ``None`` makes a new figure with the panels
            stacked and sharing the epoch axis, in constrained layout.
        panels : list of {"loss", "penalty", "objective", "precision"}, default=None
            What to draw, in order; ``None`` draws every panel with data, or
            only ``"loss"`` when ``ax`` is a single Axes.

        Returns
        -------
        display : TrainingCurveDisplay
            ``self``, with ``axes_``, ``ax_``, ``lines_``, ``update_lines_``
            and ``figure_`` set.
        """
        plt = _pyplot("TrainingCurveDisplay.plot")
        epochs, data, available = self._panel_data()
        if panels is None:
            single_ax = ax is not None and np.asarray(ax, dtype=object).size == 1
            panels = ["loss"] if single_ax else available
        panels = list([panels] if isinstance(panels, str) else panels)
        if not panels or len(set(panels)) != len(panels):
            raise ValueError(f"panels must be a non-empty list without repeats, got {panels!r}.")
        for panel in panels:
            _check_option("panels entry", panel, _PANELS)
            if panel not in available:
                raise ValueError(f"panel {panel!r} has no data; the panels with data are "
                                 f"{available}.")

        own_figure = ax is None
        if own_figure:
            # Room for the precision panel's legend, drawn above it.
            height = 1.2 + 2.2 * len(panels) + 0.8 * ("precision" in panels[1:])
            fig, axes = plt.subplots(len(panels), 1, sharex=True, squeeze=False,
                                     figsize=(7, height), layout="constrained")
            axes = axes.ravel()
        else:
            axes = np.asarray(ax, dtype=object).reshape(-1)
            if len(axes) != len(panels):
                raise ValueError(f"ax must hold one Axes per panel ({len(panels)} for "
                                 f"{panels}), got {len(axes)}.")
            fig = axes[0].figure

        self.lines_ = {}
        self.update_lines_ = {}
        updates = [] if self.cov_update_epochs is None else np.asarray(self.cov_update_epochs)
        for i, (panel, axis) in enumerate(zip(panels, axes, strict=True)):
            getattr(self, f"_plot_{panel}")(axis, epochs, data)
            # One legend entry for the markers, in the top panel.
            self.update_lines_[panel] = [
                axis.axvline(e, color="0.55", linestyle=":", linewidth=1, zorder=0,
                             label="precision update" if i == 0 and k == 0 else None)
                for k, e in enumerate(updates)
            ]
            axis.grid(True, axis="y", alpha=0.3)
            if panel == "precision" and i > 0 and own_figure:
                # Its long legend would hide the curves: above the panel, where
                # constrained layout makes room for it.
                axis.legend(loc="lower left", bbox_to_anchor=(0, 1), fontsize="small",
                            borderaxespad=0.3)
            else:
                axis.legend(loc="best", fontsize="small")
        axes[-1].set_xlabel("epoch")
        title = "Training with AdaReg" if self.name is None else f"Training of {self.name}"
        axes[0].set_title(title)

        self.axes_ = axes
        self.ax_ = axes[0]
        self.figure_ = fig
        return self

    def _plot_loss(self, ax, epochs, data):
        (self.lines_["train_loss"],) = ax.plot(epochs, data["train_loss"], color="C0",
                                                label="training")
        losses = [data["train_loss"]]
        if "valid_loss" in data:
            (self.lines_["valid_loss"],) = ax.plot(epochs, data["valid_loss"], color="C1",
                                                    label="validation")
            losses.append(data["valid_loss"])
        if np.all(np.concatenate(losses) > 0):
            _log_scale(ax)  # as Fig. 3: late epochs stay readable
        ax.set_ylabel(self.loss_name)

    def _plot_penalty(self, ax, epochs, data):
        (self.lines_["penalty"],) = ax.plot(
            epochs, data["penalty"], color="C2",
            label=r"$\mathrm{Tr}(\Omega_r W \Omega_c W^\top)$")
        ax.set_ylabel("penalty")

    def _plot_objective(self, ax, epochs, data):
        (self.lines_["objective"],) = ax.plot(
            epochs, data["objective"], color="C4",
            label=r"penalty $- m_r \log|\Omega_r| - m_c \log|\Omega_c|$")
        ax.set_ylabel("prior objective")

    def _plot_precision(self, ax, epochs, data):
        for which, color, symbol in (("row", "C0", r"\Omega_r"), ("column", "C3", r"\Omega_c")):
            values = data.get(f"{which}_precision_range")
            if values is None:
                continue
            label = f"{which} precision ${symbol}$ (min to max)"
            # Steps: the values recorded at an epoch's end hold during the next epoch.
            style = {"color": color, "linewidth": 1, "drawstyle": "steps-post"}
            (self.lines_[f"{which}_precision_min"],) = ax.plot(
                epochs, values[:, 0], label=label, **style)
            (self.lines_[f"{which}_precision_max"],) = ax.plot(epochs, values[:, 1], **style)
            ax.fill_between(epochs, values[:, 0], values[:, 1], color=color, alpha=0.2,
                            linewidth=0, step="post")
        if self.precision_bounds is not None:
            u, v = self.precision_bounds
            low, high = "as little as allowed", "as much as allowed"
            if self.precision_scale == "unit_mean":
                # Mean eigenvalue 1: a bound is a ratio to the average direction's penalty.
                low += f" ({1 / u:.3g}× less than the mean)"
                high += f" ({v:.3g}× more than the mean)"
            ax.axhline(u, color="0.3", linestyle="--", linewidth=1,
                       label=f"$u$ = {u:g}: a direction on it is penalised {low}")
            ax.axhline(v, color="0.3", linestyle="--", linewidth=1,
                       label=f"$v$ = {v:g}: a direction on it is penalised {high}")
        _log_scale(ax)
        ax.set_ylabel("precision eigenvalue")

    @classmethod
    def from_history(cls, history, *, precision_bounds=None, loss_name="data loss", name=None,
                     precision_scale=None, ax=None, panels=None):
        """Draw the training curves recorded in a skorch history.

        Parameters
        ----------
        history : skorch.History or list of dict
            Per-epoch records of an AdaReg net (``history_`` of a fitted
            estimator). It needs ``epoch`` and ``train_data_loss`` at every
            epoch; ``valid_loss``, ``adareg_penalty``, ``adareg_objective``,
            ``row_precision_min``/``_max``, ``column_precision_min``/``_max``
            and ``cov_update`` are drawn when recorded at every epoch.
        precision_bounds : tuple of float (u, v), default=None
            The eigenvalue bounds, drawn in the precision panel.
        loss_name : str, default="data loss"
            Label of the loss.
        name : str, default=None
            Name of the model, in the title.
        precision_scale : {"unit_mean", "learned"}, default=None
            The prior's ``precision_scale``, for the legend of the bounds.
        ax : matplotlib Axes or array-like of Axes, default=None
            See :meth:`plot`.
        panels : list of str, default=None
            See :meth:`plot`.

        Returns
        -------
        display : TrainingCurveDisplay
            The drawn display.

        Raises
        ------
        ValueError
            If the history is empty or lacks ``epoch`` or ``train_data_loss``.
        """
        rows = list(history)

        def column(key, required=False):
            # A key missing at some epoch (e.g. an interrupted last epoch) is
            # treated as missing: skorch's history[:, key] would drop those rows.
            if rows and all(key in row for row in rows):
                return np.asarray([row[key] for row in rows], dtype=np.float64)
            if required:
                raise ValueError(
                    f"history must record {key!r} at every epoch (an AdaReg net's history); "
                    f"it has {len(rows)} epochs"
                    + (f" with keys {sorted(k for k in rows[-1] if k != 'batches')}." if rows
                       else ": fit the model first.")
                )
            return None

        epochs = column("epoch", required=True)
        train_loss = column("train_data_loss", required=True)
        ranges = {}
        for which in ("row", "column"):
            low, high = column(f"{which}_precision_min"), column(f"{which}_precision_max")
            ranges[which] = None if low is None or high is None else np.column_stack([low, high])
        update = column("cov_update")
        display = cls(
            epochs, train_loss, valid_loss=column("valid_loss"),
            penalty=column("adareg_penalty"), objective=column("adareg_objective"),
            row_precision_range=ranges["row"], column_precision_range=ranges["column"],
            cov_update_epochs=None if update is None else epochs[update.astype(bool)],
            precision_bounds=precision_bounds, loss_name=loss_name, name=name,
            precision_scale=precision_scale,
        )
        return display.plot(ax=ax, panels=panels)

    @classmethod
    def from_estimator(cls, estimator, *, ax=None, panels=None):
        """Draw the training curves of a fitted AdaReg estimator.

        Parameters
        ----------
        estimator : AdaRegClassifier, AdaRegMultiTaskRegressor, Pipeline or AdaReg skorch net
            A fitted estimator, a fitted pipeline whose last step is one (or a
            fitted net of :mod:`sk_adareg.net`). Its history gives the curves,
            its ``u``, ``v`` and ``precision_scale`` the bounds drawn in the
            precision panel and their legend. The validation loss is drawn
            when the estimator held out validation data
            (``early_stopping=True``).
        ax : matplotlib Axes or array-like of Axes, default=None
            See :meth:`plot`.
        panels : list of str, default=None
            See :meth:`plot`.

        Returns
        -------
        display : TrainingCurveDisplay
            The drawn display.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If the estimator is not fitted.
        """
        model = fitted_model(estimator)
        loss_name = _LOSS_NAMES.get(model.criterion, model.criterion)
        if model.standardized_targets:
            loss_name += "\n(standardized targets)"
        prior = model.priors[model.layers[0]]
        return cls.from_history(model.history, precision_bounds=model.bounds,
                                loss_name=loss_name, name=model.name,
                                precision_scale=getattr(prior, "precision_scale", None),
                                ax=ax, panels=panels)
