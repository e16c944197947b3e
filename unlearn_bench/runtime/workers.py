"""Workers that end with their parent: sweep jobs, and the retain fine-tune's second process (pipeline/side_process.py).
joblib's loky workers outlive a main process killed with SIGKILL (no handler runs), holding GPUs and cache temp
dirs; each worker therefore watches its parent and exits once it has been re-parented (the parent died)."""
from __future__ import annotations

import logging
import os
import threading
import time

log = logging.getLogger(__name__)


def exit_with_parent(poll_s: float = 2.0) -> threading.Thread:
    """Start a daemon thread that ends this process (exit status 1) when its parent process is gone."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        log.error("the main process (pid %d) is gone: stopping this worker", parent)
        os._exit(1)

    thread = threading.Thread(target=watch, name="exit-with-parent", daemon=True)
    thread.start()
    return thread
