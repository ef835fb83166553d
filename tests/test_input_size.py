"""TSimCNE(input_size=...): the network trains and embeds at another resolution than the
images it is given."""

import numpy as np
import pytest
import torch

from tsimcne_widgets import Augmentations, TSimCNE
from tsimcne_widgets._setup import channel_stats
from tsimcne_widgets.data import as_images
from tsimcne_widgets.pixels import resize_images

# fp32 everywhere: the tolerances below are for resizing, not for bf16 rounding (which
# "auto" picks on CPUs where bf16 measures faster).
FAST = {"backbone": "fast", "total_epochs": (1, 1, 1), "batch_size": 32,
        "augmentations": Augmentations(hflip=0), "random_state": 0,
        "device": "cpu", "n_threads": 1, "mixed_precision": False}


def fast(**kw):
    return TSimCNE(**{**FAST, **kw})


def test_trains_on_resized_images_and_embeds_full_size_ones(small_digits):
    X, _ = small_digits  # 8x8
    est = fast(input_size=4).fit(X)
    assert est.model_.input_size == (4, 4)
    assert est.image_shape_ == (8, 8)  # what transform accepts
    small = resize_images(as_images(X).images, (4, 4))
    assert torch.equal(est._trainer.images, small)
    # Normalised with the statistics of what the backbone sees.
    mean, std = channel_stats(small)
    torch.testing.assert_close(est.model_.mean.flatten(), mean)
    torch.testing.assert_close(est.model_.std.flatten(), std)
    assert float(std[0]) < float(channel_stats(as_images(X).images)[1][0])
    Z = est.transform(X)
    assert Z.shape == (120, 2) and np.isfinite(Z).all()
    np.testing.assert_array_equal(Z, est.embedding_)
    # Resizing inside the model agrees with embedding images resized beforehand, up to
    # the rounding of those to uint8.
    est.set_params(input_size=None)  # the trained model keeps its own input size
    with torch.no_grad():
        pre = est.model_.eval()(small.float().div(255)).numpy()
    spread = np.ptp(Z, axis=0).max()
    assert np.abs(pre - Z).max() < 0.05 * spread
    with pytest.raises(ValueError, match=r"size \(8, 8\)"):
        est.transform(small.numpy())


def test_input_size_of_the_images_changes_nothing(small_digits):
    X, _ = small_digits
    a = fast().fit(X).embedding_
    b = fast(input_size=(8, 8)).fit(X).embedding_
    np.testing.assert_array_equal(a, b)


def test_upsampling_and_rectangles(small_digits):
    X, _ = small_digits
    est = fast(input_size=(12, 10), total_epochs=(1, 0, 0)).fit(X[:64])
    assert tuple(est._trainer.images.shape) == (64, 1, 12, 10)
    assert est.transform(X[:5]).shape == (5, 128)
    assert est.backbone_features(X[:5]).shape == (5, est.feature_dim_)


def test_save_load_keeps_the_input_size(tmp_path, small_digits):
    X, _ = small_digits
    est = fast(input_size=4).fit(X)
    est.save(tmp_path / "m.pt")
    new = TSimCNE.load(tmp_path / "m.pt")
    assert new.get_params()["input_size"] == 4 and new.model_.input_size == (4, 4)
    np.testing.assert_array_equal(new.transform(X), est.transform(X))


def test_background_run_snapshots_at_full_size(small_digits):
    X, y = small_digits
    est = fast(input_size=4)
    run = est.start(X, labels=y, snapshot_every="epoch")
    run.wait(timeout=120)
    assert run.snapshots[-1].xy.shape == (120, 2)
    np.testing.assert_array_equal(run.snapshots[-1].xy, est.embedding_)


@pytest.mark.parametrize("bad", [0, (4,), (4, 0), 2.5, "14", (4.0, 4.0), True])
def test_bad_input_size(small_digits, bad):
    X, _ = small_digits
    with pytest.raises(ValueError, match="input_size must be None, a positive int"):
        fast(input_size=bad).fit(X)
