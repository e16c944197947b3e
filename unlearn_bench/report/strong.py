"""`make tune-strong`: a strong setting per fine-tuning method, read by `experiment=strong`.

At its tuned default (`make tune`: utility within 10% of the target's) no fine-tuning method gets past
`not unlearned` on the embedded world, so the diagnose stage never shows what relearning, quantization, the probe
or the soft prompt say of a method that does forget in its outputs. A strong setting is one that does: the same
lr x epochs search as `make tune` (`STRONG_GRID`, larger steps; world seed 1, diagnostics off), choosing per
method, among the points whose `none` share (forget ROUGE-L: (unlearned - retain) / (target - retain)) lies below
the verdict threshold and that pass the utility gate (model utility and retain ROUGE-L >= `eval.diag.min_utility`
x the target's), the one of highest retain ROUGE-L (the least damage that forgets).

    python -m unlearn_bench.report.strong [--results results/tune_strong] [--methods ga npo ...] [--jobs 2] [--apply conf/method_experiment]

writes `<results>/strong.md` (every point, the chosen one marked); `--apply` writes each choice to
`<dir>/<method>_strong.yaml`, which `experiment=strong` loads over the method's config (conf/config.yaml's
`method_experiment` group). A method with no such file fails at start under `experiment=strong`.
"""
from __future__ import annotations

import argparse
import logging
import math
import subprocess
from pathlib import Path
from typing import Sequence

import pandas as pd

from unlearn_bench.diagnostics.settings import DiagnosticsConfig
from unlearn_bench.report.tables import markdown_table
from unlearn_bench.report.objective import Point
from unlearn_bench.report.tuning import SPACES, TUNE_OVERRIDES, collect_points
from unlearn_bench.store.results import atomic_write_text
from unlearn_bench.report.multirun import multirun_command

log = logging.getLogger(__name__)

THRESHOLD, MIN_UTILITY = DiagnosticsConfig.threshold, DiagnosticsConfig.min_utility
# Beyond `make tune`'s grid: the rates and epochs that broke its 0.9 utility bound are where forgetting starts.
_LR = [1e-3, 3e-3]
_EPOCHS = [2, 5]
STRONG_GRID: dict[str, dict[str, list[float]]] = {name: {"lr": _LR, "epochs": _EPOCHS} for name in SPACES}  # every one tuned
STRONG_GRID["rmu"] = {"lr": [3e-2, 1e-1], "epochs": _EPOCHS}
# Measured on world seed 1 (2026-12-07): at lr 1e-3 these four already collapse (model utility 0-0.45 x the
# target's), so their strong point lies between the tuned lr and 1e-3; SatImp and IdK+DPO still hold 27-33% of
# the target's knowledge at 3e-3 x 5 epochs, so theirs lies above.
STRONG_GRID.update({"ga": {"lr": [2e-4, 4e-4], "epochs": _EPOCHS}, "ga_kl": {"lr": [5e-4, 7e-4], "epochs": _EPOCHS},
                    "npo": {"lr": [5e-4, 7e-4], "epochs": _EPOCHS}, "ceu": {"lr": [3e-4, 4e-4, 5e-4], "epochs": [2, 3, 5]},
                    "satimp": {"lr": [4e-3, 5e-3, 1e-2], "epochs": [5]}, "idk_dpo": {"lr": [4e-3, 5e-3, 1e-2], "epochs": [5]}})


def sweep_command(method: str, grid: dict[str, list[float]], results_dir: Path, jobs: int = 1) -> list[str]:
    """A grid sweep (Hydra's basic sweeper) on `make tune`'s world and settings, `jobs` runs at a time."""
    values = {key: ",".join(f"{v:g}" for v in vs) for key, vs in grid.items()}
    return multirun_command([f"method={method}", *(f"method.{key}={v}" for key, v in values.items()), *TUNE_OVERRIDES],
                            results_dir, method, jobs)


