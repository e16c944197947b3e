"""A single run's bad input as one line: `error: <file>: record 3: field 'answer' ...`, exit status 2.

The checks (pipeline/validation.py, the adapters' readers) raise ValueError subclasses (ConfigError, DataError)
whose message names the field, file and record; Hydra would print them as the last line of a stripped traceback.
Errors raised elsewhere (a library, a bug) keep their traceback, and `HYDRA_FULL_ERROR=1` keeps it for all.
A sweep's jobs record their errors instead (cli.main)."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from types import TracebackType

PACKAGE = Path(__file__).resolve().parents[1]
INPUT_ERRORS = (ValueError, FileNotFoundError)
EXIT_STATUS = 2  # as argparse's usage errors


def raised_here(traceback: TracebackType | None) -> bool:
    """Whether the innermost frame of `traceback` is this package's code (a check's own message)."""
    if traceback is None:
        return False
    while traceback.tb_next is not None:
        traceback = traceback.tb_next
    return Path(traceback.tb_frame.f_code.co_filename).resolve().is_relative_to(PACKAGE)


def exit_on_input_error(error: BaseException) -> None:
    """Print a config or data error of ours as one line and exit with status 2; return for any other error."""
    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        return
    if isinstance(error, INPUT_ERRORS) and raised_here(error.__traceback__):
        print(f"error: {error}", file=sys.stderr, flush=True)
        raise SystemExit(EXIT_STATUS)
