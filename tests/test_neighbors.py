"""Nearest neighbours in pixel and HOG space as extra positive pairs (``neighbor_positives``)."""

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA
from sklearn.neighbors import NearestNeighbors

from tsimcne_widgets import Augmentations, TSimCNE
from tsimcne_widgets.data import as_images
from tsimcne_widgets.hog import hog_features
from tsimcne_widgets.neighbors import image_neighbors, pixel_neighbors

FAST = {"backbone": "small", "total_epochs": (1, 1, 1), "batch_size": 32,
        "augmentations": Augmentations(hflip=0), "random_state": 0,
        "device": "cpu", "n_threads": 1, "mixed_precision": False}


def sklearn_neighbors(x: np.ndarray, k: int) -> np.ndarray:
    nn = NearestNeighbors(n_neighbors=k + 1).fit(x)
    return nn.kneighbors(x, return_distance=False)[:, 1:]


def test_neighbours_match_an_exact_search_below_50_dimensions():
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (300, 1, 5, 6), generator=gen, dtype=torch.uint8)
    got = pixel_neighbors(images, 7, chunk=64)  # several chunks, one ragged
    want = sklearn_neighbors(images.reshape(300, -1).double().numpy(), 7)
    assert got.shape == (300, 7) and got.dtype == torch.int64
    np.testing.assert_array_equal(got.numpy(), want)
    assert not (got == torch.arange(300)[:, None]).any()  # never itself


def test_neighbours_are_searched_on_a_pca_to_50_dimensions():
    gen = torch.Generator().manual_seed(1)
    # Low-rank images plus noise, so that the top 50 axes are well separated.
    base = torch.randn(400, 60, generator=gen) @ torch.randn(60, 144, generator=gen)
    images = (base + 0.1 * torch.randn(400, 144, generator=gen)).reshape(400, 1, 12, 12)
    got = pixel_neighbors(images, 5).numpy()
    pcs = PCA(50, svd_solver="full").fit_transform(images.reshape(400, -1).double().numpy())
    want = sklearn_neighbors(pcs, 5)
    assert (got == want).mean() > 0.99


def test_k_is_clamped_to_the_other_images_and_one_image_is_refused():
    images = torch.tensor([0, 10, 30], dtype=torch.uint8).reshape(3, 1, 1, 1)
    np.testing.assert_array_equal(pixel_neighbors(images, 15).numpy(),
                                  [[1, 2], [0, 2], [1, 0]])
    with pytest.raises(ValueError, match="at least 2 images"):
        pixel_neighbors(images[:1], 15)


def trainer_for(X, **params):
    est = TSimCNE(**{**FAST, **params})
    data = as_images(X)
    est._initialize(data)
    tr = est._trainer
    tr.set_images(data.images)
    return tr


@pytest.mark.parametrize("share", [0.0, 0.5, 1.0])
def test_the_share_of_pairs_made_of_neighbours(small_digits, share):
    tr = trainer_for(small_digits[0], neighbor_positives=share, n_neighbors=4)
    assert tr.neighbors is None  # set_images does not search: a run's start stays instant
    idx = torch.arange(120).repeat(50)  # 6,000 pairs
    other = tr.partners(idx, torch.Generator().manual_seed(0))
    assert (tr.neighbors is None) == (share == 0)
    moved = other != idx
    assert abs(moved.float().mean().item() - share) < 0.03
    if share:
        # Each moved partner is one of the image's 4 neighbours, and all 4 get drawn.
        nbrs = tr.neighbors[idx[moved]]
        assert (nbrs == other[moved, None]).any(1).all()
        assert tr.neighbors.shape == (120, 4)
        assert len(set(other[moved & (idx == 0)].tolist())) == 4


def test_the_first_step_finds_the_neighbours_and_new_images_drop_them(small_digits):
    X = small_digits[0]
    tr = trainer_for(X, neighbor_positives=0.5, n_neighbors=4)
    tr.step()
    assert tr.neighbors.shape == (120, 4)
    tr.set_images(as_images(X[::-1].copy()).images)
    assert tr.neighbors is None
    tr.step()
    assert tr.neighbors.shape == (120, 4)


def test_neighbour_pairs_change_training_and_stay_reproducible(small_digits):
    X = small_digits[0]
    plain = TSimCNE(**FAST).fit_transform(X)
    mixed = [TSimCNE(**FAST, neighbor_positives=0.5, n_neighbors=5).fit_transform(X)
             for _ in range(2)]
    assert np.isfinite(mixed[0]).all() and mixed[0].shape == (120, 2)
    np.testing.assert_array_equal(mixed[0], mixed[1])
    assert not np.allclose(plain, mixed[0])


