import builtins

import numpy as np
import pytest
from _helpers import wait_for

from tsimcne_widgets import baselines
from tsimcne_widgets.baselines import embed, joined_features, pixel_features, start


@pytest.fixture(scope="module")
def feats():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 64)) * 6
    return (centres[np.repeat(np.arange(4), 40)] + rng.normal(size=(160, 64))).astype(
        np.float64)


FAST = {"tsne": {"n_iter": 100, "early_exaggeration_iter": 50},
        "umap": {"n_epochs": 30},
        "pca": {}}


@pytest.mark.parametrize("method", ["tsne", "umap", "pca"])
def test_shape_dtype_and_reproducibility(feats, method):
    a = embed(feats, method, random_state=1, **FAST[method])
    b = embed(feats, method, random_state=1, **FAST[method])
    assert a.shape == (160, 2) and a.dtype == np.float32 and np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)
    # The four clusters stay apart.
    from tsimcne_widgets.metrics import knn_accuracy
    assert knn_accuracy(a, np.repeat(np.arange(4), 40), k=5) == 1.0


def test_tsne_callback_gets_copies_and_can_stop(feats):
    frames = []

    def cb(it, Z):
        frames.append((it, Z))
        return len(frames) >= 2  # stop after two frames

    Z = embed(feats, "tsne", callback=cb, callback_every=25, **FAST["tsne"])
    assert len(frames) == 2 and frames[0][0] == 25
    assert not np.array_equal(frames[0][1], frames[1][1])  # copies, not one mutated array
    assert Z.shape == (160, 2)


def test_background_run_streams_snapshots_and_waits(feats):
    run = start(feats, "tsne", callback_every=20, **FAST["tsne"])
    seen = []
    run.on("snapshot", seen.append)
    Z = run.wait(60)
    assert run.state == "finished" and Z.shape == (160, 2)
    snaps = run.snapshots
    assert len(snaps) >= 3 and all(s.kind == "embedding" for s in snaps)
    np.testing.assert_array_equal(snaps[-1].xy, Z)


def test_umap_snapshots_from_n_epochs(feats):
    run = start(feats, "umap", n_epochs=[5, 10, 30])
    run.wait(120)
    assert len(run.snapshots) >= 3


def test_failure_reaches_wait(feats):
    run = start(feats, "tsne", perplexity=-5)
    with pytest.raises(Exception, match="erplexity"):
        run.wait(30)
    assert run.state == "failed"


def test_bad_input_and_method(feats):
    with pytest.raises(ValueError, match="method must be one of"):
        embed(feats, "mds")
    with pytest.raises(ValueError, match="features must be a numeric 2D array"):
        embed(np.zeros(10), "pca")
    bad = feats.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        start(bad, "pca")


