import threading
import warnings

import numpy as np
import pandas as pd
import pytest
import traitlets as t

from tsimcne_widgets import _scatter_encoding as sd
from tsimcne_widgets._frame_throttle import FrameThrottle
from tsimcne_widgets.scatter import EmbeddingScatter
from tsimcne_widgets.snapshots import Snapshot


@pytest.fixture
def xy():
    return np.random.default_rng(0).normal(size=(200, 2)).astype(np.float32)


def sent_messages(w):
    """Capture the comm state messages a widget would send (no kernel here)."""
    msgs = []
    w._repr_mimebundle_  # noqa: B018 - make sure the widget is fully set up
    orig = w._send

    def capture(msg, buffers=None):
        msgs.append((msg, buffers))
        return orig(msg, buffers)

    w._send = capture
    return msgs


# ----------------------------------------------------------------- traits and binary data
def test_positions_are_interleaved_float32_bytes(xy):
    w = EmbeddingScatter(xy)
    assert isinstance(w._xy, bytes) and len(w._xy) == 8 * len(xy)
    flat = np.frombuffer(w._xy, dtype=np.float32)
    np.testing.assert_array_equal(flat[0::2], xy[:, 0])  # x0, y0, x1, y1, ...
    np.testing.assert_array_equal(flat[1::2], xy[:, 1])
    np.testing.assert_array_equal(sd.xy_from_bytes(w._xy), xy)
    # The (n, 2) array's own memory is the wire layout: no transposed copy is made.
    assert w._xy == xy.tobytes()


def test_state_sends_binary_buffers_not_lists(xy):
    w = EmbeddingScatter(xy, labels=np.arange(200) % 4)
    from ipywidgets.widgets.widget import _remove_buffers

    state, buffer_paths, buffers = _remove_buffers(w.get_state())
    assert ["_xy"] in buffer_paths and ["_labels"] in buffer_paths
    assert sum(len(memoryview(b).cast("B")) for b in buffers) == 200 * 8 + 200 + 0


def test_categorical_labels_codes_and_names_once(xy):
    labels = np.array(["cat", "dog", "<b>bird</b>"] * 66 + ["cat", "cat"])
    w = EmbeddingScatter(xy, labels=labels)
    assert w._label_kind == "categorical" and w._label_dtype == "uint8"
    assert w._categories == ["<b>bird</b>", "cat", "dog"]
    codes = np.frombuffer(w._labels, dtype=np.uint8)
    assert len(codes) == 200
    np.testing.assert_array_equal(np.array(w._categories)[codes], labels)
    assert len(w._colors) == 3 and all(c.startswith("#") for c in w._colors)


def test_many_categories_use_uint16():
    n = 300
    w = EmbeddingScatter(np.random.rand(n, 2), labels=np.arange(n))
    assert w._label_dtype == "uint16"
    np.testing.assert_array_equal(np.frombuffer(w._labels, dtype=np.uint16), np.arange(n))


def test_int_labels_with_class_names(xy):
    w = EmbeddingScatter(xy, labels=np.arange(200) % 2, class_names=["zero", "one"])
    assert w._categories == ["zero", "one"]


def test_continuous_labels_give_colour_bar(xy):
    vals = np.linspace(-1, 3, 200)
    w = EmbeddingScatter(xy, labels=vals)
    assert w._label_kind == "continuous" and w._label_dtype == "float32"
    assert w._value_range == [-1.0, 3.0]
    np.testing.assert_allclose(np.frombuffer(w._labels, dtype=np.float32), vals, rtol=1e-6)


def test_default_point_size_depends_on_n():
    assert sd.default_point_size(1_000) > sd.default_point_size(100_000) >= 1.0
    assert 6 <= sd.default_point_size(1_000) <= 8
    assert 2 <= sd.default_point_size(100_000) <= 3


def test_colors_list_dict_and_names(xy):
    labels = np.arange(200) % 3
    w = EmbeddingScatter(xy, labels=labels, colors=["red", "#00f", (0, 1, 0)])
    assert w._colors == ["#ff0000", "#0000ff", "#00ff00"]
    w = EmbeddingScatter(xy, labels=labels, colors={"1": "steelblue"})
    assert w._colors[1] == "#4682b4"


# ----------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"xy": np.zeros((10, 3))}, "xy must have shape"),
        ({"xy": np.zeros(10)}, "xy must have shape"),
        ({"xy": np.array([[0.0, np.nan], [1.0, 1.0]])}, "NaN"),
        ({"xy": np.array([["a", "b"]])}, "xy must be numeric"),
        ({"xy": np.zeros((10, 2)), "labels": np.arange(9)}, r"labels must have shape \(10,\)"),
        ({"xy": np.zeros((10, 2)), "labels": np.arange(10) % 2, "colors": ["blurple", "red"]},
         "colors: unknown colour 'blurple'"),
        ({"xy": np.zeros((10, 2)), "labels": np.arange(10) % 3, "colors": ["red"]},
         "colors has 1 entries"),
        ({"xy": np.zeros((10, 2)), "metadata": pd.DataFrame({"a": range(3)})}, "metadata must"),
        ({"xy": np.zeros((10, 2)), "images": np.zeros((4, 8, 8), np.uint8)}, "images must"),
    ],
)
def test_bad_input_raises_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EmbeddingScatter(**kwargs)


