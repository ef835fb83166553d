"""Binder files parse, and a built wheel works on its own, bundle included."""

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent


def test_binder_files_parse():
    lines = [ln.strip() for ln in (ROOT / "binder" / "requirements.txt").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    options = [ln for ln in lines if ln.startswith("-")]
    reqs = [Requirement(ln) for ln in lines if not ln.startswith("-")]
    assert options == ["--extra-index-url https://download.pytorch.org/whl/cpu"]
    assert {r.name for r in reqs} >= {"torch", "torchvision", "jupyterlab"}
    post = ROOT / "binder" / "postBuild"
    assert subprocess.run(["bash", "-n", str(post)]).returncode == 0
    assert post.stat().st_mode & 0o111, "postBuild must be executable"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                        "--no-build-isolation", "-w", str(out), str(ROOT)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    (whl,) = out.glob("tsimcne_widgets-*.whl")
    return whl


def test_wheel_contains_the_bundles(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    for js in ("scatter.js", "curves.js", "gallery.js"):
        assert f"tsimcne_widgets/static/{js}" in names
    assert "tsimcne_widgets/py.typed" in names
    assert not any(n.startswith(("js/", "tests/", "node_modules/")) for n in names)


def test_wheel_installs_into_a_fresh_venv_and_finds_its_bundle(wheel, tmp_path):
    venv = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()"
                           "['purelib'])"], capture_output=True, text=True).stdout.strip()
    # Dependencies come from this environment's site-packages (no downloads), but not
    # the editable install of the repo: a plain path line does not run nested .pth files.
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    r = subprocess.run([str(py), "-m", "pip", "install", "--no-deps", "--no-index",
                        str(wheel)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    code = ("import tsimcne_widgets as t, pathlib\n"
            "from tsimcne_widgets.scatter import _STATIC\n"
            "w = t.EmbeddingScatter([[0, 0], [1, 1]])\n"
            "print(pathlib.Path(t.__file__).parent)\n"
            "print(_STATIC.exists(), len(str(w._esm)) > 10000)\n")
    r = subprocess.run([str(py), "-c", code], capture_output=True, text=True, timeout=300,
                       cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    where, flags = r.stdout.strip().splitlines()
    assert where.startswith(site) and str(ROOT) not in where
    assert flags == "True True"
