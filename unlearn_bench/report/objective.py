"""`make tune`'s objective, which Hydra's Optuna sweeper maximises (conf/hydra/sweeper/tune.yaml).

Forget quality subject to two floors: model utility >= 0.9 x the target's and retain ROUGE-L >= 0.9 x the
target's. One number for the sweeper: an admissible run scores its forget quality (in [0, 1]); any other run
scores minus its relative shortfall below the floors (< 0), so every admissible run beats every inadmissible one
and the sampler still learns which way the floors lie. A run without the method's metrics (diverged) scores as a
model of zero utility and ROUGE-L: the lowest value. Light imports only: the sweeper loads this module to open
its storage before any run.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from omegaconf import ListConfig, OmegaConf

UTILITY_FRACTION = 0.9  # of the target's model utility and retain ROUGE-L
TARGET = "finetuned"    # the target model's rows in every run's metrics.jsonl


@dataclass(frozen=True)
class Point:
    method: str
    lr: float
    epochs: int
    forget_quality: float
    model_utility: float
    retain_rouge: float
    forget_rouge: float = math.nan  # read by report.strong (the attack-free knowledge share)


def metric_value(rows: Sequence[Mapping[str, Any]], method: str, split: str, metric: str) -> float:
    """The first finite value of `method`'s rows in `split` whose metric name starts with `metric`; NaN if none."""
    for row in rows:
        value = row.get("value")
        if (row["method"] == method and row["split"] == split and str(row["metric"]).startswith(metric)
                and value is not None and math.isfinite(value)):
            return float(value)
    return float("nan")


def run_point(rows: Sequence[Mapping[str, Any]], method: str, lr: float, epochs: int) -> Point:
    return Point(method, lr, epochs, metric_value(rows, method, "summary", "forget_quality"),
                 metric_value(rows, method, "summary", "model_utility"), metric_value(rows, method, "retain", "rouge"),
                 metric_value(rows, method, "forget", "rouge"))


def admissible(point: Point, target: Point) -> bool:
    return (point.model_utility >= UTILITY_FRACTION * target.model_utility
            and point.retain_rouge >= UTILITY_FRACTION * target.retain_rouge)


def shortfall(point: Point, target: Point) -> float:
    """How far below the floors a point lies, relative to the target's values; a missing value counts as 0
    (a target value of 0 sets a floor of 0, which every point meets)."""
    pairs = ((point.model_utility, target.model_utility), (point.retain_rouge, target.retain_rouge))
    return sum(max(0.0, UTILITY_FRACTION * t - (0.0 if math.isnan(v) else v)) / t for v, t in pairs if t > 0)


def objective(point: Point, target: Point) -> float:
    return point.forget_quality if admissible(point, target) else -shortfall(point, target)


def run_objective(run_dir: Path) -> float:
    """The objective of a finished run folder (its config.yaml and metrics.jsonl, as `store.run_output` writes)."""
    cfg = OmegaConf.load(run_dir / "config.yaml")
    metrics = run_dir / "metrics.jsonl"
    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    target = run_point(rows, TARGET, 0.0, 0)
    if math.isnan(target.model_utility) or math.isnan(target.retain_rouge):
        raise ValueError(f"{metrics}: no model_utility or retain ROUGE-L row for the target model ('{TARGET}')")
    return objective(run_point(rows, str(cfg.method.name), float(cfg.method.lr), int(cfg.method.epochs)), target)


def check_direction(direction: Any) -> None:
    """The objective is maximised: Optuna's sweeper minimises unless told otherwise (`hydra/sweeper=tune` does)."""
    directions = list(direction) if isinstance(direction, (list, tuple, ListConfig)) else [direction]
    if [getattr(d, "name", str(d)) for d in directions] != ["maximize"]:
        raise ValueError(f"hydra.sweeper.direction is {directions}: the tuning objective (forget quality under the "
                         "utility floors) is one value to maximise; use hydra/sweeper=tune or set "
                         "hydra.sweeper.direction=maximize")


def sqlite_storage(path: str) -> str:
    """Optuna's storage URL for a SQLite file, its folder created (SQLite does not create it)."""
    file = Path(path).expanduser().resolve()
    file.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{file}"
