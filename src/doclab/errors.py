"""The one error protocol of stages and the `doclab` CLI: bad input ends with `error: <one line>`, exit 2.

Every error doclab raises on bad params, data or files subclasses `DoclabError`; `exit_on_error`
is the one handler that turns them (and missing files) into that line, for stage scripts and the CLI.
"""
from __future__ import annotations

import sys
from collections.abc import Callable

EXIT_BAD_INPUT = 2


class DoclabError(ValueError):
    """Bad input the user can fix; the message is one line that names the file or params key."""


class DataError(DoclabError):
    """Bad data: a file, line, image or annotation the user must fix (the message names it)."""


HANDLED = (DoclabError, FileNotFoundError)


def exit_on_error(main: Callable[[], object]) -> int:
    """Call `main`; a `DoclabError` or missing file prints `error: <message>` and returns exit code 2.

    Returns:
        `main`'s integer result (0 when it returns anything else), or EXIT_BAD_INPUT.
    """
    try:
        result = main()
    except HANDLED as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return result if isinstance(result, int) else 0


def run_stage(main: Callable[[], object]) -> None:
    """A stage script's entry point: run `main` and exit with `exit_on_error`'s code."""
    sys.exit(exit_on_error(main))
