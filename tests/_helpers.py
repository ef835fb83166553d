"""Small helpers shared by tests that watch background threads."""

import time


def wait_for(pred, timeout=30.0, interval=0.01):
    """Poll ``pred()`` until it is true or ``timeout`` seconds pass; return whether it was."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        if pred():
            return True
        time.sleep(interval)
    return False
