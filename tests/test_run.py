import _thread
import contextlib
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import FrozenInstanceError

import numpy as np
import pytest
import torch
from _helpers import wait_for

from tsimcne_widgets import Augmentations, TSimCNE
from tsimcne_widgets.run import TrainingRun
from tsimcne_widgets.snapshots import StablePCA

FAST = {"backbone": "small", "total_epochs": (2, 1, 1), "batch_size": 30,
        "augmentations": Augmentations(hflip=0), "random_state": 0, "mixed_precision": False,
        "device": "cpu", "n_threads": 1}  # bitwise reproducible: CPU, one thread count


def fast(**kw):
    return TSimCNE(**{**FAST, **kw})


def test_start_returns_at_once_and_wait_returns_the_estimator(small_digits):
    X, y = small_digits
    est = fast(total_epochs=(3, 2, 2))
    run = est.start(X, labels=y, snapshot_every="epoch")
    assert isinstance(run, TrainingRun) and run.state in ("running", "finished")
    assert run.wait(timeout=120) is est
    assert run.state == "finished" and run.progress.state == "finished"
    assert run.progress.fraction == 1.0 and run.progress.views_per_s > 0
    assert est.embedding_.shape == (120, 2)
    snaps = run.snapshots
    # one at the start, one per epoch (7 epochs); stage ends coincide with epoch ends
    assert len(snaps) == 8
    assert [s.kind for s in snaps] == ["preview"] * 4 + ["embedding"] * 4
    assert [s.stage for s in snaps] == [1, 1, 1, 1, 2, 2, 3, 3]
    assert all(s.xy.shape == (120, 2) and s.xy.dtype == np.float32 for s in snaps)
    assert not snaps[-1].xy.flags.writeable
    np.testing.assert_allclose(snaps[-1].xy, est.embedding_, rtol=1e-5, atol=1e-5)
    steps = [s.step for s in snaps]
    assert steps == sorted(steps) and steps[-1] == 7 * 4


def test_snapshots_do_not_change_the_result(small_digits):
    X, _ = small_digits
    plain = fast().fit_transform(X)
    run = fast().start(X, snapshot_every="epoch")
    est = run.wait(120)
    assert len(run.snapshots) >= 5
    np.testing.assert_array_equal(est.embedding_, plain)


def test_pause_resume_stop_and_estimator_stays_usable(small_digits, tmp_path):
    X, _ = small_digits
    est = fast(total_epochs=(500, 10, 10))
    run = est.start(X)
    assert wait_for(lambda: run.progress.steps_done >= 2)
    run.pause()
    assert wait_for(lambda: run.state == "paused")
    frozen = run.progress.steps_done
    time.sleep(0.3)
    assert run.progress.steps_done == frozen
    with pytest.raises(RuntimeError, match="already training"):
        est.start(X)
    run.resume()
    assert wait_for(lambda: run.progress.steps_done > frozen)
    assert run.state == "running"
    run.stop()
    run.stop()  # idempotent
    assert run.wait(30) is est and run.state == "stopped"
    run.stop()
    assert est.transform(X).shape == (120, 128)  # still in stage 1
    assert est.backbone_features(X).shape == (120, 512)
    est.save(tmp_path / "stopped.pt")
    position = est._trainer.steps_done

    # A new start resumes from the same schedule position, its history carrying on...
    before = run.snapshots
    elapsed = run.progress.elapsed
    run2 = est.start(X)
    assert wait_for(lambda: run2.progress.steps_done > position)
    run2.stop()
    run2.wait(30)
    assert [id(s) for s in run2.snapshots[:len(before)]] == [id(s) for s in before]
    assert len(run2.snapshots) > len(before)
    assert run2.snapshots[len(before)].step >= position
    assert run2.progress.elapsed > elapsed
    # ...unless restart=True.
    run3 = est.start(X, restart=True)
    run3.stop()
    run3.wait(30)
    assert run3.snapshots[0].step == 0
    assert id(run3.snapshots[0]) not in {id(s) for s in run2.snapshots}
    assert run3.progress.elapsed < run2.progress.elapsed
    assert est._trainer.steps_done < position


