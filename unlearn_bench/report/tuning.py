"""`make tune`: the grid search behind the methods' defaults in conf/method/*.yaml.

Each method runs a coarse learning-rate x epochs grid (`GRID`) on the embedded world with another world seed
(`TUNE_OVERRIDES`: world_seed 1, while `make run` reports world_seed 0), diagnostics off, as one Hydra multirun
per method (the target and retain models are trained once and cached). The chosen point maximises forget quality
subject to model utility >= 0.9 x the target's and retain ROUGE-L >= 0.9 x the target's (`choose`); a method
with no admissible point keeps its config. A killed search resumes: finished runs are skipped.

    python -m unlearn_bench.report.tuning [--results results/tune] [--methods ga npo ...] [--apply conf/method]

writes `<results>/tuning.md` (every point, the chosen one marked) and `<results>/tuning.csv`; `--apply` writes
the chosen values into the method configs.
"""
from __future__ import annotations

import argparse
import logging
import math
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import pandas as pd
from omegaconf import OmegaConf

from unlearn_bench.report.plots import GOOD_FORGET_QUALITY
from unlearn_bench.report.tables import collect_runs, markdown_table
from unlearn_bench.store.results import atomic_write_text

log = logging.getLogger(__name__)

TUNE_OVERRIDES = ["bench.world_seed=1", "eval.diagnostics=[]"]
UTILITY_FRACTION = 0.9  # of the target's model utility and retain ROUGE-L

# lr x epochs per method, coarse and complete. The rates bracket where the tiny model's methods act (the papers'
# 1e-5 for 7B models leaves a 0.6M-parameter model nearly unchanged). The first methods searched also ran
# 5 epochs, and ga and npo 1e-4: the lower rate gave lower forget quality, and 5 epochs broke the utility
# constraint (tuning.md), so the other methods run 2 epochs only, which keeps the search within an hour on two
# busy CPU cores. RMU, which trains one down-projection toward a steering vector, needs larger rates.
_LR = [3e-4, 1e-3]
_EPOCHS = [2]
GRID: dict[str, dict[str, list[float]]] = {
    name: {"lr": _LR, "epochs": _EPOCHS}
    for name in ["simnpo", "wga", "undial", "ngdiff", "task_negation", "idk", "idk_dpo", "wrong_answers", "ihl",
                 "ceu", "satimp", "pdu", "altpo"]
}
GRID["npo"] = GRID["ga"] = {"lr": [1e-4, *_LR], "epochs": [2, 5]}
GRID["graddiff"] = {"lr": _LR, "epochs": [2, 5]}
GRID["ga_kl"] = {"lr": [3e-4], "epochs": [2, 5]}
GRID["rmu"] = {"lr": [1e-2, 3e-2], "epochs": _EPOCHS}
GRID["wrong_answers"] = {"lr": [1e-4, *_LR], "epochs": _EPOCHS}  # no admissible point at 3e-4


@dataclass(frozen=True)
class Point:
    method: str
    lr: float
    epochs: int
    forget_quality: float
    model_utility: float
    retain_rouge: float
    forget_rouge: float = math.nan


def sweep_command(method: str, grid: dict[str, list[float]], results_dir: Path) -> list[str]:
    values = {key: ",".join(f"{v:g}" for v in vs) for key, vs in grid.items()}
    cli = Path(sys.executable).parent / "unlearn-bench"  # the console script of this environment
    return [str(cli), "-m", f"method={method}",
            *(f"method.{key}={v}" for key, v in values.items()), *TUNE_OVERRIDES,
            f"paths.results_dir={results_dir}", f"hydra.sweep.dir={results_dir}/multirun/{method}"]


def _value(run: pd.DataFrame, split: str, metric: str) -> float:
    values = run.loc[(run["split"] == split) & (run["metric"].str.startswith(metric)), "value"].dropna()
    return float(values.iloc[0]) if len(values) else float("nan")


def collect_points(results_dir: Path, with_retain: bool = False) -> tuple[list[Point], ...]:
    """Every finished grid point and the target model's row (method 'finetuned'); and the retain model's with
    `with_retain` (`report.strong` reads its forget ROUGE-L)."""
    df = collect_runs(results_dir)
    points, refs = [], {}
    for (method, run_dir), run in df.groupby(["method", "run_dir"]):
        cfg = OmegaConf.load(results_dir / run_dir / "config.yaml")
        point = Point(str(method), float(cfg.method.lr), int(cfg.method.epochs), _value(run, "summary", "forget_quality"),
                      _value(run, "summary", "model_utility"), _value(run, "retain", "rouge"), _value(run, "forget", "rouge"))
        if method in ("finetuned", "retain"):
            refs[method] = point
        else:
            points.append(point)
    if "finetuned" not in refs:
        raise FileNotFoundError(f"{results_dir}: no finished run holds the target model's metrics")
    return (points, refs["finetuned"], refs.get("retain")) if with_retain else (points, refs["finetuned"])


