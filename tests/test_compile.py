"""``torch_compile``: the training step compiled, its time shown and kept out of the
timings. The 'aot_eager' backend traces like inductor but needs no C++ compiler."""

import numpy as np
import pytest

from tsimcne_widgets import Augmentations, TSimCNE
from tsimcne_widgets.monitor import _details_html
from tsimcne_widgets.run import Progress
from tsimcne_widgets.trainer import update_bar

AOT = {"backend": "aot_eager"}
FAST = {"backbone": "small", "total_epochs": (2, 1, 2), "batch_size": 40,
        "augmentations": Augmentations(hflip=0), "random_state": 0, "device": "cpu",
        "n_threads": 1, "mixed_precision": False, "verbose": False}


@pytest.mark.parametrize("value, error, match", [
    ("yes", TypeError, "torch_compile must be True, False or a dict"),
    ({"mode": "max-autotune", "speed": 2}, ValueError,
     r"unknown torch.compile arguments \['speed'\]"),
])
def test_bad_torch_compile_is_refused_before_training(small_digits, value, error, match):
    with pytest.raises(error, match=match):
        TSimCNE(**FAST, torch_compile=value).fit(small_digits[0])


class CountingThreads:
    """A thread control that only counts the steps it is told about."""
    threads = 1

    def __init__(self):
        self.timed = 0
        self.timings = {}

    def before_step(self):
        pass

    def after_step(self, seconds):
        self.timed += 1

    def restore(self):
        pass


def test_compiled_training_matches_eager_and_keeps_compile_steps_out_of_timings(small_digits):
    X, _ = small_digits  # 120 images: 3 steps per epoch, 15 in all
    eager = TSimCNE(**FAST).fit(X)
    est = TSimCNE(**FAST, torch_compile=AOT)
    from tsimcne_widgets.data import as_images

    data = as_images(X)
    est._initialize(data)
    tr = est._trainer
    tr.set_images(data.images)
    tr.thread_control = counting = CountingThreads()
    compiled_steps = []
    while not tr.done:
        compiled_steps.append(tr.will_compile)
        est._record(tr.step())
    # One compiling step at the start of each stage, none after.
    assert compiled_steps == [True] + [False] * 5 + [True, False, False] + [True] + [False] * 5
    assert counting.timed == 15 - 3
    assert est.compile_seconds_ > 0 and est.compile_seconds_ == tr.compile_seconds
    est.embedding_ = est.transform(X)
    np.testing.assert_allclose(est.embedding_, eager.embedding_, rtol=1e-3, atol=1e-3)
    assert eager.compile_seconds_ == 0.0


def test_a_background_run_reports_its_compile_time(small_digits):
    X, y = small_digits
    est = TSimCNE(**{**FAST, "total_epochs": (1, 1, 1)}, torch_compile=AOT)
    run = est.start(X, labels=y, snapshot_every=0)
    run.wait(120)
    assert run.progress.compile_seconds == pytest.approx(est.compile_seconds_)
    assert est.compile_seconds_ > 0 and not run.progress.compiling


def test_progress_line_and_bar_show_compiling():
    line = _details_html(Progress(state="running", compiling=True), "running")
    assert "compiling the model" in line
    done = _details_html(Progress(state="finished", compile_seconds=83.0), "finished")
    assert "compiled in 0:01:23" in done and "compiling" not in done

    class Bar:
        total = 10

        def set_description(self, text, refresh=False):
            pass

        def set_postfix(self, **kw):
            self.postfix = kw

        def update(self, n):
            pass

    from tsimcne_widgets.schedule import make_schedule
    from tsimcne_widgets.trainer import StepInfo

    bar = Bar()
    info = StepInfo(0, 0, 0, 5, 1.5, 0.1, False, False, None, None)
    update_bar(bar, info, make_schedule((1, 1, 1), 0.1, (0, 0, 0), 128, 2), 10, "fp32", 2,
               41.6)
    assert bar.postfix["compile"] == "42s" and bar.postfix["threads"] == 2
