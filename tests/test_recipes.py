"""The measured parameter sets in recipes.py build working estimators."""

import numpy as np
import pytest

from tsimcne_widgets import TSimCNE
from tsimcne_widgets.recipes import cpu_recipe, digits_recipe


@pytest.mark.parametrize("recipe", [cpu_recipe, digits_recipe])
def test_recipe_trains_and_overrides_apply(recipe, small_digits):
    X, _ = small_digits
    params = recipe(time_budget=None, total_epochs=(1, 1, 1), batch_size=32)
    params["augmentations"]["crop_scale"] = (0.9, 1.0)
    assert recipe()["augmentations"]["crop_scale"] == (0.5, 1.0)  # a fresh copy each call
    est = TSimCNE(**params, random_state=0, device="cpu").fit(X)
    assert est.embedding_.shape == (len(X), 2) and np.isfinite(est.embedding_).all()
    assert [st.dof for st in est.schedule_] == [1.0] + [params["dof"] if "dof" in params
                                                       else 1.0] * 2


def test_digits_recipe_uses_the_heavy_tailed_kernel():
    assert digits_recipe()["dof"] == 0.5 and "dof" not in cpu_recipe()
    assert digits_recipe(dof=1.0)["dof"] == 1.0
