"""Loaders for the data sets used in the AdaReg paper and for multi-target benchmarks.

:func:`fetch_sarcos` downloads the SARCOS inverse-dynamics data set from the
data page of Rasmussen & Williams' *Gaussian Processes for Machine Learning*
(GPML), checks its SHA-256 and caches it under scikit-learn's data home.
:func:`load_sarcos` reads a copy that is already on disk.
:func:`fetch_mulan` does the same for the 14 sets of the Mulan multi-target
regression collection (ARFF files of github.com/tsoumakas/mulan).
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
import scipy.io.arff
from sklearn.datasets import get_data_home
from sklearn.utils import Bunch

__all__ = [
    "MULAN_FILES",
    "MULAN_N_TARGETS",
    "SARCOS_FILES",
    "DatasetDownloadError",
    "RemoteFileMetadata",
    "fetch_mulan",
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
    variable : str or None, default=None
        For the SARCOS ``.mat`` files, the name of the MATLAB variable that holds
        the (n, 28) matrix; None for other files.
    """

    filename: str
    url: str
    sha256: str
    variable: str | None = None


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


_SARCOS_HINT = (
    "download {url} by hand elsewhere and read it with sk_adareg.datasets.load_sarcos(path), "
    "or copy it to {path} so that fetch_sarcos finds it."
)


def _download_error(meta, path, exc, hint=_SARCOS_HINT):
    return DatasetDownloadError(
        f"Could not download {meta.url} to {path}: {exc}. If this machine is offline, "
        + hint.format(url=meta.url, path=path)
    )


def _download(meta, path, hint=_SARCOS_HINT):
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
                raise _download_error(meta, path, exc, hint) from exc
            with response:
                received = 0
                while True:
                    # Only network errors are reported as download errors; an
                    # error while writing (disk full) propagates as it is.
                    try:
                        chunk = response.read(_CHUNK)
                    except (OSError, http.client.HTTPException) as exc:
                        raise _download_error(meta, path, exc, hint) from exc
                    if not chunk:
                        break
                    received += len(chunk)
                    digest.update(chunk)
                    out.write(chunk)
                # A connection closed early can end the body without an error.
                announced = response.headers.get("Content-Length")
                if announced is not None and announced.isdigit() and received < int(announced):
                    exc = http.client.IncompleteRead(b"", int(announced) - received)
                    raise _download_error(meta, path, exc, hint)
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
    # A text file fails in loadmat with any of these, by scipy version (IndexError: 1.13).
    except (ValueError, NotImplementedError, TypeError, IndexError,
            scipy.io.matlab.MatReadError) as exc:
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


# ---------------------------------------------------------------------------
# The Mulan multi-target regression collection
# ---------------------------------------------------------------------------

# The collection's repository, pinned to one commit so that the files (and their
# checksums) cannot change under us.
MULAN_COMMIT = "43f6389095ad71984264db4387a8074b22bc7d4a"
MULAN_URL = (
    "https://raw.githubusercontent.com/tsoumakas/mulan/" + MULAN_COMMIT
    + "/data/multi-target/{name}.arff"
)
# SHA-256 of data/multi-target/<name>.arff at that commit.
_MULAN_SHA256 = {
    "andro": "08f0e2757b2a7635136ac58ea76c4e801ffeb0a81116b29e6ac169228c8aa132",
    "atp1d": "ed935ba476c4994ba40d6712d590fb389709cceba7cf7dbbb33ef28c84762bb9",
    "atp7d": "77d59efdf4a6329c71c854684de7409d0d61d3bebccd6821ae268c1620c95b2d",
    "edm": "37777374030f592a53cbcf597ae0aa6105238a1c696dd04ccb229be982f6bc5b",
    "enb": "8277d9094ccda6da2cd1c2b79c90ca201fa3695e75aca173ffc43138dcab0071",
    "jura": "78ce7655f49073e3622ef7ba25657b3900a2b279ba3d48cb82e353e56bac3d2a",
    "oes10": "37f9fa429f6f2ece2cdfd08e84649971e61ee0b4e75d66166c082bacf3d36251",
    "oes97": "aee74aa656c709f797f45d817c41996be94c2e924c0f1e7ad315fb7e2f1a9498",
    "osales": "c9c656c7e0131ad1c3f427cea7828f2ed315ec80da6d6f43c05b40b87257efe5",
    "scpf": "f7d3c7b134c0e5ddff56a7900371cb44328f9b7f550203c4a556929203ea81e9",
    "sf1": "8f78e64aca64f7c0c7ba4d9b2f114feb2a6f72e6116e87d7dab94e7cab426d93",
    "sf2": "2c1ac60f3e612b0e0bc9884ffe98a205ce07ca83f3f89c019220fde350396795",
    "slump": "3a9a9eba416b06c7668153b44073a0e165afbfc9e526d53b174e5f97a707ca6c",
    "wq": "4a0906b4a51bf52c986790ddaf261ba51faa3da9cffe823badabd88d38d252fe",
}
# Module-level plain dicts, so that tests can add a set served locally with
# ``monkeypatch.setitem``. The targets are the last k attributes of each file.
MULAN_FILES = {
    name: RemoteFileMetadata(
        filename=f"{name}.arff", url=MULAN_URL.format(name=name), sha256=sha256
    )
    for name, sha256 in _MULAN_SHA256.items()
}
MULAN_N_TARGETS = {
    "andro": 6, "atp1d": 6, "atp7d": 6, "edm": 2, "enb": 2, "jura": 3, "oes10": 16,
    "oes97": 16, "osales": 12, "scpf": 3, "sf1": 3, "sf2": 3, "slump": 3, "wq": 14,
}

