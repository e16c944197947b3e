from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from unlearn_bench.report.tables import Headline, ReportPaths, build_report, collect_runs, main, summary_columns
from unlearn_bench.store.results import MetricRow, atomic_write_json, atomic_write_jsonl, atomic_write_text

# Per seed: (forget_quality, model_utility, forget rougeL). ga's three seeds give forget quality median 0.2 in
# [0.1, 0.3], then mean 0.6 ± 0.1, 0.5 ± 0.1.
GA = {0: (0.1, 0.5, 0.4), 1: (0.2, 0.6, 0.5), 2: (0.3, 0.7, 0.6)}
FINETUNED_FQ = {0: 1e-5, 1: 2e-5, 2: 3e-5}  # median 2e-05 of three values only if the repeated baseline rows are deduped


def tofu_rows(method: str, intent: str, seed: int, fq: float | None, mu: float | None, rouge: float | None, status: str = "ok") -> list[dict]:
    rows = [
        MetricRow("tofu", "tiny", method, "summary", "forget_quality", fq, True, seed, "", intent, status),
        MetricRow("tofu", "tiny", method, "summary", "model_utility", mu, True, seed, "", intent, status),
        MetricRow("tofu", "tiny", method, "forget", "rouge", rouge, False, seed, "", intent, status),
    ]
    return [r.to_dict() for r in rows]


def baselines(seed: int) -> list[dict]:
    return tofu_rows("finetuned", "baseline", seed, FINETUNED_FQ[seed], 0.8, 0.95) + tofu_rows("retain", "baseline", seed, 1.0, 0.79, 0.4)


def write_run(root: Path, method: str, run_id: str, rows: list[dict] | None, status: str = "ok", bench: str = "tofu", run_json: bool = True) -> Path:
    run_dir = root / bench / "tiny" / method / run_id
    seed = int(run_id.rsplit("-s", 1)[-1]) if "-s" in run_id else 0
    atomic_write_text(run_dir / "config.yaml", f"method: {method}\nseed: {seed}\n")
    if rows is not None:
        atomic_write_jsonl(run_dir / "metrics.jsonl", [{**r, "run_id": run_id} for r in rows])
        atomic_write_jsonl(run_dir / "generations.jsonl", [])
        atomic_write_text(run_dir / "summary.md", "# run\n")
    if run_json:
        error = "CUDA out of memory" if status == "failed" else None
        atomic_write_json(run_dir / "run.json", {"status": status, "config_hash": f"h-{run_id}", "run_id": run_id, "error": error})
    return run_dir


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("runs") / "results"
    for seed, (fq, mu, rouge) in GA.items():
        # ga also reports a 3-request sequential sweep: forget_quality after each request.
        steps = [MetricRow("tofu", "tiny", "ga", f"request_{k}", "forget_quality", fq / k, True, seed, "", "removal").to_dict() for k in (1, 2, 3)]
        write_run(root, "ga", f"ga-s{seed}", tofu_rows("ga", "removal", seed, fq, mu, rouge) + steps + baselines(seed))
    write_run(root, "npo", "npo-s0", tofu_rows("npo", "removal", 0, 0.05, 0.55, 0.3) + baselines(0))
    # The runner marks a diverged run in run.json; its rows may still say "ok" (run.json has the final word).
    write_run(root, "npo", "npo-s1", tofu_rows("npo", "removal", 1, 0.15, None, 0.0) + baselines(1), status="diverged")
    write_run(root, "idk", "idk-s2", None, status="failed")  # failed before writing any metric
    # A diverged run as the runner writes it: baselines plus a marker row for the method.
    marker = MetricRow("tofu", "tiny", "simnpo", "run", "status", None, None, 0, "", "removal", "diverged").to_dict()
    write_run(root, "simnpo", "simnpo-s0", [marker] + baselines(0), status="diverged")
    # Incomplete runs (killed before run.json): a huge ga value and a whole method that must not show up.
    write_run(root, "ga", "ga-s3", tofu_rows("ga", "removal", 3, 100.0, 100.0, 100.0) + baselines(0), run_json=False)
    write_run(root, "rmu", "rmu-s0", tofu_rows("rmu", "removal", 0, 0.5, 0.5, 0.5), run_json=False)
    muse = [MetricRow("muse", "tiny", "ga", split, metric, v, hib, 0, "", "removal").to_dict()
            for split, metric, v, hib in [("forget", "verbmem_rougeL", 0.25, False), ("retain", "knowmem_rougeL", 0.5, True), ("forget", "privleak", -3.0, None)]]
    write_run(root, "ga", "muse-ga", muse, bench="muse")
    return root


