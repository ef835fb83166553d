from pathlib import Path

import numpy as np
import pytest

from tsimcne_widgets.data import load_digits

TESTS = Path(__file__).resolve().parent

# Slow tiers by location, so that test files need no marker of their own; `make test-fast`
# deselects them. The markers are registered in pyproject.toml.
_TIERS = {
    "browser": lambda rel: rel.parts[0] == "browser",
    "notebook": lambda rel: rel.as_posix() == "test_notebooks.py",
    "packaging": lambda rel: rel.as_posix() == "test_packaging.py",
}


def tier_of(path) -> str | None:
    """The tier ('browser', 'notebook', 'packaging') of a test file, None for a unit test."""
    try:
        rel = Path(path).resolve().relative_to(TESTS)
    except ValueError:
        return None
    return next((name for name, match in _TIERS.items() if match(rel)), None)


def pytest_collection_modifyitems(config, items):
    for item in items:
        tier = tier_of(item.path)
        if tier is not None:
            item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(scope="session")
def digits():
    return load_digits()


@pytest.fixture(scope="session")
def small_digits(digits):
    """120 digits, 12 of each class: enough for a few contrastive steps."""
    idx = np.concatenate([np.flatnonzero(digits.labels == c)[:12] for c in range(10)])
    return digits.images[idx].numpy(), digits.labels[idx]
