"""A run's folder: resolved config, tidy metric rows, generations, per-example logs, summary; run.json last."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from unlearn_bench.benchmarks.base import EvalOutput
from unlearn_bench.store.results import MetricRow, atomic_write_json, atomic_write_jsonl, atomic_write_text
from unlearn_bench.store.provenance import FILE_NAME as PROVENANCE_FILE
from unlearn_bench.store.resume import find_completed_run, read_run_info


@dataclass
class RunRecord:
    status: str  # ok | diverged | failed
    run_id: str
    config_hash: str
    error: str | None = None
    seconds: float = 0.0
    config_id: str = ""    # the run id without the seed: the report's row key (store/run_keys.py)
    baseline_id: str = ""  # the config without the method: the key of its fine-tuned and retain baselines


def existing_run(run_dir: Path) -> RunRecord | None:
    """The record of a finished (not failed) run of this exact config, if one exists."""
    found = find_completed_run(run_dir.parents[3], *run_dir.parts[-4:-1], config_hash=run_dir.name)
    if found is None:
        return None
    info = read_run_info(found)
    return RunRecord(**{k: info.get(k) for k in ("status", "run_id", "config_hash", "error")}, seconds=info.get("seconds", 0.0),
                     config_id=info.get("config_id", ""), baseline_id=info.get("baseline_id", ""))


def summary_table(rows: Sequence[MetricRow]) -> pd.DataFrame:
    """Methods as rows, `split/metric` as columns (arrows mark the better direction); per-attack diagnostics
    stay in metrics.jsonl, their verdict becomes one column."""
    df = pd.DataFrame([r.to_dict() for r in rows])
    verdicts = df[(df["split"] == "diagnostics") & (df["metric"] == "verdict")].set_index(["method", "intent"])["note"]
    df = df[(df["split"] != "run") & ~df["split"].str.startswith("diag") & (df["split"] != "diagnostics")]
    if df.empty:
        return df
    arrow = df["higher_is_better"].map({True: " ↑", False: " ↓"}).fillna("")
    df["column"] = df["split"] + "/" + df["metric"] + arrow
    df.loc[df["split"] == "summary", "column"] = df["metric"] + arrow
    table = df.pivot_table(index=["method", "intent"], columns="column", values="value", aggfunc="first", sort=False)
    first = [c for c in table.columns if "/" not in c]
    table = table[first + [c for c in table.columns if c not in first]]
    if not verdicts.empty:
        table.insert(0, "verdict", verdicts.reindex(table.index).fillna(""))
    table.index = [f"{method} ({intent})" for method, intent in table.index]
    return table


def format_summary(rows: Sequence[MetricRow], status: str) -> str:
    table = summary_table(rows)
    body = table.to_markdown(floatfmt=".4g") if not table.empty else "(no metrics)"
    return body + ("" if status == "ok" else f"\n\nUnlearning status: **{status}** (no metrics for the method)") + "\n"


def write_run(run_dir: Path, cfg: DictConfig, record: RunRecord, rows: Sequence[MetricRow],
              unlearned: EvalOutput | None, history: list[dict[str, float]],
              provenance: dict[str, Any] | None = None) -> None:
    """Every file is written atomically; run.json goes last, so its presence means the run finished."""
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    atomic_write_jsonl(run_dir / "metrics.jsonl", (r.to_dict() for r in rows))
    atomic_write_jsonl(run_dir / "generations.jsonl", unlearned.generations if unlearned else [])
    atomic_write_jsonl(run_dir / "train_history.jsonl", history)
    for name, log in (unlearned.logs if unlearned else {}).items():
        atomic_write_json(run_dir / name, log)
    atomic_write_text(run_dir / "summary.md", format_summary(rows, record.status))
    if provenance is not None:
        atomic_write_json(run_dir / PROVENANCE_FILE, provenance)
    atomic_write_text(run_dir / "run.json", json.dumps(dataclasses.asdict(record), indent=1))


def write_failed(run_dir: Path, cfg: DictConfig, record: RunRecord, provenance: dict[str, Any] | None = None) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    if provenance is not None:
        atomic_write_json(run_dir / PROVENANCE_FILE, provenance)
    atomic_write_text(run_dir / "run.json", json.dumps(dataclasses.asdict(record), indent=1))
