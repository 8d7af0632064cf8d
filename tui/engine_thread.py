"""Keeping the UI ahead of the engine on a busy machine.

Training runs on the engine thread of the UI's own process; on a small, shared CPU the
scheduler would otherwise give it (and the torch worker threads it starts) the same
share as the UI thread, and a key could wait behind a batch. Lowering the engine
thread's priority costs training nothing while the UI is idle.
"""

from __future__ import annotations

import os
import sys
import threading

# Linux nice values are per thread; threads torch starts from the engine thread inherit it.
# Five steps is about a third of the UI thread's CPU share when both want the CPU.
ENGINE_NICENESS = 5


def yield_to_ui() -> None:
    """Called on the engine thread: run it below the main (UI) thread's priority (Linux;
    elsewhere a no-op). Safe to call for every job: the priority is lowered once."""
    if sys.platform != "linux":
        return
    thread = threading.get_native_id()
    try:
        target = min(19, os.getpriority(os.PRIO_PROCESS, os.getpid()) + ENGINE_NICENESS)  # pid: the main thread
        if os.getpriority(os.PRIO_PROCESS, thread) < target:
            os.setpriority(os.PRIO_PROCESS, thread, target)
    except OSError:  # not permitted in some sandboxes: the engine then just runs at the same priority
        pass
