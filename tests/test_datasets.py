"""Tests of sk_adareg.datasets, against a local HTTP server (no network needed)."""

import dataclasses
import functools
import hashlib
import http.server
import shutil
import socket
import threading
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from sk_adareg import datasets
from sk_adareg.datasets import DatasetDownloadError, fetch_sarcos, load_sarcos

# The real GPML test file, outside the repository (users do not have it).
REAL_TEST_FILE = Path(__file__).parents[1].parent / "shared" / "data" / "sarcos_inv_test.mat"


def sha256_of(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_mat(path, variable, n_samples=30, n_columns=28, seed=0):
    matrix = np.random.default_rng(seed).standard_normal((n_samples, n_columns))
    scipy.io.savemat(path, {variable: matrix})
    return matrix


@pytest.fixture
def server(tmp_path):
    """Serve a folder with small SARCOS-like files on 127.0.0.1; count the requests."""
    root = tmp_path / "served"
    root.mkdir()
    requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            requests.append((self.path, self.headers.get("Accept-Encoding")))
            super().do_GET()

        def log_message(self, *args):  # keep the test output quiet
            pass

    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(root))
    )
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    host, port = httpd.server_address[:2]
    yield {
        "root": root,
        "url": f"http://{host}:{port}",
        "requests": requests,
        "shutdown": httpd.shutdown,
    }
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def served(server, monkeypatch):
    """Both subsets served locally, with the module's metadata pointing at them."""
    matrices = {}
    for subset, meta in datasets.SARCOS_FILES.items():
        path = server["root"] / meta.filename
        matrices[subset] = write_mat(path, meta.variable, n_samples=30 + len(subset))
        patched = dataclasses.replace(
            meta, url=f"{server['url']}/{meta.filename}", sha256=sha256_of(path)
        )
        monkeypatch.setitem(datasets.SARCOS_FILES, subset, patched)
    return {**server, "matrices": matrices}


def cache_files(data_home):
    folder = Path(data_home) / "sarcos"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.mark.parametrize("subset", ["train", "test"])
def test_download_parses_and_caches(served, tmp_path, subset):
    data_home = tmp_path / "home"
    bunch = fetch_sarcos(data_home=data_home, subset=subset)
    expected = served["matrices"][subset]
    np.testing.assert_array_equal(bunch.data, expected[:, :21])
    np.testing.assert_array_equal(bunch.target, expected[:, 21:])
    assert bunch.data.dtype == np.float64 and bunch.target.dtype == np.float64
    assert bunch.feature_names[:2] == ["pos_1", "pos_2"] and len(bunch.feature_names) == 21
    assert bunch.feature_names[7] == "vel_1" and bunch.feature_names[14] == "acc_1"
    assert bunch.target_names == [f"torque_{j}" for j in range(1, 8)]
    assert bunch.frame is None and "SARCOS" in bunch.DESCR
    filename = datasets.SARCOS_FILES[subset].filename
    assert cache_files(data_home) == [filename]  # no temporary file left behind
    # One request, asking for the file's own bytes rather than a gzipped body.
    assert served["requests"] == [(f"/{filename}", "identity")]

    # The second call reads the cache: no new request, and it works with the server down.
    served["shutdown"]()
    again = fetch_sarcos(data_home=data_home, subset=subset, download_if_missing=False)
    np.testing.assert_array_equal(again.data, bunch.data)
    assert len(served["requests"]) == 1


def test_default_subset_is_train(served, tmp_path):
    X, _ = fetch_sarcos(data_home=tmp_path, return_X_y=True)
    assert X.shape == (served["matrices"]["train"].shape[0], 21)


def test_checksum_mismatch_leaves_no_file(served, tmp_path, monkeypatch):
    meta = datasets.SARCOS_FILES["train"]
    monkeypatch.setitem(datasets.SARCOS_FILES, "train", dataclasses.replace(meta, sha256="0" * 64))
    with pytest.raises(OSError, match=r"SHA-256") as info:
        fetch_sarcos(data_home=tmp_path)
    assert not isinstance(info.value, DatasetDownloadError)
    assert meta.url in str(info.value)
    assert cache_files(tmp_path) == []


def test_corrupted_cache_is_rejected(served, tmp_path):
    folder = tmp_path / "sarcos"
    folder.mkdir()
    (folder / datasets.SARCOS_FILES["train"].filename).write_bytes(b"not the file")
    with pytest.raises(OSError, match="cached file"):
        fetch_sarcos(data_home=tmp_path)
    assert served["requests"] == []


def test_offline_raises_clear_error(tmp_path, monkeypatch):
    # A port that was free a moment ago: connecting to it is refused at once.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/sarcos_inv.mat"
    meta = dataclasses.replace(datasets.SARCOS_FILES["train"], url=url)
    monkeypatch.setitem(datasets.SARCOS_FILES, "train", meta)
    with pytest.raises(DatasetDownloadError) as info:
        fetch_sarcos(data_home=tmp_path)
    message = str(info.value)
    assert url in message
    assert str(tmp_path / "sarcos" / "sarcos_inv.mat") in message
    assert "load_sarcos" in message
    assert isinstance(info.value, ConnectionError) and isinstance(info.value, OSError)
    assert cache_files(tmp_path) == []


