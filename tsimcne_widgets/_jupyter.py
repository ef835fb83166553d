"""Whether code runs inside a Jupyter kernel (a notebook, JupyterLab, VS Code's notebooks)."""

from __future__ import annotations

import sys


def jupyter_kernel():
    """The ipykernel kernel running this process, or None (plain Python, a terminal
    IPython, or no ipykernel imported)."""
    if "ipykernel" not in sys.modules:
        return None
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return getattr(get_ipython(), "kernel", None)


def in_jupyter_kernel() -> bool:
    """True when an IPython kernel (ipykernel) runs this process."""
    return jupyter_kernel() is not None
