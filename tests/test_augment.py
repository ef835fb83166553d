import math

import pytest
import torch

from tsimcne_widgets.augment import Augmentations, augment, sample_params

IDENTITY = Augmentations(crop_scale=(1, 1), crop_ratio=(1, 1), hflip=0, jitter_p=0,
                         grayscale_p=0)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def images(n=16, c=3, h=12, w=20, seed=0):
    return (torch.rand(n, c, h, w, generator=gen(seed)) * 255).to(torch.uint8)


def test_shape_dtype_range_non_square():
    x = images(h=12, w=20)
    out = augment(x, Augmentations(rotation=30, vflip=0.5), gen())
    assert out.shape == (16, 3, 12, 20) and out.dtype == torch.float32
    assert 0 <= float(out.min()) and float(out.max()) <= 1
    assert augment(x, Augmentations(), gen(), out_size=(8, 10)).shape == (16, 3, 8, 10)


def test_same_generator_state_same_views_and_views_are_independent():
    x = images()
    a = augment(x, Augmentations(), gen(3))
    b = augment(x, Augmentations(), gen(3))
    c = augment(x, Augmentations(), gen(4))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    # Two copies of the same image in one batch get different views.
    twin = augment(torch.cat([x[:1], x[:1]]), Augmentations(), gen(0))
    assert not torch.allclose(twin[0], twin[1])


def test_identity_config_returns_the_input():
    x = images(h=12, w=12)
    out = augment(x, IDENTITY, gen())
    assert torch.allclose(out, x.float() / 255, atol=1e-5)
    # For a non-square image the full crop has the image's own aspect ratio.
    x = images(h=12, w=20)
    cfg = Augmentations(**{**IDENTITY.__dict__, "crop_ratio": (20 / 12, 20 / 12)})
    out = augment(x, cfg, gen())
    assert torch.allclose(out, x.float() / 255, atol=1e-5)


def test_flips_and_rotation_are_exact_for_full_crops():
    x = images(h=10, w=10)
    ref = x.float() / 255
    h = augment(x, Augmentations(**{**IDENTITY.__dict__, "hflip": 1.0}), gen())
    v = augment(x, Augmentations(**{**IDENTITY.__dict__, "vflip": 1.0}), gen())
    assert torch.allclose(h, ref.flip(-1), atol=1e-5)
    assert torch.allclose(v, ref.flip(-2), atol=1e-5)
    cfg = Augmentations(**{**IDENTITY.__dict__, "rotation": 90.0})
    p = sample_params(16, cfg, gen())
    assert float(p["angle"].abs().max()) <= 90
    # A 90 degree turn of a square image is a pure permutation of pixels.
    from tsimcne_widgets.augment import _crop_flip_rotate
    p["angle"] = torch.full((16,), 90.0)
    r = _crop_flip_rotate(ref, p, (10, 10))
    assert torch.allclose(r, torch.rot90(ref, 1, dims=(-2, -1)), atol=1e-4) or torch.allclose(
        r, torch.rot90(ref, -1, dims=(-2, -1)), atol=1e-4)


def test_parameter_ranges_follow_the_config():
    cfg = Augmentations(crop_scale=(0.3, 0.6), rotation=15, hflip=0.25)
    p = sample_params(20000, cfg, gen())
    assert 0.3 <= float(p["scale"].min()) and float(p["scale"].max()) <= 0.6
    assert 3 / 4 - 1e-6 <= float(p["ratio"].min()) and float(p["ratio"].max()) <= 4 / 3 + 1e-6
    # log-uniform aspect ratio: its log has mean 0.
    assert abs(float(torch.log(p["ratio"]).mean())) < 0.01
    assert float((p["fx"] < 0).float().mean()) == pytest.approx(0.25, abs=0.02)
    assert float((p["fy"] < 0).float().mean()) == 0
    assert float(p["jitter"].float().mean()) == pytest.approx(0.8, abs=0.02)
    assert float(p["gray"].float().mean()) == pytest.approx(0.2, abs=0.02)
    on = p["jitter"]
    assert 0.6 <= float(p["brightness"][on].min()) and float(p["brightness"][on].max()) <= 1.4
    assert float(p["hue"][on].abs().max()) <= 0.1
    assert torch.all(p["brightness"][~on] == 1) and torch.all(p["hue"][~on] == 0)
    assert float(p["angle"].abs().max()) <= 15


def test_crops_have_the_sampled_area():
    # A single white pixel-free check: zoomed crops of a ramp cover a sub-range.
    ramp = torch.linspace(0, 255, 64).round().to(torch.uint8).view(1, 1, 1, 64).expand(
        400, 1, 8, 64).contiguous()
    cfg = Augmentations(crop_scale=(0.25, 0.25), crop_ratio=(1, 1), hflip=0, jitter_p=0)
    out = augment(ramp, cfg, gen())
    span = out.amax(dim=(1, 2, 3)) - out.amin(dim=(1, 2, 3))
    # Width fraction is sqrt(0.25 * 8 / 64)... clamped crop keeps a share of the ramp.
    expected = math.sqrt(0.25 * 8 / 64)
    assert float(span.median()) == pytest.approx(expected, abs=0.05)


def test_grayscale_and_brightness():
    x = images()
    g = augment(x, Augmentations(**{**IDENTITY.__dict__, "grayscale_p": 1.0}), gen())
    assert torch.allclose(g[:, 0], g[:, 1]) and torch.allclose(g[:, 1], g[:, 2])
    cfg = Augmentations(**{**IDENTITY.__dict__, "jitter_p": 1.0, "contrast": 0,
                           "saturation": 0, "hue": 0, "brightness": 0.5})
    dark = torch.full((8, 3, 4, 4), 100, dtype=torch.uint8)
    out = augment(dark, cfg, gen())
    ratio = out[:, 0, 0, 0] / (100 / 255)
    assert torch.allclose(out, ratio[:, None, None, None] * (100 / 255), atol=1e-5)
    assert 0.5 <= float(ratio.min()) and float(ratio.max()) <= 1.5 and ratio.std() > 0


def test_grayscale_images_work():
    out = augment(images(c=1), Augmentations(), gen())
    assert out.shape == (16, 1, 12, 20)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"crop_scale": (0.5, 0.2)}, "crop_scale"),
        ({"crop_scale": (0, 1)}, "crop_scale"),
        ({"crop_ratio": (2, 1)}, "crop_ratio"),
        ({"hflip": 1.5}, "hflip must be a probability"),
        ({"grayscale_p": -0.1}, "grayscale_p"),
        ({"brightness": -1}, "brightness must be >= 0"),
        ({"hue": 0.7}, "hue must be in"),
    ],
)
def test_config_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Augmentations(**kwargs)
