"""Hub-style models load from a local `save_pretrained` directory and run through the pipeline."""
from __future__ import annotations

import copy
import json

import pytest

from unlearn_bench.data.collate import PromptFormat, encode_example
from unlearn_bench.data.records import QA
from unlearn_bench.methods.base import IGNORE_INDEX
from unlearn_bench.pipeline.runner import run, run_dir_for


@pytest.mark.slow
def test_local_save_pretrained_model_runs_end_to_end(compose_cfg, smoke_overrides, saved_model_dir):
    cfg = compose_cfg(smoke_overrides + [
        "model=llama2-7b-chat", f"model.path={saved_model_dir}", "model.name=local-llama", "model.prompt_format=plain",
        "model.dtype=float32", "model.max_length=64", "model.finetune.max_steps=2", "model.finetune.batch_size=8",
        "model.finetune.grad_accum=1", "method=npo", "method.max_steps=2",
    ])
    assert run(cfg).status == "ok"
    run_dir, _ = run_dir_for(cfg)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert {r["model"] for r in rows} == {"local-llama"}


def test_prompt_formats_mask_the_prompt(tiny_lm):
    _, tokenizer = tiny_lm
    for name in ("plain", "phi", "llama2"):
        ids, labels = encode_example(QA("what is item 3?", "a dog"), tokenizer, PromptFormat(name), 64)
        n_prompt = len(PromptFormat(name).prompt_ids("what is item 3?", tokenizer))
        assert labels[:n_prompt] == [IGNORE_INDEX] * n_prompt
        assert labels[n_prompt:] == ids[n_prompt:] and ids[-1] == tokenizer.eos_token_id
        # TOFU tokenizes prompt + answer as one text (then appends EOS); so do we.
        full = PromptFormat(name).prompt("what is item 3?", tokenizer) + PromptFormat(name).answer_prefix() + "a dog"
        assert ids[:-1] == tokenizer(full)["input_ids"]


def test_chat_format_uses_the_tokenizer_template(tiny_lm):
    tok = copy.deepcopy(tiny_lm[1])  # keep the shared fixture's tokenizer untouched
    tok.chat_template = "{% for m in messages %}<s>USER: {{ m['content'] }}\nASSISTANT:{% endfor %}"
    prompt = PromptFormat("chat").prompt("hi?", tok)
    assert prompt == "<s>USER: hi?\nASSISTANT:"
    with pytest.raises(ValueError, match="unknown prompt format"):
        PromptFormat("nope").prompt("hi?", tok)


@pytest.mark.slow
def test_method_none_evaluates_model_path_as_is_against_retain_path(compose_cfg, smoke_overrides, saved_model_dir, tmp_path, tiny_lm):
    from unlearn_bench.models.tiny import build_tiny_model

    _, tokenizer = tiny_lm
    retain_dir = tmp_path / "retain-llama"
    build_tiny_model(tokenizer, hidden_size=64, num_layers=2, num_heads=2, intermediate_size=128, seed=1).save_pretrained(retain_dir)
    tokenizer.save_pretrained(retain_dir)
    overrides = smoke_overrides + ["model=llama2-7b-chat", f"model.path={saved_model_dir}", "model.name=local-llama",
                                   "model.prompt_format=plain", "model.dtype=float32", "method=none"]
    with pytest.raises(ValueError, match="model.path"):
        run(compose_cfg(smoke_overrides + ["method=none"]))
    cfg = compose_cfg(overrides + [f"model.retain_path={retain_dir}"])
    assert cfg.model.finetune.epochs > 0  # the model config fine-tunes, method=none does not
    assert run(cfg).status == "ok"
    run_dir, _ = run_dir_for(cfg)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert {(r["method"], r["intent"]) for r in rows} == {("retain", "baseline"), ("none", "none")}
    fq = {r["method"]: r["value"] for r in rows if r["metric"] == "forget_quality"}
    assert fq["retain"] == 1.0 and fq["none"] < 1.0  # two different random models
    assert not list((tmp_path / "cache").glob("finetune/*"))  # nothing was trained


@pytest.mark.slow
@pytest.mark.parametrize("with_min_k", [True, False])
def test_method_none_against_retain_logs_labels_rows_with_the_method(compose_cfg, smoke_overrides, saved_model_dir,
                                                                     tmp_path, shared_data, caplog, with_min_k):
    # An open-unlearning retain log is the reference: no warning that the model is its own, and no `retain` rows
    # (there is no retain model; before, the model's own rows were written twice, once labelled `retain`).
    logs = {"forget_truth_ratio": {"value_by_index": {str(i): {"score": 0.5 + 0.01 * i} for i in range(20)}}}
    if with_min_k:
        logs["mia_min_k"] = {"agg_value": 0.6}
    path = tmp_path / "TOFU_EVAL.json"
    path.write_text(json.dumps(logs))
    cfg = compose_cfg(smoke_overrides + [
        "bench=tofu", f"bench.data_dir={shared_data / 'tofu'}", f"bench.retain_logs_path={path}", "model=llama2-7b-chat",
        f"model.path={saved_model_dir}", "model.name=local-llama", "model.prompt_format=plain", "model.dtype=float32",
        "method=none"])
    with caplog.at_level("WARNING", logger="unlearn_bench.pipeline.runner"):
        assert run(cfg).status == "ok"
    warnings = [r.getMessage() for r in caplog.records if r.name == "unlearn_bench.pipeline.runner"]
    if with_min_k:
        assert warnings == []
    else:  # PrivLeak has no reference in the log: that part compares the model with itself, and says so
        assert len(warnings) == 1 and "no mia_min_k" in warnings[0]
    run_dir, _ = run_dir_for(cfg)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert {(r["method"], r["intent"]) for r in rows} == {("none", "none")}
    value = {r["metric"]: r["value"] for r in rows}
    assert 0 < value["forget_quality"] < 1  # against the log's truth ratios, not the model's own
    assert (value.get("auc_min_k_retain_logs") == 0.6) == with_min_k
