"""The per-epoch work of AdaReg training, as skorch callbacks.

:class:`~sk_adareg.net.AdaRegMixin` puts them among a net's default callbacks,
in this order: :class:`DivergenceCheck`, :class:`PriorUpdate` and
:class:`StrengthUpdate` (after skorch's own scoring, before the user's
callbacks) and :class:`PriorRefresh` (after every other callback). Each keeps
its own per-fit state, reset when training begins and dropped when it ends, so
that a fitted net holds no stray tensor.
They work on any net with the mixin; replace or disable one the skorch way,
e.g. ``net.set_params(callbacks__prior_refresh=None)``. The estimators also
add :class:`DropBatchHistory` after the user's callbacks, unless
``keep_batch_history=True``.
"""

# SPDX-License-Identifier: BSD-3-Clause

import math
import sys
import warnings

import torch
from sklearn.metrics import accuracy_score, r2_score
from skorch.callbacks import Callback, PrintLog
from skorch.utils import Ansi, data_from_dataset, to_numpy
from torch.utils.data import Subset
from tqdm import tqdm

from ._data import chunked_forward
from .distributed import max_across, process_count, sum_across
from .exceptions import CollapseWarning, TrainingDivergedError

__all__ = ["DivergenceCheck", "DropBatchHistory", "EpochProgressBar", "EpochTable", "PriorRefresh",
           "PriorUpdate", "StrengthUpdate", "ValidationScore", "update_steps"]


def _all_finite(tensors):
    """Whether every entry of ``tensors`` is finite, from one reduction and one host read.

    ``0 * x`` is exactly zero for a finite ``x`` and NaN for NaN or an infinity, so
    the sum is zero exactly when all are finite; unlike a sum of the values, it
    cannot overflow. One ``isfinite().all()`` per tensor cost twice as much.
    """
    flat = [t.detach().reshape(-1) for t in tensors]
    return not flat or bool((torch.cat(flat) * 0).sum() == 0)


class DivergenceCheck(Callback):
    """Stop training when a loss or a weight becomes NaN or infinite.

    At the end of each epoch it raises
    :class:`~sk_adareg.exceptions.TrainingDivergedError`, naming the epoch,
    the learning rate and ``reg_lambda``, when a training loss of the epoch
    was not finite, or a weight after the epoch's last step is not. In
    data-parallel training (:mod:`sk_adareg.distributed`) the processes
    agree on it, and all of them raise when one has found it.

    Examples
    --------
    >>> import torch
    >>> from sk_adareg.net import AdaRegNeuralNet
    >>> net = AdaRegNeuralNet(torch.nn.Linear(3, 2), torch.nn.MSELoss, lr=1e30,
    ...                       optimizer=torch.optim.SGD, train_split=None, verbose=0)
    >>> net.fit(torch.randn(8, 3), 1e20 * torch.randn(8, 2))
    Traceback (most recent call last):
    ...
    sk_adareg.exceptions.TrainingDivergedError: The training loss became NaN or infinite ...
    """

    def on_epoch_end(self, net, **kwargs):
        batch_losses = net.history[-1, "batches", :, "train_loss"]
        failures = ("training loss", "network's weights",
                    "training loss or weights of another process")
        failed = 0
        if not all(math.isfinite(loss) for loss in batch_losses):
            failed = 1
        # The last step of an epoch can break the weights after its loss was read.
        elif not _all_finite(net.module_.parameters()):
            failed = 2
        if process_count(net) > 1:
            # All processes stop together (one that went on would wait forever for the
            # others): every one takes part in the reduction, whatever it found itself.
            elsewhere = max_across(failed, net.priors_.strengths.device)
            failed = failed or min(3, elsewhere)
        if failed:
            failed = failures[failed - 1]
            raise _diverged(net, failed)


def _diverged(net, what):
    """The error for ``what`` (e.g. "network's weights") turned NaN or infinite in training."""
    return TrainingDivergedError(
        f"The {what} became NaN or infinite at epoch {len(net.history)}. "
        f"Lower the learning rate (lr={net.lr!r}) or the prior's strength "
        f"(reg_lambda={net.reg_lambda!r}), or scale the inputs.")