def test_nothing_is_sent_on_bad_update(xy):
    w = EmbeddingScatter(xy)
    msgs = sent_messages(w)
    with pytest.raises(ValueError, match=r"xy must have shape \(200, 2\)"):
        w.update(np.zeros((5, 2)))
    assert msgs == [] and w._frame == 0


def test_nan_update_is_refused_with_warning(xy):
    w = EmbeddingScatter(xy)
    bad = xy.copy()
    bad[3, 0] = np.nan
    before = w._xy
    with pytest.warns(RuntimeWarning, match="NaN"):
        assert w.update(bad) is False
    assert w._xy == before and w._frame == 0


# ----------------------------------------------------------------- flow control
class FakeClock:
    def __init__(self):
        self.t = 0.0
        self.timers = []

    def __call__(self):
        return self.t

    def timer(self, delay, fn):
        self.timers.append((self.t + delay, fn))
        return None

    def advance(self, dt):
        self.t += dt
        due = [fn for when, fn in self.timers if when <= self.t]
        self.timers = [(w, f) for w, f in self.timers if w > self.t]
        for fn in due:
            fn()


def make_throttle(max_rate=10.0, ack_timeout=2.0):
    clock = FakeClock()
    sent = []
    th = FrameThrottle(lambda p, f: sent.append((p, f)), max_rate=max_rate,
                       ack_timeout=ack_timeout, clock=clock, timer=clock.timer)
    return th, clock, sent


def test_throttle_one_in_flight_newest_wins():
    th, clock, sent = make_throttle(max_rate=0)
    th.submit("a")
    assert sent == [("a", 1)] and th.in_flight == 1
    for p in "bcde":
        th.submit(p)
    assert sent == [("a", 1)]  # waiting for the ack
    th.ack(1)
    assert sent == [("a", 1), ("e", 2)]  # b, c, d dropped
    assert th.stats["dropped"] == 3
    th.ack(2)
    assert th.in_flight is None and not th.has_pending


def test_throttle_rate_cap():
    th, clock, sent = make_throttle(max_rate=10)
    th.submit("a")
    th.ack(1)
    th.submit("b")  # acked, but only 0 s since the last send: wait for 0.1 s
    assert len(sent) == 1
    clock.advance(0.05)
    assert len(sent) == 1
    clock.advance(0.06)
    assert sent[-1] == ("b", 2)


def test_widget_rate_cap_default_and_setter(xy):
    w = EmbeddingScatter(xy)
    assert w.max_rate == 20.0 and w._throttle.max_rate == 20.0
    w.max_rate = 5
    assert w._throttle.max_rate == 5.0
    with pytest.raises(ValueError, match="max_rate"):
        EmbeddingScatter(xy, max_rate=-1)


def test_throttle_ack_timeout_lets_next_frame_go():
    th, clock, sent = make_throttle(max_rate=0, ack_timeout=1.0)
    th.submit("a")
    th.submit("b")
    clock.advance(0.5)
    assert len(sent) == 1
    clock.advance(0.6)
    assert sent[-1] == ("b", 2) and th.stats["timeouts"] == 1


def test_throttle_old_ack_is_ignored():
    th, clock, sent = make_throttle(max_rate=0)
    th.submit("a")
    th.ack(1)
    th.submit("b")
    th.submit("c")
    th.ack(1)  # stale duplicate ack (a second view) does not release frame 2
    assert sent == [("a", 1), ("b", 2)]


def test_widget_update_flow_control_via_message_handler(xy):
    w = EmbeddingScatter(xy, max_rate=0)
    msgs = sent_messages(w)
    frames = [xy + i for i in range(1, 6)]
    w.update(frames[0])
    assert w._frame == 1
    for f in frames[1:]:
        w.update(f)
    assert w._frame == 1  # nothing new sent before the ack
    np.testing.assert_array_equal(sd.xy_from_bytes(w._xy), frames[0])
    w._on_custom_msg(w, {"type": "ack", "frame": 1}, [])
    assert w._frame == 2
    np.testing.assert_array_equal(sd.xy_from_bytes(w._xy), frames[-1])  # newest wins
    # every update went out as ONE state message holding positions and frame together
    states = [(m, b) for m, b in msgs if m.get("method") == "update"]
    assert len(states) == 2
    for m, buffers in states:
        assert "_frame" in m["state"] and ["_xy"] in m["buffer_paths"]  # binary, not JSON
        assert sum(memoryview(b).nbytes for b in buffers) == 8 * len(xy)
    assert w.stats["dropped"] == 3


