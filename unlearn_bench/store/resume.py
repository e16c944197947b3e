"""Which run folders are finished, so a rerun of a sweep skips them and redoes the rest.

A run folder is `<results>/<bench>/<model>/<method>/<run-id>/`. The runner writes `run.json` last, so a
folder without it (or with files that do not parse) was interrupted and is redone. Runs whose status is
"failed" are complete folders (the report shows them) but are not reused: a rerun tries them again.
"""
from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

from unlearn_bench.data.records import DataError, parse_json, read_json_records
from unlearn_bench.store.results import MetricRow

RUN_STATUSES = ("ok", "diverged", "failed")
# Every finished run has these; a failed run may have stopped before writing the others.
REQUIRED_FILES = ("config.yaml", "metrics.jsonl", "generations.jsonl", "summary.md", "run.json")
FAILED_REQUIRED_FILES = ("config.yaml", "run.json")
_ROW_FIELDS = {f.name for f in fields(MetricRow)}
_REQUIRED_ROW_FIELDS = {"bench", "model", "method", "split", "metric", "value"}


def read_run_info(run_dir: Path) -> dict[str, Any]:
    """run.json checked for the fields the runner writes; raises DataError naming the file and field."""
    path = run_dir / "run.json"
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    info = parse_json(path.read_text(encoding="utf-8"), path)
    if not isinstance(info, dict):
        raise DataError(f"{path}: expected a JSON object, got {type(info).__name__}")
    if info.get("status") not in RUN_STATUSES:
        raise DataError(f"{path}: field 'status' should be one of {RUN_STATUSES}, got {info.get('status')!r}")
    if not isinstance(info.get("config_hash"), str):
        raise DataError(f"{path}: field 'config_hash' should be a string")
    return info


def read_metric_rows(path: Path) -> list[MetricRow]:
    """The rows of a metrics.jsonl; a truncated line or a missing/unknown field raises DataError."""
    rows = []
    for i, rec in enumerate(read_json_records(path), start=1):
        if missing := sorted(_REQUIRED_ROW_FIELDS - rec.keys()):
            raise DataError(f"{path}: record {i}: missing field '{missing[0]}'")
        if unknown := sorted(rec.keys() - _ROW_FIELDS):
            raise DataError(f"{path}: record {i}: unknown field '{unknown[0]}'")
        value = rec["value"]
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise DataError(f"{path}: record {i}: field 'value' should be a number or null, got {value!r}")
        rows.append(MetricRow(**{**rec, "value": None if value is None else float(value)}))
    return rows


def run_is_complete(run_dir: Path) -> bool:
    """True when run.json parses and the files its status requires exist and parse."""
    try:
        info = read_run_info(run_dir)
        required = FAILED_REQUIRED_FILES if info["status"] == "failed" else REQUIRED_FILES
        if not all((run_dir / name).is_file() for name in required):
            return False
        if (run_dir / "metrics.jsonl").is_file():
            read_metric_rows(run_dir / "metrics.jsonl")
    except (DataError, OSError, UnicodeDecodeError):
        return False
    return True


def find_completed_run(results_root: Path, bench: str, model: str, method: str, config_hash: str) -> Path | None:
    """The newest complete, not-failed run folder of this resolved config, or None (the runner must run it)."""
    matches = []
    for marker in (Path(results_root) / bench / model / method).glob("*/run.json"):
        run_dir = marker.parent
        if run_is_complete(run_dir):
            info = read_run_info(run_dir)
            if info["config_hash"] == config_hash and info["status"] != "failed":
                matches.append(run_dir)
    return max(matches, key=lambda d: (d / "run.json").stat().st_mtime_ns, default=None)
