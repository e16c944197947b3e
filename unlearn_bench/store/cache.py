"""Stage cache: each finished stage's output lives under a key that hashes exactly the config that
determines it (plus a format version). Entries are built in a temp dir and renamed into place, so a killed
run never leaves half an entry behind; the temp dir's name records its owner (pid@host), so a later run can
remove those of processes that are gone (a kill -9 skips every cleanup handler). An entry is built under a
file lock (`<cache>/.locks/<stage>-<entry>.lock`, out of the stage folders, which hold entries only), so two processes asking for the same entry at once (two jobs of a
parallel sweep, cold) build it once: the second waits, then reuses it. The kernel drops the lock of a killed
process, so a waiter then builds the entry itself."""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from filelock import FileLock, Timeout

log = logging.getLogger(__name__)

CACHE_FORMAT_VERSION = 3
# .tmp-<entry>-<pid>@<host>-<mkdtemp suffix, which has no '-'>
_TEMP_NAME = re.compile(r"^\.tmp-[0-9a-f]+-(?P<pid>\d+)@(?P<host>.+)-[^-]+$")
# A temp dir of another host (shared file system) or of an older format is stale only after this long: no
# stage of a 7B model takes that long to build.
FOREIGN_TEMP_MAX_AGE_S = 3 * 24 * 3600


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def is_stale_temp(path: Path, now: float | None = None) -> bool:
    """True when no running process can own the temp entry `path`."""
    match = _TEMP_NAME.match(path.name)
    if match and match["host"] == socket.gethostname():
        return not _pid_alive(int(match["pid"]))
    try:
        age = (now or time.time()) - path.stat().st_mtime
    except FileNotFoundError:
        return False
    return age > FOREIGN_TEMP_MAX_AGE_S


def clean_stale_temps(cache_dir: str | Path) -> list[Path]:
    """Remove the temp entries of dead processes under every stage of `cache_dir`; returns what was removed."""
    removed = []
    for tmp in Path(cache_dir).expanduser().glob("*/.tmp-*"):
        if tmp.is_dir() and is_stale_temp(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
            removed.append(tmp)
            log.info("removed stale cache temp dir %s (its process is gone)", tmp)
    return removed


def config_hash(key: Any) -> str:
    blob = json.dumps({"v": CACHE_FORMAT_VERSION, "key": key}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def entry_path(cache_dir: str | Path, stage: str, key: Any) -> Path:
    return Path(cache_dir).expanduser() / stage / config_hash(key)


@contextlib.contextmanager
def building(entry: Path) -> Iterator[None]:
    """Held while `entry` is built; a process that finds another one building it waits here (and says so).
    Re-entrant within a thread (`device.shared_stage` holds it around `cached_stage`)."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    locks = entry.parent.parent / ".locks"
    locks.mkdir(exist_ok=True)
    lock = FileLock(locks / f"{entry.parent.name}-{entry.name}.lock", is_singleton=True)
    try:
        lock.acquire(blocking=False)
    except Timeout:
        log.info("%s: another process is building this entry: waiting for it", entry)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def cached_stage(cache_dir: str | Path, stage: str, key: Any, build: Callable[[Path], None]) -> tuple[Path, bool]:
    """Path of the stage's entry for `key` and whether it was already there; `build(tmp_dir)` fills a
    missing entry. The key itself is stored beside the output for inspection."""
    entry = entry_path(cache_dir, stage, key)
    if entry.is_dir():
        log.info("%s: reusing cached %s", stage, entry)
        return entry, True
    with building(entry):
        if entry.is_dir():
            log.info("%s: reusing cached %s, built by another process while this one waited", stage, entry)
            return entry, True
        tmp = Path(tempfile.mkdtemp(dir=entry.parent, prefix=f".tmp-{entry.name}-{os.getpid()}@{socket.gethostname()}-"))
        try:
            build(tmp)
            (tmp / "cache_key.json").write_text(json.dumps(key, sort_keys=True, indent=1, default=str))
            os.replace(tmp, entry)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    log.info("%s: cached %s", stage, entry)
    return entry, False
