"""Content hashes of the local files a run reads, so caches and run ids change when the data does.

A file fixed in place keeps its path, so config hashes alone would reuse models trained on the old contents.
Hashing is done once per file version: `fingerprints.json` in the cache folder maps each path to the size,
mtime and SHA-256 it had, and a file whose size and mtime are unchanged is not read again.

`data_fingerprint` (run ids, provenance) covers every local input; cached evaluations are keyed by
`content_digest` of only the files evaluation reads (`evaluation_inputs`), named relative to where they lie, so a
moved data folder keeps them. Fine-tuned models are keyed by their training texts instead (`Context.model_key`).
"""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Iterable, Sequence

from omegaconf import DictConfig, OmegaConf

from unlearn_bench.store.results import atomic_write_json

log = logging.getLogger(__name__)

INDEX_FILE = "fingerprints.json"
_CHUNK = 1 << 20


def local_inputs(cfg: DictConfig) -> list[Path]:
    """The local files and folders the run's benchmark and utility evaluation read (hub sources have none):
    `bench.data_dir` (unless it is RWKU's hub download cache), local `bench.*_corpora` files and
    `eval.utility.data_dir`."""
    bench = OmegaConf.to_container(cfg.bench, resolve=True)
    found: list[str] = []
    if bench.get("data_dir") and bench.get("source") != "hub":
        found.append(bench["data_dir"])
    for key, value in bench.items():
        if key.endswith("_corpora") and isinstance(value, list):
            found += [v for v in value if isinstance(v, str) and Path(v).expanduser().exists()]
    if cfg.eval.utility.data_dir:
        found.append(cfg.eval.utility.data_dir)
    return sorted({Path(p).expanduser().resolve() for p in found})


def _files(roots: Iterable[Path]) -> list[Path]:
    files = []
    for root in roots:
        if root.is_file():
            files.append(root)
        elif root.is_dir():
            files += [p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")]
    return sorted(files)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_hashes(files: Iterable[Path], cache_dir: str | Path, update_index: bool = True) -> dict[str, str]:
    """SHA-256 of each file, reusing the index entry of a file whose size and mtime have not changed; only
    `update_index` writes new entries back (one process of a multi-process run does)."""
    index_path = Path(cache_dir).expanduser() / INDEX_FILE
    try:
        index: dict[str, Any] = json.loads(index_path.read_text()) if index_path.is_file() else {}
    except (OSError, ValueError):
        index = {}  # a damaged index only costs rehashing
    hashes, changed = {}, False
    for path in files:
        stat = path.stat()
        entry = index.get(str(path))
        if not entry or entry.get("size") != stat.st_size or entry.get("mtime_ns") != stat.st_mtime_ns:
            entry = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": _sha256(path)}
            index[str(path)], changed = entry, True
        hashes[str(path)] = entry["sha256"]
    if changed and update_index:
        try:
            atomic_write_json(index_path, index)
        except OSError as e:  # the cache folder's writability is checked (and reported) by validation
            log.debug("could not update %s: %s", index_path, e)
    return hashes


def data_fingerprint(cfg: DictConfig, update_index: bool = True) -> dict[str, Any]:
    """{"files": {path: sha256}, "digest": one hash over them}; empty files and digest None without local data."""
    hashes = file_hashes(_files(local_inputs(cfg)), cfg.paths.cache_dir, update_index)
    if not hashes:
        return {"files": {}, "digest": None}
    digest = hashlib.sha256(json.dumps(hashes, sort_keys=True).encode()).hexdigest()[:16]
    return {"files": hashes, "digest": digest}


def evaluation_inputs(cfg: DictConfig, bench: Any) -> list[Path]:
    """The local files and folders evaluation reads: the adapter's `evaluation_files()` where it names them (plus
    `eval.utility.data_dir`), else every local input of the run."""
    named = getattr(bench, "evaluation_files", None)
    if named is None:
        return local_inputs(cfg)
    found = list(named()) + ([cfg.eval.utility.data_dir] if cfg.eval.utility.data_dir else [])
    return sorted({Path(p).expanduser().resolve() for p in found})


def content_digest(roots: Sequence[Path], cache_dir: str | Path, update_index: bool = True) -> str | None:
    """One hash over the files under `roots` (files or folders), each named by its path relative to its root (a
    file root: its name), so that it follows the contents, not the location; None when there are none."""
    named = [(f, f.name if root.is_file() else f.relative_to(root).as_posix()) for root in roots for f in _files([root])]
    if not named:
        return None
    hashes = file_hashes([f for f, _ in named], cache_dir, update_index)
    pairs = sorted((name, hashes[str(f)]) for f, name in named)
    return hashlib.sha256(json.dumps(pairs).encode()).hexdigest()[:16]
