
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
    m = TrainingMonitor(estimator=est, data=X, labels=y, update_interval=0.05)
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


def test_a_failed_run_shows_its_error(small_digits):
    import torch

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