# -- neighbours in HOG space (neighbor_space='hog') ------------------------------------------
def edge_images(n=4, size=28):
    """Half-dark, half-bright images: vertical edges (even rows) and horizontal ones."""
    x = torch.zeros(n, 1, size, size, dtype=torch.uint8)
    x[0::2, :, :, size // 2:] = 200
    x[1::2, :, size // 2:, :] = 200
    return x


def test_hog_puts_an_edge_in_its_orientation_bin():
    f = hog_features(edge_images()).reshape(4, 4, 9, 6, 6)  # cell in block, bin, block
    mass = f.sum((1, 3, 4))  # per image and orientation bin
    # A vertical edge has a horizontal gradient (0 degrees: bin 0); a horizontal one 90
    # degrees (bins 4 and 5 share it).
    assert mass[0].argmax() == 0 and mass[0, 1:].max() < 1e-5 * mass[0, 0]
    assert mass[1, 4] > 0 and torch.isclose(mass[1, 4], mass[1, 5])
    assert mass[1, [0, 1, 2, 3, 6, 7, 8]].max() < 1e-5 * mass[1, 4]
    # Every 2x2 block of cells is normalised to at most unit length.
    assert f.flatten(1, 2).norm(dim=1).max() <= 1.0 + 1e-6


def test_hog_ignores_contrast_and_colour_and_scales_its_cells():
    x = edge_images()
    np.testing.assert_allclose(hog_features(x // 2), hog_features(x), atol=2e-3)
    np.testing.assert_allclose(hog_features(x.repeat(1, 3, 1, 1)), hog_features(x), atol=1e-6)
    np.testing.assert_allclose(hog_features(x.float() / 255), hog_features(x), atol=1e-6)
    # 7 cells per side at any size (a 30x30 image is cropped to 28x28 centred).
    assert hog_features(edge_images(size=64)).shape == (4, 1296)
    assert hog_features(edge_images(size=30)).shape == (4, 1296)


def test_hog_refuses_small_or_flat_images():
    with pytest.raises(ValueError, match="at least 14x14"):
        hog_features(edge_images(size=13))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        hog_features(torch.zeros(4, 28, 28))
    with pytest.raises(ValueError, match="neighbor_space must be one of"):
        image_neighbors(edge_images(), 2, "sift")


def test_hog_neighbours_are_the_pixel_search_on_hog_features():
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (60, 1, 16, 16), generator=gen, dtype=torch.uint8)
    got = image_neighbors(x, 5, "hog")
    np.testing.assert_array_equal(got, pixel_neighbors(hog_features(x)[:, :, None, None], 5))
    assert not np.array_equal(got, image_neighbors(x, 5, "pixels"))


def test_a_hog_run_searches_the_full_size_images(small_digits):
    X = as_images(small_digits[0], resize=16).images.numpy()
    tr = trainer_for(X, neighbor_positives=0.5, n_neighbors=4, neighbor_space="hog",
                     input_size=8)
    assert tuple(tr.images.shape[2:]) == (8, 8)  # the backbone sees 8x8
    tr.step()
    np.testing.assert_array_equal(tr.neighbors, image_neighbors(torch.as_tensor(X), 4, "hog"))


def test_hog_runs_are_reproducible_and_differ_from_pixel_runs(small_digits):
    X = as_images(small_digits[0], resize=16).images.numpy()
    params = {**FAST, "neighbor_positives": 0.5, "n_neighbors": 5}
    hog = [TSimCNE(**params, neighbor_space="hog").fit_transform(X) for _ in range(2)]
    np.testing.assert_array_equal(hog[0], hog[1])
    assert hog[0].shape == (120, 2) and np.isfinite(hog[0]).all()
    assert not np.allclose(hog[0], TSimCNE(**params).fit_transform(X))


@pytest.mark.parametrize(("params", "match"), [
    ({"neighbor_space": "sift"}, "neighbor_space must be one of 'pixels', 'hog', got 'sift'"),
    ({"neighbor_space": "hog", "neighbor_positives": 0.5}, "at least 14x14 pixels"),
])
def test_bad_neighbor_space_is_refused_before_training(small_digits, params, match):
    with pytest.raises(ValueError, match=match):
        TSimCNE(**{**FAST, **params}).fit(small_digits[0])  # 8x8 digits
