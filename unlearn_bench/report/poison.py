"""`make poison`: how much damage a poisoned forget request does, per fine-tuning method (bench.poison).

Runs `experiment=poison` on the embedded default for every strategy (retain, utility, neighbour) at the rates
its split can supply (`feasible_rates`: the world's 24 facts and 50 famous authors cannot make up a quarter of
a 200-item request), the unpoisoned request once, and the service's detector (bench.poison.screen=true) at
`SCREEN_RATE` for each strategy, over three training seeds; then writes

    <results>/poison.md    utility lost per 10% poison per method and strategy (least-squares slope over the
                           rates, mean and 95% t-interval over seeds), the detector's precision and recall, and
                           the damage left once it drops what it flags
    <results>/poison.png   model utility and forget quality against the poison rate, a line per method, a panel
                           per strategy, 95% t-intervals over seeds

    python -m unlearn_bench.report.poison [--results results/poison] [--methods ga npo ...] [--seeds 0 1 2]
                                          [--jobs 2] [--report-only]
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import subprocess
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from unlearn_bench.report.configs import run_fields
from unlearn_bench.report.tables import collect_runs, markdown_table
from unlearn_bench.report.tuning import SPACES
from unlearn_bench.store.results import atomic_write_text
from unlearn_bench.report.multirun import multirun_command

log = logging.getLogger(__name__)

METHODS = list(SPACES)            # the fine-tuning methods `make tune` tunes
RATES = (0.05, 0.1, 0.25)         # besides 0, which every strategy shares
SCREEN_RATE = 0.1
SEEDS = (0, 1, 2)
PER = 0.1                         # slopes are given per 10% poison
FIELDS = {"rate": "bench.poison.rate", "strategy": "bench.poison.strategy", "screen": "bench.poison.screen"}


LOST = "_utility_lost"  # damage_table's numeric mean of "utility lost per 10% poison"


def feasible_rates(strategy: str) -> list[float]:
    """The rates of `RATES` whose poison the embedded default's `strategy` split can supply."""
    from unlearn_bench.benchmarks.fictitious.adapter import FictitiousBenchmark
    from unlearn_bench.benchmarks.fictitious.config import FictitiousConfig
    from unlearn_bench.poison.request import poison_count

    bench = FictitiousBenchmark(FictitiousConfig())
    n, (_, pool) = len(bench.splits()["forget"]), bench.poison_sources()[strategy]
    return [rate for rate in RATES if poison_count(rate, n) <= len(pool)]


def sweeps(methods: Sequence[str], seeds: Sequence[int]) -> list[dict[str, str]]:
    """The overrides of each multirun: one per strategy (rate 0 with the first), then the screened runs."""
    from unlearn_bench.poison.config import STRATEGIES

    common = {"method": ",".join(methods), "seed": ",".join(map(str, seeds))}
    out = []
    for i, strategy in enumerate(STRATEGIES):
        rates = ([0.0] if i == 0 else []) + feasible_rates(strategy)
        out.append({**common, FIELDS["strategy"]: strategy, FIELDS["rate"]: ",".join(f"{r:g}" for r in rates)})
    out += [{**common, FIELDS["strategy"]: s, FIELDS["rate"]: f"{SCREEN_RATE:g}", FIELDS["screen"]: "true"}
            for s in STRATEGIES if SCREEN_RATE in feasible_rates(s)]
    return out


def sweep_command(overrides: dict[str, str], results_dir: Path, jobs: int, name: str) -> list[str]:
    return multirun_command(["experiment=poison", *(f"{k}={v}" for k, v in overrides.items())], results_dir, name, jobs)


def poison_runs(results_dir: Path) -> pd.DataFrame:
    """One row per finished unlearning run: method, seed, rate, strategy, screen, its metrics as columns
    (`split/metric`) and the target model's under the same settings (`target:split/metric`)."""
    df = collect_runs(results_dir)
    df = df[df["status"].fillna("ok") == "ok"]
    wide = df.pivot_table(index=["run_dir", "method", "seed", "intent"], columns=df["split"] + "/" + df["metric"],
                          values="value", aggfunc="first").reset_index()
    fields = {run_dir: run_fields(results_dir / run_dir) for run_dir in wide["run_dir"].unique()}
    for column, key in FIELDS.items():
        wide[column] = [fields[r].get(key) for r in wide["run_dir"]]
    wide["rate"] = wide["rate"].astype(float)
    wide["screen"] = wide["screen"].astype(str).str.lower() == "true"
    keys = ["seed", "rate", "strategy", "screen"]
    metrics = [c for c in wide.columns if "/" in c]
    target = wide[wide["method"] == "finetuned"].drop_duplicates(keys)[keys + metrics]
    runs = wide[wide["intent"] != "baseline"]
    return runs.merge(target.rename(columns={c: f"target:{c}" for c in metrics}), on=keys, how="left").reset_index(drop=True)


