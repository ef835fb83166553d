"""The training core imports without Jupyter's widget stack; the public API and its version."""

import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

import pytest

import tsimcne_widgets

ROOT = Path(__file__).resolve().parent.parent
WIDGET_STACK = ("ipywidgets", "anywidget", "bokeh")


CORE = ("import tsimcne_widgets, tsimcne_widgets.estimator, tsimcne_widgets.trainer, "
        "tsimcne_widgets.losses\n"
        "from tsimcne_widgets import TSimCNE, ImageData, Snapshot, load_digits")
# One fresh interpreter (importing torch takes seconds): which widget modules the core
# imported, and which package modules pulled each in (from the import stack); then the same
# after touching a lazy widget name, which proves that the spy sees such imports.
SCRIPT = f"""
import json, sys, traceback
seen = {{}}

class Spy:
    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if top in {WIDGET_STACK!r} and top not in seen:
            seen[top] = [f.filename for f in traceback.extract_stack()
                         if "tsimcne_widgets" in f.filename]
        return None

def report():
    print(json.dumps({{m: seen.get(m, ["?"]) for m in {WIDGET_STACK!r} if m in sys.modules}}))

sys.meta_path.insert(0, Spy())
{CORE}
report()
try:
    tsimcne_widgets.EmbeddingScatter
except Exception as exc:
    print(json.dumps({{"error": [repr(exc)]}}))
else:
    report()
"""


@pytest.fixture(scope="module")
def imports():
    r = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                       timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    core, widget = (json.loads(ln) for ln in r.stdout.strip().splitlines()[-2:])
    return core, widget


@pytest.mark.process
def test_training_core_does_not_import_the_widget_stack(imports):
    core, _ = imports
    assert core == {}, f"the training core imported {sorted(core)}, via {core}"


@pytest.mark.process
def test_the_spy_sees_a_widget_import(imports):
    # Guards the test above: a lazy widget name, once touched, does import the stack.
    _, widget = imports
    assert "error" not in widget, widget
    assert "anywidget" in widget
    assert any(f.endswith("scatter.py") for f in widget["anywidget"])


def test_public_names_import_from_the_top_level():
    from tsimcne_widgets import MethodComparison, Progress, Snapshot
    from tsimcne_widgets.comparison import MethodComparison as MC
    from tsimcne_widgets.run import Progress as P
    from tsimcne_widgets.snapshots import Snapshot as S

    assert (MethodComparison, Progress, Snapshot) == (MC, P, S)


def test_all_lists_only_real_names_and_dir_shows_the_lazy_ones():
    names = dir(tsimcne_widgets)
    for name in ("MethodComparison", "Snapshot", "Progress", "TrainingRun", "Explorer"):
        assert name in tsimcne_widgets.__all__
        assert name in names
    for name in tsimcne_widgets.__all__:
        assert getattr(tsimcne_widgets, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'NoSuchThing'"):
        tsimcne_widgets.NoSuchThing  # noqa: B018


def test_version_has_one_source():
    meta = importlib.metadata.version("tsimcne-widgets")
    assert tsimcne_widgets.__version__ == meta, (
        "installed metadata is stale: reinstall with `pip install -e .` (make setup)")
    # pyproject.toml takes the version from __init__.py; no second literal to keep in step.
    hatch = pytest.importorskip("hatchling.metadata.core")
    plugins = pytest.importorskip("hatchling.plugin.manager")
    project = hatch.ProjectMetadata(str(ROOT), plugins.PluginManager())
    assert "version" in project.core.dynamic
    assert project.version == tsimcne_widgets.__version__
    assert "version" not in json.loads((ROOT / "package.json").read_text())
