"""Slow tests are marked by location (tests/conftest.py), so that `make test-fast` skips them."""

import importlib.util
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent


def load_root_conftest():
    # `import conftest` may give tests/browser/conftest.py (both are top-level "conftest").
    spec = importlib.util.spec_from_file_location("_root_conftest", TESTS / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("path", "tier"), [
    (TESTS / "browser" / "test_scatter_browser.py", "browser"),
    (TESTS / "browser" / "conftest.py", "browser"),
    (TESTS / "test_notebooks.py", "notebook"),
    (TESTS / "test_packaging.py", "packaging"),
    (TESTS / "test_run.py", None),
    (TESTS / "test_tiers.py", None),
    (Path("/elsewhere/browser/test_x.py"), None),
])
def test_tier_of_a_test_file(path, tier):
    assert load_root_conftest().tier_of(path) == tier


def test_markers_are_registered_and_set(request):
    markers = " ".join(request.config.getini("markers"))
    for tier in ("browser", "notebook", "packaging", "process"):
        assert f"{tier}:" in markers
    # This file is a unit test: no tier marker, so `-m "not browser and ..."` keeps it.
    assert not {m.name for m in request.node.iter_markers()} & {"browser", "notebook", "process",
                                                                "packaging"}
