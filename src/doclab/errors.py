"""The one error protocol of stages and the `doclab` CLI: bad input ends with `error: <one line>`, exit 2.

Every error doclab raises on bad params, data or files subclasses `DoclabError`; `exit_on_error`
is the one handler that turns them (and missing files) into that line, for stage scripts and the CLI.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable

EXIT_BAD_INPUT = 2


class DoclabError(ValueError):
    """Bad input the user can fix; the message is one line that names the file or params key."""


class DataError(DoclabError):
    """Bad data: a file, line, image or annotation the user must fix (the message names it)."""


def one_line(exc: BaseException) -> str:
    """The `error:` line of a handled exception; an OSError names its path and the system's reason."""
    if isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError) and exc.strerror:
        path = exc.filename if exc.filename is not None else "output"
        return f"{path}: {exc.strerror} (errno {exc.errno})"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def exit_on_error(main: Callable[[], object]) -> int:
    """Call `main`; a `DoclabError`, a missing file or a failed read or write (read-only folder, full disk,
    permissions: any OSError) prints `error: <one line>` and returns exit code 2.

    Returns:
        `main`'s integer result (0 when it returns anything else), or EXIT_BAD_INPUT.
    """
    previous = _on_sigterm(_terminate)
    try:
        result = main()
    except (DoclabError, OSError) as exc:
        print(f"error: {one_line(exc)}{_dvc_hint()}", file=sys.stderr)
        return EXIT_BAD_INPUT
    finally:
        _on_sigterm(previous)
    return result if isinstance(result, int) else 0


def _dvc_hint() -> str:
    """Under `dvc repro` / `dvc exp run`, how to get back the outputs DVC deleted before running the stage."""
    stage = os.environ.get("DVC_STAGE")
    if not stage:
        return ""
    return (f" [dvc removed this stage's previous outputs before it ran: `dvc checkout {stage}` restores the cached "
            "ones, `git checkout -- metrics plots dvclive` the committed ones]")


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM unwinds like Ctrl-C does, so every `finally` and temp-folder cleanup runs on the way out.

    A SIGTERM to the process group also stops the DataLoader workers; torch's SIGCHLD handler would then
    raise "DataLoader worker ... is killed by signal" inside the unwinding (in the loader's `__del__`,
    printed as a traceback). Their exit is expected now, so SIGCHLD gets a handler that does nothing
    (not SIG_DFL: Python reports a SIGCHLD already pending for a handler that is gone as an error).
    """
    if hasattr(signal, "SIGCHLD"):
        signal.signal(signal.SIGCHLD, _expected_child_exit)
    raise SystemExit(128 + signum)


def _expected_child_exit(signum: int, frame: object) -> None:
    """SIGCHLD while stopping: a worker process ended, as it should."""


def _on_sigterm(handler: object) -> object:
    """Install a SIGTERM handler (main thread only); returns the previous one."""
    if handler is None or threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, handler)


def run_stage(main: Callable[[], object]) -> None:
    """A stage script's entry point: run `main` and exit with `exit_on_error`'s code."""
    sys.exit(exit_on_error(main))
