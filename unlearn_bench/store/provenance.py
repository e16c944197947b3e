"""What produced a run's numbers, written beside them as `provenance.json`: start and end time, package
versions, the harness's git commit, the command-line overrides, device and process count, data fingerprints.
The report reads it back (`unlearn-bench-report --where`/`--by`)."""
from __future__ import annotations

import datetime
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("torch", "transformers", "accelerate", "lm_eval", "unlearn-bench")
FILE_NAME = "provenance.json"


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def git_commit() -> str | None:
    """The harness checkout's commit (with '-dirty' when it has uncommitted changes), or None when installed
    from a wheel or git is missing."""
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        def git(*args: str) -> str:
            return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10,
                                  check=True).stdout.strip()
        commit = git("rev-parse", "HEAD")
        return commit + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.SubprocessError):
        return None


def overrides() -> list[str]:
    """The command line's overrides (Hydra's task overrides), or sys.argv when not run through Hydra."""
    try:
        from hydra.core.hydra_config import HydraConfig

        return list(HydraConfig.get().overrides.task)
    except (ImportError, ValueError):
        return sys.argv[1:]


def collect(started: str, accelerator: Any, fingerprint: dict[str, Any]) -> dict[str, Any]:
    return {
        "started": started,
        "ended": now(),
        "versions": versions(),
        "git_commit": git_commit(),
        "overrides": overrides(),
        "device": str(getattr(accelerator, "device", "unknown")),
        "num_processes": int(getattr(accelerator, "num_processes", 1)),
        "host": platform.node(),
        "data_fingerprint": fingerprint,
    }
