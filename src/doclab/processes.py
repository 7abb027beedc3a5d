"""Worker processes of a stage (preprocess's image pool, tuning's scorers) end with the stage.

A ProcessPoolExecutor worker waits for its next task on a pipe whose write end every worker holds
too, so when the stage's process is SIGKILLed nothing ends that wait: the workers would live on,
holding their memory (a tuning worker holds the validation maps) and the stage's output pipes.
`leave_with(parent)` in each worker's initializer ends the worker soon after its parent is gone.
"""
from __future__ import annotations

import os
import signal
import threading
import time

PARENT_CHECK_SECONDS = 0.5


def leave_with(parent: int) -> None:
    """End this process (exit code 128 + SIGTERM) within PARENT_CHECK_SECONDS of `parent` ceasing to be
    its parent; a daemon thread watches, so the work goes on meanwhile.

    Args:
        parent: the pid of the process that started this one (`os.getpid()` there, passed along).
    """
    threading.Thread(target=_exit_without, args=(parent,), name="leave-with-parent", daemon=True).start()


def _exit_without(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_SECONDS)
    os._exit(128 + signal.SIGTERM)