def test_a_resumed_preview_keeps_its_orientation(small_digits):
    X, _ = small_digits
    est = fast(total_epochs=(500, 1, 1))
    run = est.start(X, snapshot_every="epoch")
    assert wait_for(lambda: len(run.snapshots) >= 2)
    run.stop()
    run.wait(30)
    last = run.snapshots[-1]
    run2 = est.start(X, snapshot_every="epoch")
    assert wait_for(lambda: len(run2.snapshots) > len(run.snapshots))
    run2.stop()
    run2.wait(30)
    first = run2.snapshots[len(run.snapshots)]
    assert first.kind == last.kind == "preview"
    # Aligned to the last frame: no flip of either axis fits it better.
    dist = {(sx, sy): np.abs(first.xy * [sx, sy] - last.xy).mean()
            for sx in (1, -1) for sy in (1, -1)}
    assert min(dist, key=dist.get) == (1, 1)


def test_stable_pca_reset_aligns_to_a_given_frame():
    rng = np.random.default_rng(1)
    Z = rng.normal(size=(100, 6)) * np.array([4, 2, 0.1, 0.1, 0.1, 0.1])
    a = StablePCA()(Z)
    pca = StablePCA()
    pca.reset(-a)  # as if the last frame had been drawn mirrored
    np.testing.assert_allclose(pca(Z), -a, atol=1e-5)


def test_stop_while_paused(small_digits):
    X, _ = small_digits
    run = fast(total_epochs=(500, 1, 1)).start(X)
    run.pause()
    assert wait_for(lambda: run.state == "paused")
    run.stop()
    run.wait(30)
    assert run.state == "stopped"


class Exploding(torch.nn.Module):
    """A backbone that fails on its n-th training forward pass."""

    feature_dim = 16

    def __init__(self, after=5, nan=False):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 16))
        self.calls = 0
        self.after = after
        self.nan = nan

    def forward(self, x):
        if self.training:
            self.calls += 1
            if self.calls > self.after:
                if self.nan:
                    return self.net(x) * float("nan")
                raise RuntimeError("bad data found mid-run")
        return self.net(x)


def test_exception_in_thread_reaches_wait_and_failed_event(small_digits):
    X, _ = small_digits
    seen = []
    est = fast(backbone=Exploding(after=5))
    run = est.start(X)
    run.on("failed", seen.append)
    with pytest.raises(RuntimeError, match="bad data found mid-run") as info:
        run.wait(60)
    assert run.state == "failed"
    # the original traceback, down to the frame that raised
    assert info.traceback[-1].name == "forward"
    assert wait_for(lambda: len(seen) == 1) and isinstance(seen[0], RuntimeError)
    assert run.exception is seen[0]


def test_nan_loss_fails_with_a_clear_message_and_checkpoint(small_digits, tmp_path):
    X, _ = small_digits
    est = fast(backbone=Exploding(after=6, nan=True))
    run = est.start(X, checkpoint_every=1, checkpoint_dir=tmp_path)
    with pytest.raises(FloatingPointError, match=r"stage 1 \(pretrain\), epoch 2, step 3.*"
                       r"last finite loss was"):
        run.wait(60)
    assert run.state == "failed"
    assert all(torch.isfinite(p).all() for p in est.model_.parameters())
    loaded = TSimCNE.load(tmp_path / "checkpoint.pt", backbone=Exploding())
    assert loaded._trainer.steps_done == 6
    for a, b in zip(loaded.model_.parameters(), est.model_.parameters(), strict=True):
        assert torch.equal(a, b)


def test_a_raising_callback_is_reported_and_training_goes_on(small_digits):
    X, _ = small_digits
    calls = []

    def bad(snapshot):
        calls.append(snapshot)
        raise ValueError("oops in callback")

    run = fast().start(X, snapshot_every="epoch")
    run.on("snapshot", bad)
    with pytest.warns(RuntimeWarning, match="oops in callback"):
        run.wait(60)
    assert run.state == "finished"
    assert run.errors and all(isinstance(e, ValueError) for e in run.errors)
    assert len(calls) == len(run.errors) >= 1


def test_events_and_callback_threads(small_digits):
    X, _ = small_digits
    got = {e: [] for e in ("epoch_end", "stage_change", "snapshot", "finished")}
    threads = set()
    run = fast().start(X, snapshot_every="epoch")
    for e in got:
        run.on(e, lambda p, e=e: (got[e].append(p), threads.add(threading.current_thread())))
    run.wait(60)
    assert len(got["epoch_end"]) >= 3 and len(got["stage_change"]) >= 1
    assert got["finished"] == [run]
    # Neither the caller's nor the training thread: the run's dispatcher.
    assert {t.name for t in threads} == {"tsimcne-events"}
    with pytest.raises(ValueError, match="event must be one of"):
        run.on("done", print)


