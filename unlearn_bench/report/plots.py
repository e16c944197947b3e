"""Report figures (PNG + SVG, one set per bench x model), written atomically.

  <bench>__<model>__tradeoff   forget quality (median over seeds, range as bar; log y) vs model utility (mean ±
                               std), a labelled point per method: marker = intent, a colour of its own per method,
                               the finetuned and retain baselines black; drawn when both metrics exist
  <bench>__<model>__bars       one panel per summary column, bars = mean over seeds, error bars = std
  <bench>__<model>__<series>   curves over a sequential/scalability sweep (see below)
  <bench>__<model>__relearn    the relearning ladder (diagnose stage): mean held-out forget score after k
                               relearning steps (0: the `none` attack), a line per model (target, retain, each
                               method and control; mean over seeds)

Sweep convention: a split named `<series>_<n>` (e.g. `request_1`, `request_2`, ...) holds the metrics after step
n of that series; each metric becomes a panel with step on x and one line per method (mean ± std over seeds).
Methods whose runs diverged or failed keep their place, labelled with their status; a method with no value is
named in the panel ("n/a") rather than dropped.
"""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure  # no pyplot: no global figure state, no GUI backend
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

STEP_SPLIT = re.compile(r"^(?:.*/)?(?P<series>[A-Za-z][A-Za-z0-9]*)_(?P<step>\d+)$")
# Trade-off figure: baselines in black with their own markers; a method's marker is its intent, its colour its own.
BASELINE_STYLE = {"finetuned": dict(marker="*", color="black", s=180), "retain": dict(marker="D", color="black", s=70)}
_GREYS = (14, 15)  # tab20's two greys, too close to the black baselines
GOOD_FORGET_QUALITY = 0.05  # dotted line: the KS test no longer tells the model from the retain model at 5%
INTENT_COLOR = {"removal": "tab:blue", "suppression": "tab:orange", "baseline": "tab:gray"}
INTENT_MARKER = {"removal": "o", "suppression": "s", "inference": "^"}
ARROW = {True: " ↑", False: " ↓"}


def is_step_split(split: str) -> bool:
    return STEP_SPLIT.match(split) is not None


