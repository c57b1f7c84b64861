"""Loaders for the data sets used in the AdaReg paper.

:func:`fetch_sarcos` downloads the SARCOS inverse-dynamics data set from the
data page of Rasmussen & Williams' *Gaussian Processes for Machine Learning*
(GPML), checks its SHA-256 and caches it under scikit-learn's data home.
:func:`load_sarcos` reads a copy that is already on disk.
"""

# SPDX-License-Identifier: BSD-3-Clause

import hashlib
import http.client
import logging
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io
from sklearn.datasets import get_data_home
from sklearn.utils import Bunch

__all__ = [
    "SARCOS_FILES",
    "DatasetDownloadError",
    "RemoteFileMetadata",
    "fetch_sarcos",
    "load_sarcos",
]

logger = logging.getLogger(__name__)


class DatasetDownloadError(ConnectionError):
    """Raised when a data set file cannot be downloaded (offline, refused, HTTP error).

    A subclass of :class:`ConnectionError`, hence of :class:`OSError`, so code that
    catches the errors of scikit-learn's fetchers catches it too.
    """


@dataclass(frozen=True)
class RemoteFileMetadata:
    """Where one data file lives and how to recognise it.

    Parameters
    ----------
    filename : str
        Name of the file in the local cache folder.
    url : str
        Where to download it from.
    sha256 : str
        Expected SHA-256 of the file, in lowercase hexadecimal.
    variable : str
        Name of the MATLAB variable that holds the (n, 28) matrix.
    """

    filename: str
    url: str
    sha256: str
    variable: str


# The official GPML files. Module-level (and a plain dict) so that tests can point
# them at a local server with ``monkeypatch.setitem``.
SARCOS_FILES = {
    # SHA-256 and size (9,964,616 bytes) as recorded in the public repository
    # kaiwen123-yang/CERTO-FDI, src/certo_fdi_reset/datasets/d0.py, which downloaded
    # both GPML files. The same record lists the test file's SHA-256 and size, and
    # those match the copy we verified ourselves; the size also matches the ETag the
    # server sends ("6863d875-980c48", 0x980c48 == 9,964,616).
    "train": RemoteFileMetadata(
        filename="sarcos_inv.mat",
        url="http://www.gaussianprocess.org/gpml/data/sarcos_inv.mat",
        sha256="b8a249733253ba6097372fedee7696833fcf30de42037d5b4a7227f21a6d1d97",
        variable="sarcos_inv",
    ),
    # Verified here with hashlib on a copy of the file (996,776 bytes).
    "test": RemoteFileMetadata(
        filename="sarcos_inv_test.mat",
        url="http://www.gaussianprocess.org/gpml/data/sarcos_inv_test.mat",
        sha256="161a59b5c3b4f4b404584323f181607b2acbe620eb134dc720760dc3f38f5cec",
        variable="sarcos_inv_test",
    ),
}

N_FEATURES = 21
N_TARGETS = 7
_JOINTS = range(1, 8)
FEATURE_NAMES = (
    [f"pos_{j}" for j in _JOINTS] + [f"vel_{j}" for j in _JOINTS] + [f"acc_{j}" for j in _JOINTS]
)
TARGET_NAMES = [f"torque_{j}" for j in _JOINTS]

_CHUNK = 1 << 16
_TIMEOUT_S = 60

DESCR = """\
.. _sarcos_dataset:

SARCOS inverse-dynamics data set
--------------------------------

**Data Set Characteristics:**

:Number of Instances: 44,484 (``subset="train"``) and 4,449 (``subset="test"``)
:Number of Attributes: 21 numeric inputs and 7 numeric targets
:Attribute Information:
    - pos_1 ... pos_7      joint positions of the 7 joints
    - vel_1 ... vel_7      joint velocities
    - acc_1 ... acc_7      joint accelerations
:Target Information:
    - torque_1 ... torque_7  joint torques (one regression task per joint)
:Missing Attribute Values: None

The data relate the state of a seven degrees-of-freedom SARCOS anthropomorphic
robot arm to the torques of its joints (an inverse-dynamics problem). Predicting
the 7 torques is a multi-task regression problem, the one used in Section 5 of
Zhao et al. (2019).

The data are distributed as two MATLAB files on the data page of Rasmussen &
Williams' book, http://www.gaussianprocess.org/gpml/data/ : ``sarcos_inv.mat``
(variable ``sarcos_inv``, 44,484 x 28), the training set, and
``sarcos_inv_test.mat`` (variable ``sarcos_inv_test``, 4,449 x 28), the official
held-out test set. Columns 0-20 are the inputs and columns 21-27 the torques.

.. rubric:: References

- S. Vijayakumar and S. Schaal, "Locally Weighted Projection Regression: An O(n)
  Algorithm for Incremental Real Time Learning in High Dimensional Space", ICML 2000.
- C. E. Rasmussen and C. K. I. Williams, "Gaussian Processes for Machine Learning",
  MIT Press, 2006, Section 2.5.
- H. Zhao, Y.-H. H. Tsai, R. Salakhutdinov and G. J. Gordon, "Learning Neural
  Networks with Adaptive Regularization", NeurIPS 2019.
"""


