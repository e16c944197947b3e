"""`unlearn-bench-report`: every finished run under a results folder in one long table, a wide summary and plots.

Outputs (in --out, default `<results>/report`):
  all_runs.parquet / all_runs.csv   one row per run x split x metric (MetricRow fields + config_hash, run_dir, error)
  summary.md / summary.csv          rows: bench x model x method x configuration (the run id without the seed;
                                    the fields that differ between rows are columns); columns: the bench's
                                    headline metrics as "mean ± std" over seeds, forget quality as "median
                                    [min, max]" (↑/↓: higher/lower is better), intent, status, seeds
  plots/*.png, plots/*.svg          see unlearn_bench.report.plots

Runs without a valid run.json are incomplete and skipped (with a warning); diverged and failed runs are kept
and labelled, and a failed run that wrote no metrics still gets one row (value null) so it shows up.
"""
from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Sequence

import pandas as pd
from omegaconf import OmegaConf

from unlearn_bench.report import configs as report_configs, plots
from unlearn_bench.store.resume import RUN_STATUSES, read_metric_rows, read_run_info, run_is_complete
from unlearn_bench.store.results import MetricRow

log = logging.getLogger(__name__)

ROW_KEYS = ["bench", "model", "method", "seed", "split", "metric"]
# The runner's marker row of a method that produced no metrics (split "run", metric "status", value null).
RUN_SPLIT = "run"


@dataclass(frozen=True)
class Headline:
    """Summary column(s) for the rows whose split and metric match these fnmatch patterns (case-sensitive).

    `column` names the column when exactly one (split, metric) pair matches; otherwise each pair gets
    "split/metric" (or the metric alone when it is lm-eval's "task/metric"). Patterns keep this table valid
    while adapters settle on exact split names.
    """

    split: str
    metric: str
    column: str | None = None


# TOFU names as benchmarks/tofu/qa_eval.py writes them: split "summary" for the two aggregates.
_TOFU = (
    Headline("summary", "forget_quality", "forget_quality"),
    Headline("summary", "model_utility", "model_utility"),
    Headline("forget", "rouge*", "forget/rougeL"),
    Headline("forget", "prob", "forget/prob"),
    Headline("forget", "truth_ratio", "forget/truth_ratio"),
    Headline("retain", "rouge*", "retain/rougeL"),  # collateral damage that the harmonic-mean utility can hide
    Headline("forget", "privleak", "privleak"),  # open-unlearning's TOFU privleak (qa_eval.privleak_rows)
)
HEADLINE_METRICS: dict[str, tuple[Headline, ...]] = {
    "tofu": _TOFU,
    "fictitious": _TOFU,
    "muse": (
        Headline("forget*", "verbmem*", "verbmem_forget"),
        Headline("forget*", "knowmem*", "knowmem_forget"),
        Headline("retain*", "knowmem*", "knowmem_retain"),
        Headline("*", "privleak*", "privleak"),
    ),
    # bench=wmdp: split "wmdp" holds lm-eval's `wmdp_bio/acc`... (or the fictitious hazard set's `hazard/acc`,
    # `heldout/acc`), split "mmlu" (or "utility", the attached utility tasks) lm-eval's `mmlu.../acc`.
    "wmdp": (
        Headline("wmdp", "*/acc"),
        Headline("mmlu", "*/acc"),
        Headline("utility", "mmlu*/acc"),
    ),
    # bench=rwku (benchmarks/rwku/metrics.py summarize_probe_scores, rwku_utility_eval.py): one column per probe level.
    "rwku": (
        Headline("forget", "forget_fb", "forget_fb"),
        Headline("forget", "forget_qa", "forget_qa"),
        Headline("forget", "forget_aa", "forget_aa"),
        Headline("neighbor", "neighbor_fb", "neighbor_fb"),
        Headline("neighbor", "neighbor_qa", "neighbor_qa"),
        Headline("utility", "mmlu_acc", "mmlu_acc"),
        Headline("utility", "mmlu*/acc"),
    ),
}
# Summarised by median [min, max] over seeds rather than mean ± std: a p-value is far from normal and spans
# orders of magnitude, so its mean is one seed's value and its std says nothing.
MEDIAN_RANGE_COLUMNS = frozenset({"forget_quality"})


# Every bench: what a method costs (evaluation/cost.py), so inference-time methods show what they trade.
# (cost/diagnose_seconds is not one: it includes the baselines' attacks in whichever run computed them first.)
COST_HEADLINES = (Headline("cost", "unlearn_seconds"), Headline("cost", "unlearn_seconds_per_step"),
                  Headline("cost", "inference_overhead"))


@dataclass(frozen=True)
class Column:
    name: str
    split: str
    metric: str


