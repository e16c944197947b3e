"""The embedded default end to end, at smoke size: rows, files, cache reuse, resume, divergence."""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from unlearn_bench.pipeline.runner import run, run_dir_for

pytestmark = pytest.mark.slow


def rows_of(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def value(rows: list[dict], method: str, split: str, metric: str) -> float:
    (v,) = [r["value"] for r in rows if r["method"] == method and r["split"] == split and r["metric"] == metric]
    return v


def test_smoke_run_cache_and_resume(compose_cfg, smoke_overrides, caplog):
    caplog.set_level(logging.INFO)
    cfg = compose_cfg(smoke_overrides + ["method=ga", "method.lr=1e-3", "method.max_steps=6"])
    record = run(cfg)
    assert record.status == "ok"
    run_dir, _ = run_dir_for(cfg)
    for name in ("config.yaml", "metrics.jsonl", "generations.jsonl", "summary.md", "run.json", "eval_log_forget.json"):
        assert (run_dir / name).is_file(), name
    rows = rows_of(run_dir)
    assert {r["method"] for r in rows} == {"finetuned", "retain", "ga"}
    assert {r["intent"] for r in rows if r["method"] == "ga"} == {"removal"}
    metrics = {(r["split"], r["metric"]) for r in rows if r["method"] == "ga"}
    assert {("summary", "forget_quality"), ("summary", "model_utility"), ("forget", "rouge"), ("forget", "prob"),
            ("forget", "truth_ratio"), ("retain", "prob"), ("world_facts", "truth_ratio")} <= metrics
    # Gradient ascent lowers the probability of the forget answers.
    assert value(rows, "ga", "forget", "prob") < value(rows, "finetuned", "forget", "prob")
    assert value(rows, "retain", "summary", "forget_quality") == pytest.approx(1.0)
    assert "ga" in (run_dir / "summary.md").read_text()

    # A second method reuses both fine-tuned models and their evaluations from the cache, here a copy of it
    # elsewhere (no key holds a cache path).
    moved = shutil.copytree(Path(cfg.paths.cache_dir), Path(cfg.paths.cache_dir).parent / "moved" / "cache")
    caplog.clear()
    run(compose_cfg(smoke_overrides + ["method=graddiff", "method.max_steps=2", f"paths.cache_dir={moved}"]))
    assert caplog.text.count("finetune: reusing cached") == 2 and caplog.text.count("eval: reusing cached") == 2
    assert "target model" in caplog.text and "reused from cache" in caplog.text

    # Rerunning a finished config skips it; force=true redoes it.
    caplog.clear()
    run(cfg)
    assert "already exist" in caplog.text
    (run_dir / "run.json").unlink()  # an interrupted run has no run.json: it is redone
    caplog.clear()
    assert run(cfg).status == "ok" and "already exist" not in caplog.text


def test_nonfinite_loss_stops_the_run_as_diverged(compose_cfg, smoke_overrides):
    cfg = compose_cfg(smoke_overrides + ["method=ga", "method.lr=1e30", "method.max_steps=6", "method.max_grad_norm=0"])
    assert run(cfg).status == "diverged"
    run_dir, _ = run_dir_for(cfg)
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "diverged" and "non-finite" in info["error"]
    assert any(r["status"] == "diverged" for r in rows_of(run_dir))
    assert {"finetuned", "retain"} <= {r["method"] for r in rows_of(run_dir)}  # baselines still recorded


def test_empty_forget_split_is_a_clear_error(compose_cfg, smoke_overrides):
    from unlearn_bench.benchmarks.base import BenchData
    from unlearn_bench.pipeline.stages import check_data

    with pytest.raises(ValueError, match="forget split is empty"):
        check_data(BenchData([], [], [], []))


def test_forget_vs_holdout_auc_rows_separate_a_memorising_model(tiny_lm):
    """MIA AUC per attack: 1.0 when the model has memorised the forget answers and not the holdout ones."""
    from unlearn_bench.data.collate import PromptFormat
    from unlearn_bench.data.records import QA
    from unlearn_bench.evaluation.lm import LM
    from unlearn_bench.evaluation.mia_eval import forget_holdout_auc_rows
    from unlearn_bench.methods.base import LossOutput, batch_nll
    from unlearn_bench.data.batching import finetune_epochs
    from unlearn_bench.runtime.device import make_accelerator
    from unlearn_bench.training.loop import train
    from unlearn_bench.training.settings import OptimSettings
    import copy

    model, tok = copy.deepcopy(tiny_lm[0]), tiny_lm[1]
    fmt = PromptFormat("plain")
    forget = [QA(f"what is item {i}?", f"item {i} is a {w}") for i, w in enumerate(["cat", "dog", "tree", "river"] * 2)]
    holdout = [QA(f"what is item {i}?", f"item {i} is a {w}") for i, w in enumerate(["river", "cat", "dog", "tree"] * 2, start=100)]
    train(model, lambda m, b: LossOutput(batch_nll(m, b.forget)), finetune_epochs(forget, tok, fmt, 64, 8, 0), 1,
          OptimSettings(lr=3e-3, epochs=60, batch_size=8), make_accelerator(cpu=True))
    rows = {m.metric: m.value for m in forget_holdout_auc_rows(LM(model, tok, fmt, 64, 8), forget, holdout)}
    assert set(rows) == {"auc_loss", "auc_zlib", "auc_min_k", "auc_min_k_plus_plus"}
    assert rows["auc_loss"] == 1.0 and rows["auc_min_k"] > 0.9


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_training_follows_the_configured_schedule(tiny_lm, schedule):
    import copy
    import math

    from unlearn_bench.data.batching import finetune_epochs
    from unlearn_bench.data.collate import PromptFormat
    from unlearn_bench.data.records import QA
    from unlearn_bench.runtime.device import make_accelerator
    from unlearn_bench.methods.base import LossOutput, batch_nll
    from unlearn_bench.training.loop import train
    from unlearn_bench.training.settings import OptimSettings

    model, tok = copy.deepcopy(tiny_lm[0]), tiny_lm[1]
    data = [QA(f"q{i}", f"a{i}") for i in range(8)]
    settings = OptimSettings(lr=1e-3, epochs=10, batch_size=8, warmup_ratio=0.2, scheduler=schedule)
    result = train(model, lambda m, b: LossOutput(batch_nll(m, b.forget)), finetune_epochs(data, tok, PromptFormat(), 32, 8, 0),
                   1, settings, make_accelerator(cpu=True))
    lrs = [h["lr"] for h in result.history]
    assert len(lrs) == 10 and lrs[0] == 0.0 and lrs[2] == pytest.approx(1e-3)  # two warmup steps, then the peak
    progress = [(s - 2) / 8 for s in range(2, 10)]
    expected = [1e-3 * (1 - p) if schedule == "linear" else 1e-3 * 0.5 * (1 + math.cos(math.pi * p)) for p in progress]
    assert lrs[2:] == pytest.approx(expected)
