"""Classes talk through public attributes: no object reaches into another's private
trainer, run, thread or callbacks (the estimator/run contract is ``RunHooks``)."""

import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "tsimcne_widgets"
PRIVATE = re.compile(r"(\w+)\._(trainer|run|thread|record|embed)\b")


def test_no_access_to_another_objects_private_run_state():
    offenders = []
    for path in sorted(PACKAGE.glob("*.py")):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            for m in PRIVATE.finditer(line):
                if m.group(1) not in ("self", "cls"):
                    offenders.append(f"{path.name}:{n}: {line.strip()}")
    assert not offenders, "private access across classes:\n" + "\n".join(offenders)


def test_the_check_catches_what_it_is_meant_to():
    assert PRIVATE.search("tr = run.estimator._trainer").group(1) == "estimator"
    assert PRIVATE.search("self._trainer.step()").group(1) == "self"
    assert PRIVATE.search("est._embed(x)") and not PRIVATE.search("est._embedding")