@dataclass
class ReportPaths:
    long_parquet: Path
    long_csv: Path
    summary_md: Path
    summary_csv: Path
    plots: list[Path] = field(default_factory=list)



def load_run_rows(run_dir: Path, results_dir: Path) -> list[dict]:
    """A complete run's metric rows, with the run's status on its own method's rows and run.json fields added."""
    info = read_run_info(run_dir)
    method = run_dir.parent.name  # layout: <bench>/<model>/<method>/<run-id>/
    metrics_path = run_dir / "metrics.jsonl"
    rows = read_metric_rows(metrics_path) if metrics_path.is_file() else []
    if not any(r.method == method for r in rows):
        # A run that failed before writing metrics must still appear: it gets the runner's marker row.
        bench, model = run_dir.parent.parent.parent.name, run_dir.parent.parent.name
        seed = OmegaConf.load(run_dir / "config.yaml").get("seed", 0)
        run_id = info.get("run_id") or run_dir.name
        rows.append(MetricRow(bench, model, method, RUN_SPLIT, "status", None, None, seed=int(seed), run_id=run_id))
    extra = {"config_hash": info["config_hash"], "run_dir": run_dir.relative_to(results_dir).as_posix(), "error": info.get("error")}
    config_id, baseline_id = report_configs.row_ids(run_dir, info)
    records = []
    for row in rows:
        method_free = row.intent in report_configs.METHOD_FREE_INTENTS
        record = {**row.to_dict(), **extra, "config_id": baseline_id if method_free else config_id}
        if row.method == method:
            record["status"] = info["status"]  # run.json is written last, so it has the final word
        records.append(record)
    return records


