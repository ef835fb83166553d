"""Binder files parse and install; the sdist and wheel build, and the wheel works on its own."""

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
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


def fresh_venv(path: Path) -> tuple[Path, str]:
    """A new venv that sees this environment's packages (no downloads) but not the repo."""
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, timeout=120)
    py = path / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()"
                           "['purelib'])"], capture_output=True, text=True).stdout.strip()
    # A plain path line does not run the nested .pth files, so the editable install of the
    # repo stays invisible.
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return py, site


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
    for js in ("scatter.js", "scatter.css", "curves.js", "gallery.js"):
        assert f"tsimcne_widgets/static/{js}" in names
    assert "tsimcne_widgets/py.typed" in names
    assert not any(n.startswith(("js/", "tests/", "node_modules/")) for n in names)


def test_wheel_version_is_the_package_version(wheel):
    # pyproject.toml reads the version from tsimcne_widgets/__init__.py (one source).
    init = (ROOT / "tsimcne_widgets" / "__init__.py").read_text()
    (version,) = re.findall(r'^__version__ = "([^"]+)"$', init, flags=re.M)
    assert wheel.name.split("-")[1] == version


def test_wheel_installs_into_a_fresh_venv_and_finds_its_bundle(wheel, tmp_path):
    py, site = fresh_venv(tmp_path / "fresh")
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


def test_binder_requirements_and_postbuild_install_and_import(tmp_path):
    py, site = fresh_venv(tmp_path / "binder")
    # The CPU wheel index is unreachable offline: the requirements themselves must resolve,
    # against the packages already here (torch is not installed twice).
    reqs = [ln for ln in (ROOT / "binder" / "requirements.txt").read_text().splitlines()
            if ln.strip() and not ln.startswith(("#", "-"))]
    (tmp_path / "req.txt").write_text("\n".join(reqs) + "\n")
    r = subprocess.run([str(py), "-m", "pip", "install", "-r", str(tmp_path / "req.txt")],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    # postBuild installs the repo (with its npm build) into the image's Python.
    repo = tmp_path / "repo"
    shutil.copytree(ROOT, repo, ignore=shutil.ignore_patterns(
        ".venv", ".git", "node_modules", "static", "__pycache__", "*.egg-info", ".*cache"))
    env = dict(os.environ, PATH=f"{py.parent}:{os.environ['PATH']}")
    env.pop("VIRTUAL_ENV", None)
    r = subprocess.run(["bash", str(repo / "binder" / "postBuild")], cwd=repo, env=env,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    code = ("import tsimcne_widgets as t, pathlib; from tsimcne_widgets.scatter import _STATIC\n"
            "print(pathlib.Path(t.__file__).parent, _STATIC.exists())")
    r = subprocess.run([str(py), "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    where, found = r.stdout.split()
    assert where.startswith(site) and found == "True"


def test_readme_binder_badge_opens_the_quickstart():
    readme = (ROOT / "README.md").read_text()
    m = re.search(r"\(https://mybinder\.org/v2/gh/([\w.-]+)/([\w.-]+)/(\w+)\?labpath=([^)\s]+)\)",
                  readme)
    assert m, "README needs a mybinder.org badge"
    assert m.group(4).replace("%2F", "/") == "notebooks/01_quickstart.ipynb"
    assert (ROOT / "notebooks" / "01_quickstart.ipynb").exists()


@pytest.fixture(scope="module")
def sdist(tmp_path_factory):
    out = tmp_path_factory.mktemp("sdist")
    code = f"from hatchling.build import build_sdist; print(build_sdist({str(out)!r}))"
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return out / r.stdout.strip().splitlines()[-1]


def test_sdist_has_the_sources_to_rebuild_the_bundle(sdist):
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for need in ("pyproject.toml", "package.json", "package-lock.json", "README.md",
                 "js/scatter.js", "js/scatter/draw.js", "js/scatter/scatter.css",
                 "js/curves.js", "js/gallery.js",
                 "tsimcne_widgets/__init__.py", "tsimcne_widgets/static/scatter.js"):
        assert need in names, need
    assert not any(n.startswith(("node_modules/", ".venv/", ".git/")) for n in names)


def test_a_wheel_builds_from_the_sdist(sdist, tmp_path):
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp_path, filter="data")
    (src,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                        "--no-build-isolation", "-w", str(tmp_path / "dist"), str(src)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    (whl,) = (tmp_path / "dist").glob("tsimcne_widgets-*.whl")
    names = zipfile.ZipFile(whl).namelist()
    assert "tsimcne_widgets/static/scatter.js" in names
    assert "tsimcne_widgets/static/scatter.css" in names  # the widget's _css
