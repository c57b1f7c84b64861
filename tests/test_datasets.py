"""Tests of sk_adareg.datasets, against a local HTTP server (no network needed), and of the
loaders on the real files in ../shared/data when they are there (skipped otherwise)."""

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
from sk_adareg.datasets import DatasetDownloadError, fetch_mulan, fetch_sarcos, load_sarcos

# The real GPML test file, outside the repository (users do not have it).
REAL_TEST_FILE = Path(__file__).parents[1].parent / "shared" / "data" / "sarcos_inv_test.mat"
SHARED_MULAN = Path(__file__).parents[1].parent / "shared" / "data" / "mulan"


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


# --------------------------------------------------------------------------- fetch_mulan

TOY = """\
% a small multi-target set
@relation toy
@attribute 'size' numeric
@attribute colour {red,green,blue}
@attribute weight numeric
@attribute t1 numeric
@attribute t2 numeric
@data
1.5,blue,2,10,-1
2.5,red,?,20,-2
?,green,4,30,-3
4.5,?,5,40,-4
"""



@pytest.fixture
def toy(server, monkeypatch):
    """A set named "toy" served locally, with the module's tables pointing at it."""
    path = server["root"] / "toy.arff"
    path.write_text(TOY)
    meta = datasets.RemoteFileMetadata(
        filename="toy.arff", url=f"{server['url']}/toy.arff", sha256=sha256_of(path))
    monkeypatch.setitem(datasets.MULAN_FILES, "toy", meta)
    monkeypatch.setitem(datasets.MULAN_N_TARGETS, "toy", 2)
    return server


def mulan_cache_files(data_home):
    folder = Path(data_home) / "mulan"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_mulan_download_parses_and_caches(toy, tmp_path):
    bunch = fetch_mulan("toy", data_home=tmp_path)
    assert bunch.feature_names == ["size", "colour", "weight"]
    assert bunch.target_names == ["t1", "t2"]
    expected = np.array([[1.5, 2, 2], [2.5, 0, np.nan], [np.nan, 1, 4], [4.5, np.nan, 5]])
    np.testing.assert_array_equal(bunch.data, expected)  # codes in declared order, NaN kept
    np.testing.assert_array_equal(bunch.target, [[10, -1], [20, -2], [30, -3], [40, -4]])
    assert bunch.data.dtype == np.float64 and bunch.frame is None
    assert "toy" in bunch.DESCR and datasets.MULAN_COMMIT in bunch.DESCR
    assert mulan_cache_files(tmp_path) == ["toy.arff"]  # no temporary file left behind
    assert toy["requests"] == [("/toy.arff", "identity")]

    # Later calls read the cache, with the server down.
    toy["shutdown"]()
    X, _ = fetch_mulan("toy", data_home=tmp_path, download_if_missing=False, return_X_y=True)
    np.testing.assert_array_equal(X, bunch.data)
    assert len(toy["requests"]) == 1


def test_mulan_as_frame(toy, tmp_path):
    pd = pytest.importorskip("pandas")
    bunch = fetch_mulan("toy", data_home=tmp_path, as_frame=True)
    assert isinstance(bunch.data, pd.DataFrame) and bunch.data.shape == (4, 3)
    assert isinstance(bunch.target, pd.DataFrame) and bunch.target.shape == (4, 2)
    assert list(bunch.frame.columns) == bunch.feature_names + bunch.target_names
    colour = bunch.data["colour"]
    assert isinstance(colour.dtype, pd.CategoricalDtype)
    assert list(colour.cat.categories) == ["red", "green", "blue"]
    assert colour.tolist()[:3] == ["blue", "red", "green"] and pd.isna(colour.iloc[3])
    assert np.isnan(bunch.data["weight"].iloc[1])
    X, Y = fetch_mulan("toy", data_home=tmp_path, as_frame=True, return_X_y=True)
    assert list(X.columns) == ["size", "colour", "weight"] and list(Y.columns) == ["t1", "t2"]


def test_mulan_file_straight_in_data_home_is_used(toy, tmp_path):
    shutil.copyfile(toy["root"] / "toy.arff", tmp_path / "toy.arff")
    X, _ = fetch_mulan("toy", data_home=tmp_path, download_if_missing=False,
                       return_X_y=True)
    assert X.shape == (4, 3) and toy["requests"] == []


def test_mulan_unknown_name_lists_known_ones(tmp_path):
    with pytest.raises(ValueError, match="Unknown Mulan data set 'nope'") as info:
        fetch_mulan("nope", data_home=tmp_path)
    for name in ("andro", "enb", "sf1", "wq"):
        assert repr(name) in str(info.value)


