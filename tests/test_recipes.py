"""The measured parameter sets in recipes.py build working estimators."""

import numpy as np
import pytest

from tsimcne_widgets import Augmentations, TSimCNE, as_images
from tsimcne_widgets.recipes import cpu_recipe, digits_recipe


@pytest.mark.parametrize("recipe", [cpu_recipe, digits_recipe])
def test_recipe_trains_and_overrides_apply(recipe, small_digits):
    X, _ = small_digits
    if recipe is cpu_recipe:  # its HOG neighbours need 14x14 images or more
        X = as_images(X, resize=16).images.numpy()
    params = recipe(time_budget=None, total_epochs=(1, 1, 1), batch_size=32)
    params["augmentations"]["crop_scale"] = (0.3, 1.0)
    assert recipe()["augmentations"]["crop_scale"] != (0.3, 1.0)  # a fresh copy each call
    est = TSimCNE(**params, random_state=0, device="cpu").fit(X)
    assert est.embedding_.shape == (len(X), 2) and np.isfinite(est.embedding_).all()
    assert [st.dof for st in est.schedule_] == [1.0, 0.5, 0.5]


def test_recipes_use_the_heavy_tailed_kernel_and_the_cpu_one_a_smaller_input():
    assert digits_recipe()["dof"] == 0.5 and cpu_recipe()["dof"] == 0.5
    assert digits_recipe(dof=1.0)["dof"] == 1.0
    assert cpu_recipe()["input_size"] == 14 and "input_size" not in digits_recipe()


def test_only_the_digits_rotate_and_only_the_photographs_flip():
    digits = Augmentations(**digits_recipe()["augmentations"])
    photos = Augmentations(**cpu_recipe()["augmentations"])
    # Rotations helped handwriting; with HOG pairs the photographs did better without.
    assert digits.rotation == 10.0 and photos.rotation == 0.0
    assert digits.hflip == 0.0 and photos.hflip == 0.5  # a flipped digit is another digit
    assert digits.vflip == photos.vflip == 0.0


def test_cpu_recipe_trains_28px_images_at_14px():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(64, 28, 28), dtype=np.uint8)
    params = cpu_recipe(time_budget=None, total_epochs=(1, 1, 1), batch_size=32)
    est = TSimCNE(**params, random_state=0, device="cpu", n_threads=1).fit(X)
    assert est.model_.input_size == (14, 14) and est.image_shape_ == (28, 28)
    assert est.transform(X[:3]).shape == (3, 2)


def test_only_the_photograph_recipe_pairs_hog_neighbours():
    # Digits' pixels are already near perfect (t-SNE 0.994); the photographs gained 0.06.
    assert cpu_recipe()["neighbor_positives"] == 0.9 and cpu_recipe()["n_neighbors"] == 15
    assert cpu_recipe()["neighbor_space"] == "hog"


def test_cpu_recipe_on_tiny_images_says_what_to_change(small_digits):
    params = cpu_recipe(time_budget=None, total_epochs=(1, 1, 1), batch_size=32)
    with pytest.raises(ValueError, match="at least 14x14 pixels.*neighbor_space='pixels'"):
        TSimCNE(**params, device="cpu").fit(small_digits[0])
    est = TSimCNE(**{**params, "neighbor_space": "pixels"}, device="cpu", random_state=0)
    assert est.fit(small_digits[0]).embedding_.shape == (120, 2)
    assert TSimCNE(**digits_recipe()).neighbor_positives == 0.0
