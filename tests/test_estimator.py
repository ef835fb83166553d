import os
import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from tsimcne_widgets import Augmentations, TSimCNE
from tsimcne_widgets.trainer import NonFiniteLossError

FAST = {"backbone": "small", "total_epochs": (1, 1, 1), "batch_size": 32,
        "augmentations": Augmentations(hflip=0), "random_state": 0,
        "device": "cpu", "n_threads": 1}  # bitwise reproducible: CPU, one thread count


def fast(**kw):
    return TSimCNE(**{**FAST, **kw})


def ready_trainer(est, X):
    """Set ``est`` up for ``X`` without training; return its step-by-step trainer."""
    from tsimcne_widgets.data import as_images

    data = as_images(X)
    est._initialize(data)
    est._trainer.set_images(data.images)
    return est._trainer, data


def test_init_only_stores_parameters():
    est = TSimCNE(batch_size=-3, lr="nonsense", backbone="vgg")
    assert est.get_params()["batch_size"] == -3
    assert not hasattr(est, "model_")
    assert clone(est).get_params()["backbone"] == "vgg"


def test_fit_returns_self_with_learned_attributes(small_digits):
    X, y = small_digits
    est = fast()
    assert est.fit(X) is est
    assert est.embedding_.shape == (120, 2) and est.embedding_.dtype == np.float32
    assert np.isfinite(est.embedding_).all()
    assert [(h["stage"], h["epoch"]) for h in est.history_] == [(1, 1), (2, 1), (3, 1)]
    assert all(h["loss"] > 0 and h["lr"] > 0 and h["seconds"] > 0 for h in est.history_)
    assert est.history_[2]["lr"] < est.history_[0]["lr"] / 100
    assert est.feature_dim_ == 512 and est.device_ == torch.device("cpu")


def test_transform_is_deterministic_and_in_input_order(small_digits):
    X, _ = small_digits
    est = fast().fit(X)
    z1, z2 = est.transform(X), est.transform(X)
    np.testing.assert_array_equal(z1, z2)
    np.testing.assert_array_equal(z1, est.embedding_)
    np.testing.assert_allclose(est.transform(X[::-1]), z1[::-1], rtol=1e-5, atol=1e-5)
    # Batching does not change the result (beyond bf16 rounding, where 'auto' picked it:
    # oneDNN blocks a batch of 7 differently).
    est.set_params(inference_batch_size=7)
    tol = 1e-2 if est.precision_ == "bf16" else 1e-5
    np.testing.assert_allclose(est.transform(X), z1, rtol=tol, atol=tol)
    feats = est.backbone_features(X)
    assert feats.shape == (120, 512) and feats.dtype == np.float32


def test_fit_transform_equals_embedding(small_digits):
    X, _ = small_digits
    est = fast()
    z = est.fit_transform(X)
    np.testing.assert_array_equal(z, est.embedding_)


@pytest.mark.parametrize("precision", [False, "auto"])
def test_same_random_state_same_embedding(small_digits, precision):
    X, _ = small_digits
    a = fast(mixed_precision=precision).fit_transform(X)
    b = fast(mixed_precision=precision).fit_transform(X)
    c = fast(mixed_precision=precision, random_state=1).fit_transform(X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_every_stage_changes_the_weights(small_digits):
    X, _ = small_digits
    est = fast(total_epochs=(1, 1, 1))
    tr, _ = ready_trainer(est, X)

    def snapshot():
        return {k: v.detach().clone() for k, v in est.model_.state_dict().items()}

    before = snapshot()
    while not tr.done:
        info = tr.step()
        if info.stage_end:
            after = snapshot()
            changed = [k for k in after if k in before and before[k].shape == after[k].shape
                       and not torch.equal(before[k], after[k])]
            if info.stage == 1:  # stage 2 trains only the new last layer
                assert changed and all(k.startswith("head.last") for k in changed)
            else:
                assert any(k.startswith("backbone") for k in changed)
                assert any(k.startswith("head.hidden") for k in changed)
            if not tr.done:
                tr._configure_stage()  # stage 2 swaps in a new 2-D layer: compare with it
            before = snapshot()


def test_batch_size_larger_than_n_is_clamped_with_a_warning(small_digits):
    X, _ = small_digits
    with pytest.warns(UserWarning, match="batch_size=512"):
        est = fast(batch_size=512, total_epochs=1).fit(X[:40])
    assert est._trainer.batch_size == 40


def test_single_int_epochs_trains_straight_to_2d(small_digits):
    X, _ = small_digits
    est = fast(total_epochs=2).fit(X)
    assert est.embedding_.shape == (120, 2) and len(est.history_) == 2


def test_cosine_metric_and_projection_dim(small_digits):
    X, _ = small_digits
    est = fast(metric="cosine", total_epochs=(1, 0, 0), projection_dim=16).fit(X)
    assert est.embedding_.shape == (120, 16)


def test_resnet18_is_the_small_image_variant(small_digits):
    X, _ = small_digits
    est = TSimCNE(backbone="resnet18", total_epochs=(1, 0, 0), batch_size=60,
                  random_state=0).fit(X[:60])
    bb = est.model_.backbone
    assert bb.conv1.kernel_size == (3, 3) and bb.conv1.stride == (1, 1)
    assert bb.conv1.in_channels == 1  # grayscale handled by the input layer
    assert isinstance(bb.maxpool, torch.nn.Identity)
    assert est.backbone_features(X[:5]).shape == (5, 512)


def test_rgb_non_square_images():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(40, 6, 10, 3), dtype=np.uint8)
    est = fast(total_epochs=1, batch_size=20).fit(X)
    assert est.image_shape_ == (6, 10) and est.n_channels_ == 3
    assert est.transform(X).shape == (40, 2)