def test_long_table_has_every_complete_run_and_baselines_once(results: Path) -> None:
    df = collect_runs(results)
    assert set(df["run_id"]) == {"ga-s0", "ga-s1", "ga-s2", "npo-s0", "npo-s1", "idk-s2", "simnpo-s0", "muse-ga"}
    assert "rmu" not in set(df["method"])
    # 3 metrics x 3 seeds of the finetuned baseline, although 6 runs repeat it.
    assert len(df[df["method"] == "finetuned"]) == 9
    assert sorted(df.loc[(df["method"] == "npo") & (df["metric"] == "rouge"), "status"]) == ["diverged", "ok"]
    failed = df[df["method"] == "idk"]
    assert len(failed) == 1 and failed["status"].iloc[0] == "failed" and failed["value"].isna().all()
    assert failed["seed"].iloc[0] == 2  # read from the run's config.yaml
    assert failed["error"].iloc[0] == "CUDA out of memory"


@pytest.fixture(scope="module")
def report(results: Path) -> ReportPaths:
    # Built once: rendering the figures takes most of a second each on a slow CPU.
    return build_report(results, results.parent / "report")


def test_report_files_and_summary_values(results: Path, report: ReportPaths) -> None:
    paths = report
    long = pd.read_parquet(paths.long_parquet)
    assert len(long) == len(pd.read_csv(paths.long_csv)) == len(collect_runs(results))

    summary = pd.read_csv(paths.summary_csv, keep_default_na=False).set_index(["bench", "method"])
    ga, npo, idk = summary.loc[("tofu", "ga")], summary.loc[("tofu", "npo")], summary.loc[("tofu", "idk")]
    assert (ga["forget_quality ↑"], ga["model_utility ↑"], ga["forget/rougeL ↓"]) == ("0.2 [0.1, 0.3]", "0.6 ± 0.1", "0.5 ± 0.1")
    assert (ga["intent"], ga["status"], ga["seeds"]) == ("removal", "ok", 3)
    assert summary.loc[("tofu", "finetuned"), "forget_quality ↑"] == "2e-05 [1e-05, 3e-05]"
    assert summary.loc[("tofu", "finetuned"), "intent"] == "baseline"
    assert npo["status"] == "1 ok, 1 diverged" and npo["forget_quality ↑"] == "0.1 [0.05, 0.15]"
    assert npo["model_utility ↑"] == "0.55 (n=1)"  # the diverged seed has no utility: said, not hidden
    assert idk["status"] == "1 failed" and idk["forget_quality ↑"] == "n/a"
    simnpo = summary.loc[("tofu", "simnpo")]
    assert (simnpo["intent"], simnpo["status"], simnpo["forget/rougeL ↓"]) == ("removal", "1 diverged", "n/a")
    assert not any(c.startswith("run/") for c in summary.columns)
    muse = summary.loc[("muse", "ga")]
    assert (muse["verbmem_forget ↓"], muse["knowmem_retain ↑"], muse["privleak"]) == ("0.25", "0.5", "-3")

    md = paths.summary_md.read_text()
    assert "| bench | model | method | intent | status | seeds | forget_quality ↑ | model_utility ↑ | forget/rougeL ↓ |" in md
    assert "| tofu | tiny | ga | removal | ok | 3 | 0.2 [0.1, 0.3] | 0.6 ± 0.1 | 0.5 ± 0.1 |" in md
    assert "| tofu | tiny | npo | removal | 1 ok, 1 diverged | 2 |" in md
    assert "| tofu | tiny | idk | ? | 1 failed | 1 | n/a | n/a | n/a |" in md
    assert "rmu" not in md and "100" not in md
    # Baselines lead each model's block.
    tofu_methods = [line.split(" | ")[2] for line in md.split("## tofu")[1].splitlines() if line.startswith("| tofu")]
    assert tofu_methods == ["finetuned", "retain", "ga", "idk", "npo", "simnpo"]