def fetch_sarcos(
    *,
    data_home=None,
    subset="train",
    download_if_missing=True,
    return_X_y=False,
    as_frame=False,
):
    """Load the SARCOS inverse-dynamics data set, downloading it if needed.

    The file is downloaded once from the GPML book's data page, checked against
    a known SHA-256 and kept in a ``sarcos`` folder under scikit-learn's data
    home; later calls read that copy.

    =================   ==============
    Targets             7 joint torques
    Samples (train)     44,484
    Samples (test)      4,449
    Features            21
    Feature values      real
    =================   ==============

    Read more in the data set description, ``fetch_sarcos().DESCR``.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Where to cache the data; the file goes in its ``sarcos`` subfolder. By
        default scikit-learn's data home, see
        :func:`sklearn.datasets.get_data_home`.

    subset : {"train", "test"}, default="train"
        Which official file to load: ``"train"`` is ``sarcos_inv.mat`` (44,484
        rows), the training set; ``"test"`` is ``sarcos_inv_test.mat`` (4,449
        rows), the official held-out test set.

    download_if_missing : bool, default=True
        If False, raise an :class:`OSError` when the file is not in the cache
        instead of downloading it.

    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.

    as_frame : bool, default=False
        If True, ``data`` and ``target`` are pandas DataFrames and ``frame`` holds
        both (requires pandas).

    Returns
    -------
    dataset : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the following attributes.

        data : ndarray of shape (n_samples, 21) or DataFrame
            Joint positions, velocities and accelerations, as float64.
        target : ndarray of shape (n_samples, 7) or DataFrame
            The 7 joint torques, as float64.
        feature_names : list of str
            ``pos_1..7``, ``vel_1..7``, ``acc_1..7``.
        target_names : list of str
            ``torque_1..7``.
        frame : DataFrame of shape (n_samples, 28) or None
            Data and target together when ``as_frame=True``, else None.
        DESCR : str
            Description of the data set.

    (data, target) : tuple if ``return_X_y`` is True
        The two arrays (or DataFrames) described above.

    Raises
    ------
    ValueError
        If ``subset`` is not ``"train"`` or ``"test"``.
    OSError
        If the file is not cached and ``download_if_missing=False``, or if a
        file (downloaded or cached) does not have the expected SHA-256.
    DatasetDownloadError
        If the file cannot be downloaded (for instance without a network). It is
        a :class:`ConnectionError`, hence an :class:`OSError`; its message says
        how to download the file by hand and read it with :func:`load_sarcos`.

    See Also
    --------
    load_sarcos : Read a SARCOS ``.mat`` file that is already on disk.

    Examples
    --------
    >>> from sk_adareg.datasets import fetch_sarcos
    >>> X, Y = fetch_sarcos(return_X_y=True)  # doctest: +SKIP
    >>> X.shape, Y.shape  # doctest: +SKIP
    ((44484, 21), (44484, 7))
    >>> test = fetch_sarcos(subset="test")  # doctest: +SKIP
    >>> test.target_names[:2]  # doctest: +SKIP
    ['torque_1', 'torque_2']
    """
    if subset not in SARCOS_FILES:
        raise ValueError(f"subset must be one of {sorted(SARCOS_FILES)}, got subset={subset!r}.")
    meta = SARCOS_FILES[subset]
    folder = Path(get_data_home(data_home)) / "sarcos"
    path = folder / meta.filename

    if path.exists():
        # Cheap (10 MB at most) and it also vouches for a file copied in by hand.
        digest = _sha256(path)
        if digest != meta.sha256:
            raise OSError(
                f"The cached file {path} has SHA-256 {digest}, expected {meta.sha256}. "
                "It is corrupted or not the official file: delete it and call "
                "fetch_sarcos again to download it."
            )
    elif not download_if_missing:
        raise OSError(
            f"Data not found in {path} and download_if_missing=False. Call fetch_sarcos "
            f"with download_if_missing=True, or download {meta.url} by hand and read it "
            "with sk_adareg.datasets.load_sarcos(path)."
        )
    else:
        _download(meta, path)

    return _load(path, [meta.variable], return_X_y=return_X_y, as_frame=as_frame)


