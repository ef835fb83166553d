"""Streaming, parallel, cached reading of folders, file lists and data sets (ingest.py)."""

from __future__ import annotations

import json
import os
import threading
import warnings
import weakref
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tsimcne_widgets import ingest, ingest_cache, pixels
from tsimcne_widgets.data import ImageData, as_images

# Non-square everywhere (H != W) so a swapped height/width cannot go unnoticed.
H, W = 6, 9


def _img(value: int, h: int = H, w: int = W, mode: str = "RGB") -> Image.Image:
    """A flat image whose pixels tell its index (value), distinct per channel."""
    if mode == "L":
        return Image.new("L", (w, h), value)
    return Image.new("RGB", (w, h), (value, (value + 80) % 256, (value + 160) % 256))


def _expected(values, mode: str = "RGB", h: int = H, w: int = W) -> np.ndarray:
    return np.stack([np.asarray(_img(v, h, w, mode)).reshape(h, w, -1).transpose(2, 0, 1)
                     for v in values])


def _write(path: Path, value: int, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    _img(value, **kw).save(path)
    return path


def _class_folder(root: Path) -> dict[str, list[int]]:
    """Class folders written out of order, a nested folder, a hidden folder, other files."""
    layout = {"dog": [10, 11], "cat": [20, 21, 22], "emu": [30, 31]}
    for cls, values in layout.items():
        for j, v in enumerate(values):
            sub = "deep/" if cls == "cat" and j == 2 else ""
            _write(root / cls / f"{sub}{j}.png", v)
    _write(root / "cat" / ".ipynb_checkpoints" / "0-checkpoint.png", 99)
    _write(root / ".hidden" / "x.png", 99)
    (root / "cat" / "notes.txt").write_text("not an image")
    (root / "empty").mkdir()
    return layout


@pytest.fixture
def no_decode(monkeypatch):
    """Makes any file decode fail the test (for cache hits)."""

    def fail(path, size):
        raise AssertionError(f"decoded {path} although it is cached")

    monkeypatch.setattr(ingest, "_decode_file", fail)


# --- folders and file lists ---------------------------------------------------------------------


def test_folder_with_class_subfolders(tmp_path):
    _class_folder(tmp_path)
    data = as_images(tmp_path, num_workers=0)
    assert data.class_names == ("cat", "dog", "emu")
    np.testing.assert_array_equal(data.labels, [0, 0, 0, 1, 1, 2, 2])
    # cat/0, cat/1, then cat/deep/2 (ImageFolder's order), dog, emu.
    np.testing.assert_array_equal(data.images.numpy(),
                                  _expected([20, 21, 22, 10, 11, 30, 31]))
    assert data.skipped == ()


def test_folder_matches_image_folder(tmp_path):
    from torchvision.datasets import ImageFolder

    for i, cls in enumerate(["b", "a", "b", "c", "a"]):
        _write(tmp_path / cls / f"{i}.png", 40 * i)
    ours = as_images(str(tmp_path), num_workers=0)
    theirs = as_images(ImageFolder(tmp_path), num_workers=0)
    assert torch.equal(ours.images, theirs.images)
    np.testing.assert_array_equal(ours.labels, theirs.labels)
    assert ours.class_names == theirs.class_names == ("a", "b", "c")


def test_flat_folder_has_no_labels(tmp_path):
    for i in range(3):
        _write(tmp_path / f"{i}.png", i)
    data = as_images(tmp_path, resize=(3, 4))
    assert data.labels is None and data.class_names is None
    assert data.images.shape == (3, 3, 3, 4)


def test_loose_files_next_to_class_folders_are_ignored(tmp_path):
    _write(tmp_path / "a" / "0.png", 1)
    _write(tmp_path / "b" / "0.png", 2)
    _write(tmp_path / "loose.png", 3)
    with pytest.warns(UserWarning, match="1 image files directly in X=.* are ignored"):
        data = as_images(tmp_path)
    np.testing.assert_array_equal(data.images.numpy(), _expected([1, 2]))


def test_folder_without_images(tmp_path):
    (tmp_path / "readme.txt").write_text("hi")
    with pytest.raises(ValueError, match=r"holds no image files \(looked for .bmp"):
        as_images(tmp_path)


def test_list_of_paths_keeps_order(tmp_path):
    paths = [_write(tmp_path / f"{i}.png", v) for i, v in enumerate([5, 90, 7])]
    data = as_images([str(paths[2]), paths[0], paths[1]])
    np.testing.assert_array_equal(data.images.numpy(), _expected([7, 5, 90]))
    assert data.labels is None


def test_paths_and_images_mixed(tmp_path):
    path = _write(tmp_path / "a.png", 50)
    data = as_images([path, _img(60), np.asarray(_img(70))])
    np.testing.assert_array_equal(data.images.numpy(), _expected([50, 60, 70]))


@pytest.mark.parametrize("workers", [0, 2])
def test_grey_then_colour_files_become_rgb(tmp_path, workers):
    # Grey items fix one channel; a later colour one widens the output to RGB.
    values = list(range(0, 240, 8))
    modes = ["L"] * 20 + ["RGB"] + ["L"] * 9
    paths = [_write(tmp_path / f"{i:02d}.png", v, mode=m)
             for i, (v, m) in enumerate(zip(values, modes, strict=True))]
    data = as_images(paths, num_workers=workers)
    expected = np.stack([
        np.repeat(_expected([v], "L")[0], 3, axis=0) if m == "L" else _expected([v])[0]
        for v, m in zip(values, modes, strict=True)
    ])
    np.testing.assert_array_equal(data.images.numpy(), expected)
    grey = as_images(paths[:3])
    assert grey.n_channels == 1


def test_different_sizes_without_resize_name_the_files(tmp_path):
    a = _write(tmp_path / "a.png", 1)
    b = _write(tmp_path / "b.png", 1, h=W, w=H)
    with pytest.raises(ValueError, match=r"different sizes: '.*a.png' is \(6, 9\) and "
                                         r"'.*b.png' is \(9, 6\).*resize="):
        as_images([a, b])
    assert as_images([a, b], resize=(4, 5)).image_shape == (4, 5)


def test_jpeg_draft_decoding_is_close(tmp_path):
    # Large JPEGs resized to a small size are decoded at reduced scale by libjpeg.
    yy, xx = np.mgrid[0:240, 0:320]
    smooth = np.stack([xx * 255 // 320, yy * 255 // 240, (xx + yy) * 255 // 560], -1)
    path = tmp_path / "a.jpg"
    Image.fromarray(smooth.astype(np.uint8)).save(path, quality=95)
    fast = as_images([path, path], resize=(24, 32)).images[0].int()
    with Image.open(path) as img:
        full = torch.from_numpy(np.asarray(img.convert("RGB")).transpose(2, 0, 1).copy())
    slow = pixels.resize_images(full[None], (24, 32))[0].int()
    assert (fast - slow).abs().max() <= 6


# --- workers ------------------------------------------------------------------------------------


class _Items(torch.utils.data.Dataset):
    """A data set that cannot be pickled (a lock and a lambda)."""

    classes = ["even", "odd"]

    def __init__(self, n: int) -> None:
        self.n, self.lock, self.make = n, threading.Lock(), lambda v: _img(v)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        with self.lock:
            return self.make(i * 7 % 256), i % 2


def test_workers_keep_the_order(tmp_path):
    values = [(i * 37) % 256 for i in range(40)]
    paths = [_write(tmp_path / f"{v:03d}-{i}.png", v) for i, v in enumerate(values)]
    serial = as_images(paths, num_workers=0)
    parallel = as_images(paths, num_workers=2)
    np.testing.assert_array_equal(parallel.images.numpy(), _expected(values))
    assert torch.equal(serial.images, parallel.images)


def test_unpicklable_dataset_with_workers():
    data = as_images(_Items(30), num_workers=2, resize=(3, 4))
    np.testing.assert_array_equal(data.labels, np.arange(30) % 2)
    assert data.class_names == ("even", "odd")
    expected = as_images(_Items(30), num_workers=0, resize=(3, 4))
    assert torch.equal(data.images, expected.images)


def test_threads_without_fork(monkeypatch):
    # Where fork is missing (macOS, Windows), workers are threads.
    monkeypatch.setattr(ingest, "_can_fork", lambda: False)
    pool, give_source = ingest._make_pool(ingest._Source(_Items(4), "X", None), 2)
    pool.shutdown()
    assert give_source and isinstance(pool, ingest.ThreadPoolExecutor)
    data = as_images(_Items(20), num_workers=2)
    np.testing.assert_array_equal(data.labels, np.arange(20) % 2)
    np.testing.assert_array_equal(data.images.numpy(), _expected([i * 7 for i in range(20)]))


class _KillsWorkers(torch.utils.data.Dataset):
    """Item 5 kills the worker process that reads it (not the main process)."""

    def __init__(self) -> None:
        self.parent = os.getpid()

    def __len__(self) -> int:
        return 24

    def __getitem__(self, i: int):
        if i == 5 and os.getpid() != self.parent:
            os._exit(1)
        return np.full((H, W), i, np.uint8)


def test_an_item_that_kills_its_worker_is_skipped_and_never_read_here():
    # A crash in a worker is a decoder's (a C library's) crash: read in this process, it
    # would take the kernel down. The chunks in flight are read again one process each.
    with pytest.warns(UserWarning, match="index 5.*decoder crashed the worker process"):
        data = as_images(_KillsWorkers(), num_workers=2)
    assert data.skipped == ("index 5",)
    np.testing.assert_array_equal(data.images[:, 0, 0, 0].numpy(),
                                  [i for i in range(24) if i != 5])


def test_a_file_that_crashes_its_decoder_is_skipped_with_the_rest_read(tmp_path, monkeypatch):
    parent = os.getpid()
    real = ingest._decode_file

    def crashing(path, size):
        if "crash" in os.path.basename(path):
            if os.getpid() == parent:
                raise AssertionError("decoded in the ingest's own process")
            os._exit(11)  # as a segfault in the decoder would
        return real(path, size)

    monkeypatch.setattr(ingest, "_decode_file", crashing)
    paths = [_write(tmp_path / f"{i:02d}.png", i) for i in range(40)]
    bad = tmp_path / "17_crash.png"
    paths[17].rename(bad)
    paths[17] = bad
    with pytest.warns(UserWarning, match="17_crash.png"):
        data = as_images([str(p) for p in paths], num_workers=2)
    assert data.skipped == (str(bad),)
    np.testing.assert_array_equal(data.images.numpy(),
                                  _expected([i for i in range(40) if i != 17]))


class _FailsInWorkers(torch.utils.data.Dataset):
    """Like a data set holding a handle that does not survive fork: items fail in workers."""

    def __init__(self) -> None:
        self.parent = os.getpid()

    def __len__(self) -> int:
        return 12

    def __getitem__(self, i: int):
        if os.getpid() != self.parent:
            raise OSError("handle not valid after fork")
        return np.full((H, W), i, np.uint8)


def test_items_failing_only_in_workers_are_read_here():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = as_images(_FailsInWorkers(), num_workers=2)
    assert data.skipped == ()
    np.testing.assert_array_equal(data.images[:, 0, 0, 0].numpy(), np.arange(12))


def test_pool_that_cannot_start_falls_back(monkeypatch, tmp_path):
    def no_pool(*args):
        raise AssertionError("daemonic processes are not allowed to have children")

    monkeypatch.setattr(ingest, "_make_pool", no_pool)
    paths = [_write(tmp_path / f"{i}.png", i) for i in range(4)]
    with pytest.warns(RuntimeWarning, match="AssertionError: daemonic"):
        data = as_images(paths, num_workers=2)
    np.testing.assert_array_equal(data.images.numpy(), _expected(range(4)))


def test_bad_item_from_a_worker_raises_the_original_error():
    items = [np.zeros((H, W), np.uint8)] * 20 + [np.zeros((2, 5, 5), np.uint8)]
    with pytest.raises(ValueError, match=r"X\[20\] has shape \(2, 5, 5\)"):
        as_images(items, num_workers=2)


# --- unreadable items ---------------------------------------------------------------------------


def _with_bad_files(root: Path) -> tuple[Path, Path]:
    for i in range(3):
        _write(root / "a" / f"{i}.png", 10 + i)
        _write(root / "b" / f"{i}.jpg", 100 + i)
    corrupt = root / "a" / "1b.png"
    corrupt.write_bytes(b"this is not a png")
    buf = root / "b" / "full.jpg"
    _img(200, 64, 64).save(buf, quality=90)
    truncated = root / "b" / "0t.jpg"
    truncated.write_bytes(buf.read_bytes()[: buf.stat().st_size // 2])
    buf.unlink()
    return corrupt, truncated


@pytest.mark.parametrize("workers", [0, 2])
def test_unreadable_files_are_skipped_and_named(tmp_path, workers):
    corrupt, truncated = _with_bad_files(tmp_path)
    with pytest.warns(UserWarning) as record:
        data = as_images(tmp_path, num_workers=workers, resize=(4, 4))
    (message,) = [str(w.message) for w in record if "Skipped" in str(w.message)]
    assert "Skipped 2 of the 8 items of X" in message
    assert f"{corrupt}: UnidentifiedImageError" in message
    assert f"{truncated}: OSError: " in message  # "image file is truncated" or similar
    assert data.skipped == (str(corrupt), str(truncated))
    assert data.n_samples == 6
    # The labels of the skipped files are dropped with them.
    np.testing.assert_array_equal(data.labels, [0, 0, 0, 1, 1, 1])
    assert "skipped=2" in repr(data)


def test_warning_names_ten_then_counts(tmp_path):
    paths = [_write(tmp_path / "ok0.png", 1), _write(tmp_path / "ok1.png", 2)]
    for i in range(13):
        bad = tmp_path / f"bad{i:02d}.png"
        bad.write_bytes(b"")
        paths.append(bad)
    more = r"(?s)Skipped 13 .*bad09.png.*\n  \.\.\. and 3 more"
    with pytest.warns(UserWarning, match=more) as rec:
        data = as_images(paths)
    assert "bad10.png" not in str(rec[0].message)
    assert len(data.skipped) == 13 and data.n_samples == 2


def test_unreadable_path_among_images_is_named(tmp_path):
    with pytest.warns(UserWarning, match="gone.png: FileNotFoundError"):
        data = as_images([_img(1), tmp_path / "gone.png", _img(2)])
    assert data.skipped == (str(tmp_path / "gone.png"),)


def test_missing_file_in_a_list_is_skipped(tmp_path):
    paths = [_write(tmp_path / f"{i}.png", i) for i in range(2)] + [tmp_path / "gone.png"]
    with pytest.warns(UserWarning, match="gone.png: FileNotFoundError"):
        data = as_images(paths, labels=["x", "y", "z"])
    assert data.skipped == (str(tmp_path / "gone.png"),)
    assert data.class_names == ("x", "y")


@pytest.mark.parametrize("workers", [0, 2])
def test_strict_raises_naming_the_file(tmp_path, workers):
    corrupt, _ = _with_bad_files(tmp_path)
    with pytest.raises(ValueError, match=f"could not read {corrupt} "
                                         r"\(UnidentifiedImageError") as info:
        as_images(tmp_path, strict=True, num_workers=workers)
    assert isinstance(info.value.__cause__, Image.UnidentifiedImageError)


def test_too_few_readable(tmp_path):
    bad = [tmp_path / f"{i}.jpg" for i in range(3)]
    for p in bad:
        p.write_bytes(b"junk")
    with pytest.raises(ValueError, match="none of its 3 images could be read.*0.jpg"):
        as_images(bad)
    good = _write(tmp_path / "ok.png", 1)
    with pytest.raises(ValueError, match="only 1 of its 4 images could be read"):
        as_images([*bad, good])


class _Flaky(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int):
        if i == 2:
            raise OSError("disk hiccup")
        return _img(i), i % 2


def test_dataset_item_that_raises_is_skipped_by_index():
    with pytest.warns(UserWarning, match="index 2: OSError: disk hiccup"):
        data = as_images(_Flaky(), num_workers=0)
    assert data.skipped == ("index 2",)
    np.testing.assert_array_equal(data.labels, [0, 1, 1])


def test_image_folder_dataset_skips_by_path(tmp_path):
    from torchvision.datasets import ImageFolder

    corrupt, truncated = _with_bad_files(tmp_path)
    with pytest.warns(UserWarning, match="Skipped 2"):
        data = as_images(ImageFolder(tmp_path), num_workers=0)
    assert data.skipped == (str(corrupt), str(truncated))
    assert data.class_names == ("a", "b")


def test_user_labels_follow_the_skips(tmp_path):
    paths = [_write(tmp_path / f"{i}.png", i) for i in range(4)]
    paths[1].write_bytes(b"broken")
    with pytest.warns(UserWarning):
        data = as_images(paths, np.array(["p", "q", "r", "p"]))
    np.testing.assert_array_equal(data.labels, [0, 1, 0])
    assert data.class_names == ("p", "r")
    with pytest.raises(ValueError, match=r"shape \(4,\) to match the 4 images, got shape \(2,"):
        as_images(paths, ["p", "q"])  # before reading


def test_user_labels_of_a_folder_follow_the_skips(tmp_path):
    corrupt, truncated = _with_bad_files(tmp_path)
    with pytest.warns(UserWarning, match="Skipped 2"):
        data = as_images(tmp_path, list("abcdefgh"), num_workers=0)
    # Files in order: a/0, a/1, a/1b (corrupt), a/2, b/0, b/0t (truncated), b/1, b/2.
    assert data.class_names == tuple("abdegh")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # raises before reading (no warning about skips)
        with pytest.raises(ValueError, match=r"shape \(8,\) to match the 8 images"):
            as_images(tmp_path, ["a"], num_workers=0)


# --- memory -------------------------------------------------------------------------------------


def test_each_file_is_resized_as_it_is_read(tmp_path, monkeypatch):
    # 40 images of 600x400 to 16x16: the full-size image of a file is gone before the next
    # file is opened, and the output is allocated once, at its final size.
    for i in range(40):
        Image.new("RGB", (600, 400), (i, 2 * i, 3 * i)).save(tmp_path / f"{i:02d}.png")
    open_image, alive, most = Image.open, [], [0]

    def tracked(*args, **kw):
        most[0] = max(most[0], sum(ref() is not None for ref in alive))
        img = open_image(*args, **kw)
        assert img.size == (600, 400)
        alive.append(weakref.ref(img))
        return img

    allocations = []
    empty = np.empty

    def spy_empty(shape, *args, **kw):
        allocations.append(tuple(shape))
        return empty(shape, *args, **kw)

    monkeypatch.setattr(Image, "open", tracked)
    monkeypatch.setattr(ingest.np, "empty", spy_empty)
    data = as_images(tmp_path, resize=16, num_workers=0)
    assert len(alive) == 40 and most[0] == 0
    assert allocations == [(40, 3, 16, 16)]
    np.testing.assert_array_equal(data.images[:, 2, 5, 5].numpy(), 3 * np.arange(40))


def test_items_are_resized_like_arrays():
    # Items are resized one by one (Pillow), arrays at once (torch): within one grey level.
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (5, 37, 23, 3), dtype=np.uint8)
    for size in [(16, 16), (50, 40)]:
        items = as_images(list(x), resize=size).images.int()
        whole = as_images(x, resize=size).images.int()
        assert (items - whole).abs().max() <= 1


# --- cache --------------------------------------------------------------------------------------


def _cache_files(cache: Path) -> list[str]:
    return sorted(p.name.split(".", 1)[1] for p in cache.iterdir())


def test_cache_second_call_does_not_decode(tmp_path, monkeypatch):
    root, cache = tmp_path / "imgs", tmp_path / "cache"
    _class_folder(root)
    first = as_images(root, cache=cache, resize=(4, 5))
    assert _cache_files(cache) == ["json", "labels.npy", "npy"]
    meta = json.loads(next(cache.glob("*.json")).read_text())
    assert meta["class_names"] == ["cat", "dog", "emu"] and len(meta["files"]) == 7
    monkeypatch.setattr(ingest, "_decode_file", lambda p, s: pytest.fail("decoded again"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no torch warning about non-writable arrays
        second = as_images(root, cache=str(cache), resize=(4, 5))
    assert torch.equal(first.images, second.images)
    np.testing.assert_array_equal(first.labels, second.labels)
    assert second.class_names == first.class_names
    assert second.images.numpy().flags.writeable


def test_cache_keeps_the_skipped_files(tmp_path, monkeypatch):
    root, cache = tmp_path / "imgs", tmp_path / "cache"
    corrupt, truncated = _with_bad_files(root)
    with pytest.warns(UserWarning, match="Skipped 2"):
        first = as_images(root, cache=cache, num_workers=0)
    monkeypatch.setattr(ingest, "_decode_file", lambda p, s: pytest.fail("decoded again"))
    with pytest.warns(UserWarning, match="Skipped 2"):
        second = as_images(root, cache=cache)
    assert second.skipped == first.skipped == (str(corrupt), str(truncated))
    np.testing.assert_array_equal(second.labels, first.labels)
    monkeypatch.undo()
    with pytest.raises(ValueError, match="could not read"):  # strict reads again, and raises
        as_images(root, cache=cache, strict=True)


def test_cache_is_read_again_when_the_folder_changes(tmp_path, monkeypatch):
    root, cache = tmp_path / "imgs", tmp_path / "cache"
    paths = [_write(root / f"{i}.png", i) for i in range(3)]
    as_images(root, cache=cache)
    decoded = []
    decode = ingest._decode_file
    monkeypatch.setattr(ingest, "_decode_file", lambda p, s: decoded.append(p) or decode(p, s))

    _write(paths[1], 77)  # same size, new content and modification time
    os.utime(paths[1], ns=(1, 1))
    assert as_images(root, cache=cache).images[1, 0, 0, 0] == 77
    assert len(decoded) == 3
    as_images(root, cache=cache)
    assert len(decoded) == 3  # cached again

    _write(root / "3.png", 33)
    data = as_images(root, cache=cache)
    assert data.n_samples == 4 and len(decoded) == 7
    assert len(list(cache.glob("*.npy"))) == 1  # the entry was replaced, not added

    as_images(root, cache=cache, resize=3)  # another resize: its own entry
    assert len(list(cache.glob("*.npy"))) == 2


def test_cache_of_a_list_of_paths(tmp_path, monkeypatch):
    paths = [_write(tmp_path / f"{i}.png", i) for i in range(3)]
    cache = tmp_path / "cache"
    first = as_images([str(p) for p in paths], cache=cache)
    monkeypatch.setattr(ingest, "_decode_file", lambda p, s: pytest.fail("decoded again"))
    monkeypatch.chdir(tmp_path)
    second = as_images(["0.png", "1.png", "2.png"], cache=cache)  # same files, relative
    assert torch.equal(first.images, second.images)
    monkeypatch.undo()
    reordered = as_images([paths[1], paths[0], paths[2]], cache=cache)
    np.testing.assert_array_equal(reordered.images.numpy(), _expected([1, 0, 2]))


@pytest.mark.parametrize("damage", ["flip", "truncate", "json", "labels"])
def test_damaged_cache_is_read_again(tmp_path, damage):
    root, cache = tmp_path / "imgs", tmp_path / "cache"
    _class_folder(root)
    first = as_images(root, cache=cache)
    npy = next(cache.glob("*[0-9a-f].npy"))
    if damage == "flip":
        raw = bytearray(npy.read_bytes())
        raw[-5] ^= 0xFF
        npy.write_bytes(bytes(raw))
    elif damage == "truncate":
        npy.write_bytes(npy.read_bytes()[:-10])
    elif damage == "json":
        path = next(cache.glob("*.json"))
        path.write_text(path.read_text()[:-20])
    else:
        labels = next(cache.glob("*.labels.npy"))
        np.save(labels, np.full(7, 2, np.int64))
    with pytest.warns(RuntimeWarning, match="cache entry .* is damaged"):
        second = as_images(root, cache=cache)
    assert torch.equal(first.images, second.images)
    np.testing.assert_array_equal(first.labels, second.labels)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        third = as_images(root, cache=cache)  # rewritten: intact again
    assert torch.equal(first.images, third.images)


def test_cache_entry_without_metadata_is_not_used(tmp_path, monkeypatch):
    # The JSON is written last: a crash before it leaves no valid entry.
    root, cache = tmp_path / "imgs", tmp_path / "cache"
    for i in range(3):
        _write(root / f"{i}.png", i)
    atomic = ingest_cache.atomic_write

    def crash_on_json(path, write):
        if path.endswith(".json"):
            raise OSError("disk full")
        atomic(path, write)

    monkeypatch.setattr(ingest_cache, "atomic_write", crash_on_json)
    with pytest.warns(RuntimeWarning, match="Could not write the image cache .*disk full"):
        as_images(root, cache=cache)
    assert _cache_files(cache) == ["npy"]  # no temporary files left behind
    monkeypatch.undo()
    decoded = []
    decode = ingest._decode_file
    monkeypatch.setattr(ingest, "_decode_file", lambda p, s: decoded.append(p) or decode(p, s))
    as_images(root, cache=cache)
    assert len(decoded) == 3


def test_cache_needs_files(tmp_path):
    with pytest.raises(ValueError, match="cache= needs a folder or a list of file paths"):
        as_images(np.zeros((2, H, W), np.uint8), cache=tmp_path)
    with pytest.raises(ValueError, match="cache= needs a folder or a list of file paths"):
        as_images([_img(1), _img(2)], cache=tmp_path)
    with pytest.raises(ValueError, match="cache= needs"):
        as_images(_Items(3), cache=tmp_path)
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="cache must be a folder, got the file"):
        as_images([_img(1), _img(2)], cache=tmp_path / "file")


# --- options ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "error", "match"),
    [
        ({"num_workers": -1}, ValueError, r"num_workers must be None .* int >= 0 .*got -1"),
        ({"num_workers": 1.5}, TypeError, "num_workers must be None"),
        ({"num_workers": True}, TypeError, "num_workers must be None"),
        ({"progress": "yes"}, ValueError, "progress must be True, False or 'auto', got 'yes'"),
        ({"progress": 1}, TypeError, "progress must be True, False or 'auto', got int"),
        ({"cache": 3}, TypeError, r"cache must be None or a folder path \(str or os.PathLike\)"),
        ({"strict": "no"}, TypeError, "strict must be True or False, got str"),
    ],
)
def test_bad_options(kw, error, match):
    with pytest.raises(error, match=match):
        as_images([_img(1), _img(2)], **kw)


def test_progress_bar(tmp_path, capsys):
    items = [_img(i) for i in range(3)]
    as_images(items, progress=True)
    assert "Reading X" in capsys.readouterr().err
    as_images(items, progress=True, num_workers=2, name="imgs")
    assert "Reading imgs" in capsys.readouterr().err
    as_images(items)  # 'auto': only for many items
    as_images(items, progress=False)
    assert capsys.readouterr().err == ""


def test_image_data_skipped_field():
    images = torch.zeros(2, 1, 3, 3, dtype=torch.uint8)
    assert ImageData(images).skipped == ()
    data = ImageData(images, None, None, ("a.png",))
    assert data.skipped == ("a.png",)
    assert as_images(data, resize=2).skipped == ("a.png",)
    with pytest.raises(TypeError, match="skipped must be a tuple of str"):
        ImageData(images, skipped=["a.png"])


def test_files_name_each_read_image_and_the_explorer_shows_them(tmp_path):
    from torchvision.datasets import ImageFolder

    from tsimcne_widgets import Explorer

    for c in "ab":
        (tmp_path / c).mkdir()
        for i in range(3):
            Image.fromarray(np.full((10, 12, 3), 40 * i, np.uint8)).save(tmp_path / c / f"{i}.png")
    (tmp_path / "a" / "zz.png").write_bytes(b"not an image")
    with pytest.warns(UserWarning, match="zz.png"):
        data = as_images(tmp_path, num_workers=0)
    expected = tuple(str(tmp_path / c / f"{i}.png") for c in "ab" for i in range(3))
    assert data.files == expected and data.skipped == (str(tmp_path / "a" / "zz.png"),)
    assert as_images(data, resize=4).files == expected  # carried through
    paths = [str(tmp_path / "b" / "2.png"), str(tmp_path / "a" / "0.png")]
    assert as_images(paths, num_workers=0).files == tuple(paths)
    (tmp_path / "a" / "zz.png").unlink()
    assert as_images(ImageFolder(str(tmp_path)), num_workers=0).files == expected
    assert as_images(np.zeros((3, 8, 8), np.uint8)).files is None
    with pytest.raises(ValueError, match="files must name one file per image"):
        ImageData(data.images, files=("x",))
    ex = Explorer(data, backbone="small")
    ex.scatter.selection = [1, 4]
    assert list(ex.selected_dataframe()["file"]) == [expected[1], expected[4]]