def collect_runs(results_dir: Path) -> pd.DataFrame:
    """The long table of every complete run; baseline rows (repeated in every run) kept once per seed."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise FileNotFoundError(f"{results_dir}: results folder not found")
    run_dirs = sorted({p.parent for name in ("run.json", "metrics.jsonl") for p in results_dir.rglob(name)})
    records = []
    for run_dir in run_dirs:
        if not run_is_complete(run_dir):
            log.warning("%s: incomplete run (no valid run.json or unreadable files), skipped", run_dir)
            continue
        records.extend(load_run_rows(run_dir, results_dir))
    columns = [*MetricRow.__dataclass_fields__, "config_hash", "run_dir", "error", "config_id"]
    df = pd.DataFrame.from_records(records, columns=columns)
    df["value"] = df["value"].astype("float64")
    df["seed"] = df["seed"].astype("int64")
    # Reference rows every run of a sweep repeats: the baselines and the diagnose stage's known-answer controls.
    baseline = df["intent"].isin(report_configs.METHOD_FREE_INTENTS)
    # Prefer an "ok" copy of a repeated baseline row, then the first run id, so the choice is reproducible.
    deduped = (
        df[baseline]
        .assign(_not_ok=lambda d: d["status"] != "ok")
        .sort_values(["_not_ok", "run_id"], kind="stable")
        .drop_duplicates([*ROW_KEYS, "config_id"])
        .drop(columns="_not_ok")
    )
    return pd.concat([df[~baseline], deduped]).sort_values([*ROW_KEYS, "run_id"], kind="stable").reset_index(drop=True)


def summary_columns(bench: str, pairs: Sequence[tuple[str, str]]) -> list[Column]:
    """The headline columns of a bench present in `pairs` (split, metric) (all pairs if none is present), then
    the cost columns."""

    def matching(heads: Sequence[Headline], columns: list[Column]) -> list[Column]:
        for head in heads:
            matched = sorted(p for p in pairs if fnmatchcase(p[0], head.split) and fnmatchcase(p[1], head.metric))
            for split, metric in matched:
                # a metric named "<task>/<metric>" (lm-eval's) names its column; others get their split prefixed
                name = head.column if head.column and len(matched) == 1 else metric if "/" in metric else f"{split}/{metric}"
                if all(c.name != name for c in columns):
                    columns.append(Column(name, split, metric))
        return columns

    columns = matching(HEADLINE_METRICS.get(bench, ()), []) or [Column(f"{s}/{m}", s, m) for s, m in sorted(pairs)]
    return matching(COST_HEADLINES, columns)


def format_mean_std(mean: float, std: float, n: int, seeds: int) -> str:
    """'mean ± std' over n values, '(n=2)' appended when some of the seeds have no value; n/a for none."""
    if n == 0:
        return "n/a"
    # Equal values give a std of float round-off (1e-16), which would read as real spread.
    text = f"{mean:.3g}" if n == 1 else f"{mean:.3g} ± {0.0 if std <= 1e-9 * abs(mean) else std:.2g}"
    return text if n >= seeds else f"{text} (n={n})"


def format_median_range(values: pd.Series, seeds: int) -> str:
    """'median [min, max]' over the values, '(n=2)' appended when some seeds have no value; n/a for none."""
    if values.empty:
        return "n/a"
    text = f"{values.median():.3g}" if len(values) == 1 else f"{values.median():.3g} [{values.min():.2g}, {values.max():.2g}]"
    return text if len(values) >= seeds else f"{text} (n={len(values)})"


def format_cell(column: str, values: pd.Series, seeds: int) -> str:
    if column in MEDIAN_RANGE_COLUMNS:
        return format_median_range(values, seeds)
    return format_mean_std(values.mean(), values.std(), len(values), seeds)


def format_status(runs: pd.DataFrame) -> str:
    """'ok' when every run is ok, else counts such as '2 ok, 1 diverged'."""
    counts = runs.drop_duplicates(["seed", "run_id"])["status"].value_counts()
    if list(counts.index) == ["ok"]:
        return "ok"
    order = [s for s in RUN_STATUSES if s in counts] + sorted(set(counts.index) - set(RUN_STATUSES))
    return ", ".join(f"{counts[s]} {s}" for s in order)


def _direction(higher_is_better: pd.Series) -> bool | None:
    known = higher_is_better.dropna()
    return None if known.empty else bool(known.iloc[0])


def _method_order(group: pd.DataFrame) -> tuple[str, int, str]:
    # Baselines (finetuned, retain) first in each model's block, as the reference rows.
    return (str(group["model"].iloc[0]), 0 if (group["intent"] == "baseline").any() else 1, str(group["method"].iloc[0]))


def summarize_bench(df: pd.DataFrame, bench: str, configs: dict[str, dict[str, str]] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One bench's wide summary (one row per model x method x configuration, formatted cells) and the tidy
    statistics behind it (bench, model, method, intent, status, column, mean, std over seeds (ddof=1), n,
    higher_is_better). `configs` (report_configs.config_columns) adds the fields telling configurations apart."""
    rows = df[df["bench"] == bench]
    measured = rows[rows["split"] != RUN_SPLIT]
    metric_rows = measured[~measured["split"].map(plots.is_step_split)]
    if metric_rows.empty:  # only step-wise rows (a sequential sweep): summarize those rather than nothing
        metric_rows = measured
    columns = summary_columns(bench, sorted(set(zip(metric_rows["split"], metric_rows["metric"]))))
    directions = {
        col.name: _direction(metric_rows.loc[(metric_rows["split"] == col.split) & (metric_rows["metric"] == col.metric), "higher_is_better"])
        for col in columns
    }
    has_verdicts = bool(_is_verdict(rows).any())
    wide, stats = [], []
    for group in sorted((g for _, g in rows.groupby(["model", "method", "config_id"])), key=_method_order):
        intents = group.loc[group["intent"] != "", "intent"]
        head = {
            "bench": bench,
            "model": group["model"].iloc[0],
            "method": group["method"].iloc[0],
            **(configs or {}).get(group["config_id"].iloc[0], {}),
            "intent": intents.iloc[0] if not intents.empty else "?",
            "status": format_status(group),
        }
        if has_verdicts:  # the diagnose stage's verdict beside the declared intent
            head["verdict"] = format_verdicts(group.loc[_is_verdict(group)])
        seeds = group["seed"].nunique()
        record = {**head, "seeds": seeds}
        for col in columns:
            values = group.loc[(group["split"] == col.split) & (group["metric"] == col.metric), "value"].dropna()
            higher = directions[col.name]
            mean, std, n = values.mean(), values.std(), len(values)
            stats.append({**head, "column": col.name, "mean": mean, "std": std, "n": n, "higher_is_better": higher,
                          "median": values.median(), "min": values.min(), "max": values.max()})
            record[col.name + {True: " ↑", False: " ↓", None: ""}[higher]] = format_cell(col.name, values, seeds)
        wide.append(record)
    return pd.DataFrame(wide), pd.DataFrame(stats)


def format_verdicts(verdicts: pd.DataFrame) -> str:
    """Each seed's verdict with its interval (labels are not averaged over seeds): the one note when every seed
    has it, else 'seed 0: ...; seed 1: ...'."""
    by_seed = verdicts.drop_duplicates("seed").sort_values("seed")
    if by_seed["note"].nunique() <= 1:
        return by_seed["note"].iloc[0] if len(by_seed) else ""
    return "; ".join(f"seed {seed}: {note}" for seed, note in zip(by_seed["seed"], by_seed["note"]))


def _is_verdict(rows: pd.DataFrame) -> pd.Series:
    return (rows["split"] == "diagnostics") & (rows["metric"] == "verdict")


def _md_cell(x: object) -> str:
    return str(x).replace("|", "\\|")