def test_plots_are_written(report: ReportPaths) -> None:
    names = {p.name for p in report.plots}
    for stem in ("tofu__tiny__tradeoff", "tofu__tiny__bars", "tofu__tiny__request", "muse__tiny__bars"):
        assert {f"{stem}.png", f"{stem}.svg"} <= names
    assert "muse__tiny__tradeoff.png" not in names  # MUSE has no forget quality / model utility
    for p in report.plots:
        assert p.stat().st_size > 1000
    assert not list(report.summary_md.parent.rglob("*.tmp"))


def test_headline_patterns_and_fallback() -> None:
    pairs = [("forget", "rouge"), ("retain", "rouge"), ("summary", "forget_quality")]
    assert [c.name for c in summary_columns("tofu", pairs)] == ["forget_quality", "forget/rougeL", "retain/rougeL"]
    # A pattern matching several pairs names each column split/metric.
    # The names bench=wmdp writes (split "wmdp"/"mmlu", metric "<lm-eval task>/<metric>"): acc only, not acc_norm.
    pairs = [("wmdp", "wmdp_bio/acc"), ("wmdp", "wmdp_cyber/acc"), ("mmlu", "mmlu/acc"), ("mmlu", "mmlu/acc_norm"), ("x", "y")]
    assert [c.name for c in summary_columns("wmdp", pairs)] == ["wmdp_bio/acc", "wmdp_cyber/acc", "mmlu/acc"]
    hazard = [("wmdp", "hazard/acc"), ("wmdp", "heldout/acc")]  # bench=wmdp bench.source=fictitious
    assert [c.name for c in summary_columns("wmdp", hazard)] == ["hazard/acc", "heldout/acc"]
    # RWKU's probe levels (benchmarks/rwku/metrics.py), not the per-type AA breakdown nor the MIA rows
    pairs = [("forget", "forget_fb"), ("forget", "forget_qa"), ("forget", "forget_aa"), ("forget", "forget_aa/prefix"),
             ("neighbor", "neighbor_fb"), ("neighbor", "neighbor_qa"), ("mia", "mia_auc_loss"), ("utility", "mmlu_acc")]
    assert [c.name for c in summary_columns("rwku", pairs)] == [
        "forget_fb", "forget_qa", "forget_aa", "neighbor_fb", "neighbor_qa", "mmlu_acc"]
    assert [c.name for c in summary_columns("unknown-bench", [("b", "y"), ("a", "x")])] == ["a/x", "b/y"]
    assert Headline("*", "privleak*", "privleak").column == "privleak"


def test_cost_columns_follow_every_benchs_headlines() -> None:
    cost = [("cost", "inference_overhead"), ("cost", "seconds_per_question"), ("cost", "unlearn_seconds"),
            ("cost", "unlearn_seconds_per_step")]
    pairs = [("summary", "forget_quality"), *cost]
    assert [c.name for c in summary_columns("tofu", pairs)] == ["forget_quality", "cost/unlearn_seconds",
                                                                "cost/unlearn_seconds_per_step", "cost/inference_overhead"]
    # the fallback (no headline present) lists every pair once, cost included
    assert [c.name for c in summary_columns("unknown-bench", [("a", "x"), *cost])] == [
        "a/x", "cost/inference_overhead", "cost/seconds_per_question", "cost/unlearn_seconds",
        "cost/unlearn_seconds_per_step"]


def test_main_reports_a_lone_failed_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_run(tmp_path / "results", "idk", "idk-s0", None, status="failed")
    main([str(tmp_path / "results"), "--out", str(tmp_path / "out")])
    assert "| tofu | tiny | idk | ? | 1 failed | 1 |" in (tmp_path / "out" / "summary.md").read_text()
    assert "summary:" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main([str(tmp_path / "missing")])
    assert "results folder not found" in capsys.readouterr().err