def test_update_from_threads_is_bounded(xy):
    w = EmbeddingScatter(xy, max_rate=0)
    errors = []

    def push():
        try:
            for i in range(50):
                w.update(xy + i)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=push) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert w._frame == 1 and w.stats["submitted"] == 200 and w.stats["sent"] == 1


def test_update_accepts_snapshot_and_marks_preview(xy):
    w = EmbeddingScatter(xy, max_rate=0)
    snap = Snapshot(xy * 2, stage=1, epoch=3, step=10, loss=1.0, kind="preview")
    w.update(snap)
    assert w.frame_kind == "preview" and w.badge == "stage 1 · epoch 3"
    np.testing.assert_array_equal(w.xy, xy * 2)


def test_snapshot_with_indices_shows_the_subsample(xy):
    labels = np.arange(200) % 5
    w = EmbeddingScatter(xy, labels=labels, metadata=pd.DataFrame({"m": np.arange(200)}))
    idx = np.array([3, 10, 50, 199])
    w.update(Snapshot(xy[idx] + 1, 2, 1, 5, 0.5, "embedding", idx))
    assert w.n_points == 4 and len(w._xy) == 32
    np.testing.assert_array_equal(np.frombuffer(w._labels, np.uint8), labels[idx])
    w.selection = [1, 3]
    df = w.selected_dataframe()
    assert df["index"].tolist() == [10, 199] and df["m"].tolist() == [10, 199]
    # The browser's tooltip placeholder shows the same index as Python's tooltip.
    np.testing.assert_array_equal(np.frombuffer(w._orig_index, np.uint32), idx)
    assert w.tooltip_html(1).startswith('<div class="tsw-tip-index">#10</div>')
    assert EmbeddingScatter(xy)._orig_index == b""  # all points: shown index is the index


def test_placeholder_until_the_first_frame(xy):
    w = EmbeddingScatter(xy, placeholder="computing…", max_rate=0)
    assert w.placeholder == "computing…"
    w.update(xy + 1)
    assert w.placeholder == ""
    w.placeholder = "again"
    w.update(Snapshot(xy[:4], 2, 1, 5, 0.5, "embedding", np.arange(4)))
    assert w.placeholder == "" and w.n_points == 4


def test_comparison_marks_panels_without_an_embedding(xy):
    from tsimcne_widgets.comparison import MethodComparison

    comp = MethodComparison({"ready": xy, "later": None}, labels=np.arange(200) % 3)
    assert comp.panels["ready"].placeholder == ""
    assert comp.panels["later"].placeholder == "computing…"
    comp.panels["later"].update(xy)
    assert comp.panels["later"].placeholder == ""


# ----------------------------------------------------------------- selection tools, axes
def test_mouse_modes_and_axes_traits(xy):
    w = EmbeddingScatter(xy)
    assert w.mouse_mode == "pan" and w.axes is False
    for mode in ("lasso", "box", "pan"):
        w.mouse_mode = mode
        assert w.get_state()["mouse_mode"] == mode
    with pytest.raises(t.TraitError):
        w.mouse_mode = "circle"
    assert EmbeddingScatter(xy, axes=True).get_state()["axes"] is True
    with pytest.raises(TypeError, match="axes must be True or False"):
        EmbeddingScatter(xy, axes="yes")


def test_bundle_has_freehand_lasso_box_dimming_and_axes():
    from tsimcne_widgets.scatter import _STATIC

    js = _STATIC.read_text()
    for needle in ('"freeform"', '"rectangle"', "opacityInactiveMax", "tsw-box", "tsw-axes",
                   "tsw-placeholder"):
        assert needle in js, needle


# ----------------------------------------------------------------- selection
def test_selection_round_trip_and_callback(xy):
    w = EmbeddingScatter(xy)
    got = []
    w.on_select(got.append)
    w.selection = [7, 2, 2, 9]
    assert w.selection.dtype == np.uint32
    assert w.selection.tolist() == [2, 7, 9]
    assert np.frombuffer(w._selection, np.uint32).tolist() == [2, 7, 9]
    assert got[-1].tolist() == [2, 7, 9]
    # as the browser sets it: uint32 bytes
    w._selection = np.array([1, 4], np.uint32).tobytes()
    assert got[-1].tolist() == [1, 4]
    with pytest.raises(ValueError, match="selection indices"):
        w.selection = [500]