def test_on_returns_the_callback_and_off_removes_it(small_digits):
    X, _ = small_digits
    est = fast(total_epochs=(500, 1, 1))
    run = est.start(X)
    run.pause()
    assert wait_for(lambda: run.state == "paused")
    kept, dropped = [], []
    assert run.on("stopped", kept.append) == kept.append
    cb = run.on("stopped", dropped.append)
    run.on("stopped", kept.append)  # registered once only
    run.off("stopped", cb)
    run.off("stopped", print)  # not registered: nothing happens
    run.stop()
    run.wait(30)
    assert kept == [run] and dropped == []
    with pytest.raises(TypeError, match="callable"):
        run.on("snapshot", None)
    with pytest.raises(ValueError, match="event must be one of"):
        run.off("done", print)


def test_run_exposes_its_schedule(small_digits):
    X, _ = small_digits
    est = fast(total_epochs=(3, 1, 2))
    run = est.start(X)
    run.wait(60)
    assert [st.epochs for st in run.schedule] == [3, 1, 2] == [st.epochs for st in est.schedule_]
    assert run.steps_per_epoch == 4  # 120 images, batches of 30
    assert run.progress.total_steps == 6 * run.steps_per_epoch
    assert est.run_ is run


def test_progress_is_immutable_and_sensible(small_digits):
    X, _ = small_digits
    run = fast(total_epochs=(3, 1, 1)).start(X)
    run.wait(60)
    p = run.progress
    with pytest.raises(FrozenInstanceError):
        p.loss = 0
    assert (p.stage, p.n_stages, p.stage_name) == (3, 3, "fine-tune")
    assert p.steps_done == p.total_steps == 5 * 4
    assert p.elapsed > 0 and np.isfinite(p.loss) and p.eta == pytest.approx(0, abs=1e-9)


def test_history_is_bounded(small_digits):
    X, _ = small_digits
    run = fast(total_epochs=(6, 1, 1)).start(X, snapshot_every="epoch", max_snapshots=5)
    run.wait(60)
    snaps = run.snapshots
    assert len(snaps) == 5 and snaps[-1].step == 8 * 4


def test_subsampled_snapshots(small_digits):
    X, _ = small_digits
    run = fast(total_epochs=(1, 1, 1)).start(X, snapshot_points=50)
    run.wait(60)
    s = run.snapshots[-1]
    assert s.xy.shape == (50, 2) and s.indices.shape == (50,)
    assert len(np.unique(s.indices)) == 50
    np.testing.assert_allclose(s.xy, run.estimator.embedding_[s.indices], rtol=1e-5, atol=1e-5)


def test_start_argument_errors(small_digits):
    X, _ = small_digits
    with pytest.raises(ValueError, match="snapshot_every"):
        fast().start(X, snapshot_every=-1)
    with pytest.raises(ValueError, match="checkpoint_every needs checkpoint_dir"):
        fast().start(X, checkpoint_every=1)
    with pytest.raises(ValueError, match="max_snapshots"):
        fast().start(X, max_snapshots=0)


def test_keyboard_interrupt_in_wait_stops_the_run(small_digits):
    X, _ = small_digits
    # interrupt_main() does nothing unless Python's own handler owns SIGINT, and libraries
    # used by earlier tests in this process may have replaced it (failed once in a full
    # run: the run finished and wait() returned).
    prev = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        run = fast(total_epochs=(500, 1, 1)).start(X)
        assert wait_for(lambda: run.progress.steps_done > 0, 30)
        threading.Timer(0.2, _thread.interrupt_main).start()
        with pytest.raises(KeyboardInterrupt):
            run.wait()
    finally:
        signal.signal(signal.SIGINT, prev)
    assert wait_for(lambda: run.state == "stopped", 10)