#: Fewest prior updates before its last epoch that a fit with learned strengths makes
#: every ``cov_update_every`` epochs; a shorter fit updates at steps instead.
MIN_UPDATES = 3


def _call_epochs(net):
    """The epochs of the net's current training call: ``epochs`` of ``partial_fit``, or
    ``max_epochs``."""
    return net.__dict__.get("_call_epochs") or int(net.max_epochs)


def update_steps(net, dataset):
    """The optimizer steps after which a short fit updates its prior; None: every few epochs.

    A fit with learned strengths that would update its prior fewer than
    :data:`MIN_UPDATES` times before its last epoch (``max_epochs`` below about
    ``3 * cov_update_every``) updates it after :data:`MIN_UPDATES` evenly spaced
    optimizer steps instead, the last one three quarters of the way through the
    fit: the strengths adapt in fits of any length, and the final weights train
    under the strengths reported. Fixed strengths keep the epoch schedule, and so
    does a ``partial_fit(epochs=k)`` of fewer epochs than ``max_epochs``: a part
    of a longer training, updated every ``cov_update_every`` epochs of the history.

    Parameters
    ----------
    net : AdaRegMixin
    dataset : skorch.dataset.Dataset or None
        The training data.

    Returns
    -------
    steps : set of int or None
        Step numbers counted from 1 within the training call.
    """
    if dataset is None or not net.strength_policy.learned:
        return None
    epochs = _call_epochs(net)
    if epochs < int(net.max_epochs) or (epochs - 1) // int(net.cov_update_every) >= MIN_UPDATES:
        return None
    # skorch's training iterator takes iterator_train__batch_size over batch_size.
    size = int(vars(net).get("iterator_train__batch_size", net.batch_size))
    size = len(dataset) if size == -1 else size  # skorch's -1: the whole data set
    batches = (len(dataset) // size if vars(net).get("iterator_train__drop_last")
               else math.ceil(len(dataset) / size))
    total = epochs * max(batches, 1)
    every = total / (MIN_UPDATES + 1)
    return {step for step in (round(every * j) for j in range(1, MIN_UPDATES + 1))
            if 0 < step < total}


