"""Child processes that do not outlive their parent.

A worker whose supervisor was killed (``kill -9``) would keep serving on the inherited socket,
and a new supervisor could not bind the port (issue 21). Linux delivers a chosen signal to a
process when its parent dies once ``prctl(PR_SET_PDEATHSIG)`` is set; the race with a parent
that died before the call is closed by comparing the parent pid afterwards.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(expected_parent: int, sig: signal.Signals = signal.SIGTERM) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent exits; exit now if the
    parent (``expected_parent``) is already gone. Returns False where prctl is not available
    (not Linux): the caller then relies on its pipe or socket closing."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        return False
    if os.getppid() != expected_parent:
        os.kill(os.getpid(), sig)
    return True
