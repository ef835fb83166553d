"""Whether code runs inside a Jupyter kernel (a notebook, JupyterLab, VS Code's notebooks)."""

from __future__ import annotations

import sys


def in_jupyter_kernel() -> bool:
    """True when an IPython kernel (ipykernel) runs this process, not a terminal IPython
    or plain Python."""
    if "ipykernel" not in sys.modules:
        return False
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None