def collateral(runs: pd.DataFrame) -> pd.Series:
    """ROUGE-L the poisoned items lost (target - unlearned, on `poisoned_<split>`), per run."""
    out = pd.Series(np.nan, index=runs.index)
    for column in [c for c in runs.columns if c.startswith("poisoned_") and c.endswith("/rouge")]:
        lost = runs[f"target:{column}"] - runs[column]
        out = out.fillna(lost)
    return out


def t_interval(values: Sequence[float]) -> tuple[float, float, float]:
    """Mean and 95% Student-t interval; the interval is the mean itself for one value."""
    from scipy import stats

    x = np.asarray([v for v in values if not math.isnan(v)], dtype=float)
    if len(x) == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if len(x) == 1:
        return mean, mean, mean
    half = float(stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return mean, mean - half, mean + half


def with_unpoisoned(runs: pd.DataFrame) -> pd.DataFrame:
    """Unscreened runs, the rate-0 runs copied into every strategy (they are each strategy's starting point)."""
    plain = runs[~runs["screen"]]
    clean = plain[plain["rate"] == 0]
    copies = [clean.assign(strategy=s) for s in plain.loc[plain["rate"] > 0, "strategy"].unique()]
    return pd.concat([plain[plain["rate"] > 0], *copies], ignore_index=True)


def slope_per_10(group: pd.DataFrame, column: str) -> float:
    """Least-squares slope of `column` against the rate, per 10% poison (NaN with fewer than two rates)."""
    if group["rate"].nunique() < 2:
        return math.nan
    return float(np.polyfit(group["rate"], group[column], 1)[0] * PER)


def damage_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per method and strategy: model utility lost per 10% poison (mean and 95% t-interval over the seeds' slopes),
    the utility at rate 0 and at the highest rate run, and at `SCREEN_RATE` the ROUGE-L lost on the clean forget
    split (the forgetting asked for) beside that lost on the poisoned items (the collateral damage). The mean loss
    is also kept as a number (`LOST`), for ordering; `markdown_table` is given the table without it."""
    rows = []
    for (method, strategy), group in with_unpoisoned(runs).groupby(["method", "strategy"]):
        slopes = [slope_per_10(g, "summary/model_utility") for _, g in group.groupby("seed")]
        mean, low, high = t_interval([-s for s in slopes])
        top_rate = group["rate"].max()
        at = group[group["rate"] == SCREEN_RATE]
        rows.append({"method": method, "intent": group["intent"].iloc[0], "strategy": strategy,
                     "utility lost per 10% poison": f"{mean:.3f} [{low:.3f}, {high:.3f}]",
                     "utility at 0": f"{group.loc[group['rate'] == 0, 'summary/model_utility'].mean():.3f}",
                     "utility at highest rate": f"{group.loc[group['rate'] == top_rate, 'summary/model_utility'].mean():.3f} ({top_rate:g})",
                     f"ROUGE-L lost at {SCREEN_RATE:g}: forget / poisoned":
                         f"{(at['target:forget/rouge'] - at['forget/rouge']).mean():.3f} / {collateral(at).mean():.3f}",
                     LOST: mean})
    return pd.DataFrame(rows).sort_values(["strategy", LOST], ascending=[True, False])


def proportion(values: pd.Series) -> str:
    """Mean and 95% t-interval of a proportion over seeds, the interval clipped to [0, 1]."""
    mean, low, high = t_interval(values)
    return f"{mean:.2f} [{max(low, 0.0):.2f}, {min(high, 1.0):.2f}]"


def wide_damage_table(damage: pd.DataFrame) -> pd.DataFrame:
    """`damage_table`'s utility lost per 10% poison, a column per strategy, methods in the order of the worst."""
    wide = damage.pivot(index=["method", "intent"], columns="strategy", values="utility lost per 10% poison")
    worst = damage.groupby("method")[LOST].max()
    wide = wide.reset_index()
    return wide.iloc[np.argsort(-worst.reindex(wide["method"]).to_numpy(), kind="stable")].rename(
        columns={s: f"{s}: utility lost per 10%" for s in damage["strategy"].unique()})


def detector_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per strategy at `SCREEN_RATE`: the detector's precision and recall (pooled over methods and seeds: it runs
    before unlearning, so only the seed's target model matters), and per method the utility without and with it."""
    at = runs[runs["rate"] == SCREEN_RATE]
    rows = []
    for strategy, group in at.groupby("strategy"):
        screened, plain = group[group["screen"]], group[~group["screen"]]
        if screened.empty:
            continue
        lost_plain = (plain["target:summary/model_utility"] - plain["summary/model_utility"]).mean()
        lost_screened = (screened["target:summary/model_utility"] - screened["summary/model_utility"]).mean()
        per_seed = screened.groupby("seed").first()
        rows.append({"strategy": strategy, "injected": f"{per_seed['poison_request/injected'].mean():.0f}",
                     "flagged": f"{per_seed['poison_request/flagged'].mean():.1f}",
                     "precision": proportion(per_seed["poison_request/precision"]),
                     "recall": proportion(per_seed["poison_request/recall"]),
                     "utility lost, no screen": f"{lost_plain:.3f}", "utility lost, screened": f"{lost_screened:.3f}",
                     "poisoned ROUGE-L lost, no screen / screened": f"{collateral(plain).mean():.3f} / {collateral(screened).mean():.3f}",
                     "methods": plain["method"].nunique()})
    return pd.DataFrame(rows)


def against_unpoisoned(data: pd.DataFrame, column: str, log_scale: bool) -> pd.Series:
    """Each run's `column` minus that of the same method and seed at rate 0 (log10 first with `log_scale`)."""
    values = np.log10(data[column].clip(lower=1e-300)) if log_scale else data[column]
    clean = values[data["rate"] == 0].groupby([data["method"], data["seed"]]).first()
    return values - pd.Series([clean.get((m, s), np.nan) for m, s in zip(data["method"], data["seed"])], index=data.index)


def poison_figure(runs: pd.DataFrame):
    """Per strategy (columns): model utility and log10 forget quality (rows), each against the same method and
    seed without poison, over the poison rate; a line per method, 95% t-intervals over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from unlearn_bench.report.plots import method_colors

    data = with_unpoisoned(runs)
    strategies = sorted(data["strategy"].unique())
    colors = method_colors(sorted(data["method"].unique()))
    panels = (("summary/model_utility", False, "model utility - unpoisoned"),
              ("summary/forget_quality", True, "log10 forget quality - unpoisoned"))
    fig, axes = plt.subplots(2, len(strategies), figsize=(4.2 * len(strategies), 7), squeeze=False, sharey="row")
    for row, (column, log_scale, label) in enumerate(panels):
        delta = against_unpoisoned(data, column, log_scale)
        for col, strategy in enumerate(strategies):
            ax = axes[row][col]
            for method, group in data[data["strategy"] == strategy].groupby("method"):
                stats = [(rate, *t_interval(delta[g.index])) for rate, g in group.groupby("rate")]
                rate, mean, low, high = map(np.asarray, zip(*stats))
                ax.errorbar(rate, mean, yerr=[mean - low, high - mean], color=colors[method], marker="o", ms=3,
                            capsize=2, lw=1, label=method if row == 0 and col == 0 else None)
            ax.axhline(0, color="0.6", lw=0.5)
            axes[0][col].set_title(f"poison: {strategy}")
            axes[1][col].set_xlabel("poison rate of the forget request")
        axes[row][0].set_ylabel(label)
    fig.legend(loc="center right", fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0, 0.86, 1))
    return fig


def write_poison_report(results_dir: Path) -> list[Path]:
    from unlearn_bench.report.plots import save_figure

    runs = poison_runs(results_dir)
    if runs.empty:
        raise FileNotFoundError(f"{results_dir}: no finished poisoned-request runs (make poison)")
    seeds = sorted(runs["seed"].unique())
    damage = damage_table(runs)
    text = (f"# Poisoned unlearning requests (`make poison`, seeds {', '.join(map(str, seeds))})\n\n"
            "Model utility lost per 10% poison: minus the least-squares slope of model utility over the rates, per "
            "seed; mean and 95% t-interval over seeds. Poison is added to the whole forget split, which is scored "
            "as forget unchanged.\n\n" + markdown_table(wide_damage_table(damage)) +
            "\n\n## Per method and strategy\n\n" + markdown_table(damage.drop(columns=LOST)) +
            f"\n\n## The detector at rate {SCREEN_RATE:g} (bench.poison.screen=true drops what it flags)\n\n"
            "Utility lost: the target's model utility minus the unlearned model's, mean over methods and seeds.\n\n"
            + (markdown_table(detector) if not (detector := detector_table(runs)).empty else "No screened runs yet.") + "\n")
    paths = [results_dir / "poison.md"]
    atomic_write_text(paths[0], text)
    return paths + save_figure(poison_figure(runs), results_dir / "poison")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m unlearn_bench.report.poison", description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("results/poison"))
    parser.add_argument("--methods", nargs="*", default=METHODS, choices=METHODS)
    parser.add_argument("--seeds", nargs="*", type=int, default=list(SEEDS))
    parser.add_argument("--jobs", type=int, default=1, help="runs at once (Hydra's joblib launcher, hydra/launcher=local)")
    parser.add_argument("--report-only", action="store_true", help="only write the report from finished runs")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    if not args.report_only:
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1" if args.jobs > 1 else "")}
        env = {k: v for k, v in env.items() if v != ""}
        for i, overrides in enumerate(sweeps(args.methods, args.seeds)):
            subprocess.run(sweep_command(overrides, args.results, args.jobs, f"sweep{i}"), check=False, env=env)
    for path in write_poison_report(args.results):
        print(path)


if __name__ == "__main__":
    main()
