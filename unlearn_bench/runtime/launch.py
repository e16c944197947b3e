"""What a process started by `accelerate launch` needs to know before Hydra runs (no torch import here)."""
from __future__ import annotations

import os

WORKER_OVERRIDES = {"hydra.run.dir": ".", "hydra.output_subdir": "null", "hydra/job_logging": "stdout"}


def worker_argv(argv: list[str]) -> list[str]:
    """For processes other than the first: no run folder, no `.hydra/` copy, no log file, so the main process alone
    writes files (its log is the run's log); they still log to stdout. These replace the user's own values of the
    same keys and go first, before any flag (Hydra reads overrides as one run of positionals)."""
    if int(os.environ.get("RANK", "0")) == 0:
        return argv
    kept = [a for a in argv[1:] if a.split("=", 1)[0].lstrip("+~") not in WORKER_OVERRIDES]
    return [argv[0], *(f"{k}={v}" for k, v in WORKER_OVERRIDES.items()), *kept]