def test_selected_dataframe_contents(xy):
    meta = pd.DataFrame({"name": [f"img{i}" for i in range(200)], "score": np.arange(200.0)})
    labels = np.array(["a", "b"])[np.arange(200) % 2]
    w = EmbeddingScatter(xy, labels=labels, metadata=meta)
    w.selection = [5, 0, 42]
    df = w.selected_dataframe()
    assert list(df.columns) == ["index", "x", "y", "label", "name", "score"]
    assert df["index"].tolist() == [0, 5, 42]
    np.testing.assert_allclose(df[["x", "y"]].to_numpy(), xy[[0, 5, 42]])
    assert df["label"].astype(str).tolist() == ["a", "b", "a"]
    assert df["name"].tolist() == ["img0", "img5", "img42"]
    assert len(EmbeddingScatter(xy).selected_dataframe()) == 0


# ----------------------------------------------------------------- hover
def test_tooltip_escapes_html(xy):
    meta = pd.DataFrame({"<i>col</i>": ["<script>alert(1)</script>"] * 200})
    labels = np.array(["<img src=x onerror=alert(1)>"] * 200)
    w = EmbeddingScatter(xy, labels=labels, metadata=meta)
    tip = w.tooltip_html(4)
    assert "<script>" not in tip and "&lt;script&gt;" in tip
    assert "<img" not in tip and "&lt;img src=x" in tip
    assert "&lt;i&gt;col&lt;/i&gt;" in tip and "#4" in tip


def test_hover_replies_with_one_thumbnail(xy):
    images = np.random.default_rng(1).integers(0, 255, size=(200, 8, 8), dtype=np.uint8)
    w = EmbeddingScatter(xy, images=images)
    replies = []
    w.send = lambda content, buffers=None: replies.append(content)
    w._on_custom_msg(w, {"type": "hover", "index": 17}, [])
    assert len(replies) == 1 and replies[0]["index"] == 17
    assert replies[0]["img"].startswith("data:image/png;base64,")
    png = w.thumbnail(17)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) < 5_000
    from io import BytesIO

    from PIL import Image

    im = Image.open(BytesIO(png))
    assert im.size == (64, 64)
    assert np.asarray(im)[0, 0] == images[17, 0, 0]


def test_to_png(tmp_path, xy):
    w = EmbeddingScatter(xy, labels=np.arange(200) % 3)
    path = w.to_png(tmp_path / "plot.png", size=200)
    from PIL import Image

    arr = np.asarray(Image.open(path).convert("RGB"))
    assert arr.shape == (200, 200, 3) and (arr != 255).any(axis=-1).sum() > 500


def test_esm_bundle_exists():
    from tsimcne_widgets.scatter import _STATIC

    assert _STATIC.exists(), "run `npm install && npm run build` (or pip install -e .)"


def test_styles_are_anywidget_css_not_injected_by_the_bundle(xy):
    from tsimcne_widgets.scatter import _STATIC, _STYLE

    css = _STYLE.read_text().replace(" ", "")  # minified or not
    assert ".tsw-scatter{" in css and ".tsw-legend-item" in css
    assert _STYLE.parent == _STATIC.parent
    assert "tsw-scatter-style" not in _STATIC.read_text()  # no <style> of its own
    assert ".tsw-legend-item" in EmbeddingScatter(xy).get_state()["_css"]


def test_no_warnings_on_construction(xy):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        EmbeddingScatter(xy, labels=np.arange(200) % 3)


class FakeRun:
    """The part of TrainingRun that from_run uses."""

    def __init__(self, data, latest=None):
        self.data, self.labels, self.class_names = data, data.labels, data.class_names
        self.latest = latest
        self.callbacks = {}

    def on(self, event, cb):
        self.callbacks.setdefault(event, []).append(cb)
        return self

    def emit(self, snap):
        for cb in self.callbacks.get("snapshot", []):
            cb(snap)


def test_from_run_follows_snapshots(small_digits):
    from tsimcne_widgets.data import as_images

    images, labels = small_digits
    data = as_images(images, labels)
    run = FakeRun(data)
    w = EmbeddingScatter.from_run(run, max_rate=0)
    assert w.n_points == len(images) and w._label_kind == "categorical"
    rng = np.random.default_rng(0)
    run.emit(Snapshot(rng.random((len(images), 2), dtype=np.float32), 1, 2, 3, 1.0, "preview"))
    assert w.frame_kind == "preview" and w.badge == "stage 1 · epoch 2"
    # snapshots faster than acks: only the newest is sent after the ack
    last = None
    for epoch in range(3, 8):
        last = rng.random((len(images), 2), dtype=np.float32)
        run.emit(Snapshot(last, 2, epoch, 3, 1.0, "embedding"))
    w._on_custom_msg(w, {"type": "ack", "frame": w._frame}, [])
    np.testing.assert_array_equal(sd.xy_from_bytes(w._xy), last)
    assert w.frame_kind == "embedding" and w.badge == "stage 2 · epoch 7"
    assert w.thumbnail(0)[:4] == b"\x89PNG"
