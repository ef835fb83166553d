from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from tsimcne_widgets.data import (
    ImageData,
    as_images,
    check_batch_size,
    load_digits,
    load_torchvision,
)

# Non-square everywhere (H != W) so a swapped height/width cannot go unnoticed.
N, H, W = 4, 5, 7


def _rgb(n: int = N, h: int = H, w: int = W) -> np.ndarray:
    """Deterministic uint8 images of shape (n, h, w, 3)."""
    return (np.arange(n * h * w * 3) % 256).astype(np.uint8).reshape(n, h, w, 3)


def _gray(n: int = N, h: int = H, w: int = W) -> np.ndarray:
    return (np.arange(n * h * w) * 7 % 256).astype(np.uint8).reshape(n, h, w)


class _PairDataset(torch.utils.data.Dataset):
    """Yields (PIL image, label) pairs, like torchvision data sets."""

    classes = ["a", "b"]

    def __init__(self, arrays: np.ndarray, labels: list[int]) -> None:
        self.arrays, self.labels = arrays, labels

    def __len__(self) -> int:
        return len(self.arrays)

    def __getitem__(self, i: int):
        return Image.fromarray(self.arrays[i]), self.labels[i]


class _TensorDataset(torch.utils.data.Dataset):
    """Yields float (C, H, W) tensors only, like a dataset with ToTensor() and no targets."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.images[i]


def _check(data: ImageData, expected_nchw: np.ndarray) -> None:
    assert isinstance(data, ImageData)
    assert data.images.dtype == torch.uint8
    assert data.images.is_contiguous() and data.images.device.type == "cpu"
    assert data.images.shape == expected_nchw.shape
    np.testing.assert_array_equal(data.images.numpy(), expected_nchw)
    assert data.n_samples == len(data) == expected_nchw.shape[0]
    assert data.n_channels == expected_nchw.shape[1]
    assert data.image_shape == expected_nchw.shape[2:]


# --- accepted inputs ----------------------------------------------------------------------------


def test_numpy_nhwc():
    x = _rgb()
    data = as_images(x)
    _check(data, x.transpose(0, 3, 1, 2))
    assert data.image_shape == (H, W)
    assert data.labels is None and data.class_names is None


def test_numpy_nchw():
    x = _rgb().transpose(0, 3, 1, 2).copy()
    _check(as_images(x), x)


def test_numpy_nhw_is_grayscale():
    x = _gray()
    _check(as_images(x), x[:, None])


def test_single_channel_axes():
    x = _gray()
    _check(as_images(x[..., None]), x[:, None])
    _check(as_images(x[:, None]), x[:, None])


def test_alpha_is_dropped():
    x = np.concatenate([_rgb(), np.full((N, H, W, 1), 9, np.uint8)], axis=3)
    _check(as_images(x), _rgb().transpose(0, 3, 1, 2))


def test_ambiguous_layout_rule():
    # Both axis 1 and axis 3 could hold channels: NCHW wins unless axis 1 is 4 and axis 3 is 1/3.
    assert as_images(np.zeros((2, 3, 5, 3), np.uint8)).images.shape == (2, 3, 5, 3)
    assert as_images(np.zeros((2, 4, 5, 3), np.uint8)).images.shape == (2, 3, 4, 5)
    assert as_images(np.zeros((2, 1, 5, 4), np.uint8)).images.shape == (2, 1, 5, 4)


def test_torch_tensors_nchw_nhwc_nhw():
    x = _rgb()
    expected = x.transpose(0, 3, 1, 2)
    _check(as_images(torch.from_numpy(expected.copy())), expected)
    _check(as_images(torch.from_numpy(x)), expected)
    _check(as_images(torch.from_numpy(_gray())), _gray()[:, None])


def test_float_conversion_values():
    x = np.array([0.0, 1.0, 0.5, 0.2, 1 / 255, 0.999], dtype=np.float64).reshape(2, 1, 3)
    expected = np.array([0, 255, 128, 51, 1, 255], dtype=np.uint8).reshape(2, 1, 1, 3)
    for arr in (x, x.astype(np.float32), x.astype(np.float16)):
        _check(as_images(arr), expected)
    _check(as_images(torch.from_numpy(x.astype(np.float32)).requires_grad_()), expected)


def test_integer_and_bool_dtypes():
    x = _gray()
    _check(as_images(x.astype(np.int64)), x[:, None])
    _check(as_images(torch.from_numpy(x.astype(np.int32))), x[:, None])
    mask = x > 100
    _check(as_images(mask), (mask * 255).astype(np.uint8)[:, None])


def test_pil_list_gray_and_rgb():
    gray = _gray()
    _check(as_images([Image.fromarray(a) for a in gray]), gray[:, None])
    rgb = _rgb()
    _check(as_images(tuple(Image.fromarray(a) for a in rgb)), rgb.transpose(0, 3, 1, 2))


def test_pil_list_mixed_modes_become_rgb():
    gray, rgb = _gray(2), _rgb(2)
    rgba = Image.fromarray(np.concatenate([rgb[1], np.zeros((H, W, 1), np.uint8)], axis=2))
    images = [Image.fromarray(gray[0]), rgba]
    expected = np.stack([np.repeat(gray[0][None], 3, axis=0), rgb[1].transpose(2, 0, 1)])
    _check(as_images(images), expected)


def test_list_of_arrays_and_tensors():
    rgb = _rgb(2)
    items = [rgb[0], torch.from_numpy(rgb[1].transpose(2, 0, 1).copy())]
    _check(as_images(items), rgb.transpose(0, 3, 1, 2))
    _check(as_images(list(_gray())), _gray()[:, None])


def test_dataset_pil_label_pairs():
    rgb = _rgb()
    data = as_images(_PairDataset(rgb, [1, 0, 1, 1]))
    _check(data, rgb.transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(data.labels, [1, 0, 1, 1])
    assert data.labels.dtype == np.int64
    assert data.class_names == ("a", "b")


def test_dataset_labels_argument_overrides():
    data = as_images(_PairDataset(_rgb(), [1, 0, 1, 1]), ["x", "y", "x", "x"])
    np.testing.assert_array_equal(data.labels, [0, 1, 0, 0])
    assert data.class_names == ("x", "y")


def test_dataset_tensor_only():
    x = torch.rand(N, 3, H, W)
    data = as_images(_TensorDataset(x))
    _check(data, torch.round(x * 255).to(torch.uint8).numpy())
    assert data.labels is None and data.class_names is None


def test_image_folder(tmp_path):
    from torchvision.datasets import ImageFolder

    rgb = _rgb(4)
    for i, cls in enumerate(["cat", "cat", "dog", "dog"]):
        (tmp_path / cls).mkdir(exist_ok=True)
        Image.fromarray(rgb[i]).save(tmp_path / cls / f"{i}.png")
    data = as_images(ImageFolder(tmp_path))
    _check(data, rgb.transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(data.labels, [0, 0, 1, 1])
    assert data.class_names == ("cat", "dog")


def test_image_data_passthrough_and_override():
    data = as_images(_gray(), [0, 1, 0, 1], class_names=["u", "v"])
    assert as_images(data) is data
    relabelled = as_images(data, ["p", "q", "q", "q"])
    assert relabelled.images is data.images
    np.testing.assert_array_equal(relabelled.labels, [0, 1, 1, 1])
    assert relabelled.class_names == ("p", "q")
    renamed = as_images(data, class_names=["U", "V"])
    np.testing.assert_array_equal(renamed.labels, [0, 1, 0, 1])
    assert renamed.class_names == ("U", "V")


def test_repr_is_short():
    assert repr(as_images(_gray(), [0, 1, 0, 1])) == (
        "ImageData(n_samples=4, n_channels=1, image_shape=(5, 7), n_classes=2)"
    )


# --- labels -------------------------------------------------------------------------------------


def test_string_labels():
    data = as_images(_gray(), np.array(["dog", "cat", "dog", "emu"]))
    np.testing.assert_array_equal(data.labels, [1, 0, 1, 2])
    assert data.labels.dtype == np.int64
    assert data.class_names == ("cat", "dog", "emu")


def test_string_labels_with_class_names_keep_their_order():
    data = as_images(_gray(), ["dog", "cat", "dog", "dog"], class_names=["dog", "cat"])
    np.testing.assert_array_equal(data.labels, [0, 1, 0, 0])
    assert data.class_names == ("dog", "cat")


def test_int_labels_are_reencoded():
    data = as_images(_gray(), [7, 3, 5, 3])
    np.testing.assert_array_equal(data.labels, [2, 0, 1, 0])
    assert data.class_names == ("3", "5", "7")


def test_int_labels_with_class_names_are_codes():
    data = as_images(_gray(), torch.tensor([2, 0, 2, 0]), class_names=["a", "b", "c"])
    np.testing.assert_array_equal(data.labels, [2, 0, 2, 0])
    assert data.class_names == ("a", "b", "c")


def test_pandas_labels():
    cat = pd.Categorical(["b", "a", "b", "b"], categories=["b", "a", "z"])
    data = as_images(_gray(), cat)
    np.testing.assert_array_equal(data.labels, [0, 1, 0, 0])
    assert data.class_names == ("b", "a", "z")
    data = as_images(_gray(), pd.Series(["y", "x", "y", "x"]))
    np.testing.assert_array_equal(data.labels, [1, 0, 1, 0])
    assert data.class_names == ("x", "y")


# --- resize -------------------------------------------------------------------------------------


def test_resize_array():
    data = as_images(_rgb(), resize=(3, 4))
    assert data.images.shape == (N, 3, 3, 4)
    assert data.images.dtype == torch.uint8
    assert as_images(_gray(), resize=6).image_shape == (6, 6)


def test_resize_constant_image_keeps_value():
    x = np.full((2, 8, 6, 3), 77, np.uint8)
    np.testing.assert_array_equal(as_images(x, resize=(4, 3)).images.numpy(), 77)


def test_resize_mixed_sizes():
    images = [Image.new("RGB", (W, H), (10, 20, 30)), Image.new("RGB", (2 * W, H), (10, 20, 30))]
    data = as_images(images, resize=(H, W))
    assert data.images.shape == (2, 3, H, W)
    np.testing.assert_array_equal(data.images[:, 0].numpy(), 10)
    np.testing.assert_array_equal(data.images[:, 2].numpy(), 30)


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize("X", [np.zeros((0, H, W), np.uint8), [], np.zeros((1, H, W), np.uint8)])
def test_too_few_images(X):
    with pytest.raises(ValueError, match=r"X must contain at least 2 images, got [01]"):
        as_images(X)


def test_too_few_images_in_dataset():
    with pytest.raises(ValueError, match="at least 2 images, got 1"):
        as_images(_TensorDataset(torch.rand(1, 3, H, W)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_inf(bad):
    x = np.zeros((2, H, W))
    x[1, 2, 3] = bad
    with pytest.raises(ValueError, match="X contains NaN or infinite values"):
        as_images(x)
    with pytest.raises(ValueError, match=r"images\[1\] contains NaN"):
        as_images(list(torch.from_numpy(x)), name="images")


def test_float_out_of_range():
    x = np.linspace(0, 255, 2 * H * W).reshape(2, H, W)
    with pytest.raises(ValueError, match=r"float values in \[0, 255\].*divide by 255"):
        as_images(x)
    with pytest.raises(ValueError, match=r"\[-0.5, -0.5\]"):
        as_images(-0.5 * np.ones((2, H, W), np.float32))


def test_integer_out_of_range():
    with pytest.raises(ValueError, match=r"integer values in \[0, 300\]; expected .*\[0, 255\]"):
        as_images(np.array([[[0, 300]], [[1, 2]]]))


@pytest.mark.parametrize("shape", [(10,), (2, 3), (2, 3, 4, 5, 6)])
def test_wrong_ndim(shape):
    msg = r"X must have shape \(n_samples, height, width\), .*, got shape " + re.escape(str(shape))
    with pytest.raises(ValueError, match=msg):
        as_images(np.zeros(shape, np.uint8))


def test_wrong_ndim_message_exact():
    with pytest.raises(ValueError) as info:
        as_images(np.zeros(10))
    assert str(info.value) == (
        "X must have shape (n_samples, height, width), (n_samples, height, width, channels) "
        "or (n_samples, channels, height, width), got shape (10,)."
    )


@pytest.mark.parametrize("shape", [(2, 5, 6, 7), (2, 2, 5, 2)])
def test_unsupported_channels(shape):
    with pytest.raises(ValueError, match=r"expected 1, 3 or 4 channels"):
        as_images(np.zeros(shape, np.uint8))
    with pytest.raises(ValueError, match=r"X\[0\] has shape .*1, 3 or 4 channels"):
        as_images(list(np.zeros(shape, np.uint8)))


def test_unsupported_dtype():
    with pytest.raises(TypeError, match="X has dtype complex128; expected uint8"):
        as_images(np.zeros((2, H, W), complex))


def test_mixed_sizes_without_resize():
    images = [Image.new("L", (W, H)), Image.new("L", (W, H)), Image.new("L", (H, W))]
    with pytest.raises(ValueError, match=r"different sizes: .*X\[2\] is \(7, 5\).*resize="):
        as_images(images)
    with pytest.raises(ValueError, match="different sizes"):
        as_images(_TensorDataset([torch.zeros(1, H, W), torch.zeros(1, W, H)]))


@pytest.mark.parametrize("X", [b"images", {"a": 1}, 3.0, None])
def test_unsupported_type(X):
    with pytest.raises(TypeError, match=r"X must be a numpy array, torch tensor, .*got"):
        as_images(X)


def test_str_is_a_folder(tmp_path):
    # A str (or path) is a folder of images now; one that does not exist is named.
    with pytest.raises(FileNotFoundError, match=r"X='.*images' is not an existing folder"):
        as_images(str(tmp_path / "images"))
    (tmp_path / "a.png").write_bytes(b"")
    with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
        as_images(tmp_path / "a.png")


def test_unsupported_item_type():
    with pytest.raises(TypeError, match=r"X\[0\] must be a PIL image, .*got int"):
        as_images([1, 2])


def test_custom_name_in_messages():
    with pytest.raises(ValueError, match="train_images must contain at least 2"):
        as_images(np.zeros((1, H, W), np.uint8), name="train_images")


@pytest.mark.parametrize("labels", [[0, 1, 0], np.zeros((N, 2), int)])
def test_labels_wrong_length(labels):
    with pytest.raises(ValueError, match=r"labels must have shape \(4,\) to match the 4 images"):
        as_images(_gray(), labels)


@pytest.mark.parametrize("labels", [[0, 1, np.nan, 1], ["a", None, "b", "a"]])
def test_labels_missing(labels):
    with pytest.raises(ValueError, match="labels contain 1 missing values .* at index"):
        as_images(_gray(), labels)
    with pytest.raises(ValueError, match="missing values"):
        as_images(_gray(), pd.Categorical(labels))


def test_labels_out_of_class_names():
    with pytest.raises(ValueError, match=r"codes in \[0, 2\) .* got values in \[0, 5\]"):
        as_images(_gray(), [0, 1, 5, 1], class_names=["a", "b"])
    with pytest.raises(ValueError, match="'c', which is not in class_names"):
        as_images(_gray(), ["a", "b", "c", "a"], class_names=["a", "b"])


def test_labels_mixed_types():
    with pytest.raises(TypeError, match="labels must all be ints or all be strings"):
        as_images(_gray(), np.array([1, "a", 2, 1], dtype=object))


def test_class_names_errors():
    with pytest.raises(ValueError, match="class_names were given without labels"):
        as_images(_gray(), class_names=["a"])
    with pytest.raises(ValueError, match="class_names must be unique"):
        as_images(_gray(), [0, 1, 0, 1], class_names=["a", "a"])
    with pytest.raises(TypeError, match="class_names must be a sequence of str"):
        as_images(_gray(), [0, 1, 0, 1], class_names="ab")


@pytest.mark.parametrize("resize", [0, (3,), (3, -1), 2.5, "big", (3.0, 4.0)])
def test_bad_resize(resize):
    with pytest.raises(ValueError, match="resize must be None, a positive int"):
        as_images(_gray(), resize=resize)


def test_image_data_validates():
    with pytest.raises(TypeError, match="images must be a uint8 torch.Tensor"):
        ImageData(torch.zeros(2, 1, 3, 3))
    with pytest.raises(ValueError, match=r"got shape \(2, 2, 3, 3\)"):
        ImageData(torch.zeros(2, 2, 3, 3, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"labels must have shape \(2,\)"):
        ImageData(torch.zeros(2, 1, 3, 3, dtype=torch.uint8), np.zeros(3, np.int64))


# --- batch size ---------------------------------------------------------------------------------


def test_check_batch_size():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_batch_size(32, 100) == 32
        assert check_batch_size(np.int64(100), 100) == 100
    with pytest.warns(UserWarning, match=r"batch_size=256 is larger .* \(100\); using batch_size"):
        assert check_batch_size(256, 100) == 100


@pytest.mark.parametrize("bad", [0, -3])
def test_check_batch_size_too_small(bad):
    with pytest.raises(ValueError, match=f"batch_size must be a positive int, got {bad}"):
        check_batch_size(bad, 10)


@pytest.mark.parametrize("bad", [2.0, "8", None, True])
def test_check_batch_size_not_int(bad):
    with pytest.raises(TypeError, match="bs must be a positive int, got"):
        check_batch_size(bad, 10, name="bs")


# --- loaders ------------------------------------------------------------------------------------


def test_load_digits():
    from sklearn.datasets import load_digits as sk_load_digits

    data = load_digits()
    sk = sk_load_digits()
    assert data.images.shape == (1797, 1, 8, 8)
    assert data.images.dtype == torch.uint8
    assert int(data.images.max()) == 255 and int(data.images.min()) == 0
    expected = np.rint(sk.images * 255 / 16).astype(np.uint8)
    np.testing.assert_array_equal(data.images[:, 0].numpy(), expected)
    np.testing.assert_array_equal(data.labels, sk.target)
    assert data.labels.dtype == np.int64
    assert data.class_names == tuple("0123456789")


@pytest.mark.parametrize("name", ["CIFAR-10", "cifar100", "mnist", "Fashion_MNIST", "stl10"])
def test_load_torchvision_missing_files(tmp_path, name):
    with pytest.raises(FileNotFoundError, match=r"not found .*root=.*download=True") as info:
        load_torchvision(name, tmp_path, train=False)
    assert str(tmp_path) in str(info.value)
    assert isinstance(info.value.__cause__, RuntimeError)


def test_load_torchvision_unknown_name(tmp_path):
    with pytest.raises(ValueError, match="Unknown data set name='imagenet'; accepted: cifar10"):
        load_torchvision("imagenet", tmp_path)