class PriorUpdate(Callback):
    """The closed-form precision update every ``cov_update_every`` epochs, and its records.

    At the end of every ``net.cov_update_every``-th epoch it updates the
    precisions (``net.update_priors()``); a short fit with learned strengths
    updates them after a few evenly spaced optimizer steps instead
    (:func:`update_steps`), recording ``cov_update`` in that batch's row. It
    warns
    (:class:`~sk_adareg.exceptions.CollapseWarning`, once per layer and fit)
    when a regularized weight is collapsing: its norm fell below
    ``collapse_ratio`` times its largest value at an update of this fit while
    every eigenvalue of one of its precisions sits at the upper bound ``v``.
    At the end of every epoch it records ``train_data_loss``, ``cov_update``,
    ``adareg_penalty``, ``adareg_objective`` and the extreme eigenvalues of
    the precisions (``row_precision_min`` ...) in the history. In
    data-parallel training, ``train_data_loss`` is over the batches of all
    the processes.

    Parameters
    ----------
    collapse_ratio : float, default=0.25
        The fraction of its peak norm below which a layer counts as collapsing.

    Attributes
    ----------
    peak_norms_ : dict of str to float
        The largest norm of each regularized weight at the updates of this fit.
    collapse_warned_ : set of str
        The weights warned about in this fit.
    """

    def __init__(self, collapse_ratio=0.25):
        self.collapse_ratio = collapse_ratio

    def initialize(self):
        self._reset()
        return self

    def _reset(self):
        self.peak_norms_ = {}
        self.collapse_warned_ = set()
        # The steps of a short fit's updates (update_steps), planned at its first epoch.
        self._planned, self._steps, self._step, self._updated = False, None, 0, False
        # Batch-size-weighted sum of the epoch's data losses, kept as a tensor and added
        # to in place (one operation per batch): reading it per batch would synchronise
        # a GPU, and keeping the losses would keep their storage (a batch's worth each).
        self._data_loss_sum, self._data_loss_count = None, 0

    def on_train_begin(self, net, **kwargs):
        self._reset()

    def on_epoch_begin(self, net, dataset_train=None, **kwargs):
        if not self._planned:
            self._planned, self._steps = True, update_steps(net, dataset_train)
        self._updated = False

    def on_batch_end(self, net, batch=None, training=False, y_pred=None, **kwargs):
        # Through __dict__: skorch's __setattr__ costs microseconds at every batch.
        loss, net.__dict__["batch_data_loss_"] = net.batch_data_loss_, None
        if not training:
            return
        if self._steps is not None:
            self._step += 1
            if self._step in self._steps:
                # DivergenceCheck looks at the epoch's end; an update from weights that
                # diverged in this epoch would fail on them first, with a ValueError.
                if not _all_finite(net.module_.parameters()):
                    raise _diverged(net, "network's weights")
                net.update_priors()
                net.history.record_batch("cov_update", True)
                self._updated = True
        if loss is None:
            return
        # The loss without the penalty, as get_loss computed it for this step.
        if self._data_loss_sum is None:
            self._data_loss_sum = torch.zeros((), dtype=torch.float64, device=loss.device)
        self._data_loss_sum.add_(loss, alpha=len(y_pred))
        self._data_loss_count += len(y_pred)

    def on_epoch_end(self, net, **kwargs):
        epoch = len(net.history)
        if self._steps is None:
            update = epoch % int(net.cov_update_every) == 0
            if update:
                net.update_priors()
        else:
            update = self._updated
        if update:
            self._warn_if_collapsing(net, epoch)
        loss_sum, count = self._data_loss_sum, self._data_loss_count
        if process_count(net) > 1:
            # Each process saw its share of the batches: the loss is over all of them.
            device = net.priors_.strengths.device
            total = sum_across(torch.stack([torch.as_tensor(
                value if value is not None else 0.0, dtype=torch.float64, device=device)
                for value in (loss_sum, count)]))
            loss_sum, count = total[0], int(total[1])
        if count:
            net.history.record("train_data_loss", float(loss_sum) / count)
        self._data_loss_sum, self._data_loss_count = None, 0
        net.history.record("cov_update", update)
        for key, value in net.priors_.diagnostics(net.regularized_module).items():
            name = key if key.endswith(("_min", "_max")) else f"adareg_{key}"
            net.history.record(name, value)

    def on_train_end(self, net, **kwargs):
        # An interrupted epoch leaves a partial sum behind.
        self._data_loss_sum, self._data_loss_count = None, 0

    def _warn_if_collapsing(self, net, epoch):
        for name, prior in net.priors_.items():
            if name in self.collapse_warned_:
                continue
            norm = net.regularized_module.get_parameter(name).detach().norm().item()
            peak = max(self.peak_norms_.get(name, 0.0), norm)
            self.peak_norms_[name] = peak
            pinned = [side for side, eig in (("row", prior.row_eigenvalues),
                                             ("column", prior.column_eigenvalues))
                      if eig.min().item() >= prior.v * (1 - 1e-9)]
            if pinned and norm < self.collapse_ratio * peak:
                self.collapse_warned_.add(name)
                warnings.warn(
                    f"AdaReg is collapsing {name!r}: at epoch {epoch} its norm has fallen "
                    f"from {peak:.3g} to {norm:.3g} while every eigenvalue of its "
                    f"{pinned[0]} precision sits at the upper bound v={prior.v:g}. The "
                    "paper's prior rewards shrinking the weights without limit; use "
                    "precision_scale='unit_mean', or lower reg_lambda "
                    f"(now {net.reg_lambda!r}) or v.",
                    CollapseWarning,
                    stacklevel=2,
                )