_MULAN_HINT = (
    "download {url} by hand elsewhere and copy it to {path} (or straight into the "
    "data_home folder) so that fetch_mulan finds it."
)

MULAN_DESCR = """\
.. _mulan_dataset:

Mulan multi-target regression data set: {name}
-----------------------------------------{underline}

**Data Set Characteristics:**

:Number of Instances: {n_samples}
:Number of Attributes: {n_features} inputs ({n_nominal} nominal) and {n_targets} numeric targets
:Missing Attribute Values: {n_missing} missing input values (NaN)
:Source: ``data/multi-target/{name}.arff`` of https://github.com/tsoumakas/mulan
    (commit {commit})

The Mulan project's collection of multi-target regression data sets, gathered
from UCI, Kaggle and other sources (see the collection's README for each set's
origin and terms). In every file the targets are the last k attributes.
Nominal inputs are integer codes in the order the ARFF header declares their
values (``data``), or pandas categoricals with those categories (``frame``).

.. rubric:: References

- E. Spyromitros-Xioufis, G. Tsoumakas, W. Groves and I. Vlahavas,
  "Multi-target regression via input space expansion: treating targets as
  inputs", Machine Learning 104:55-98, 2016.
"""


def fetch_mulan(
    name,
    *,
    data_home=None,
    download_if_missing=True,
    return_X_y=False,
    as_frame=False,
):
    """Load a multi-target regression data set of the Mulan collection.

    The file ``data/multi-target/<name>.arff`` of the collection's repository
    (github.com/tsoumakas/mulan, pinned to commit ``43f6389``) is downloaded
    once, checked against a known SHA-256 and kept in a ``mulan`` folder under
    scikit-learn's data home; later calls read that copy with no network.

    A file ``<name>.arff`` placed straight in ``data_home`` is found too, so a
    folder holding a copy of the collection can be read in place, for instance
    ``fetch_mulan("enb", data_home="../shared/data/mulan")``. Any file used,
    downloaded or not, must have the expected SHA-256.

    ====== =======  ======  =======  ===============================
    name   samples  inputs  targets  notes
    ====== =======  ======  =======  ===============================
    andro  49       30      6        sea-water quality
    atp1d  337      411     6        airline ticket prices
    atp7d  296      411     6        airline ticket prices
    edm    154      16      2        electrical discharge machining
    enb    768      8       2        building energy
    jura   359      15      3        soil metal concentrations
    oes10  403      298     16       occupational employment
    oes97  334      263     16       occupational employment
    osales 639      401     12       online sales; missing inputs
    scpf   1137     23      3        see-click-fix; missing inputs
    sf1    323      10      3        solar flares; nominal inputs
    sf2    1066     10      3        solar flares; nominal inputs
    slump  103      7       3        concrete slump
    wq     1060     16      14       river water quality
    ====== =======  ======  =======  ===============================

    Parameters
    ----------
    name : str
        The data set, one of the names above (the file's name without
        ``.arff``).

    data_home : str or path-like, default=None
        Where to cache the data: the file goes in its ``mulan`` subfolder, and
        a file straight in ``data_home`` is used as well. By default
        scikit-learn's data home, see :func:`sklearn.datasets.get_data_home`.

    download_if_missing : bool, default=True
        If False, raise an :class:`OSError` when the file is not on disk
        instead of downloading it.

    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.

    as_frame : bool, default=False
        If True, ``data`` and ``target`` are pandas DataFrames, nominal inputs
        are categorical columns, and ``frame`` holds both (requires pandas).

    Returns
    -------
    dataset : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the following attributes.

        data : ndarray of shape (n_samples, n_features) or DataFrame
            The inputs, as float64. A nominal input holds the integer code of
            its value, in the order the ARFF header declares the values
            (``{A,B,C}``: A is 0, B is 1, C is 2). Missing values are NaN.
        target : ndarray of shape (n_samples, n_targets) or DataFrame
            The last ``n_targets`` attributes of the file, as float64.
        feature_names : list of str
            The names of the input attributes.
        target_names : list of str
            The names of the target attributes.
        frame : DataFrame of shape (n_samples, n_features + n_targets) or None
            Data and target together when ``as_frame=True``, else None.
        DESCR : str
            Description of the data set.

    (data, target) : tuple if ``return_X_y`` is True
        The two arrays (or DataFrames) described above.

    Raises
    ------
    ValueError
        If ``name`` is not one of the known sets (the message lists them), or
        the file cannot be parsed as ARFF.
    OSError
        If the file is not on disk and ``download_if_missing=False`` (the
        message names the folders looked in and the URL), or if a file
        (downloaded or found on disk) does not have the expected SHA-256; a
        download with the wrong checksum is discarded, nothing is cached.
    DatasetDownloadError
        If the file cannot be downloaded (for instance without a network). It
        is a :class:`ConnectionError`, hence an :class:`OSError`; its message
        names the URL and where to put the file by hand.

    See Also
    --------
    fetch_sarcos : The SARCOS inverse-dynamics data (7 targets).

    Examples
    --------
    >>> from sk_adareg.datasets import fetch_mulan
    >>> enb = fetch_mulan("enb")  # doctest: +SKIP
    >>> enb.data.shape, enb.target.shape  # doctest: +SKIP
    ((768, 8), (768, 2))
    >>> enb.target_names  # doctest: +SKIP
    ['Y1', 'Y2']
    >>> X, Y = fetch_mulan("sf1", return_X_y=True, as_frame=True)  # doctest: +SKIP
    >>> X["mod_zurich_class"].cat.categories.tolist()  # doctest: +SKIP
    ['A', 'B', 'C', 'D', 'E', 'F', 'H']
    """
    if name not in MULAN_FILES:
        raise ValueError(
            f"Unknown Mulan data set {name!r}; the known sets are {sorted(MULAN_FILES)}."
        )
    meta = MULAN_FILES[name]
    home = Path(get_data_home(data_home))
    cache = home / "mulan" / meta.filename
    candidates = [cache, home / meta.filename]
    path = next((p for p in candidates if p.is_file()), None)

    if path is not None:
        digest = _sha256(path)
        if digest != meta.sha256:
            raise OSError(
                f"The file {path} has SHA-256 {digest}, expected {meta.sha256}. It is "
                f"corrupted or not the official file: delete it and call fetch_mulan "
                f"again to download {meta.url}."
            )
    elif not download_if_missing:
        raise OSError(
            f"Data set {name!r} not found in data_home={str(home)!r} (looked for "
            f"{' and '.join(map(str, candidates))}) and download_if_missing=False. Call "
            f"fetch_mulan with download_if_missing=True, or download {meta.url} by hand "
            f"and copy it to {cache}."
        )
    else:
        _download(meta, cache, _MULAN_HINT)
        path = cache

    return _load_arff(path, name, MULAN_N_TARGETS[name], return_X_y=return_X_y,
                      as_frame=as_frame)


