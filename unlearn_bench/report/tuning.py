"""`make tune`: the search behind the methods' defaults in conf/method/*.yaml, on Hydra's Optuna sweeper.

Each method gets one Optuna study (`hydra/sweeper=tune`, conf/hydra/sweeper/tune.yaml: the TPE sampler, seed 0)
over its `SPACES` entry (lr on a log interval, epochs among choices) on the embedded world with another world seed
(`TUNE_OVERRIDES`: world_seed 1, while `make run` reports world_seed 0), diagnostics off, as one Hydra multirun per
method (the target and retain models are trained once and cached). The sweeper maximises `objective.objective`:
forget quality subject to model utility >= 0.9 x the target's and retain ROUGE-L >= 0.9 x the target's. A study's
first trial is the method's current config, so the search reproduces it or beats it. The chosen point (`choose`,
over every finished run) is the admissible one of highest forget quality; a method with no admissible point
keeps its config. A killed search resumes: the studies live in `<results>/optuna.db` and go on where they
stopped (a trial the kill cut short runs again, as does one whose run raised), and finished runs are skipped.

    python -m unlearn_bench.report.tuning [--results results/tune] [--methods ga npo ...] [--apply conf/method]

writes `<results>/tuning.md` (every point, the chosen one marked) and `<results>/tuning.csv`; `--apply` writes
the chosen values into the method configs.
"""
from __future__ import annotations

import argparse
import logging
import subprocess
import warnings
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any, Sequence

import optuna
import pandas as pd
from omegaconf import OmegaConf
from optuna.trial import TrialState

from unlearn_bench.report.objective import UTILITY_FRACTION, Point, admissible, run_point, sqlite_storage
from unlearn_bench.report.plots import GOOD_FORGET_QUALITY
from unlearn_bench.report.tables import collect_runs, markdown_table
from unlearn_bench.store.results import atomic_write_text
from unlearn_bench.report.multirun import multirun_command

log = logging.getLogger(__name__)

TUNE_OVERRIDES = ["bench.world_seed=1", "eval.diagnostics=[]"]
STORAGE = "optuna.db"  # in the results folder


@dataclass(frozen=True)
class Space:
    """One method's search: lr on a log interval, epochs among choices (one: fixed), and its number of trials."""
    lr: tuple[float, float]
    trials: int
    epochs: tuple[int, ...] = (2,)

    def overrides(self) -> list[str]:
        low, high = self.lr
        return [f"method.lr=tag(log,interval({low:g},{high:g}))", f"method.epochs={','.join(map(str, self.epochs))}"]


# The rates bracket where the tiny model's methods act (the papers' 1e-5 for 7B models leaves a 0.6M-parameter
# model nearly unchanged): the earlier lr x epochs grid found its admissible points between 1e-4 and 1e-3 at
# 2 epochs, and 5 epochs broke the floors above 1e-4, so only the methods it searched at 5 epochs may pick them
# again. RMU, which trains one down-projection toward a steering vector, needs larger rates. Each method gets as
# many trials as that grid had points for it (47 in all, 65 with the extra trials below), so the search costs what
# the grid did.
_LR = (1e-4, 2e-3)
SPACES: dict[str, Space] = {
    name: Space(_LR, 2)
    for name in ["simnpo", "wga", "undial", "ngdiff", "task_negation", "idk", "idk_dpo", "ihl",
                 "ceu", "satimp", "pdu", "altpo"]
}
SPACES["npo"] = SPACES["ga"] = Space(_LR, 6, (2, 5))
SPACES["graddiff"] = Space(_LR, 4, (2, 5))
SPACES["ga_kl"] = Space(_LR, 2, (2, 5))
SPACES["wrong_answers"] = Space(_LR, 3)
SPACES["rmu"] = Space((2e-3, 5e-2), 2)
# CE-U, PDU and AltPO broke both floors at every rate of _LR (2026-12-07: model utility 0.21-0.60 of the
# target's 0.80, their first 2 trials): their losses push harder per step, so they search ten times lower, with
# 6 more trials each (a study's earlier trials stay in it).
for _name in ("ceu", "pdu", "altpo"):
    SPACES[_name] = Space((1e-5, 1e-3), 8)


def study_name(method: str) -> str:
    return f"tune_{method}"


