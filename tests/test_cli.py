import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tsimcne_widgets.cli import main


def test_demo_trains_prints_accuracy_and_writes_csv(tmp_path, capsys):
    out = tmp_path / "sub" / "emb.csv"
    assert main(["demo", "--epochs", "1,1,1", "--out", str(out), "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    assert "2D kNN accuracy (k=15):" in text
    acc = float(text.split("2D kNN accuracy (k=15):")[1].split()[0])
    assert 0.0 <= acc <= 1.0
    df = pd.read_csv(out)
    assert list(df.columns) == ["index", "x", "y", "label"]
    assert len(df) == 1797 and df["label"].between(0, 9).all()
    assert df[["x", "y"]].notna().all().all()


@pytest.mark.process
def test_module_entry_point_and_console_script():
    r = subprocess.run([sys.executable, "-m", "tsimcne_widgets", "demo", "--help"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "--epochs" in r.stdout and "--backbone" in r.stdout
    script = Path(sys.executable).parent / "tsimcne-widgets"
    assert script.exists()
    r = subprocess.run([sys.executable, "-m", "tsimcne_widgets", "nope"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_demo_with_a_time_budget(tmp_path, capsys):
    out = tmp_path / "emb.csv"
    assert main(["demo", "--time-budget", "3s", "--epochs", "2,1,1", "--out", str(out),
                 "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    assert "time_budget=3s" in text and "backbone=fast" in text
    assert len(pd.read_csv(out)) == 1797