def test_http_error_raises_download_error(served, tmp_path, monkeypatch):
    meta = datasets.SARCOS_FILES["test"]
    missing = dataclasses.replace(meta, url=f"{served['url']}/missing.mat")
    monkeypatch.setitem(datasets.SARCOS_FILES, "test", missing)
    with pytest.raises(DatasetDownloadError, match=r"missing\.mat"):
        fetch_sarcos(data_home=tmp_path, subset="test")
    assert cache_files(tmp_path) == []


def test_download_if_missing_false(served, tmp_path):
    with pytest.raises(OSError, match="download_if_missing=False"):
        fetch_sarcos(data_home=tmp_path, download_if_missing=False)
    assert served["requests"] == []


def test_bad_subset(tmp_path):
    with pytest.raises(ValueError, match="subset='foo'"):
        fetch_sarcos(data_home=tmp_path, subset="foo")


@pytest.mark.parametrize("variable", ["sarcos_inv", "sarcos_inv_test"])
def test_load_sarcos_local_file(tmp_path, variable):
    path = tmp_path / "local.mat"
    matrix = write_mat(path, variable, n_samples=12)
    bunch = load_sarcos(path)
    np.testing.assert_array_equal(bunch.data, matrix[:, :21])
    np.testing.assert_array_equal(bunch.target, matrix[:, 21:])
    X, Y = load_sarcos(str(path), return_X_y=True)
    assert X.shape == (12, 21) and Y.shape == (12, 7)


def test_load_sarcos_rejects_bad_files(tmp_path):
    wrong_shape = tmp_path / "wrong.mat"
    write_mat(wrong_shape, "sarcos_inv", n_columns=27)
    with pytest.raises(ValueError, match=r"shape \(30, 27\)"):
        load_sarcos(wrong_shape)

    wrong_name = tmp_path / "other.mat"
    write_mat(wrong_name, "something_else")
    with pytest.raises(ValueError, match="something_else"):
        load_sarcos(wrong_name)

    not_mat = tmp_path / "text.mat"
    not_mat.write_text("hello")
    with pytest.raises(ValueError, match="MATLAB"):
        load_sarcos(not_mat)

    with pytest.raises(FileNotFoundError):
        load_sarcos(tmp_path / "absent.mat")


def test_return_X_y_and_as_frame(served, tmp_path):
    pd = pytest.importorskip("pandas")
    n = served["matrices"]["test"].shape[0]
    X, Y = fetch_sarcos(data_home=tmp_path, subset="test", return_X_y=True)
    assert isinstance(X, np.ndarray) and X.shape == (n, 21) and Y.shape == (n, 7)

    bunch = fetch_sarcos(data_home=tmp_path, subset="test", as_frame=True)
    assert isinstance(bunch.data, pd.DataFrame) and bunch.data.shape == (n, 21)
    assert isinstance(bunch.target, pd.DataFrame) and bunch.target.shape == (n, 7)
    assert list(bunch.data.columns) == bunch.feature_names
    assert list(bunch.target.columns) == bunch.target_names
    assert bunch.frame.shape == (n, 28)
    assert list(bunch.frame.columns) == bunch.feature_names + bunch.target_names
    np.testing.assert_array_equal(bunch.frame.to_numpy(), served["matrices"]["test"])

    X, Y = load_sarcos(served["root"] / "sarcos_inv_test.mat", return_X_y=True, as_frame=True)
    assert isinstance(X, pd.DataFrame) and isinstance(Y, pd.DataFrame)
    assert X.shape == (n, 21) and Y.shape == (n, 7)
    assert len(served["requests"]) == 1


def test_real_test_file(tmp_path):
    if not REAL_TEST_FILE.is_file():
        pytest.skip(f"{REAL_TEST_FILE} is not available")
    assert sha256_of(REAL_TEST_FILE) == datasets.SARCOS_FILES["test"].sha256
    bunch = load_sarcos(REAL_TEST_FILE)
    assert bunch.data.shape == (4449, 21) and bunch.target.shape == (4449, 7)
    assert np.isfinite(bunch.data).all() and np.isfinite(bunch.target).all()

    # A copy in the cache passes fetch_sarcos's checksum, with no download at all.
    (tmp_path / "sarcos").mkdir()
    shutil.copyfile(REAL_TEST_FILE, tmp_path / "sarcos" / "sarcos_inv_test.mat")
    cached = fetch_sarcos(data_home=tmp_path, subset="test", download_if_missing=False)
    np.testing.assert_array_equal(cached.target, bunch.target)