def test_mulan_known_sets_are_the_fourteen():
    assert len(datasets.MULAN_FILES) == 14
    assert set(datasets.MULAN_FILES) == set(datasets.MULAN_N_TARGETS)
    for name, meta in datasets.MULAN_FILES.items():
        assert meta.url.endswith(f"/{datasets.MULAN_COMMIT}/data/multi-target/{name}.arff")
        assert len(meta.sha256) == 64


def test_mulan_checksum_mismatch_caches_nothing(toy, tmp_path, monkeypatch):
    meta = datasets.MULAN_FILES["toy"]
    monkeypatch.setitem(datasets.MULAN_FILES, "toy", dataclasses.replace(meta, sha256="0" * 64))
    with pytest.raises(OSError, match="SHA-256") as info:
        fetch_mulan("toy", data_home=tmp_path)
    assert not isinstance(info.value, DatasetDownloadError)
    assert mulan_cache_files(tmp_path) == []


def test_mulan_corrupted_file_on_disk_is_rejected(toy, tmp_path):
    (tmp_path / "toy.arff").write_text(TOY.replace("10,-1", "11,-1"))
    with pytest.raises(OSError, match="SHA-256"):
        fetch_mulan("toy", data_home=tmp_path)
    assert toy["requests"] == []


def test_mulan_interrupted_download_leaves_no_file(tmp_path, monkeypatch):
    # A server that announces 10,000 bytes, sends 100 and hangs up.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]

    def serve():
        conn, _ = listener.accept()
        with conn:
            conn.recv(4096)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10000\r\n\r\n" + b"x" * 100)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    meta = datasets.RemoteFileMetadata("toy.arff", f"http://127.0.0.1:{port}/toy.arff", "0" * 64)
    monkeypatch.setitem(datasets.MULAN_FILES, "toy", meta)
    monkeypatch.setitem(datasets.MULAN_N_TARGETS, "toy", 2)
    try:
        with pytest.raises(DatasetDownloadError):
            fetch_mulan("toy", data_home=tmp_path)
    finally:
        thread.join(5)
        listener.close()
    assert mulan_cache_files(tmp_path) == []


def test_mulan_offline_errors_name_data_home_and_url(tmp_path, monkeypatch):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/enb.arff"
    monkeypatch.setitem(datasets.MULAN_FILES, "enb",
                        dataclasses.replace(datasets.MULAN_FILES["enb"], url=url))
    with pytest.raises(DatasetDownloadError) as info:
        fetch_mulan("enb", data_home=tmp_path)
    assert url in str(info.value) and str(tmp_path) in str(info.value)
    assert mulan_cache_files(tmp_path) == []

    with pytest.raises(OSError, match="download_if_missing=False") as info:
        fetch_mulan("enb", data_home=tmp_path, download_if_missing=False)
    assert url in str(info.value) and str(tmp_path) in str(info.value)


# --------------------------------------------------------------------------- real files

SHAPES = {  # rows, inputs
    "andro": (49, 30), "atp1d": (337, 411), "edm": (154, 16), "enb": (768, 8),
    "jura": (359, 15), "oes97": (334, 263), "osales": (639, 401), "scpf": (1137, 23),
    "sf1": (323, 10), "slump": (103, 7),
}


@pytest.fixture
def shared():
    if not SHARED_MULAN.is_dir():
        pytest.skip(f"{SHARED_MULAN} is not available")
    return SHARED_MULAN


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_mulan_real_files(shared, name):
    if not (shared / f"{name}.arff").is_file():
        pytest.skip(f"{name}.arff is not in {shared}")
    bunch = fetch_mulan(name, data_home=shared, download_if_missing=False)
    n, d = SHAPES[name]
    k = datasets.MULAN_N_TARGETS[name]
    assert bunch.data.shape == (n, d) and bunch.target.shape == (n, k)
    assert len(bunch.feature_names) == d and len(bunch.target_names) == k
    assert np.isfinite(bunch.target).all()
    has_nan = np.isnan(bunch.data).any()
    assert has_nan == (name in ("osales", "scpf"))


def test_mulan_real_sf1_nominal_codes(shared):
    pd = pytest.importorskip("pandas")
    X, _ = fetch_mulan("sf1", data_home=shared, return_X_y=True)
    bunch = fetch_mulan("sf1", data_home=shared, as_frame=True)
    # largest_spot_size {X,R,S,A,H,K}: the first row is S, the fifth A.
    assert bunch.feature_names[1] == "largest_spot_size"
    assert X[0, 1] == 2 and X[4, 1] == 3
    spot = bunch.data["largest_spot_size"]
    assert list(spot.cat.categories) == ["X", "R", "S", "A", "H", "K"]
    np.testing.assert_array_equal(spot.cat.codes.to_numpy(), X[:, 1])
    assert all(isinstance(dtype, pd.CategoricalDtype) for dtype in bunch.data.dtypes)
    assert bunch.target_names == ["c-class", "m-class", "x-class"]