def test_custom_backbone_module(small_digits):
    X, _ = small_digits
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 32))
    est = fast(backbone=net, feature_dim=32).fit(X)
    assert est.backbone_features(X).shape == (120, 32)
    with pytest.raises(ValueError, match="feature_dim must be given"):
        fast(backbone=torch.nn.Flatten()).fit(X)


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        ({"backbone": "vgg"}, ValueError, "backbone must be .auto., one of"),
        ({"metric": "l1"}, ValueError, "metric must be"),
        ({"lr": -1}, ValueError, "lr must be"),
        ({"batch_size": 1}, ValueError, "batch_size must be an int >= 2"),
        ({"batch_size": 3.5}, ValueError, "batch_size must be an int"),
        pytest.param({"device": "cuda"}, ValueError, "CUDA is not available",
                     marks=pytest.mark.skipif(torch.cuda.is_available(), reason="has CUDA")),
        ({"device": "potato"}, ValueError, "device must be"),
        ({"mixed_precision": "yes"}, ValueError, "mixed_precision must be"),
        ({"augmentations": {"flip": 0}}, ValueError, "accepted keys"),
        ({"augmentations": 3}, TypeError, "augmentations must be"),
        ({"random_state": "x"}, TypeError, "random_state must be"),
        ({"total_epochs": (1, 1)}, ValueError, "total_epochs"),
        ({"dof": 0}, ValueError, "dof must be a positive finite number"),
        ({"dof": "heavy"}, ValueError, "dof must be a positive finite number"),
        ({"dof": 0.5, "metric": "cosine"}, ValueError, "dof applies to metric='euclidean'"),
        ({"neighbor_positives": 1.5}, ValueError, r"neighbor_positives .* in \[0, 1\]"),
        ({"neighbor_positives": "half"}, ValueError, "neighbor_positives must be"),
        ({"neighbor_positives": True}, ValueError, "neighbor_positives must be"),
        ({"n_neighbors": 0}, ValueError, "n_neighbors must be an int >= 1"),
    ],
)
def test_parameter_errors_are_raised_in_fit(small_digits, kwargs, exc, match):
    X, _ = small_digits
    with pytest.raises(exc, match=match):
        fast(**kwargs).fit(X)


def test_dof_reaches_the_loss_of_the_map_stages_only(small_digits, monkeypatch):
    from tsimcne_widgets import losses

    X, _ = small_digits
    seen = set()
    real = losses.cauchy_infonce

    def spy(z, rows=None, dof=1.0):
        seen.add((z.shape[1], dof))
        return real(z, rows, dof)

    monkeypatch.setattr(losses, "cauchy_infonce", spy)
    est = fast(total_epochs=(1, 1, 1), dof=0.5).fit(X)
    assert est.get_params()["dof"] == 0.5
    assert [st.dof for st in est.schedule_] == [1.0, 0.5, 0.5]
    assert seen == {(128, 1.0), (2, 0.5)}
    assert np.isfinite(est.embedding_).all()


