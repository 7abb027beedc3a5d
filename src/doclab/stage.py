"""What every stage script shares: one-line errors and a non-zero exit instead of tracebacks."""
from __future__ import annotations

import sys
from collections.abc import Callable

from doclab.config import ConfigError
from doclab.data.records import DataError
from doclab.engine.checkpoint import CheckpointError

EXIT_BAD_INPUT = 2


def run_stage(main: Callable[[], object]) -> None:
    """Call `main`; bad params or data end the process with `error: <one line>` and exit code 2."""
    try:
        main()
    except (ConfigError, DataError, CheckpointError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