def _load_arff(path, name, n_targets, *, return_X_y, as_frame):
    """Parse an ARFF file whose last ``n_targets`` attributes are the targets."""
    try:
        records, meta = scipy.io.arff.loadarff(path)
    except (ValueError, NotImplementedError, scipy.io.arff.ParseArffError) as exc:
        raise ValueError(f"Could not read {path} as an ARFF file: {exc}") from exc
    names = list(meta.names())
    if len(names) <= n_targets:
        raise ValueError(
            f"{path} has {len(names)} attributes; expected more than the {n_targets} targets."
        )
    columns, categories = [], {}
    for column in names:
        kind, values = meta[column]
        if kind == "nominal":
            # Codes in the declared order; "?" (missing) and anything undeclared -> NaN.
            lookup = {value: float(i) for i, value in enumerate(values)}
            raw = [v.decode() if isinstance(v, bytes) else str(v) for v in records[column]]
            columns.append(np.array([lookup.get(v, np.nan) for v in raw]))
            categories[column] = list(values)
        elif kind == "numeric":
            columns.append(np.asarray(records[column], dtype=np.float64))
        else:
            raise ValueError(f"Attribute {column!r} of {path} is of type {kind!r}, "
                             "not numeric or nominal.")
    matrix = np.column_stack(columns) if columns else np.empty((0, 0))
    n_features = len(names) - n_targets
    feature_names, target_names = names[:n_features], names[n_features:]
    data = np.ascontiguousarray(matrix[:, :n_features])
    target = np.ascontiguousarray(matrix[:, n_features:])
    frame = None
    if as_frame:
        try:
            import pandas as pd
        except ImportError as exc:
            raise ImportError("as_frame=True requires pandas: pip install pandas") from exc
        frame = pd.DataFrame(matrix, columns=names)
        for column, values in categories.items():
            codes = frame[column].fillna(-1).astype(int).to_numpy()
            frame[column] = pd.Categorical.from_codes(codes, categories=values)
        data, target = frame[feature_names], frame[target_names]
    if return_X_y:
        return data, target
    descr = MULAN_DESCR.format(
        name=name, underline="-" * len(name), n_samples=len(matrix), n_features=n_features,
        n_nominal=sum(c in categories for c in feature_names), n_targets=n_targets,
        n_missing=int(np.isnan(matrix[:, :n_features]).sum()), commit=MULAN_COMMIT,
    )
    return Bunch(
        data=data,
        target=target,
        frame=frame,
        feature_names=feature_names,
        target_names=target_names,
        DESCR=descr,
    )
