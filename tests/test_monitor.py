
import pytest
from _helpers import wait_for

from tsimcne_widgets import Augmentations, TSimCNE
from tsimcne_widgets.monitor import TrainingMonitor

FAST = {"backbone": "small", "batch_size": 30, "augmentations": Augmentations(hflip=0),
        "random_state": 0}




def buttons(m):
    return (m.start_button.disabled, m.pause_button.disabled, m.stop_button.disabled)


def test_buttons_follow_the_run_state(small_digits):
    X, y = small_digits
    est = TSimCNE(total_epochs=(300, 1, 1), **FAST)
    m = TrainingMonitor(estimator=est, images=X, labels=y, update_interval=0.05)
    assert buttons(m) == (False, True, True) and "idle" in m.status.value
    run = m.start_button.click() or m.run
    assert wait_for(lambda: "running" in m.status.value)
    assert buttons(m) == (True, False, False) and m.pause_button.description == "Pause"
    m.pause_button.click()
    assert wait_for(lambda: run.state == "paused" and "paused" in m.status.value)
    assert m.pause_button.description == "Resume" and buttons(m) == (True, False, False)
    m.pause_button.click()
    assert wait_for(lambda: run.state == "running")
    assert wait_for(lambda: "epoch" in m.details.value and "views/s" in m.details.value)
    m.stop_button.click()
    assert wait_for(lambda: run.state == "stopped" and "stopped" in m.status.value)
    assert buttons(m) == (False, True, True)
    assert m.start_button.description == "Resume training"
    # Start again resumes the same estimator from where it stopped.
    before = est._trainer.steps_done
    m.start_button.click()
    assert m.run is not run and wait_for(lambda: est._trainer.steps_done > before)
    m.run.stop()
    m.run.wait(30)
    m.close()


def test_progress_bars_curves_and_knn(small_digits):
    X, y = small_digits
    est = TSimCNE(total_epochs=(3, 1, 2), **FAST)
    run = est.start(X, labels=y, snapshot_every="epoch")
    m = TrainingMonitor(run, update_interval=0.05)
    run.wait(60)
    assert wait_for(lambda: "finished" in m.status.value)
    assert m.overall.value == pytest.approx(1.0)
    assert "stage 3 fine-tune" in m.details.value and "epoch 2/2" in m.details.value
    assert len(m.curves.loss) == 4 * 6 and len(m.curves.lr) == 4 * 6
    assert m.curves.stage_bounds == [12.0, 16.0] and m.curves.total_steps == 24
    assert len(m.knn_history) == len(run.snapshots) == 7
    assert all(0 <= acc <= 1 for _, acc in m.knn_history)
    assert m.start_button.description == "Restart" and not m.start_button.disabled


class Broken(TSimCNE):
    pass


@pytest.mark.parametrize("bf16", [False, True])
def test_a_failed_run_shows_its_error(small_digits, monkeypatch, bf16):
    import torch

    from tsimcne_widgets import _device

    # With bf16, mixed_precision='auto' first times the model in each setting; a model
    # that fails there must still fail in the run, where the monitor shows it.
    monkeypatch.setattr(_device, "bf16_supported", lambda device: bf16)
    monkeypatch.setattr(_device, "_PROBE_CACHE", {})

    class Bad(torch.nn.Module):
        feature_dim = 8

        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(64, 8)

        def forward(self, x):
            if self.training:
                raise RuntimeError("disk <on> fire")
            return self.lin(x.flatten(1))

    X, _ = small_digits
    est = TSimCNE(total_epochs=(2, 1, 1), **{**FAST, "backbone": Bad()})
    run = est.start(X)
    m = TrainingMonitor(run, update_interval=0.05)
    with pytest.raises(RuntimeError):
        run.wait(30)
    assert wait_for(lambda: "failed" in m.status.value)
    assert "disk &lt;on&gt; fire" in m.error.value  # escaped
    assert "RuntimeError" in m.error.value
    assert "Traceback" in m.traceback.value and "forward" in m.traceback.value
    assert m.error_box.layout.display is None
    assert buttons(m)[1:] == (True, True)


# -------------------------------------------------------------- the progress line's text
def _progress(**kw):
    from tsimcne_widgets.run import Progress

    base = {"stage": 1, "n_stages": 3, "stage_name": "pretrain", "epoch": 3,
            "epochs_in_stage": 10, "loss": 5.25, "lr": 0.03, "elapsed": 65.0,
            "eta": 2202.0, "views_per_s": 1234.0}
    return Progress(**{**base, **kw})


@pytest.mark.parametrize("state", ["running", "paused", "stopping", "stopped", "finished",
                                   "failed", "idle"])
def test_eta_only_while_running(state):
    from tsimcne_widgets.monitor import _details_html

    text = _details_html(_progress(state=state), state)
    assert "stage 1 pretrain 128-D · epoch 3/10 · loss 5.25 · lr 0.03" in text
    assert "elapsed 0:01:05" in text
    if state == "running":
        assert "ETA 0:36:42" in text and "1234 views/s" in text
    else:
        assert "ETA" not in text and "0:36:42" not in text and "views/s" not in text


def test_loss_is_a_dash_before_the_first_batch():
    from tsimcne_widgets.monitor import _details_html

    text = _details_html(_progress(loss=float("nan"), eta=float("nan")), "running")
    assert "loss – ·" in text and "nan" not in text.lower()
    assert "ETA – ·" in text  # no estimate yet, still no 'nan'
    assert "loss 5.25" in _details_html(_progress(), "running")


def test_the_progress_line_names_the_precision():
    from tsimcne_widgets.monitor import _details_html

    assert _details_html(_progress(precision="bf16"), "paused").endswith("· bf16</span>")
    assert "fp32" not in _details_html(_progress(), "running")


def test_a_stopped_monitor_shows_no_eta(small_digits):
    X, y = small_digits
    est = TSimCNE(total_epochs=(300, 1, 1), **FAST)
    run = est.start(X, labels=y)
    m = TrainingMonitor(run, update_interval=0.05)
    assert wait_for(lambda: run.progress.steps_done > 0 and "ETA" in m.details.value)
    run.stop()
    run.wait(30)
    assert wait_for(lambda: "stopped" in m.status.value)
    assert "ETA" not in m.details.value and "views/s" not in m.details.value
    assert "loss nan" not in m.details.value
    m.close()


def test_theme_is_checked():
    assert TrainingMonitor(theme="dark").curves.theme == "dark"
    assert TrainingMonitor().curves.theme == "auto"
    with pytest.raises(ValueError, match="theme must be one of"):
        TrainingMonitor(theme="blue")
    with pytest.raises(Exception, match="theme must be one of"):
        TrainingMonitor().curves.theme = "sepia"