def test_transform_errors(small_digits):
    X, _ = small_digits
    with pytest.raises(NotFittedError):
        fast().transform(X)
    est = fast(total_epochs=1).fit(X)
    with pytest.raises(ValueError, match="trained on 1 channel"):
        est.transform(np.zeros((4, 8, 8, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="labels"):
        fast().fit(X, y=[1, 2, 3])


def test_mixed_precision_resolution(small_digits):
    X, _ = small_digits
    from tsimcne_widgets._device import bf16_supported

    est = fast(total_epochs=1).fit(X)
    # 'auto' may use bf16 only where the CPU has it, and then only if it measured faster.
    assert est.amp_ == (est.precision_ == "bf16")
    if not bf16_supported(torch.device("cpu")):
        assert est.precision_ == "fp32"
    assert fast(total_epochs=1, mixed_precision=False).fit(X).amp_ is False


def test_non_finite_loss_stops_with_a_clear_message(small_digits):
    X, _ = small_digits
    est = fast(total_epochs=(2, 1, 1))
    tr, _ = ready_trainer(est, X)
    for _ in range(5):
        tr.step()
    before = {k: v.clone() for k, v in est.model_.state_dict().items()}
    tr.loss_fn = lambda z: z.sum() * float("nan")
    with pytest.raises(NonFiniteLossError, match=r"stage 1 \(pretrain\), epoch 2, step 3"):
        tr.step()
    after = est.model_.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_save_load_round_trip(tmp_path, small_digits):
    X, _ = small_digits
    est = fast().fit(X)
    path = tmp_path / "model.pt"
    est.save(path)
    assert not [p for p in tmp_path.iterdir() if p.name != "model.pt"]  # no temp files left
    torch.load(path, weights_only=True)  # loads without unpickling code
    new = TSimCNE.load(path)
    np.testing.assert_array_equal(new.transform(X), est.transform(X))
    np.testing.assert_array_equal(new.embedding_, est.embedding_)
    assert new.history_ == est.history_ and new.get_params()["batch_size"] == 32
    assert new._trainer.done


@pytest.mark.parametrize("neighbors", [0.0, 0.5])
def test_resume_from_saved_position_matches_uninterrupted_run(tmp_path, small_digits,
                                                               neighbors):
    X, _ = small_digits
    from tsimcne_widgets.data import as_images

    data = as_images(X)
    kw = {"total_epochs": (2, 1, 2), "mixed_precision": False,
          "neighbor_positives": neighbors, "n_neighbors": 5}
    full = fast(**kw).fit(X)

    part = fast(**kw)
    ready_trainer(part, X)
    for _ in range(7):  # 3 steps per epoch: stop mid-epoch in stage 2
        part._record(part._trainer.step())
    part.save(tmp_path / "mid.pt")
    resumed = TSimCNE.load(tmp_path / "mid.pt")
    tr = resumed._trainer
    assert (tr.stage, tr.epoch, tr.step_in_epoch) == (1, 0, 1)
    tr.set_images(data.images)
    while not tr.done:
        resumed._record(tr.step())
    np.testing.assert_array_equal(resumed.transform(X), full.embedding_)
    assert [h["loss"] for h in resumed.history_] == pytest.approx(
        [h["loss"] for h in full.history_])


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_malicious_pickle_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"format": "tsimcne-widgets-checkpoint", "x": _Evil()}, f)
    with pytest.raises(ValueError, match="Refusing to load"):
        TSimCNE.load(path)
    assert not (tmp_path / "pwned").exists()
    torch.save({"format": "something else"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a tsimcne-widgets checkpoint"):
        TSimCNE.load(tmp_path / "other.pt")


@pytest.mark.parametrize("name,dim", [("resnet34", 512), ("resnet50", 2048)])
def test_other_torchvision_resnets_get_the_small_image_stem(name, dim):
    from tsimcne_widgets.models import build_backbone

    net, feature_dim = build_backbone(name, in_channels=3)
    assert feature_dim == dim
    assert net.conv1.stride == (1, 1) and isinstance(net.maxpool, torch.nn.Identity)
    assert net(torch.zeros(2, 3, 16, 16)).shape == (2, dim)


def test_2d_output_keeps_float32_precision_under_bf16_autocast(small_digits):
    X, _ = small_digits
    est = fast(mixed_precision=True, backbone="fast").fit(X)  # bf16 is slow on some CPUs
    Z = torch.from_numpy(est.embedding_)
    # bf16 has 8 mantissa bits; float32 coordinates are almost never exactly bf16 values.
    assert (Z.bfloat16().float() != Z).float().mean() > 0.9


@pytest.mark.parametrize("size", [8, 28, 32])
@pytest.mark.parametrize("channels", [1, 3])
def test_fast_backbone_shapes_and_cost(size, channels):
    from tsimcne_widgets.models import build_backbone

    fast_net, dim = build_backbone("fast", channels)
    small_net, _ = build_backbone("small", channels)
    assert dim == 512
    x = torch.rand(3, channels, size, size)
    assert fast_net(x).shape == (3, 512)
    # Far fewer weights than 'small' (whose 256->512 3x3 conv dominates it).
    n_fast = sum(p.numel() for p in fast_net.parameters())
    n_small = sum(p.numel() for p in small_net.parameters())
    assert n_fast * 4 < n_small


def test_fast_backbone_trains(small_digits):
    X, _ = small_digits
    est = fast(backbone="fast").fit(X)
    assert est.embedding_.shape == (120, 2) and np.isfinite(est.embedding_).all()


def test_auto_backbone_is_fast_for_small_images_on_cpu_and_survives_load(small_digits,
                                                                         tmp_path):
    from tsimcne_widgets._setup import resolve_backbone as _resolve_backbone
    from tsimcne_widgets.models import FastCNN

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert _resolve_backbone("auto", cpu, (28, 28)) == "fast"
    assert _resolve_backbone("auto", cpu, (64, 64)) == "resnet18"
    assert _resolve_backbone("auto", cuda, (28, 28)) == "resnet18"
    assert _resolve_backbone("small", cuda, (8, 8)) == "small"
    X, _ = small_digits
    est = fast(backbone="auto").fit(X)
    assert est.backbone_ == "fast" and isinstance(est.model_.backbone, FastCNN)
    est.save(tmp_path / "m.pt")
    loaded = TSimCNE.load(tmp_path / "m.pt")
    assert loaded.backbone == "auto" and loaded.backbone_ == "fast"
    np.testing.assert_allclose(loaded.transform(X), est.transform(X), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("verbose, in_kernel, shown", [
    ("auto", False, False), ("auto", True, True), (True, False, True), (False, True, False),
])
def test_verbose_auto_shows_a_bar_only_in_a_notebook(small_digits, monkeypatch, verbose,
                                                     in_kernel, shown):
    from tsimcne_widgets import estimator as estimator_module

    bars = []

    class FakeBar:
        def __init__(self, *a, **kw):
            self.total, self.updates = kw.get("total"), 0
            bars.append(self)

        def set_description(self, *a, **kw):
            pass

        def set_postfix(self, *a, **kw):
            pass

        def update(self, n):
            self.updates += n

        def close(self):
            pass

    monkeypatch.setattr("tqdm.auto.tqdm", FakeBar)
    monkeypatch.setattr(estimator_module, "in_jupyter_kernel", lambda: in_kernel)
    X, _ = small_digits
    fast(verbose=verbose).fit(X)
    assert len(bars) == int(shown)
    if shown:
        assert bars[0].updates == bars[0].total > 0


def test_verbose_is_checked(small_digits):
    with pytest.raises(ValueError, match="verbose must be True, False or 'auto'"):
        fast(verbose="yes").fit(small_digits[0])


def test_not_in_a_jupyter_kernel_under_pytest():
    from tsimcne_widgets._jupyter import in_jupyter_kernel

    assert in_jupyter_kernel() is False


def test_a_failed_save_keeps_the_old_checkpoint_and_leaves_no_temp_file(
        tmp_path, small_digits, monkeypatch):
    from tsimcne_widgets import checkpoint

    X, _ = small_digits
    est = fast().fit(X)
    path = tmp_path / "model.pt"
    est.save(path)
    before = path.read_bytes()
    written = []

    def broken_save(payload, f):
        f.write(b"half a checkpoint")  # the temp file exists and holds junk
        written.extend(tmp_path.glob(".model.pt.*.tmp"))
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint.torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        est.save(path)
    assert len(written) == 1  # it wrote to a temp file in the same folder...
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]  # ...and removed it
    assert path.read_bytes() == before
    monkeypatch.undo()
    np.testing.assert_array_equal(TSimCNE.load(path).transform(X), est.transform(X))


def test_load_rebuilds_through_the_same_set_up_as_fit(tmp_path, small_digits, monkeypatch):
    import tsimcne_widgets.estimator as estimator_module
    from tsimcne_widgets import _setup, checkpoint

    X, _ = small_digits
    calls = []

    def counting_build(*args, **kwargs):
        calls.append(kwargs)
        return _setup.build(*args, **kwargs)

    for module in (estimator_module, checkpoint):  # fit's and load's one builder
        monkeypatch.setattr(module, "build", counting_build)
    est = fast(lr=0.05).fit(X)
    est.save(tmp_path / "m.pt")
    new = TSimCNE.load(tmp_path / "m.pt")
    assert len(calls) == 2 and calls[0]["seed"] == calls[1]["seed"] == 0
    assert [st.lr for st in new.schedule_] == [st.lr for st in est.schedule_]
    assert new.schedule_[0].lr == 0.05 and new.precision_ == est.precision_
