"""eval.utility: lm-eval utility rows (offline MMLU sample) on the fine-tuned, retain and unlearned models of any
run, scored in memory (the unlearned model is never saved)."""
from __future__ import annotations

import json

from omegaconf import OmegaConf

from unlearn_bench.config import EvalConfig, UtilityEvalConfig
from unlearn_bench.pipeline.runner import run, run_dir_for
from unlearn_bench.pipeline.utility import utility_metrics


def test_utility_rows_for_every_model_of_a_run(compose_cfg, smoke_overrides, shared_data, tmp_path):
    cfg = compose_cfg(smoke_overrides + [
        "method=ga", "method.max_steps=2", "eval.utility.tasks=[mmlu_college_biology]",
        f"eval.utility.data_dir={shared_data}", "eval.utility.limit=5",
    ])
    assert run(cfg).status == "ok"
    run_dir, _ = run_dir_for(cfg)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    utility = [r for r in rows if r["split"] == "utility"]
    assert {r["method"] for r in utility} == {"finetuned", "retain", "ga"}
    assert {(r["metric"], r["higher_is_better"]) for r in utility} == {("mmlu_college_biology/acc", True)}
    assert all(0 <= r["value"] <= 1 for r in utility)
    assert any(r["split"] == "forget" for r in rows if r["method"] == "ga")  # the bench's own rows stay
    # The unlearned model was scored in memory: the only saved models are the cached target and retain.
    saved = {p.parent for p in tmp_path.rglob("*.safetensors")}
    assert len(saved) == 2 and all("finetune" in str(p) for p in saved)


def test_no_tasks_no_rows_and_rows_name_task_and_metric(tiny_lm, shared_data):
    model, tok = tiny_lm
    off = OmegaConf.structured(EvalConfig())
    assert utility_metrics(model, tok, off) == []
    on = OmegaConf.structured(EvalConfig(batch_size=4, utility=UtilityEvalConfig(
        tasks=["mmlu_computer_security"], data_dir=str(shared_data), limit=3)))
    model.train()
    (m,) = utility_metrics(model, tok, on)
    assert (m.split, m.metric, m.higher_is_better) == ("utility", "mmlu_computer_security/acc", True)
    assert m.value in (0.0, 1 / 3, 2 / 3, 1.0)
    assert model.training  # a training loop calling it keeps its mode