def none_share(point: Point, target: Point, retain: Point) -> float:
    gap = target.forget_rouge - retain.forget_rouge
    return (point.forget_rouge - retain.forget_rouge) / gap if gap > 0 else math.nan


def strong_enough(point: Point, target: Point, retain: Point) -> bool:
    """Forgets in its outputs (`none` share below the threshold) and is no wreck (the utility gate)."""
    return (none_share(point, target, retain) < THRESHOLD and point.model_utility >= MIN_UTILITY * target.model_utility
            and point.retain_rouge >= MIN_UTILITY * target.retain_rouge)


def choose_strong(points: Sequence[Point], target: Point, retain: Point) -> Point | None:
    """The strong-enough point of highest retain ROUGE-L (ties: fewer epochs, then lower lr); None if none is."""
    ok = [p for p in points if strong_enough(p, target, retain)]
    return max(ok, key=lambda p: (p.retain_rouge, -p.epochs, -p.lr)) if ok else None


def strong_table(points: Sequence[Point], target: Point, retain: Point) -> pd.DataFrame:
    chosen = {m: choose_strong([p for p in points if p.method == m], target, retain) for m in {p.method for p in points}}
    return pd.DataFrame([{"method": p.method, "lr": f"{p.lr:g}", "epochs": p.epochs,
                          "none share": f"{none_share(p, target, retain):.2f}", "model_utility": f"{p.model_utility:.3g}",
                          "retain_rougeL": f"{p.retain_rouge:.3g}", "strong enough": "yes" if strong_enough(p, target, retain) else "",
                          "chosen": "**chosen**" if chosen[p.method] == p else ""}
                         for p in sorted(points, key=lambda p: (p.method, p.lr, p.epochs))])


def write_strong(results_dir: Path) -> Path:
    points, target, retain = collect_points(results_dir, with_retain=True)
    if retain is None:
        raise FileNotFoundError(f"{results_dir}: no finished run holds the retain model's metrics")
    text = (f"# Strong settings (`make tune-strong`: {' '.join(TUNE_OVERRIDES)})\n\n"
            f"Chosen per method: none share < {THRESHOLD} and model utility, retain ROUGE-L >= {MIN_UTILITY} x the "
            f"target's ({target.model_utility:.3g}, {target.retain_rouge:.3g}); the highest retain ROUGE-L.\n\n"
            + markdown_table(strong_table(points, target, retain)))
    path = results_dir / "strong.md"
    atomic_write_text(path, text)
    return path


def strong_config(point: Point) -> str:
    return (f"# {point.method} at its strong setting (python -m unlearn_bench.report.strong: none share < {THRESHOLD}, "
            f"utility >= {MIN_UTILITY} x the target's, on world seed 1); loaded by experiment=strong.\n"
            f"lr: {point.lr:g}\nepochs: {point.epochs}\nmax_steps: 0  # clears experiment=strong's mark\n")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m unlearn_bench.report.strong", description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("results/tune_strong"))
    parser.add_argument("--methods", nargs="*", default=list(STRONG_GRID), choices=list(STRONG_GRID))
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time (Hydra's local launcher; one thread each)")
    parser.add_argument("--report-only", action="store_true", help="only write strong.md from finished runs")
    parser.add_argument("--apply", type=Path, default=None, metavar="DIR",
                        help="write each method's choice to DIR/<method>_strong.yaml (conf/method_experiment)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    if not args.report_only:
        for method in args.methods:
            subprocess.run(sweep_command(method, STRONG_GRID[method], args.results, args.jobs), check=False)
            write_strong(args.results)  # results as they arrive
    print(write_strong(args.results))
    if args.apply is not None:
        points, target, retain = collect_points(args.results, with_retain=True)
        for method in args.methods:
            if (chosen := choose_strong([p for p in points if p.method == method], target, retain)) is not None:
                atomic_write_text(args.apply / f"{method}_strong.yaml", strong_config(chosen))
            else:
                log.warning("%s: no point of the grid is strong enough; widen STRONG_GRID", method)


if __name__ == "__main__":
    main()