def load_sarcos(path, *, return_X_y=False, as_frame=False):
    """Read a SARCOS ``.mat`` file that is already on disk.

    Use it with a copy of ``sarcos_inv.mat`` or ``sarcos_inv_test.mat``
    downloaded by hand, for instance on a machine without a network. The file is
    not checked against a checksum.

    Parameters
    ----------
    path : str or path-like
        A MATLAB (v5) file holding a variable ``sarcos_inv`` or
        ``sarcos_inv_test``: a matrix of shape (n_samples, 28) whose first 21
        columns are the inputs and last 7 the joint torques.

    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.

    as_frame : bool, default=False
        If True, ``data`` and ``target`` are pandas DataFrames and ``frame`` holds
        both (requires pandas).

    Returns
    -------
    dataset : :class:`~sklearn.utils.Bunch`
        Same attributes as the Bunch of :func:`fetch_sarcos`: ``data``,
        ``target``, ``feature_names``, ``target_names``, ``frame`` and ``DESCR``.

    (data, target) : tuple if ``return_X_y`` is True
        The two arrays (or DataFrames).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not a readable ``.mat`` file, holds neither variable, or
        the matrix is not of shape (n_samples, 28).

    See Also
    --------
    fetch_sarcos : Download (once) and load the official files.

    Examples
    --------
    >>> import numpy as np, scipy.io, tempfile, os
    >>> from sk_adareg.datasets import load_sarcos
    >>> folder = tempfile.mkdtemp()
    >>> path = os.path.join(folder, "sarcos_inv_test.mat")
    >>> scipy.io.savemat(path, {"sarcos_inv_test": np.ones((5, 28))})
    >>> X, Y = load_sarcos(path, return_X_y=True)
    >>> X.shape, Y.shape
    ((5, 21), (5, 7))
    """
    variables = [meta.variable for meta in SARCOS_FILES.values()]
    return _load(Path(path), variables, return_X_y=return_X_y, as_frame=as_frame)


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _download_error(meta, path, exc):
    return DatasetDownloadError(
        f"Could not download {meta.url} to {path}: {exc}. If this machine is offline, "
        f"download {meta.url} by hand elsewhere and read it with "
        "sk_adareg.datasets.load_sarcos(path), or copy it to "
        f"{path} so that fetch_sarcos finds it."
    )


def _download(meta, path):
    """Download ``meta.url`` to ``path``, only if its SHA-256 is ``meta.sha256``.

    The bytes go to a temporary file in the same folder, renamed to ``path``
    (atomic on one file system) once the checksum matches, so a failed or
    corrupted download never leaves a file where the cache looks.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    logger.info("Downloading %s to %s", meta.url, path)
    # The server (GitHub Pages) may gzip the body on the wire; ask for the bytes
    # of the file itself, which is what the checksum is about.
    request = urllib.request.Request(
        meta.url, headers={"Accept-Encoding": "identity", "User-Agent": "sk-adareg"}
    )
    fd, tmp_name = tempfile.mkstemp(prefix=f".{meta.filename}.", suffix=".part", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            try:
                response = urllib.request.urlopen(request, timeout=_TIMEOUT_S)
            except (OSError, http.client.HTTPException) as exc:
                if isinstance(exc, urllib.error.HTTPError):
                    exc.close()  # an HTTP error response holds an open connection
                raise _download_error(meta, path, exc) from exc
            with response:
                while True:
                    # Only network errors are reported as download errors; an
                    # error while writing (disk full) propagates as it is.
                    try:
                        chunk = response.read(_CHUNK)
                    except (OSError, http.client.HTTPException) as exc:
                        raise _download_error(meta, path, exc) from exc
                    if not chunk:
                        break
                    digest.update(chunk)
                    out.write(chunk)
        if digest.hexdigest() != meta.sha256:
            raise OSError(
                f"The file downloaded from {meta.url} has SHA-256 {digest.hexdigest()}, "
                f"expected {meta.sha256}. It was discarded; nothing was written to {path}."
            )
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _read_matrix(path, variables):
    # loadmat reports a missing file as a bare OSError; say what is missing.
    if not path.is_file():
        raise FileNotFoundError(f"No SARCOS file at {path}.")
    try:
        contents = scipy.io.loadmat(path)
    except (ValueError, NotImplementedError, TypeError, scipy.io.matlab.MatReadError) as exc:
        raise ValueError(f"Could not read {path} as a MATLAB .mat file: {exc}") from exc
    for name in variables:
        if name in contents:
            matrix = np.asarray(contents[name], dtype=np.float64)
            break
    else:
        found = sorted(key for key in contents if not key.startswith("__"))
        raise ValueError(
            f"{path} holds no variable named {' or '.join(map(repr, variables))}; found {found}."
        )
    n_columns = N_FEATURES + N_TARGETS
    if matrix.ndim != 2 or matrix.shape[1] != n_columns:
        raise ValueError(
            f"Variable {name!r} in {path} has shape {matrix.shape}; expected "
            f"(n_samples, {n_columns}): {N_FEATURES} inputs then {N_TARGETS} torques."
        )
    return matrix


def _load(path, variables, *, return_X_y, as_frame):
    matrix = _read_matrix(path, variables)
    data = np.ascontiguousarray(matrix[:, :N_FEATURES])
    target = np.ascontiguousarray(matrix[:, N_FEATURES:])
    frame = None
    if as_frame:
        try:
            import pandas as pd
        except ImportError as exc:
            raise ImportError("as_frame=True requires pandas: pip install pandas") from exc
        data = pd.DataFrame(data, columns=list(FEATURE_NAMES))
        target = pd.DataFrame(target, columns=list(TARGET_NAMES))
        frame = pd.concat([data, target], axis=1)
    if return_X_y:
        return data, target
    return Bunch(
        data=data,
        target=target,
        frame=frame,
        feature_names=list(FEATURE_NAMES),
        target_names=list(TARGET_NAMES),
        DESCR=DESCR,
    )
