"""Report rows per configuration: a sweep's points stay apart, seeds pool, baselines follow their config,
provenance filters and groups."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from unlearn_bench.report.tables import build_report, main
from unlearn_bench.store.results import MetricRow, atomic_write_json, atomic_write_jsonl, atomic_write_text
from unlearn_bench.pipeline.runner import run, run_dir_for


def fake_run(root: Path, method: str, lr: float, split: str, seed: int, fq: float, torch_version: str = "2.13.0") -> None:
    """A finished run folder as the runner writes it, minus the ids run.json records (computed from config.yaml)."""
    run_dir = root / "tofu" / "tiny" / method / f"{method}-{lr}-{split}-{seed}"
    atomic_write_text(run_dir / "config.yaml", f"method:\n  name: {method}\n  lr: {lr}\nbench:\n  forget_split: {split}\nseed: {seed}\n")
    base = 0.01 if split == "forget01" else 0.02  # the two forget splits' baselines differ
    rows = [MetricRow("tofu", "tiny", method, "summary", "forget_quality", fq, True, seed, "", "removal"),
            MetricRow("tofu", "tiny", "finetuned", "summary", "forget_quality", base, True, seed, "", "baseline")]
    atomic_write_jsonl(run_dir / "metrics.jsonl", [r.to_dict() for r in rows])
    atomic_write_jsonl(run_dir / "generations.jsonl", [])
    atomic_write_text(run_dir / "summary.md", "")
    atomic_write_json(run_dir / "provenance.json", {"versions": {"torch": torch_version}, "device": "cpu"})
    atomic_write_json(run_dir / "run.json", {"status": "ok", "config_hash": run_dir.name, "run_id": run_dir.name})


def summary(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "summary.csv", keep_default_na=False, dtype=str)


def test_sweep_points_and_splits_are_separate_rows_with_their_baselines(tmp_path: Path) -> None:
    root = tmp_path / "results"
    for lr, fqs in ((1e-5, (0.1, 0.3)), (5e-5, (0.5, 0.7))):
        for seed, fq in enumerate(fqs):
            fake_run(root, "npo", lr, "forget01", seed, fq)
    fake_run(root, "npo", 1e-5, "forget10", 0, 0.9)
    build_report(root, tmp_path / "out")
    table = summary(tmp_path / "out")
    npo = table[table["method"] == "npo"].set_index(["method.lr", "bench.forget_split"])
    assert len(npo) == 3
    assert npo.loc[("1e-05", "forget01"), "forget_quality ↑"] == "0.2 [0.1, 0.3]"  # seeds pooled (median [min, max]), nothing else
    assert npo.loc[("5e-05", "forget01"), "forget_quality ↑"] == "0.6 [0.5, 0.7]"
    assert npo.loc[("1e-05", "forget10"), "seeds"] == "1"
    finetuned = table[table["method"] == "finetuned"].set_index("bench.forget_split")
    assert len(finetuned) == 2 and set(finetuned["method.lr"]) == {""}  # a baseline has no method fields
    assert finetuned.loc["forget01", "forget_quality ↑"] == "0.01 [0.01, 0.01]" and finetuned.loc["forget10", "forget_quality ↑"] == "0.02"


def test_controls_of_a_method_sweep_are_one_row_each(tmp_path: Path) -> None:
    # Every run of a sweep writes the diagnose stage's controls; they depend on the baselines, not the method.
    root = tmp_path / "results"
    for method, lr in (("ga", 1e-4), ("npo", 3e-4)):
        fake_run(root, method, lr, "forget01", 0, 0.1)
        run_dir = root / "tofu" / "tiny" / method / f"{method}-{lr}-forget01-0"
        control = [MetricRow("tofu", "tiny", "control:retain", "diag/none", m, 0.0, False, 0, "", "control").to_dict()
                   for m in ("knowledge_share", "ci_low", "ci_high")]
        rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        atomic_write_jsonl(run_dir / "metrics.jsonl", rows + control)
    build_report(root, tmp_path / "out")
    table = summary(tmp_path / "out")
    assert (table["method"] == "control:retain").sum() == 1
    assert "method.lr" not in table.columns  # no method differs from itself: no configuration columns


def test_where_and_by_use_provenance(tmp_path: Path) -> None:
    root = tmp_path / "results"
    fake_run(root, "ga", 1e-5, "forget01", 0, 0.1, torch_version="2.13.0")
    fake_run(root, "ga", 1e-5, "forget01", 1, 0.3, torch_version="2.5.1")
    main([str(root), "--out", str(tmp_path / "all"), "--by", "provenance.versions.torch"])
    by = summary(tmp_path / "all")
    ga = by[by["method"] == "ga"].set_index("provenance.versions.torch")
    assert ga.loc["2.13.0", "forget_quality ↑"] == "0.1" and ga.loc["2.5.1", "forget_quality ↑"] == "0.3"
    main([str(root), "--out", str(tmp_path / "new"), "--where", "provenance.versions.torch=2.1*"])
    new = summary(tmp_path / "new")
    assert new.loc[new["method"] == "ga", "forget_quality ↑"].tolist() == ["0.1"]
    with pytest.raises(ValueError, match="FIELD=PATTERN"):
        build_report(root, tmp_path / "bad", where=["torch"])


@pytest.mark.slow
def test_real_lr_sweep_gives_two_rows_and_provenance(compose_cfg, smoke_overrides, tmp_path: Path) -> None:
    for lr in ("1e-3", "3e-3"):
        cfg = compose_cfg(smoke_overrides + ["method=ga", f"method.lr={lr}", "method.max_steps=2"])
        assert run(cfg).status == "ok"
    run_dir = run_dir_for(cfg)[0]
    info = json.loads((run_dir / "run.json").read_text())
    prov = json.loads((run_dir / "provenance.json").read_text())
    assert info["config_id"] and info["baseline_id"] and info["config_id"] != info["run_id"]
    assert prov["started"] <= prov["ended"] and prov["num_processes"] == 1 and prov["device"] == "cpu"
    assert prov["versions"]["torch"] and prov["versions"]["python"] and "lm_eval" in prov["versions"]
    assert prov["data_fingerprint"] == {"files": {}, "digest": None}  # the embedded world reads no files
    build_report(tmp_path / "results", tmp_path / "report")
    table = summary(tmp_path / "report")
    ga = table[table["method"] == "ga"]
    assert sorted(ga["method.lr"]) == ["0.001", "0.003"]
    assert len(table[table["method"] == "finetuned"]) == 1  # both points share their baselines
