
import numpy as np
import pandas as pd
import pytest
from _helpers import wait_for

from tsimcne_widgets import Augmentations, TSimCNE
from tsimcne_widgets.explorer import Explorer
from tsimcne_widgets.gallery import SelectionGallery

PARAMS = {"backbone": "small", "batch_size": 30, "total_epochs": (2, 1, 2),
          "augmentations": Augmentations(hflip=0), "random_state": 0}




def test_explorer_trains_and_exposes_results(small_digits):
    X, y = small_digits
    meta = pd.DataFrame({"file": [f"img_{i}.png" for i in range(len(X))]})
    ex = Explorer(X, labels=y, metadata=meta, start_kwargs={"snapshot_every": "epoch"},
                  **PARAMS)
    assert ex.embedding is None and ex.scatter.n_points == 120
    run = ex.start()
    ex.wait(60)
    assert run.state == "finished" and ex.estimator is run.estimator
    assert ex.embedding.shape == (120, 2)
    assert wait_for(lambda: ex.history.max == len(run.snapshots) - 1 == 5)
    # The scatter shows the final frame.
    assert wait_for(lambda: np.allclose(ex.scatter.xy, run.snapshots[-1].xy))
    ex.scatter.selection = [3, 5, 7]
    df = ex.selected_dataframe()
    assert list(df["index"]) == [3, 5, 7] and "file" in df and "label" in df
    assert list(df["file"]) == ["img_3.png", "img_5.png", "img_7.png"]
    assert ex.gallery.total == 3 and [it["index"] for it in ex.gallery.items] == [3, 5, 7]


def test_history_slider_sets_the_scatter_frame(small_digits):
    X, y = small_digits
    ex = Explorer(X, labels=y, start_kwargs={"snapshot_every": "epoch"}, **PARAMS)
    ex.start()
    ex.wait(60)
    snaps = ex.run.snapshots
    assert wait_for(lambda: ex.history.max == len(snaps) - 1)
    ex.history.value = 1
    assert not ex.follow.value
    assert wait_for(lambda: np.allclose(ex.scatter.xy, snaps[1].xy))
    # Without a browser the flow control sends after its ack timeout: wait for the frame.
    assert wait_for(lambda: ex.scatter.frame_kind == "preview")
    ex.history.value = len(snaps) - 1
    assert ex.follow.value
    assert wait_for(lambda: np.allclose(ex.scatter.xy, snaps[-1].xy))
    assert wait_for(lambda: ex.scatter.frame_kind == "embedding")


def test_explorer_with_an_estimator_reattaches_to_a_running_run(small_digits):
    X, y = small_digits
    est = TSimCNE(**{**PARAMS, "total_epochs": (500, 1, 1)})
    ex = Explorer(est, X, labels=y)
    run = ex.monitor.start_button.click() or ex.run
    assert run is not None and wait_for(lambda: run.state == "running")
    again = Explorer(est, X, labels=y)  # e.g. re-created in a new cell
    assert again.run is run and again.monitor.run is run
    run.stop()
    run.wait(30)
    with pytest.raises(TypeError, match="needs the images"):
        Explorer(est)
    # images by keyword, the name every widget uses
    assert Explorer(est, images=X, labels=y).images.n_samples == len(X)
    assert Explorer(images=X, labels=y, backbone="small").images.n_samples == len(X)


def test_gallery_shows_first_items_and_reports_clicks(small_digits):
    X, y = small_digits
    g = SelectionGallery(X, labels=y, max_items=10)
    g.show(np.arange(25))
    assert g.total == 25 and len(g.items) == 10
    assert g.items[0]["src"].startswith("data:image/png;base64,")
    assert [it["label"] for it in g.items] == [str(c) for c in y[:10]]
    clicked = []
    g.on_click(clicked.append)
    g.clicked = [4, 1]
    assert clicked == [4]
    with pytest.raises(ValueError, match="indices must be in"):
        g.show([500])


def test_explorer_wait_handles_the_monitor_buttons(small_digits, monkeypatch):
    import contextlib

    from tsimcne_widgets import _kernel_poll

    X, y = small_digits
    ex = Explorer(X, labels=y, **{**PARAMS, "total_epochs": (100_000, 1, 1)})
    run = ex.start()
    seen = []

    def poll(n):  # a kernel poll that receives the clicks: Pause, then Stop once paused
        seen.append(run.state)
        if len(seen) == 3:
            ex.monitor.pause_button.click()
        elif seen.count("paused") == 3:
            ex.monitor.stop_button.click()

    monkeypatch.setattr(_kernel_poll, "_current_kernel", lambda: object())
    monkeypatch.setattr(_kernel_poll, "_poller_for", lambda k: contextlib.nullcontext(poll))
    assert ex.wait(60) is ex.estimator
    assert run.state == "stopped" and "paused" in seen