def test_stable_pca_keeps_orientation():
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(200, 10)) * np.array([5, 3] + [0.1] * 8)
    pca = StablePCA()
    a = pca(Z)
    # The same data with flipped and permuted-sign features gives the same picture.
    b = pca(Z * np.array([-1, 1] * 5))
    np.testing.assert_allclose(a, b, atol=1e-6)
    c = pca(Z + rng.normal(size=Z.shape) * 0.01)
    assert np.abs(c - a).max() < 0.2


@pytest.mark.process
def test_interpreter_exit_with_a_live_run_does_not_hang(tmp_path):
    code = textwrap.dedent("""
        import numpy as np
        from tsimcne_widgets import TSimCNE
        X = np.random.default_rng(0).integers(0, 255, (64, 8, 8), dtype=np.uint8)
        run = TSimCNE(backbone="small", total_epochs=(1000, 1, 1), batch_size=32).start(X)
        import time; time.sleep(1)
        print("state", run.state)
    """)
    t0 = time.time()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert "state running" in out.stdout
    assert time.time() - t0 < 30


@pytest.mark.process
def test_killed_run_resumes_from_checkpoint_to_the_same_result(tmp_path, small_digits):
    X, _ = small_digits
    np.save(tmp_path / "X.npy", X)
    params = dict(FAST, total_epochs=(10, 2, 2))  # 14 epochs of 4 steps
    params.pop("augmentations")
    code = textwrap.dedent(f"""
        import numpy as np, time
        from tsimcne_widgets import TSimCNE, Augmentations
        X = np.load({str(tmp_path / "X.npy")!r})
        est = TSimCNE(augmentations=Augmentations(hflip=0), **{params!r})
        run = est.start(X, checkpoint_every=1, checkpoint_dir={str(tmp_path)!r})
        # Pause after the second epoch: the training thread then writes nothing more, so
        # the kill lands mid-schedule, after the last checkpoint.
        run.on("epoch_end", lambda p: run.pause() if p.steps_done >= 8 else None)
        while run.state != "paused":
            assert not run.done, run.state
            time.sleep(0.01)
        print("paused", flush=True)
        time.sleep(120)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "paused"
    finally:
        proc.kill()  # SIGKILL: no clean-up at all
        proc.wait()
        proc.stdout.close()
    resumed = TSimCNE.load(tmp_path / "checkpoint.pt")
    tr = resumed._trainer
    # Killed mid-schedule: the checkpoint is one of the first epochs, not the end.
    assert 8 <= tr.steps_done < tr.total_steps and tr.steps_done % 4 == 0
    assert len(resumed.history_) == tr.steps_done // 4
    est = resumed.start(X).wait(120)
    assert len(est.history_) == 14
    full = TSimCNE(augmentations=Augmentations(hflip=0), **params).fit(X)
    np.testing.assert_array_equal(est.embedding_, full.embedding_)


def test_time_budget_in_a_background_run_excludes_paused_and_stopped_time(small_digits):
    X, _ = small_digits
    est = fast(time_budget="1h", total_epochs=(20, 2, 6))
    run = est.start(X)
    assert wait_for(lambda: run.progress.steps_done >= 6)
    p = run.progress
    assert p.time_budget == 3600.0
    # The ETA counts down to the budget (or past it, where the plan's own estimate is later).
    assert p.elapsed + p.eta >= 3600.0 - 1.0 and p.eta < 2 * 3600.0
    run.pause()
    assert wait_for(lambda: run.state == "paused")
    budget = est._trainer.budget
    used = budget.elapsed
    time.sleep(0.3)
    assert budget.elapsed == used  # paused time is not counted
    run.stop()
    run.wait(30)
    used = budget.elapsed
    time.sleep(0.2)
    assert budget.elapsed == used  # nor stopped time
    # The budget re-planned the stages for an hour: far more epochs than the proportions.
    assert est.schedule_[0].epochs > 20
    run2 = est.start(X)  # a resumed run goes on with what is left
    assert wait_for(lambda: run2.progress.steps_done > 6)
    assert run2.progress.elapsed >= used
    run2.stop()
    run2.wait(30)


class FakePoller:
    """Stands in for the kernel poller: records its calls, runs ``action`` on the n-th."""

    def __init__(self, action=None, on_call=3):
        self.calls = 0
        self.created = 0
        self.action, self.on_call = action, on_call

    def __call__(self, kernel):
        self.created += 1
        return contextlib.nullcontext(self.poll)

    def poll(self, n):
        self.calls += 1
        if self.calls == self.on_call and self.action is not None:
            self.action()


def test_wait_handles_widget_messages_while_it_blocks_in_a_kernel(small_digits, monkeypatch):
    from tsimcne_widgets import _kernel_poll

    X, _ = small_digits
    est = fast(total_epochs=(100_000, 1, 1))
    run = est.start(X)
    # The poll handles a Stop click: without polling the wait would time out.
    poller = FakePoller(action=run.stop)
    monkeypatch.setattr(_kernel_poll, "_current_kernel", lambda: object())
    monkeypatch.setattr(_kernel_poll, "_poller_for", poller)
    assert run.wait(60) is est
    assert run.state == "stopped"
    assert poller.created == 1 and poller.calls >= 3


def test_wait_outside_a_kernel_does_not_poll(small_digits, monkeypatch):
    from tsimcne_widgets import _kernel_poll

    X, _ = small_digits
    poller = FakePoller()
    monkeypatch.setattr(_kernel_poll, "_poller_for", poller)
    assert _kernel_poll._current_kernel() is None
    run = fast().start(X)
    run.wait(120)
    assert run.state == "finished" and poller.created == 0 and poller.calls == 0
    # A timeout still raises, and an interrupt still stops the run.
    run = fast(total_epochs=(100_000, 1, 1)).start(X)
    with pytest.raises(TimeoutError, match="still running"):
        run.wait(0.3)
    # Python's own SIGINT handler must own the signal for interrupt_main() to act (see
    # test_keyboard_interrupt_in_wait_stops_the_run).
    prev = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        threading.Timer(0.3, _thread.interrupt_main).start()
        with pytest.raises(KeyboardInterrupt):
            run.wait(60)
    finally:
        signal.signal(signal.SIGINT, prev)
    assert wait_for(lambda: run.state == "stopped", 10) and poller.calls == 0


KERNEL_SETUP = """
import ipywidgets as W
import numpy as np
from tsimcne_widgets import Augmentations, TSimCNE
X = np.random.default_rng(0).integers(0, 255, (64, 8, 8), dtype=np.uint8)
est = TSimCNE(backbone="small", total_epochs=(100_000, 1, 1), batch_size=32,
              augmentations=Augmentations(hflip=0), device="cpu")
seen = []

def clicked(change):  # 1: Pause, 2: Stop, as the monitor's buttons do
    if change["new"] == 1:
        run.pause()
    else:
        seen.append((run.state, run.progress.steps_done))
        run.stop()

button = W.IntText(0)  # the front end sends a click as a value update
button.observe(clicked, names="value")
print(button.comm.comm_id)
"""


@pytest.mark.process
def test_wait_in_a_real_kernel_handles_clicks_and_keeps_queued_cells(tmp_path):
    """What JupyterLab does in Run All: clicks (comm messages) arrive while a cell waits,
    and the next cell is queued behind it."""
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3", cwd=str(tmp_path))
    try:
        def output(msg_id, timeout=90):
            """The text that request printed, once the kernel is idle after it."""
            text, deadline = "", time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    m = kc.get_iopub_msg(timeout=1)
                except queue.Empty:
                    continue
                if m["parent_header"].get("msg_id") != msg_id:
                    continue
                if m["msg_type"] == "stream":
                    text += m["content"]["text"]
                elif m["msg_type"] == "error":
                    text += f"ERROR {m['content']['ename']}: {m['content']['evalue']}"
                elif m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
                    return text
            raise AssertionError(f"the kernel did not finish; output so far: {text!r}")

        def click(value):
            kc.shell_channel.send(kc.session.msg("comm_msg", {"comm_id": comm_id, "data": {
                "method": "update", "state": {"value": value}, "buffer_paths": []}}))

        comm_id = output(kc.execute(KERNEL_SETUP)).strip()
        waiting = kc.execute("run = est.start(X)\nprint('waited', run.wait(60) is est)")
        queued = kc.execute("print('after', seen, run.state, run.progress.steps_done)")
        time.sleep(3)  # training, the cell waits
        click(1)
        time.sleep(2)
        click(2)
        assert output(waiting).strip() == "waited True"
        after = output(queued)
        # Paused when Stop came, and no step since: the final count is the paused one.
        steps = int(after.split()[-1])
        assert after.strip() == f"after [('paused', {steps})] stopped {steps}" and steps > 0
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