class StrengthUpdate(Callback):
    """Learned strengths (``reg_lambda="evidence"`` or ``"loo"``): update them during training.

    After each precision update it asks the net's strength policy
    (:mod:`sk_adareg._strength`) to refit the strengths to the current
    weights: the Laplace evidence sets the strength of every prior (and, for
    regression, the noise variance of every target;
    :func:`~sk_adareg.laplace.fit_hyperparameters`); with ``"loo"`` all the
    strengths are then multiplied by the factor that minimizes the approximate
    leave-one-out squared error of the linearized network
    (:mod:`sk_adareg._strength._loo`) and the targets are weighed alike. It
    records ``log_evidence`` (and ``loo_scale``, ``loo_mse``) in the history.
    The precision update of the last epoch is not followed by one, so the final
    weights are trained under the strengths the net reports (``reg_lambda_``).
    On data of more than :data:`~sk_adareg._strength.UPDATE_ROWS` samples
    the curvature comes from a random subset of that size. It does nothing for
    a numeric ``reg_lambda``.

    Raises
    ------
    TrainingDivergedError
        If the evidence, the curvature or the weights are not finite.
    """

    def initialize(self):
        self._dataset, self._updated = None, False
        # The last epoch of this training call, and a short fit's planned update steps
        # (the ones PriorUpdate updates the precisions at, counted the same way).
        self._last_epoch, self._planned, self._steps, self._step = None, False, None, 0
        return self

    def on_train_begin(self, net, **kwargs):
        self._last_epoch, self._planned, self._steps, self._step = None, False, None, 0

    def on_epoch_begin(self, net, dataset_train=None, **kwargs):
        self._dataset, self._updated = dataset_train, False
        if not self._planned:
            self._planned, self._steps = True, update_steps(net, dataset_train)
            # The call's last epoch (a warm start's follow the earlier fits' in the
            # history); none for a partial_fit(epochs=k) shorter than max_epochs, a
            # part of a longer training that learns at every precision update.
            epochs = _call_epochs(net)
            if epochs >= int(net.max_epochs):
                self._last_epoch = len(net.history) - 1 + epochs

    def on_batch_end(self, net, training=False, **kwargs):
        if not training or self._steps is None:
            return
        self._step += 1
        if self._step in self._steps:  # after PriorUpdate's update at this step
            self._update(net, self._dataset)
            self._updated = True

    def on_epoch_end(self, net, dataset_train=None, **kwargs):
        last_epoch = self._last_epoch is not None and len(net.history) >= self._last_epoch
        if self._updated or last_epoch or not net.history[-1].get("cov_update"):
            return
        self._update(net, dataset_train)

    def on_train_end(self, net, **kwargs):
        self._dataset = None

    def _update(self, net, dataset):
        policy = net.strength_policy
        if not policy.learned:
            return
        try:
            records = policy.update(net, dataset)
        except FloatingPointError as exc:
            raise TrainingDivergedError(
                f"The Laplace evidence became NaN or infinite at epoch {len(net.history)} "
                f"({exc}). Lower the learning rate (lr={net.lr!r}) or scale the inputs."
            ) from exc
        net.prior_changed()
        for key, value in records.items():
            net.history.record(key, value)


class PriorRefresh(Callback):
    """Make the precisions fit the weights the net ends training with.

    The last block of the coordinate descent: at the end of training it
    updates the precisions once more when the regularized weights are not
    those of the end of the last epoch (a callback such as
    ``EarlyStopping(load_best=True)`` restored earlier ones, or training was
    interrupted mid-epoch), or when no update has happened yet in the net's
    history (fewer epochs than ``cov_update_every``); it then records
    ``prior_refresh`` in the last epoch's row. The history, not the call,
    counts: ``partial_fit`` calls of one epoch each update the precisions
    after the first and then every ``cov_update_every`` epochs. The mixin
    runs it after every other callback, so it sees the restored weights.
    """

    def initialize(self):
        self._reset()
        return self

    def _reset(self):
        self._last_weights = None

    def on_train_begin(self, net, **kwargs):
        self._reset()

    def on_epoch_end(self, net, **kwargs):
        # A device-side copy of the regularized weights; no host synchronisation.
        self._last_weights = [net.regularized_module.get_parameter(name).detach().clone()
                              for name in net.priors_.names]

    def on_train_end(self, net, **kwargs):
        weights = [net.regularized_module.get_parameter(name) for name in net.priors_.names]
        # PriorUpdate (when it runs: it records cov_update) updates at epoch
        # cov_update_every, so only shorter histories need reading.
        updated = (len(net.history) >= net.cov_update_every
                   and "cov_update" in net.history[-1]) or any(
            row.get("cov_update") or row.get("prior_refresh") for row in net.history)
        if not updated or self._last_weights is None or not all(
                torch.equal(w, last) for w, last in zip(weights, self._last_weights,
                                                         strict=True)):
            net.update_priors()
            if len(net.history):
                net.history.record("prior_refresh", True)
        self._reset()


