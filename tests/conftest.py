import numpy as np
import pytest

from tsimcne_widgets.data import load_digits


@pytest.fixture(scope="session")
def digits():
    return load_digits()


@pytest.fixture(scope="session")
def small_digits(digits):
    """120 digits, 12 of each class: enough for a few contrastive steps."""
    idx = np.concatenate([np.flatnonzero(digits.labels == c)[:12] for c in range(10)])
    return digits.images[idx].numpy(), digits.labels[idx]