def write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp)` on a temp file beside `path`, then rename it over `path` (for savefig, to_parquet)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_figure(fig: Figure, stem: Path) -> list[Path]:
    paths = [stem.with_name(f"{stem.name}.{fmt}") for fmt in ("png", "svg")]
    for path in paths:
        # The format is explicit because the temp file's suffix is .tmp.
        write_atomically(path, lambda tmp, fmt=path.suffix[1:]: fig.savefig(tmp, format=fmt))
    return paths


def _label(method: str, status: str) -> str:
    return method if status == "ok" else f"{method} ({status})"


def method_colors(methods: list[str]) -> dict[str, tuple[float, ...]]:
    """A distinct colour per method (sorted names, so a method keeps its colour across figures of one sweep):
    tab20 without its greys for up to 18 methods, evenly spaced hues beyond."""
    names = sorted(set(methods))
    tab20 = colormaps["tab20"].colors  # dark/light pairs: the nine dark hues first, then their light partners
    palette = [tab20[i] for i in [*range(0, 20, 2), *range(1, 20, 2)] if i not in _GREYS]
    if len(names) > len(palette):
        palette = [tuple(c) for c in colormaps["hsv"](np.linspace(0, 1, len(names), endpoint=False))]
    return dict(zip(names, palette))


def _forget_quality_error(row: pd.Series, y: float) -> list[list[float]] | float:
    """Asymmetric error bar to the range over seeds (report/tables.py summarises forget quality by median [min, max])."""
    if ("min", "forget_quality") not in row.index or np.isnan(row[("min", "forget_quality")]):
        return float(np.nan_to_num(row[("std", "forget_quality")]))
    return [[y - row[("min", "forget_quality")]], [row[("max", "forget_quality")] - y]]


def tradeoff_figure(stats: pd.DataFrame) -> Figure | None:
    """Forget quality (median over seeds, bar: range; log y) vs model utility (mean ± std) for one bench x model,
    each point labelled with its method; None when either metric is absent."""
    values = [v for v in ("mean", "std", "median", "min", "max") if v in stats.columns]
    wide = stats.set_index(["method", "intent", "status", "column"])[values].unstack("column")
    if ("mean", "forget_quality") not in wide.columns or ("mean", "model_utility") not in wide.columns:
        return None
    y_stat = "median" if ("median", "forget_quality") in wide.columns else "mean"
    colors = method_colors([m for m, _, _ in wide.index if m not in BASELINE_STYLE])
    fig = Figure(figsize=(7, 5), layout="constrained")
    ax = fig.add_subplot()
    missing = []
    for (method, intent, status), row in wide.iterrows():
        x, y = row[("mean", "model_utility")], row[(y_stat, "forget_quality")]
        if np.isnan(x) or np.isnan(y):
            missing.append(_label(method, status))
            continue
        style = BASELINE_STYLE.get(method) or dict(marker=INTENT_MARKER.get(intent, "P"), color=colors[method], s=55)
        face = style["color"] if status == "ok" else "none"  # hollow: diverged or failed
        ax.errorbar(x, y, xerr=np.nan_to_num(row[("std", "model_utility")]), yerr=_forget_quality_error(row, y),
                    fmt="none", ecolor=style["color"], alpha=0.5)
        ax.scatter(x, y, marker=style["marker"], s=style["s"], edgecolors=style["color"], facecolors=face,
                   label=f"{_label(method, status)} ({intent})", zorder=3)
        ax.annotate(_label(method, status), (x, y), xytext=(5, 3), textcoords="offset points", fontsize=7, color=style["color"])
    ax.set_yscale("log", nonpositive="clip")
    ax.axhline(GOOD_FORGET_QUALITY, color="grey", linestyle=":", linewidth=0.8)
    ax.annotate(f"forget quality {GOOD_FORGET_QUALITY}", (0, GOOD_FORGET_QUALITY), xycoords=("axes fraction", "data"),
                xytext=(3, 2), textcoords="offset points", fontsize=6, color="grey")
    ax.set_xlabel("model utility ↑")
    ax.set_ylabel("forget quality ↑ (KS p-value vs the retain model, log scale)")
    if missing:
        ax.set_title("n/a: " + ", ".join(missing), fontsize=8)
    ax.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.01, 0.5),
              title="marker: ● removal, ■ suppression; black: baselines", title_fontsize=6)
    return fig


def bars_figure(stats: pd.DataFrame) -> Figure:
    """One panel per summary column for one bench x model: mean over seeds with std error bars."""
    columns = list(dict.fromkeys(stats["column"]))
    methods = stats.drop_duplicates("method")[["method", "intent", "status"]]
    ncols = min(len(columns), 3)
    nrows = -(-len(columns) // ncols)
    fig = Figure(figsize=(4 * ncols, 3.2 * nrows), layout="constrained")
    for i, column in enumerate(columns):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        col = methods.merge(stats[stats["column"] == column], on=["method", "intent", "status"], how="left")
        xs = np.arange(len(col))
        ax.bar(xs, col["mean"].fillna(0), yerr=col["std"].fillna(0), capsize=3, color=[INTENT_COLOR.get(it, "tab:purple") for it in col["intent"]])
        for x, n in zip(xs, col["n"].fillna(0)):
            if n == 0:
                ax.text(x, 0, "n/a", ha="center", va="bottom", fontsize=7, rotation=90)
        ax.set_xticks(xs, [_label(m, s) for m, s in zip(col["method"], col["status"])], rotation=45, ha="right", fontsize=7)
        higher = col["higher_is_better"].dropna()
        ax.set_title(column + (ARROW[bool(higher.iloc[0])] if not higher.empty else ""), fontsize=9)
    intents = [it for it in INTENT_COLOR if it in set(methods["intent"])]
    fig.legend(handles=[Patch(color=INTENT_COLOR[it], label=it) for it in intents], loc="outside lower center", ncols=len(intents) or 1, fontsize=8)
    return fig


def step_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The rows of `<series>_<n>` splits with `series` and integer `step` columns added."""
    parts = df["split"].str.extract(STEP_SPLIT)
    rows = df.assign(series=parts["series"], step=pd.to_numeric(parts["step"]))
    return rows[rows["series"].notna() & rows["value"].notna()]


def curves_figure(rows: pd.DataFrame) -> Figure | None:
    """Metric vs step for one bench x model x series, a line per method; None with fewer than two steps."""
    if rows["step"].nunique() < 2:
        return None
    metrics = sorted(rows["metric"].unique())
    fig = Figure(figsize=(4.5 * len(metrics), 3.5), layout="constrained")
    for i, metric in enumerate(metrics):
        ax = fig.add_subplot(1, len(metrics), i + 1)
        for (method, status), g in rows[rows["metric"] == metric].groupby(["method", "status"]):
            curve = g.groupby("step")["value"].agg(["mean", "std"]).fillna({"std": 0})
            ax.errorbar(curve.index, curve["mean"], yerr=curve["std"], marker="o", capsize=2, label=_label(method, status),
                        linestyle="-" if status == "ok" else "--")
        higher = rows.loc[rows["metric"] == metric, "higher_is_better"].dropna()
        ax.set_title(metric + (ARROW[bool(higher.iloc[0])] if not higher.empty else ""), fontsize=9)
        ax.set_xlabel(rows["series"].iloc[0])
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=7)
    return fig


def share_figure(rows: pd.DataFrame) -> Figure | None:
    """Knowledge share per attack (diagnose stage), a bar group per method, with the 95% interval (means over
    seeds of the share and of its bounds); the dashed line is the verdict threshold's default (0.25); bars are
    clipped to [-0.5, 1.5]. None without diagnostics rows."""
    rows = rows[rows["split"].str.startswith("diag/") & rows["metric"].isin(["knowledge_share", "ci_low", "ci_high"])]
    rows = rows.dropna(subset=["value"])
    if rows.empty:
        return None
    table = rows.assign(attack=rows["split"].str.removeprefix("diag/")).groupby(["metric", "method", "attack"])["value"].mean()
    share = table.get("knowledge_share", pd.Series(dtype=float)).unstack()
    if share.empty:
        return None
    low, high = (table.get(m, pd.Series(dtype=float)).unstack().reindex_like(share) for m in ("ci_low", "ci_high"))
    fig = Figure(figsize=(max(6.0, 0.9 * len(share) + 2), 4), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / len(share.columns)
    for i, attack in enumerate(share.columns):
        value = share[attack].clip(-0.5, 1.5)
        err = [(value - low[attack].clip(-0.5, 1.5)).clip(lower=0).fillna(0), (high[attack].clip(-0.5, 1.5) - value).clip(lower=0).fillna(0)]
        ax.bar([x + i * width for x in range(len(share))], value.fillna(0), width, yerr=err, capsize=1.5, label=attack,
               color=colormaps["tab20"](i % 20))  # one colour per attack: there are more than the default cycle's 10
    ax.axhline(0.25, color="black", linestyle="--", linewidth=0.8)
    ax.set_xticks([x + 0.4 - width / 2 for x in range(len(share))], share.index, rotation=45, ha="right")
    ax.set_ylabel("knowledge share (0 = retain model, 1 = target)")
    ax.legend(fontsize="x-small", ncols=3)
    return fig


RELEARN_RUNG = re.compile(r"^diag/relearn@(?P<steps>\d+)$")


def relearn_figure(rows: pd.DataFrame) -> Figure | None:
    """Relearning curves: a model's mean attacked score against the ladder's steps (0 = the `none` attack); the
    target and retain lines from every case's reference rows, one line per method or control. None without a
    ladder."""
    steps = rows["split"].str.extract(RELEARN_RUNG)["steps"]
    rows = rows.assign(steps=pd.to_numeric(steps).where(rows["split"] != "diag/none", 0))
    rows = rows[rows["steps"].notna() & rows["metric"].isin(["unlearned", "finetuned", "retain"])].dropna(subset=["value"])
    if rows["steps"].nunique() < 2:
        return None
    fig = Figure(figsize=(6.5, 4), layout="constrained")
    ax = fig.subplots()
    for name, line in (("finetuned (target)", rows[rows["metric"] == "finetuned"]), ("retain", rows[rows["metric"] == "retain"])):
        curve = line.groupby("steps")["value"].mean()
        ax.plot(curve.index, curve.values, color="black", linestyle="-" if name == "retain" else "--", marker="o", label=name)
    unlearned = rows[rows["metric"] == "unlearned"]
    colors = method_colors(list(unlearned["method"]))
    for method, line in unlearned.groupby("method"):
        curve = line.groupby("steps")["value"].mean()
        ax.plot(curve.index, curve.values, marker=".", color=colors[method], label=method,
                linestyle=":" if str(method).startswith("control:") else "-")
    ax.set_xlabel("relearning steps")
    ax.set_ylabel("held-out forget score (ROUGE-L recall)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize="x-small", ncols=2)
    return fig


def _stem(out_dir: Path, *parts: str) -> Path:
    return out_dir / "__".join(re.sub(r"[^\w.-]+", "_", p) for p in parts)


def write_plots(df: pd.DataFrame, stats: pd.DataFrame, out_dir: Path) -> list[Path]:
    """All figures for the long table `df` and its summary statistics `stats` (see report.summarize_bench)."""
    written: list[Path] = []
    if not stats.empty:
        for (bench, model), group in stats.groupby(["bench", "model"], sort=True):
            if (fig := tradeoff_figure(group)) is not None:
                written += save_figure(fig, _stem(out_dir, bench, model, "tradeoff"))
            written += save_figure(bars_figure(group), _stem(out_dir, bench, model, "bars"))
    for (bench, model), group in df.groupby(["bench", "model"], sort=True):
        if (fig := share_figure(group)) is not None:
            written += save_figure(fig, _stem(out_dir, bench, model, "knowledge_share"))
        if (fig := relearn_figure(group)) is not None:
            written += save_figure(fig, _stem(out_dir, bench, model, "relearn"))
    steps = step_rows(df)
    for (bench, model, series), group in steps.groupby(["bench", "model", "series"], sort=True):
        if (fig := curves_figure(group)) is not None:
            written += save_figure(fig, _stem(out_dir, bench, model, series))
    return written