class DropBatchHistory(Callback):
    """Drop the per-batch records of each epoch from the history at the epoch's end.

    skorch records every batch (``history[-1, "batches"]``); a long fit on
    many batches makes the history, and the pickle of the net, large. The
    per-epoch records, which include ``train_loss`` (the mean over the
    epoch's batches) and ``train_batch_count``, stay. Put it after every
    callback that reads the epoch's batches at its end (skorch's scoring,
    :class:`DivergenceCheck`): it leaves ``history[-1, "batches"]`` empty.
    An interrupted epoch keeps its batches.

    Examples
    --------
    >>> import torch
    >>> from sk_adareg.callbacks import DropBatchHistory
    >>> from sk_adareg.net import AdaRegNeuralNet
    >>> net = AdaRegNeuralNet(torch.nn.Linear(3, 2), torch.nn.MSELoss, max_epochs=2,
    ...                       batch_size=4, train_split=None, verbose=0,
    ...                       callbacks=[DropBatchHistory()])
    >>> net = net.fit(torch.randn(20, 3), torch.randn(20, 2))
    >>> net.history[-1, "batches"], net.history[-1, "train_batch_count"]
    ([], 5)
    """

    def on_epoch_end(self, net, **kwargs):
        net.history[-1]["batches"] = []


class ValidationScore(Callback):
    """Record the score of the network on the validation data at the end of each epoch.

    The score is the estimators' ``score``: accuracy of the most probable
    class (``kind="accuracy"``) or the coefficient of determination R²
    averaged over the targets (``kind="r2"``, invariant to the per-target
    scaling the regressor trains with), weighted by the validation samples'
    weights when the validation dataset has them. It is recorded as
    ``valid_score``; nothing happens when the net has no validation data.

    Parameters
    ----------
    kind : {"accuracy", "r2"}
        The score.

    Examples
    --------
    >>> import torch
    >>> from skorch.dataset import ValidSplit
    >>> from sk_adareg.callbacks import ValidationScore
    >>> from sk_adareg.net import AdaRegNeuralNetRegressor
    >>> net = AdaRegNeuralNetRegressor(torch.nn.Linear(3, 2), max_epochs=3, verbose=0,
    ...                                train_split=ValidSplit(4),
    ...                                callbacks=[ValidationScore("r2")])
    >>> X = torch.randn(40, 3)
    >>> net = net.fit(X, X[:, :2] * 2)
    >>> len(net.history[:, "valid_score"])
    3
    """

    def __init__(self, kind):
        self.kind = kind

    def initialize(self):
        if self.kind not in ("accuracy", "r2"):
            raise ValueError(f"kind must be 'accuracy' or 'r2', got {self.kind!r}.")
        return self

    def on_epoch_end(self, net, dataset_valid=None, **kwargs):
        if dataset_valid is None:
            return
        X, y = data_from_dataset(dataset_valid)
        y = to_numpy(y)
        weights = getattr(dataset_valid, "sample_weight", None)
        if isinstance(dataset_valid, Subset):  # skorch's ValidSplit
            weights = getattr(dataset_valid.dataset, "sample_weight", None)
            weights = None if weights is None else weights[dataset_valid.indices]
        outputs, _ = chunked_forward(net.module_, X, net.device)
        if self.kind == "accuracy":
            score = accuracy_score(y, outputs.argmax(axis=1), sample_weight=weights)
        else:
            score = r2_score(y, outputs.reshape(y.shape), sample_weight=weights)
        net.history.record("valid_score", float(score))