def lr_runs(root: Path) -> Path:
    """Two npo runs at lr 0.0001 and 1e-05, as the runner writes config.yaml (floats as YAML prints them)."""
    for lr in (0.0001, 1e-05):
        run_dir = write_run(root, "npo", f"npo-lr{lr}", tofu_rows("npo", "removal", 0, 0.1, 0.5, 0.4) + baselines(0))
        atomic_write_text(run_dir / "config.yaml", f"method:\n  name: npo\n  lr: {lr}\nseed: 0\n")
    return root


def test_where_matching_nothing_fails_naming_the_values(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results, out = lr_runs(tmp_path / "results"), tmp_path / "out"
    main([str(results), "--out", str(out), "--where", "method.lr=1e-4"])  # numbers compare as numbers
    assert "1 runs from" in (out / "summary.md").read_text()
    before = (out / "summary.md").read_text()
    for condition, said in [("method.lr=0.5", "method.lr is one of: 0.0001, 1e-05"),
                            ("method.lrr=1e-4", "no run has the field 'method.lrr' (close: method.lr,")]:
        with pytest.raises(SystemExit) as exit_info:
            main([str(results), "--out", str(out), "--where", condition])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert "none of the 2 runs matches" in err and said in err
    assert (out / "summary.md").read_text() == before  # nothing was overwritten


def test_empty_results_folder_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "results").mkdir()
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path / "results")])
    assert exit_info.value.code == 2 and "no complete run to report" in capsys.readouterr().err
    assert not (tmp_path / "results" / "report").exists()


def test_report_replaces_the_old_one_whole(tmp_path: Path) -> None:
    results, out = lr_runs(tmp_path / "results"), tmp_path / "out"
    first = build_report(results, out)
    (out / "plots" / "stale__bars.png").write_bytes(b"old")
    (out / "tuning.md").write_text("kept")  # not the report's: left alone
    second = build_report(results, out, where=["method.lr=1e-05"])
    assert sorted(p.name for p in (out / "plots").iterdir()) == sorted(p.name for p in second.plots)
    assert (out / "tuning.md").read_text() == "kept" and first.summary_md == second.summary_md == out / "summary.md"
    assert sorted(p.name for p in out.iterdir()) == ["all_runs.csv", "all_runs.parquet", "plots", "summary.csv",
                                                    "summary.md", "tuning.md"]  # no temp folder left


def test_tradeoff_figure_tells_every_method_apart() -> None:
    from matplotlib.colors import to_rgba

    from unlearn_bench.report.plots import tradeoff_figure

    methods = [("finetuned", "baseline"), ("retain", "baseline")] + [(f"m{i:02d}", "removal" if i % 2 else "suppression") for i in range(16)]
    stats = pd.DataFrame([
        {"method": m, "intent": it, "status": "ok", "column": col, "mean": v, "std": 0.01, "n": 3, "median": v, "min": v / 2, "max": v * 2}
        for k, (m, it) in enumerate(methods) for col, v in (("forget_quality", 10.0 ** -k), ("model_utility", 0.5 + k / 100))])
    ax = tradeoff_figure(stats).axes[0]
    points = [c for c in ax.collections if c.get_label() and not c.get_label().startswith("_")]
    assert len(points) == len(methods)
    colors = {c.get_label().split(" ")[0]: tuple(c.get_edgecolor()[0]) for c in points}
    assert colors["finetuned"] == colors["retain"] == to_rgba("black")
    method_colors = [colors[m] for m, _ in methods[2:]]
    assert len(set(method_colors)) == 16 and to_rgba("black") not in method_colors
    markers = {c.get_label().split(" ")[0]: c.get_paths()[0].vertices.round(3).tobytes() for c in points}
    assert markers["m01"] == markers["m03"] != markers["m00"] == markers["m02"]  # intent as marker shape
    assert {t.get_text() for t in ax.texts} == {m for m, _ in methods} | {"forget quality 0.05"}  # every point labelled
    assert ax.get_yscale() == "log" and "log" in ax.get_ylabel()
