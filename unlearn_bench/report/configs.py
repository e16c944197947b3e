"""Which configuration each report row stands for.

A row of the report pools the seeds of one configuration: the run id without the seed (`config_id`, in
run.json; computed from config.yaml for runs written before it was recorded). Baseline rows (fine-tuned and
retain models) carry the configuration without the method (`baseline_id`), so each sweep point is compared with
its own baselines. The fields that differ between the rows of a benchmark become columns, and `--where` /
`--by` filter and group by any config or provenance field.
"""
from __future__ import annotations

import difflib
import json
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Sequence

import pandas as pd
from omegaconf import OmegaConf

from unlearn_bench.store import run_keys
from unlearn_bench.store.provenance import FILE_NAME as PROVENANCE_FILE

# Rows that do not depend on the method of the run that wrote them: the baselines and the diagnose stage's controls.
METHOD_FREE_INTENTS = ("baseline", "control")


def run_config(run_dir: Path) -> dict[str, Any]:
    """The run's resolved config (config.yaml) as a nested dict; {} when it does not parse."""
    try:
        return OmegaConf.to_container(OmegaConf.load(run_dir / "config.yaml"), resolve=False) or {}
    except (OSError, ValueError, TypeError):
        return {}


def run_fields(run_dir: Path) -> dict[str, Any]:
    """Flattened config fields plus provenance fields as `provenance.<dotted key>` (versions, device, ...)."""
    fields = run_keys.flatten(run_config(run_dir))
    path = run_dir / PROVENANCE_FILE
    if path.is_file():
        try:
            prov = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            prov = {}
        prov.pop("data_fingerprint", None)  # per-file hashes: the digest below is the comparable value
        fields.update(run_keys.flatten(prov, "provenance."))
    return fields


def row_ids(run_dir: Path, info: dict[str, Any]) -> tuple[str, str]:
    """(config_id, baseline_id) of a run: from run.json, else computed from its config.yaml."""
    config = run_config(run_dir)
    return (info.get("config_id") or run_keys.config_id(config, None),
            info.get("baseline_id") or run_keys.baseline_id(config, None))


class ReportError(ValueError):
    """A report that would say nothing (no runs, a filter matching none): the message says what exists instead."""


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _matches(fields: dict[str, Any], condition: str) -> bool:
    """FIELD=PATTERN: numbers compare as numbers (1e-4 matches a stored 0.0001), anything else by fnmatch."""
    key, _, pattern = condition.partition("=")
    value = fields.get(key)
    if (wanted := _number(pattern)) is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value) == wanted
    return fnmatchcase("" if value is None else str(value), pattern)


def _existing_values(key: str, runs: list[dict[str, Any]], shown: int = 12) -> str:
    """What the runs hold for `key` (or the fields they have that look like it), for an error message."""
    values = sorted({str(f[key]) for f in runs if key in f})
    if not values:
        close = difflib.get_close_matches(key, sorted({k for f in runs for k in f}), n=5, cutoff=0.6)
        return f"no run has the field {key!r}" + (f" (close: {', '.join(close)})" if close else "")
    more = f" and {len(values) - shown} more" if len(values) > shown else ""
    return f"{key} is one of: {', '.join(values[:shown])}{more}"


def filter_runs(df: pd.DataFrame, results_dir: Path, where: Sequence[str]) -> pd.DataFrame:
    """Rows of runs whose config/provenance fields match every `key=pattern` of `where`; a ReportError naming the
    values that exist when no run matches."""
    if not where:
        return df
    for condition in where:
        if "=" not in condition:
            raise ReportError(f"--where {condition!r}: expected FIELD=PATTERN, e.g. method.lr=1e-05 or provenance.device=cuda*")
    fields = {d: run_fields(results_dir / d) for d in df["run_dir"].unique()}
    keep = {d for d, f in fields.items() if all(_matches(f, c) for c in where)}
    if not keep:
        found = "; ".join(_existing_values(c.partition("=")[0], list(fields.values())) for c in where)
        raise ReportError(f"--where {' '.join(where)}: none of the {len(fields)} runs matches; {found}")
    return df[df["run_dir"].isin(keep)].reset_index(drop=True)


def group_by_fields(df: pd.DataFrame, results_dir: Path, by: Sequence[str]) -> pd.DataFrame:
    """`config_id` extended with the values of the `by` fields, so rows split by them (e.g. provenance.torch)."""
    if not by:
        return df
    suffix = {d: "|".join(str(run_fields(results_dir / d).get(k, "")) for k in by) for d in df["run_dir"].unique()}
    return df.assign(config_id=df["config_id"] + "|" + df["run_dir"].map(suffix))


def config_columns(rows: pd.DataFrame, results_dir: Path, extra: Sequence[str] = ()) -> dict[str, dict[str, str]]:
    """config_id -> {field: value} for the fields that tell a benchmark's rows apart: method fields that differ
    between rows of the same method, other fields that differ between any rows, plus the `extra` fields."""
    first_run = rows.drop_duplicates("config_id").set_index("config_id")
    fields = {cid: run_fields(results_dir / row["run_dir"]) for cid, row in first_run.iterrows()}
    baseline = {cid for cid, row in first_run.iterrows() if row["intent"] in METHOD_FREE_INTENTS}
    for cid in baseline:  # a baseline's (or control's) row does not depend on the method of the run that wrote it
        fields[cid] = {k: v for k, v in fields[cid].items() if not k.startswith("method")}
    # Provenance (times, host) always differs: it becomes a column only when asked for (--by).
    shared = [k for k in run_keys.varying_fields(fields) if not k.startswith(("method", "provenance."))]
    varying = set(shared) | set(extra)
    for _, group in first_run[~first_run.index.isin(baseline)].groupby("method"):
        varying |= {k for k in run_keys.varying_fields({cid: fields[cid] for cid in group.index}) if k.startswith("method.")}
    varying -= {"method.name"}
    ordered = sorted(varying)
    return {cid: {k: "" if fields[cid].get(k) is None else str(fields[cid].get(k)) for k in ordered} for cid in fields}


def label_configurations(stats: pd.DataFrame, configs: dict[str, dict[str, dict[str, str]]]) -> pd.DataFrame:
    """`stats` with each configuration's differing field values appended to its method name, e.g.
    "npo (method.lr=1e-05)", so figures keyed by method draw each configuration apart."""
    fields = sorted({k for per_bench in configs.values() for cols in per_bench.values() for k in cols})
    fields = [f for f in fields if f in stats.columns]
    if stats.empty or not fields:
        return stats

    def label(row: pd.Series) -> str:
        values = ", ".join(f"{f}={row[f]}" for f in fields if isinstance(row[f], str) and row[f])
        return f"{row['method']} ({values})" if values else row["method"]

    return stats.assign(method=stats.apply(label, axis=1))