class EpochProgressBar(Callback):
    """A progress bar over the epochs of a fit, with the latest losses.

    The estimators use it with ``verbose=1``. It writes to standard error
    through tqdm, one update per epoch, with ``train_loss`` (and
    ``valid_loss`` and ``valid_score`` when recorded) as the bar's postfix.

    Parameters
    ----------
    total : int or None, default=None
        The number of epochs the bar counts to; None: the net's ``max_epochs``.
    """

    def __init__(self, total=None):
        self.total = total

    def initialize(self):
        self.bar_ = None
        return self

    def on_train_begin(self, net, **kwargs):
        self.bar_ = tqdm(total=self.total or net.max_epochs, unit="epoch", leave=True,
                         dynamic_ncols=True)

    def on_epoch_end(self, net, **kwargs):
        if self.bar_ is None:
            return
        row = net.history[-1]
        self.bar_.set_postfix({key: f"{row[key]:.4g}" for key in
                               ("train_loss", "valid_loss", "valid_score") if key in row},
                              refresh=False)
        self.bar_.update(1)

    def on_train_end(self, net, **kwargs):
        if self.bar_ is not None:
            self.bar_.close()
        self.bar_ = None


#: History keys that :class:`EpochTable` leaves out of its table: per-epoch
#: diagnostics (they made lines of 190 characters) and keys recorded at some
#: epochs only, which would shift the table's columns.
DIAGNOSTIC_KEYS = (
    "adareg_penalty", "adareg_objective", "row_precision_min", "row_precision_max",
    "column_precision_min", "column_precision_max", "log_evidence", "loo_scale", "loo_mse",
    "prior_refresh", "train_batch_count", "valid_batch_count",
)


class EpochTable(PrintLog):
    """skorch's per-epoch table (``PrintLog``), short, and coloured only on a terminal.

    The estimators use it with ``verbose=2``. It prints the epoch, the losses,
    the validation score, whether the precisions were updated and the
    duration; the AdaReg diagnostics (``adareg_penalty``,
    ``row_precision_min``, ...) stay in the history but are not printed.
    skorch highlights the best losses with ANSI colour codes, which are
    noise in a log file or a notebook's captured output: here they are
    written only when standard output is a terminal.

    Parameters
    ----------
    keys_ignored : str or list of str, default=None
        History keys not to print, besides ``DIAGNOSTIC_KEYS`` and those
        skorch's ``PrintLog`` leaves out.
    sink : callable, default=print
        Where each line goes.
    tablefmt : str, default="simple"
        Format of the table (see the ``tabulate`` package).
    floatfmt : str, default=".4f"
        Format of the numbers.
    stralign : str, default="right"
        Alignment of the columns of strings.
    color : bool, default=None
        Whether to colour the best losses; ``None``: when ``sink`` is
        ``print`` and ``sys.stdout`` is a terminal.

    Examples
    --------
    >>> from sk_adareg.callbacks import EpochTable
    >>> table = EpochTable(color=False).initialize()
    >>> print(table.table({"epoch": 1, "train_loss": 0.5, "train_loss_best": True,
    ...                    "adareg_penalty": 2.0, "dur": 0.1}))
      epoch    train_loss     dur
    -------  ------------  ------
          1        0.5000  0.1000
    """

    def __init__(self, keys_ignored=None, sink=print, tablefmt="simple", floatfmt=".4f",
                 stralign="right", color=None):
        super().__init__(keys_ignored=keys_ignored, sink=sink, tablefmt=tablefmt,
                         floatfmt=floatfmt, stralign=stralign)
        self.color = color

    def initialize(self):
        super().initialize()
        self.keys_ignored_.update(DIAGNOSTIC_KEYS)
        return self

    def _colored(self):
        if self.color is not None:
            return bool(self.color)
        # Looked up at each use: pytest and notebooks swap sys.stdout.
        isatty = getattr(sys.stdout, "isatty", None)
        return self.sink is print and isatty is not None and isatty()

    def format_row(self, row, key, color):
        """The formatted value of ``row[key]``, coloured as skorch does only on a terminal."""
        if self._colored():
            return super().format_row(row, key, color)
        text = super().format_row(row, key, "")
        # skorch appends the reset code even with no colour before it.
        return text.replace(Ansi.ENDC.value, "") if isinstance(text, str) else text
