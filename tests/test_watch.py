"""Run directories (run_dir.py) and watching a run from another process (watch.py)."""

import json
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from _helpers import wait_for

from tsimcne_widgets import Augmentations, TSimCNE
from tsimcne_widgets.explorer import Explorer
from tsimcne_widgets.run import Progress, check_start_options
from tsimcne_widgets.run_dir import (
    RunDirReader,
    RunDirWarning,
    RunDirWriter,
    read_meta,
    read_snapshots,
    write_control,
)
from tsimcne_widgets.snapshots import Snapshot
from tsimcne_widgets.watch import RemoteRunError, WatchedRun, watch

N = 64
TINY = {"backbone": "small", "total_epochs": (2, 1, 1), "batch_size": 32, "random_state": 0,
        "augmentations": Augmentations(hflip=0), "device": "cpu", "mixed_precision": False}
if "n_threads" in TSimCNE().get_params():
    TINY["n_threads"] = 1  # no thread probing: a few steps take well under a second


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).integers(0, 256, (N, 8, 8), dtype=np.uint8)


def snap(step, n=N, stage=1, loss=1.0, kind="preview", indices=None):
    xy = np.random.default_rng(step).normal(size=(n, 2)).astype(np.float32)
    return Snapshot(xy, stage, step // 2, step, loss, kind, indices)


def new_dir(path, n_snaps=3, end="finished", **meta):
    """A finished run directory with ``n_snaps`` snapshots at steps 0, 1, ..."""
    w = RunDirWriter(path)
    w.write_meta(n_samples=meta.pop("n_samples", N), schedule=[{"name": "train", "epochs": 2}],
                 steps_per_epoch=2, batch_size=32, **meta)
    snaps = [snap(i) for i in range(n_snaps)]
    for s in snaps:
        w.write_snapshot(s)
    w.write_progress(Progress(state="running", n_stages=1, total_steps=4, steps_done=2),
                     force=True)
    if end:
        w.write_end(end, ValueError("boom") if end == "failed" else None)
    return snaps


# -- the layout ---------------------------------------------------------------------------
def test_writer_and_reader_round_trip(tmp_path):
    idx = np.arange(0, N, 2)
    snaps = [snap(0, loss=float("nan")), snap(1, n=len(idx), indices=idx),
             snap(2, n=len(idx), kind="embedding", indices=idx)]
    with RunDirWriter(tmp_path) as w:
        w.write_meta(n_samples=N, schedule=[{"name": "train", "epochs": 2}], steps_per_epoch=2,
                     batch_size=32, precision="fp32", image_shape=[8, 8])
        names = [w.write_snapshot(s) for s in snaps]
        w.write_epoch({"stage": 1, "stage_name": "train", "epoch": 1, "loss": 2.0, "lr": 0.1,
                       "seconds": 1.0, "step": 2})
        assert w.write_progress(Progress(state="running", loss=float("nan")))
        assert not w.write_progress(Progress(state="running"))  # at most one a second
        w.write_end("finished")
    assert names == ["snapshot-000000.npy", "snapshot-000001.npy", "snapshot-000002.npy"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "index.jsonl", "indices.npy", "meta.json", *names]  # the subsample stored once
    meta = read_meta(tmp_path)
    assert meta["n_samples"] == N and meta["total_steps"] == 4 and meta["image_shape"] == [8, 8]
    assert "labels" not in meta
    lines = [json.loads(x) for x in (tmp_path / "index.jsonl").read_text().splitlines()]
    assert [r["type"] for r in lines] == ["start", "snapshot", "snapshot", "snapshot", "epoch",
                                          "progress", "end"]
    assert lines[1]["loss"] is None and lines[5]["loss"] is None  # NaN is null
    assert lines[-1] == {**lines[-1], "state": "finished", "error": None}
    back = read_snapshots(tmp_path)
    assert len(back) == 3
    for a, b in zip(snaps, back, strict=True):
        np.testing.assert_array_equal(a.xy, b.xy)
        assert (a.stage, a.epoch, a.step, a.kind) == (b.stage, b.epoch, b.step, b.kind)
        assert b.time == pytest.approx(a.time)
    assert np.isnan(back[0].loss) and back[1].loss == 1.0 and back[0].indices is None
    np.testing.assert_array_equal(back[2].indices, idx)


def test_reader_sees_only_complete_lines_and_indexed_files(tmp_path):
    w = RunDirWriter(tmp_path)
    w.write_snapshot(snap(0))
    reader = RunDirReader(tmp_path)
    # A file without its index line is never read, nor are files foreign to the layout.
    np.save(tmp_path / "snapshot-000001.npy", snap(1).xy)
    (tmp_path / "notes.txt").write_text("hello")
    _, recs = reader.poll()
    assert [r["type"] for r in recs] == ["start", "snapshot"]
    line = json.dumps({"type": "snapshot", "file": "snapshot-000001.npy", "stage": 1,
                       "epoch": 0, "step": 1, "loss": None, "kind": "preview"}) + "\n"
    with open(tmp_path / "index.jsonl", "ab") as f:
        f.write(line[:20].encode())  # a line being written
        f.flush()
        assert reader.poll() == (False, [])
        f.write(line[20:].encode())
    _, recs = reader.poll()
    assert len(recs) == 1 and recs[0]["step"] == 1
    assert reader.load(recs[0]).step == 1
    assert [s.step for s in read_snapshots(tmp_path)] == [0, 1]


def test_broken_files_and_lines_are_skipped_with_one_warning(tmp_path):
    w = RunDirWriter(tmp_path)
    w.write_snapshot(snap(0))
    w.write_snapshot(snap(1))
    w.write_snapshot(snap(2))
    data = (tmp_path / "snapshot-000001.npy").read_bytes()
    (tmp_path / "snapshot-000001.npy").write_bytes(data[:len(data) // 2])  # truncated
    (tmp_path / "snapshot-000002.npy").unlink()
    with open(tmp_path / "index.jsonl", "ab") as f:
        f.write(b"{not json\n")
        f.write(b'{"type": "snapshot", "file": "../etc/passwd", "stage": 1, "epoch": 0, '
                b'"step": 3, "kind": "preview"}\n')
        f.write(b'{"type": "future-record", "x": 1}\n')
    with pytest.warns(RunDirWarning) as rec:
        assert [s.step for s in read_snapshots(tmp_path)] == [0]
    msgs = " | ".join(str(r.message) for r in rec)
    assert len(rec) == 4, msgs  # the truncated file, the missing one, the line, the path
    assert "snapshot-000001.npy" in msgs and "malformed line" in msgs and "passwd" in msgs
    # Once per file: a watcher polling again stays quiet.
    reader = RunDirReader(tmp_path)
    with pytest.warns(RunDirWarning):
        _, recs = reader.poll()
        [reader.load(r) for r in recs if r["type"] == "snapshot"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        [reader.load(r) for r in recs if r["type"] == "snapshot"]


def test_fresh_run_replaces_the_directory_and_resumed_run_appends(tmp_path):
    new_dir(tmp_path, n_snaps=3)
    (tmp_path / "notes.txt").write_text("mine")
    reader = RunDirReader(tmp_path)
    assert len(reader.poll()[1]) == 6
    # Resumed from a checkpoint at step 1: the earlier session's step 2 is dropped.
    w = RunDirWriter(tmp_path, resume=True, step=1)
    assert w.write_snapshot(snap(1)) == "snapshot-000003.npy"
    w.write_snapshot(snap(5))
    assert [s.step for s in read_snapshots(tmp_path)] == [0, 1, 1, 5]
    reset, recs = reader.poll()
    assert not reset and [r["type"] for r in recs] == ["start", "snapshot", "snapshot"]
    w.close()
    # A fresh run: old snapshots (and a crash's temporary file) go, other files stay, a
    # reader starts over.
    (tmp_path / ".snapshot-000009.npy.123.tmp").write_bytes(b"half")
    w = RunDirWriter(tmp_path)
    w.write_snapshot(snap(7))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "index.jsonl", "notes.txt", "snapshot-000000.npy"]
    reset, recs = reader.poll()
    assert reset and [r["type"] for r in recs] == ["start", "snapshot"]
    assert [s.step for s in read_snapshots(tmp_path)] == [7]


def test_control_file_commands(tmp_path):
    w = RunDirWriter(tmp_path, control_interval=0)
    assert w.poll_control() is None
    write_control(tmp_path, "pause")
    assert w.poll_control() == "pause"
    assert w.poll_control() is None  # each version once
    write_control(tmp_path, "pause")
    assert w.poll_control() == "pause"
    assert json.loads((tmp_path / "control.json").read_text())["seq"] == 1
    (tmp_path / "control.json").write_text('{"command": "explode"}')
    with pytest.warns(RunDirWarning, match="unknown command"):
        assert w.poll_control() is None
    with pytest.raises(ValueError, match="command must be one of"):
        write_control(tmp_path, "explode")
    # A new run ignores what was written before it started.
    write_control(tmp_path, "stop")
    assert RunDirWriter(tmp_path, resume=True, control_interval=0).poll_control() is None


# -- the watcher ----------------------------------------------------------------------------
def test_watched_run_follows_a_directory_to_its_end(tmp_path, images):
    w = RunDirWriter(tmp_path)
    w.write_meta(n_samples=N, schedule=[{"name": "pretrain", "epochs": 1},
                                        {"name": "2D readout", "epochs": 1}],
                 steps_per_epoch=2, batch_size=32)
    run = WatchedRun(tmp_path, images=images, poll_interval=0.05)
    events = []
    for ev in ("snapshot", "epoch_end", "stage_change", "finished"):
        run.on(ev, lambda p, ev=ev: events.append(ev))
    run.start()
    assert wait_for(lambda: run.state == "running", 5)
    assert run.steps_per_epoch == 2 and [s.name for s in run.schedule] == ["pretrain",
                                                                          "2D readout"]
    w.write_snapshot(snap(0))
    assert wait_for(lambda: len(run.snapshots) == 1, 5)
    w.write_progress(Progress(state="paused", stage=1, n_stages=2, steps_done=1,
                              total_steps=4), force=True)
    assert wait_for(lambda: run.state == "paused", 5)
    assert run.progress.steps_done == 1 and run.progress.fraction == 0.25
    w.write_epoch({"stage": 1, "stage_name": "pretrain", "epoch": 1, "loss": 3.0, "lr": 0.1,
                   "seconds": 1.0, "step": 2})
    w.write_snapshot(snap(2, stage=2, kind="embedding"))
    w.write_epoch({"stage": 2, "stage_name": "2D readout", "epoch": 1, "loss": 2.0, "lr": 0.1,
                   "seconds": 1.0, "step": 4})
    w.write_end("finished")
    assert run.wait(5) is run and run.state == "finished" and run.done
    assert [s.step for s in run.snapshots] == [0, 2]
    assert [h["loss"] for h in run.history] == [3.0, 2.0]
    assert events == ["snapshot", "epoch_end", "snapshot", "epoch_end", "stage_change",
                      "finished"]


def test_watched_run_reports_a_failure_and_a_size_mismatch(tmp_path, images):
    new_dir(tmp_path / "failed", end="failed")
    run = watch(tmp_path / "failed", images=images, poll_interval=0.05)
    with pytest.raises(RemoteRunError, match="ValueError: boom"):
        run.wait(5)
    assert run.state == "failed" and len(run.snapshots) == 3
    new_dir(tmp_path / "big", n_samples=99)
    with pytest.raises(ValueError, match="images has 64 images, but the run .* trains on 99"):
        WatchedRun(tmp_path / "big", images=images)
    # Without meta.json the snapshots are checked as they come.
    w = RunDirWriter(tmp_path / "nometa")
    w.write_snapshot(snap(0, n=10))
    w.write_snapshot(snap(1, n=10))
    w.write_end("finished")
    with pytest.warns(RunDirWarning, match="do not fit the 64 images"):
        run = watch(tmp_path / "nometa", images=images, poll_interval=0.05)
        run.wait(5)
    assert run.snapshots == [] and len(run.errors) == 1
    with pytest.raises(ValueError, match="poll_interval"):
        WatchedRun(tmp_path, poll_interval=0)
    with pytest.raises(TypeError, match="path must be"):
        WatchedRun(3)


def test_close_stops_watching_only(tmp_path):
    new_dir(tmp_path, end=None)
    run = watch(tmp_path, poll_interval=0.05)
    assert wait_for(lambda: len(run.snapshots) == 3, 5) and run.state == "running"
    with pytest.raises(TimeoutError):
        run.wait(0.2)
    run.close()
    assert run.wait(5) is run and run.state == "detached"
    assert not (tmp_path / "control.json").exists()


def test_snapshot_dir_is_validated(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(ValueError, match="snapshot_dir must be a directory"):
        check_start_options(0.5, 200, None, None, None, tmp_path / "f")
    with pytest.raises(TypeError, match="snapshot_dir must be None"):
        check_start_options(0.5, 200, None, None, None, 42)


def test_a_writing_error_is_reported_and_training_goes_on(tmp_path, images, monkeypatch):
    def fail(self, snapshot):
        raise OSError("disk full")

    monkeypatch.setattr(RunDirWriter, "write_snapshot", fail)
    with pytest.warns(RuntimeWarning, match="writing stopped after OSError: disk full"):
        run = TSimCNE(**TINY).start(images, snapshot_every="epoch", snapshot_dir=tmp_path)
        run.wait(30)
    assert run.state == "finished" and len(run.snapshots) == 5
    assert [type(e) for e in run.errors] == [OSError]
    assert read_snapshots(tmp_path) == []  # the index ends where writing stopped


# -- control of a training run ------------------------------------------------------------
def test_pause_resume_stop_from_the_watcher_reach_the_run(tmp_path, images):
    est = TSimCNE(**{**TINY, "total_epochs": (500, 1, 1)})
    run = est.start(images, snapshot_every=None, snapshot_dir=tmp_path)
    watcher = watch(tmp_path, poll_interval=0.05)
    assert wait_for(lambda: watcher.state == "running", 10) and watcher.controllable
    watcher.pause()
    assert wait_for(lambda: run.state == "paused", 15)
    assert wait_for(lambda: watcher.state == "paused", 15)
    frozen = run.progress.steps_done
    watcher.resume()
    assert wait_for(lambda: run.progress.steps_done > frozen, 15)
    assert wait_for(lambda: watcher.state == "running", 15)
    watcher.stop()
    assert watcher.state == "stopping"
    run.wait(30)
    assert run.state == "stopped"
    assert watcher.wait(10) is watcher and watcher.state == "stopped"
    assert watcher.progress.steps_done == run.progress.steps_done


def test_explorer_watch_shows_the_last_snapshot(tmp_path, images):
    run = TSimCNE(**TINY).start(images, snapshot_every="epoch", snapshot_dir=tmp_path)
    run.wait(30)
    y = np.arange(N) % 4
    ex = Explorer.watch(tmp_path, images, labels=y, poll_interval=0.05)
    assert ex.run.wait(5).state == "finished" and ex.estimator is None
    last = run.snapshots[-1]
    assert [s.step for s in ex.run.snapshots] == [s.step for s in run.snapshots]
    assert wait_for(lambda: np.allclose(ex.scatter.xy, last.xy))
    np.testing.assert_array_equal(ex.embedding, last.xy)
    assert wait_for(lambda: ex.history.max == len(run.snapshots) - 1)
    assert ex.monitor.start_button.disabled and ex.monitor.stop_button.disabled
    assert wait_for(lambda: len(ex.monitor._epochs) == 4)  # one point per epoch
    assert wait_for(lambda: ex.monitor.curves.total_steps == run.progress.total_steps)
    ex.scatter.selection = [1, 2]
    assert list(ex.selected_dataframe()["index"]) == [1, 2] and ex.gallery.total == 2
    with pytest.raises(RuntimeError, match="cannot start training"):
        ex.start()
    with pytest.raises(ValueError, match="images has 32 images"):
        Explorer.watch(tmp_path, images[:32])
    ex.close()


@pytest.mark.process
def test_watch_a_run_in_another_process(tmp_path, images):
    np.save(tmp_path / "X.npy", images)
    run_dir = tmp_path / "run"
    params = {k: v for k, v in TINY.items() if k != "augmentations"}
    code = textwrap.dedent(f"""
        import numpy as np
        from tsimcne_widgets import Augmentations, TSimCNE
        X = np.load({str(tmp_path / "X.npy")!r})
        est = TSimCNE(augmentations=Augmentations(hflip=0), **{params!r})
        run = est.start(X, snapshot_every="epoch", snapshot_dir={str(run_dir)!r})
        run.wait(60)
        print("SNAPSHOTS", len(run.snapshots), run.state, flush=True)
    """)
    watcher = watch(run_dir, images=images, poll_interval=0.1)  # before the run exists
    seen = []
    watcher.on("snapshot", lambda s: seen.append(s.step))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    tag, count, state = proc.stdout.split()[-3:]
    assert tag == "SNAPSHOTS" and state == "finished"
    assert watcher.wait(10).state == "finished"
    assert len(seen) == len(watcher.snapshots) == int(count) == 5
    assert seen == sorted(seen)
    assert watcher.meta["n_samples"] == N and watcher.progress.fraction == 1.0