def test_missing_extra_names_the_extra(feats, monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name in ("openTSNE", "umap"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    for method in ("tsne", "umap"):
        with pytest.raises(ImportError, match=r"tsimcne-widgets\[baselines\]"):
            embed(feats, method)
        with pytest.raises(ImportError, match=r"tsimcne-widgets\[baselines\]"):
            start(feats, method)
    assert embed(feats, "pca").shape == (160, 2)  # PCA needs no extra
    assert baselines.METHODS == ("tsne", "umap", "pca")


def test_stop_keeps_the_partial_tsne_result(feats):
    import threading

    gate = threading.Event()
    run = start(feats, "tsne", callback_every=10, n_iter=5000)
    run.on("snapshot", lambda s: gate.set())
    assert gate.wait(60)
    run.stop()
    Z = run.wait(60)
    assert run.state == "stopped" and Z.shape == (160, 2)
    assert run.snapshots[-1].step < 5000


def test_pixel_features_flatten_and_scale(small_digits):
    X, _ = small_digits  # uint8 (120, 1, 8, 8)
    P = pixel_features(X)
    assert P.shape == (120, 64) and P.dtype == np.float32
    assert P.min() >= 0 and P.max() <= 1 and P.max() == 1
    np.testing.assert_allclose(P, X.reshape(120, -1) / 255, rtol=1e-6)
    # Channels last, floats in [0, 1] and ImageData give the same, channels-first rows.
    rgb = np.random.default_rng(0).integers(0, 256, size=(5, 4, 6, 3), dtype=np.uint8)
    Q = pixel_features(rgb)
    assert Q.shape == (5, 3 * 4 * 6)
    np.testing.assert_allclose(Q, rgb.transpose(0, 3, 1, 2).reshape(5, -1) / 255, rtol=1e-6)
    np.testing.assert_allclose(pixel_features(rgb / 255.0), Q, atol=1e-7)
    from tsimcne_widgets import as_images
    np.testing.assert_array_equal(pixel_features(as_images(rgb)), Q)


def test_pixel_features_errors():
    with pytest.raises(ValueError):
        pixel_features(np.full((4, 8, 8), 2.0))  # floats must lie in [0, 1]
    with pytest.raises(ValueError):
        pixel_features(np.zeros((4, 8)))  # not images
    with pytest.raises(TypeError):
        pixel_features(b"images")
    with pytest.raises(FileNotFoundError):
        pixel_features("no/such/folder")  # a str is a folder of images


def test_embed_on_pixels(small_digits):
    X, y = small_digits
    Z = embed(pixel_features(X), "tsne", random_state=0, **FAST["tsne"])
    assert Z.shape == (120, 2) and Z.dtype == np.float32
    from tsimcne_widgets.metrics import knn_accuracy
    assert knn_accuracy(Z, y, k=5) > 0.5


def test_joined_features_give_each_block_an_equal_say(feats):
    rng = np.random.default_rng(1)
    wide = rng.normal(5.0, 300.0, size=(160, 200))  # far wider and larger than feats
    J = joined_features(feats, wide)
    assert J.shape == (160, 264) and J.dtype == np.float32
    for block in (J[:, :64], J[:, 64:]):
        np.testing.assert_allclose(block.mean(0), 0, atol=1e-4)
        assert np.linalg.norm(block, axis=1).mean() == pytest.approx(1, rel=1e-5)
    # Each block is only shifted and scaled: its distances keep their order.
    d = np.linalg.norm(feats[0] - feats[1:], axis=1)
    dj = np.linalg.norm(J[0, :64] - J[1:, :64], axis=1)
    np.testing.assert_array_equal(np.argsort(d), np.argsort(dj))
    # A constant block stays zero rather than dividing by zero.
    assert not joined_features(feats, np.ones((160, 3)))[:, 64:].any()


def test_joined_features_errors(feats):
    with pytest.raises(ValueError, match="at least 2 blocks, got 1"):
        joined_features(feats)
    with pytest.raises(ValueError, match=r"same number of rows.*\[160, 159\]"):
        joined_features(feats, feats[:-1])
    bad = feats.copy()
    bad[3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        joined_features(feats, bad)
    with pytest.raises(ValueError, match="numeric 2D array"):
        joined_features(feats, feats[:, 0])


# ------------------------------------------------------------------ phases and progress
def _dedup(reports):
    """The (phase, iteration, n_iter) reports without repeats, in order."""
    out = []
    for r in reports:
        if not out or out[-1] != r:
            out.append(r)
    return out


def test_tsne_snapshots_count_stage_epoch_and_step_as_documented(feats):
    run = start(feats, "tsne", callback_every=10, n_iter=60, early_exaggeration_iter=40)
    run.wait(60)
    where = [(s.stage, s.epoch, s.step) for s in run.snapshots]
    # stage = the phase, epoch = iterations within it, step = iterations since the start.
    expected = [(1, i, i) for i in (10, 20, 30, 40)] + [(2, i, 40 + i) for i in range(10, 61, 10)]
    assert where[:10] == expected
    # The result, if it differs from the last frame, is labelled where the run ended.
    assert where[10:] in ([], [(2, 60, 100)])
    np.testing.assert_array_equal(run.snapshots[-1].xy, run.embedding)
    p = run.progress
    assert (p.state, p.method, p.phase) == ("finished", "tsne", "done")


def test_umap_and_pca_snapshots_count_epochs(feats):
    run = start(feats, "umap", n_epochs=[5, 10, 30])
    run.wait(120)
    where = [(s.stage, s.epoch, s.step) for s in run.snapshots]
    assert {st for st, _, _ in where} == {1} and where[-1][1:] == (30, 30)
    assert [st for _, _, st in where] == sorted(st for _, _, st in where)
    assert all(e == st for _, e, st in where)
    run = start(feats, "pca")
    run.wait(60)
    assert [(s.stage, s.epoch, s.step) for s in run.snapshots] == [(1, 0, 0)]


def test_tsne_default_phase_lengths_and_text(feats):
    reports = []
    embed(feats, "tsne", progress=lambda *r: reports.append(r), callback_every=250,
          n_iter=250)
    assert _dedup(reports) == [
        ("affinities", 0, 0), ("exaggeration", 0, 250), ("exaggeration", 250, 250),
        ("optimising", 0, 250), ("optimising", 250, 250), ("done", 0, 0)]
    from tsimcne_widgets.baselines import BaselineProgress
    assert BaselineProgress(method="tsne", phase="exaggeration", iteration=120,
                            n_iter=250).text == "exaggeration 120/250"
    assert BaselineProgress(method="umap", phase="fitting", n_iter=500).text == (
        "fitting (500 epochs)")
    assert BaselineProgress(method="pca", phase="done").text == "done"


def test_umap_reports_its_epochs(feats):
    reports = []
    embed(feats, "umap", n_epochs=[5, 10, 30], callback=lambda i, Z: None,
          progress=lambda *r: reports.append(r))
    assert reports[0] == ("fitting", 0, 30) and reports[-1] == ("done", 30, 30)
    epochs = [i for phase, i, n in reports if phase == "epochs"]
    assert epochs == sorted(epochs) and epochs[-1] == 30 and {5, 10} <= set(epochs)
    reports.clear()
    embed(feats[:50], "umap", progress=lambda *r: reports.append(r))
    assert reports[0] == ("fitting", 0, 500)  # umap-learn's default for small data


def test_stopped_tsne_progress(feats):
    import threading

    gate = threading.Event()
    run = start(feats, "tsne", callback_every=10, n_iter=5000)
    run.on("snapshot", lambda s: gate.set())
    assert gate.wait(60)
    run.stop()
    run.wait(60)
    assert run.progress.state == "stopped"


def test_a_slow_snapshot_callback_does_not_hold_up_tsne(feats):
    import threading

    release = threading.Event()
    calls = []

    def slow(snap):  # stands for a slow consumer, e.g. a widget update per frame
        calls.append(snap)
        release.wait(60)

    run = start(feats, "tsne", callback_every=10, n_iter=60, early_exaggeration_iter=40)
    run.on("snapshot", slow)
    # t-SNE runs to the end while the first callback is still blocked: callbacks run on
    # a dispatcher thread, not on the worker.
    assert wait_for(lambda: run.done, 60)
    assert run.state == "finished" and len(run.snapshots) >= 10
    assert len(calls) < len(run.snapshots)
    release.set()
    run.wait(60)
    assert len(calls) == len(run.snapshots)  # every frame still reaches the callback


def test_baseline_on_returns_the_callback_and_off_removes_it(feats):
    # Not started yet, so that no frame can come before off().
    run = baselines.BaselineRun(feats, "tsne", callback_every=10, n_iter=60,
                                early_exaggeration_iter=40)
    kept, dropped = [], []
    assert run.on("snapshot", kept.append) == kept.append
    cb = run.on("snapshot", dropped.append)
    run.on("snapshot", kept.append)  # registered once only
    run.off("snapshot", cb)
    run.off("snapshot", print)  # not registered: nothing happens
    run._launch()
    run.wait(60)
    assert dropped == [] and len(kept) == len(run.snapshots)
    with pytest.raises(ValueError, match="event must be one of"):
        run.on("epoch_end", print)
    with pytest.raises(ValueError, match="event must be one of"):
        run.off("done", print)
    with pytest.raises(TypeError, match="callable"):
        run.on("snapshot", "not a function")