def sweep_command(method: str, space: Space, results_dir: Path, n_trials: int, seed: int) -> list[str]:
    return multirun_command(["hydra/sweeper=tune", f"hydra.sweeper.n_trials={n_trials}",
                             f"hydra.sweeper.sampler.seed={seed}", f"hydra.sweeper.study_name={study_name(method)}",
                             f"hydra.sweeper.storage.path={results_dir / STORAGE}", f"method={method}",
                             *space.overrides(), *TUNE_OVERRIDES], results_dir, method)


def current_params(method: str, space: Space) -> dict[str, Any]:
    """The method's lr and epochs as its config (conf/method/<method>.yaml) has them, as trial parameters."""
    cfg = OmegaConf.create((files("unlearn_bench.conf") / "method" / f"{method}.yaml").read_text())
    params: dict[str, Any] = {"method.lr": float(cfg.lr)}
    if len(space.epochs) > 1:
        params["method.epochs"] = int(cfg.epochs)
    return params


def prepare_study(storage: str, name: str, n_trials: int, first: dict[str, Any]) -> tuple[int, int]:
    """Open (or create) the study; return how many of its `n_trials` are still to run and the sampler's seed for
    them. A new study queues `first` and seeds 0. A resumed one seeds the number of trials it holds: a sampler
    seeded as before would draw its random start-up points again. Only completed trials count: a trial a killed
    search left running is marked failed and queued again (the run cache makes it free if its run had finished),
    and one whose run raised is tried anew."""
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize", load_if_exists=True)
    seed = len(study.trials)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # enqueue_trial, in optuna 2
        if not study.trials:
            study.enqueue_trial(first)
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            study.tell(trial.number, state=TrialState.FAIL)
            study.enqueue_trial(trial.params)
    return max(0, n_trials - len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))), seed


def collect_points(results_dir: Path, with_retain: bool = False) -> tuple[list[Point], ...]:
    """Every finished run's point and the target model's row (method 'finetuned'); and the retain model's with
    `with_retain` (`report.strong` reads its forget ROUGE-L)."""
    df = collect_runs(results_dir)
    points, refs = [], {}
    for (method, run_dir), run in df.groupby(["method", "run_dir"]):
        cfg = OmegaConf.load(results_dir / run_dir / "config.yaml")
        point = run_point(run.to_dict("records"), str(method), float(cfg.method.lr), int(cfg.method.epochs))
        if method in ("finetuned", "retain"):
            refs[method] = point
        else:
            points.append(point)
    if "finetuned" not in refs:
        raise FileNotFoundError(f"{results_dir}: no finished run holds the target model's metrics")
    return (points, refs["finetuned"], refs.get("retain")) if with_retain else (points, refs["finetuned"])


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
    trials = ", ".join(f"{m} {space.trials}" for m, space in SPACES.items())
    text = (f"# Tuning (`make tune`: {' '.join(TUNE_OVERRIDES)})\n\n"
            f"Search: Hydra's Optuna sweeper, TPE sampler (seed 0), the current config as the first trial; trials per "
            f"method: {trials}.\n"
            f"Target: model utility {target.model_utility:.3g}, retain ROUGE-L {target.retain_rouge:.3g}; admissible: "
            f">= {UTILITY_FRACTION} x both. Chosen: the admissible point of highest forget quality.\n\n"
            f"Forget quality >= {GOOD_FORGET_QUALITY} under the constraint: {', '.join(reached) or 'none'}.\n"
            f"No admissible point: {', '.join(sorted(m for m, p in chosen.items() if p is None)) or 'none'}.\n\n"
            + markdown_table(table))
    path = results_dir / "tuning.md"
    atomic_write_text(path, text)
    atomic_write_text(results_dir / "tuning.csv", table.to_csv(index=False))
    return path


SEARCH_NOTE = "make tune: Optuna TPE search on world seed 1 (results/embedded_default/tuning.md)"


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
    parser.add_argument("--methods", nargs="*", default=list(SPACES), choices=list(SPACES))
    parser.add_argument("--report-only", action="store_true", help="only write tuning.md from finished runs")
    parser.add_argument("--apply", type=Path, default=None, metavar="CONF_METHOD_DIR",
                        help="write each method's chosen lr and epochs into CONF_METHOD_DIR/<method>.yaml")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    if not args.report_only:
        storage = sqlite_storage(str(args.results / STORAGE))
        for method in args.methods:
            space = SPACES[method]
            remaining, seed = prepare_study(storage, study_name(method), space.trials, current_params(method, space))
            if remaining:
                subprocess.run(sweep_command(method, space, args.results, remaining, seed), check=False)
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
