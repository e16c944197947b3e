"""Workers that end with their parent: sweep jobs, and the retain fine-tune's second process (pipeline/side_process.py).
joblib's loky workers outlive a main process killed with SIGKILL (no handler runs), holding GPUs and cache temp
dirs; each worker therefore watches the process that started it and exits once that one is gone.

The pid to watch is the one the worker was started by, not `os.getppid()` at the time its job begins: a worker
still importing its job (seconds for torch) when the main process dies has already been re-parented (to init or
a subreaper), and would then watch its new parent and run the job to the end. The CLI's main process therefore
records its pid in the environment (`mark_sweep_main`), which the workers it starts inherit."""
from __future__ import annotations

import logging
import os
import threading
import time

log = logging.getLogger(__name__)

SWEEP_PID_ENV = "UNLEARN_BENCH_SWEEP_PID"
_watched: dict[int, threading.Thread] = {}


def mark_sweep_main() -> None:
    """Called by the CLI before Hydra starts: the sweep's workers (started later, by this process) inherit the pid."""
    os.environ[SWEEP_PID_ENV] = str(os.getpid())


def _gone(parent: int) -> None:
    log.error("the main process (pid %d) is gone: stopping this worker", parent)
    logging.shutdown()
    os._exit(1)


def exit_with_parent(poll_s: float = 1.0, parent: int | None = None) -> threading.Thread:
    """End this process (exit status 1) at once if `parent` (default: the current parent) is no longer its parent,
    else as soon as it stops being so, watched by a daemon thread (one per parent, however many jobs call this)."""
    parent = os.getppid() if parent is None else parent
    if os.getppid() != parent:
        _gone(parent)
    if parent in _watched and _watched[parent].is_alive():
        return _watched[parent]

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        _gone(parent)

    thread = _watched[parent] = threading.Thread(target=watch, name="exit-with-parent", daemon=True)
    thread.start()
    return thread


def exit_with_sweep(launcher_target: str) -> None:
    """In a job of a joblib (loky) sweep, tie this worker to the sweep's main process. Other launchers' jobs run
    in the main process (basic) or are the cluster's to stop (submitit)."""
    if "joblib" in launcher_target:
        main = os.environ.get(SWEEP_PID_ENV)
        exit_with_parent(parent=int(main) if main else None)
