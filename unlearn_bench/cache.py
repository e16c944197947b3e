"""Stage cache: each finished stage's output lives under a key that hashes exactly the config that
determines it (plus a format version). Entries are built in a temp dir and renamed into place, so a killed
run never leaves half an entry behind."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger(__name__)

CACHE_FORMAT_VERSION = 3


def config_hash(key: Any) -> str:
    blob = json.dumps({"v": CACHE_FORMAT_VERSION, "key": key}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def entry_path(cache_dir: str | Path, stage: str, key: Any) -> Path:
    return Path(cache_dir).expanduser() / stage / config_hash(key)


def cached_stage(cache_dir: str | Path, stage: str, key: Any, build: Callable[[Path], None]) -> tuple[Path, bool]:
    """Path of the stage's entry for `key` and whether it was already there; `build(tmp_dir)` fills a
    missing entry. The key itself is stored beside the output for inspection."""
    entry = entry_path(cache_dir, stage, key)
    root = entry.parent
    if entry.is_dir():
        log.info("%s: reusing cached %s", stage, entry)
        return entry, True
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".tmp-{entry.name}-"))
    try:
        build(tmp)
        (tmp / "cache_key.json").write_text(json.dumps(key, sort_keys=True, indent=1, default=str))
        try:
            os.replace(tmp, entry)
        except OSError:  # another process finished the same entry first: keep theirs
            if not entry.is_dir():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("%s: cached %s", stage, entry)
    return entry, False