def markdown_table(table: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(map(_md_cell, table.columns)) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def build_report(results_dir: Path, out_dir: Path, where: Sequence[str] = (), by: Sequence[str] = ()) -> ReportPaths:
    """Collect every complete run under `results_dir` (those matching every `where` FIELD=PATTERN) and write the
    tables and plots into `out_dir`; `by` fields (config or provenance.*) split rows further. A ReportError when
    there is nothing to report. The report is written into a fresh folder first and then renamed into place
    piece by piece (`plots/` whole), so an old plot never stays beside a new summary and other files in
    `out_dir` are left alone."""
    results_dir, out_dir = Path(results_dir), Path(out_dir)
    df = collect_runs(results_dir)
    if df.empty:
        raise report_configs.ReportError(f"{results_dir}: no complete run to report (a run is complete once its "
                                         "run.json is written)")
    df = report_configs.group_by_fields(report_configs.filter_runs(df, results_dir, where), results_dir, by)
    out_dir.mkdir(parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(dir=out_dir, prefix=".tmp-report-"))
    try:
        paths = write_report(df, results_dir, fresh, by)
        for name in sorted(p.name for p in fresh.iterdir()):
            if (fresh / name).is_dir() and (out_dir / name).exists():  # plots/: the old folder goes as a whole
                os.replace(out_dir / name, fresh / f".old-{name}")
            os.replace(fresh / name, out_dir / name)
    finally:
        shutil.rmtree(fresh, ignore_errors=True)

    def moved(path: Path) -> Path:
        return out_dir / path.relative_to(fresh)

    return ReportPaths(moved(paths.long_parquet), moved(paths.long_csv), moved(paths.summary_md),
                       moved(paths.summary_csv), [moved(p) for p in paths.plots])


def write_report(df: pd.DataFrame, results_dir: Path, out_dir: Path, by: Sequence[str]) -> ReportPaths:
    """The long table, the summary and the plots of `df`, written into `out_dir` (a fresh folder)."""
    paths = ReportPaths(out_dir / "all_runs.parquet", out_dir / "all_runs.csv", out_dir / "summary.md", out_dir / "summary.csv")
    df.to_parquet(paths.long_parquet, index=False)
    paths.long_csv.write_text(df.to_csv(index=False), encoding="utf-8")

    configs = {bench: report_configs.config_columns(df[df["bench"] == bench], results_dir, by) for bench in df["bench"].unique()}
    summaries = {bench: summarize_bench(df, bench, configs[bench]) for bench in sorted(df["bench"].unique())}
    md = [f"# Unlearning results\n\n{df['run_dir'].nunique()} runs from `{results_dir}`. "
          "Cells: mean ± sample std over seeds (forget quality: median [min, max]); ↑/↓: higher/lower is better; "
          "n/a: no value (see status).\n"]
    md += [f"\n## {bench}\n\n{markdown_table(wide)}" for bench, (wide, _) in summaries.items()]
    paths.summary_md.write_text("".join(md), encoding="utf-8")
    wide_all = pd.concat([wide for wide, _ in summaries.values()], ignore_index=True)
    paths.summary_csv.write_text(wide_all.fillna("").to_csv(index=False), encoding="utf-8")

    stats = pd.concat([st for _, st in summaries.values()], ignore_index=True)
    (out_dir / "plots").mkdir()  # even when empty, so that it replaces the old plots
    paths.plots = plots.write_plots(df, report_configs.label_configurations(stats, configs), out_dir / "plots")
    return paths


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="unlearn-bench-report", description=__doc__.splitlines()[0])
    parser.add_argument("results_dir", type=Path, help="folder holding <bench>/<model>/<method>/<run-id>/ runs")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: <results_dir>/report)")
    parser.add_argument("--where", action="append", default=[], metavar="FIELD=PATTERN",
                        help="keep runs whose config or provenance field matches, e.g. bench.forget_split=forget01, "
                             "provenance.versions.torch=2.*, provenance.device=cuda* (repeatable)")
    parser.add_argument("--by", action="append", default=[], metavar="FIELD",
                        help="also split rows by this config or provenance field, e.g. provenance.git_commit (repeatable)")
    args = parser.parse_args(argv)
    if not args.results_dir.is_dir():
        parser.error(f"{args.results_dir}: results folder not found")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        paths = build_report(args.results_dir, args.out or args.results_dir / "report", args.where, args.by)
    except report_configs.ReportError as e:  # nothing to report: said, and nothing written
        parser.exit(2, f"{parser.prog}: error: {e}\n")
    print(f"summary: {paths.summary_md}\nlong table: {paths.long_parquet}\nplots: {len(paths.plots)} files in {paths.summary_md.parent / 'plots'}")


if __name__ == "__main__":
    main()