def admissible(point: Point, target: Point) -> bool:
    return (point.model_utility >= UTILITY_FRACTION * target.model_utility
            and point.retain_rouge >= UTILITY_FRACTION * target.retain_rouge)


def choose(points: Sequence[Point], target: Point) -> Point | None:
    """The admissible point of highest forget quality (ties: fewer epochs, then lower lr); None if none is."""
    ok = [p for p in points if admissible(p, target)]
    return max(ok, key=lambda p: (p.forget_quality, -p.epochs, -p.lr)) if ok else None


def tuning_table(points: Sequence[Point], target: Point) -> pd.DataFrame:
    chosen = {p.method: choose([q for q in points if q.method == p.method], target) for p in points}
    rows = [{"method": p.method, "lr": f"{p.lr:g}", "epochs": p.epochs, "forget_quality": f"{p.forget_quality:.3g}",
             "model_utility": f"{p.model_utility:.3g}", "retain_rougeL": f"{p.retain_rouge:.3g}",
             "admissible": "yes" if admissible(p, target) else "", "chosen": "**chosen**" if chosen[p.method] == p else ""}
            for p in sorted(points, key=lambda p: (p.method, p.lr, p.epochs))]
    return pd.DataFrame(rows)


def write_tuning(results_dir: Path) -> Path:
    points, target = collect_points(results_dir)
    table = tuning_table(points, target)
    chosen = {p.method: choose([q for q in points if q.method == p.method], target) for p in points}
    reached = sorted(m for m, p in chosen.items() if p is not None and p.forget_quality >= GOOD_FORGET_QUALITY)
    text = (f"# Tuning grid (`make tune`: {' '.join(TUNE_OVERRIDES)})\n\n"
            f"Target: model utility {target.model_utility:.3g}, retain ROUGE-L {target.retain_rouge:.3g}; admissible: "
            f">= {UTILITY_FRACTION} x both. Chosen: the admissible point of highest forget quality.\n\n"
            f"Forget quality >= {GOOD_FORGET_QUALITY} under the constraint: {', '.join(reached) or 'none'}.\n"
            f"No admissible point: {', '.join(sorted(m for m, p in chosen.items() if p is None)) or 'none'}.\n\n"
            + markdown_table(table))
    path = results_dir / "tuning.md"
    atomic_write_text(path, text)
    atomic_write_text(results_dir / "tuning.csv", table.to_csv(index=False))
    return path


SEARCH_NOTE = "make tune: lr x epochs grid on world seed 1 (results/embedded_default/tuning.md)"


def apply_choice(config: Path, point: Point) -> None:
    """Write the chosen lr and epochs into a conf/method file, each line's comment naming the search and keeping
    what it said of the papers' values."""
    lines = []
    for line in config.read_text().splitlines():
        key = line.split(":", 1)[0]
        if key in ("lr", "epochs") and not line.startswith(" "):
            paper = line.split("paper", 1)[1] if "paper" in line else None
            value = f"{point.lr:g}" if key == "lr" else str(point.epochs)
            line = f"{key}: {value}   # {SEARCH_NOTE}" + (f"; paper{paper}" if paper else "")
        lines.append(line)
    atomic_write_text(config, "\n".join(lines) + "\n")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m unlearn_bench.report.tuning", description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("results/tune"))
    parser.add_argument("--methods", nargs="*", default=list(GRID), choices=list(GRID))
    parser.add_argument("--report-only", action="store_true", help="only write tuning.md from finished runs")
    parser.add_argument("--apply", type=Path, default=None, metavar="CONF_METHOD_DIR",
                        help="write each method's chosen lr and epochs into CONF_METHOD_DIR/<method>.yaml")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    if not args.report_only:
        for method in args.methods:
            subprocess.run(sweep_command(method, GRID[method], args.results), check=False)
            write_tuning(args.results)  # results as they arrive
    print(write_tuning(args.results))
    if args.apply is not None:
        points, target = collect_points(args.results)
        for method in args.methods:
            chosen = choose([p for p in points if p.method == method], target)
            if chosen is not None:
                apply_choice(args.apply / f"{method}.yaml", chosen)


if __name__ == "__main__":
    main()
