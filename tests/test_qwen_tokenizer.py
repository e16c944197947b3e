"""The Qwen chat path with the real Qwen3 tokenizer (../shared/tokenizers/qwen3): the prompt its template renders
for the qwen configs, the answer tokens scored (through <|im_end|>, after the template's empty think block), generation
stopping at <|im_end|>, and tiny random Qwen2 and Qwen3 models of that vocabulary run end to end through `model.path`."""
from __future__ import annotations

import json

import pytest
import torch

from conftest import shared_tokenizer
from unlearn_bench.data.collate import PromptFormat, encode_example
from unlearn_bench.data.records import QA
from unlearn_bench.evaluation.lm import LM
from unlearn_bench.methods.base import IGNORE_INDEX

Q, A = "What does Hsiao Yun-Hwa identify as in terms of gender?", "Hsiao Yun-Hwa is part of the LGBTQ+ community."
IM_END = 151645  # <|im_end|>: the tokenizer's EOS and the template's end of turn (../shared/tokenizers/README.md)


@pytest.fixture(scope="module")
def qwen3():
    return shared_tokenizer("qwen3")


def fmt_of(cfg) -> PromptFormat:
    return PromptFormat(cfg.model.prompt_format, cfg.model.system_prompt, cfg.model.date_string)


@pytest.mark.parametrize("name", ["qwen3-0.6b", "qwen3-1.7b", "qwen3-4b", "qwen3-8b"])
def test_qwen3_prompt_is_the_templates_non_thinking_turn(qwen3, compose_cfg, name):
    cfg = compose_cfg([f"model={name}"])
    # Qwen3's template with enable_thinking=False: ChatML turns, then an empty think block opening the answer.
    assert fmt_of(cfg).prompt(Q, qwen3) == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        f"<|im_start|>user\n{Q}<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n")


def test_qwen3_answer_tokens_are_the_templates_assistant_turn(qwen3, compose_cfg):
    fmt = fmt_of(compose_cfg(["model=qwen3-8b"]))
    assert fmt.turn_end(qwen3) == "<|im_end|>" and fmt.stop_ids(qwen3) == [IM_END]
    ids, labels = encode_example(QA(Q, A), qwen3, fmt, 512)
    # The template's own rendering of the conversation (an assistant turn without reasoning gets the empty think
    # block), up to and including the answer's <|im_end|>: the scored tokens are the answer and its end of turn.
    conversation = [{"role": "system", "content": fmt.system_prompt}, {"role": "user", "content": Q},
                    {"role": "assistant", "content": A}]
    full = qwen3(qwen3.apply_chat_template(conversation, tokenize=False), add_special_tokens=False)["input_ids"]
    assert ids == full[: full.index(IM_END, len(full) - 3) + 1]
    n_prompt = len(qwen3(fmt.prompt(Q, qwen3), add_special_tokens=False)["input_ids"])
    assert labels == [IGNORE_INDEX] * n_prompt + ids[n_prompt:]
    assert qwen3.decode([t for t in labels if t != IGNORE_INDEX]) == A + "<|im_end|>"
    assert qwen3.bos_token_id is None and ids[0] == qwen3.convert_tokens_to_ids("<|im_start|>")  # no BOS added


def tiny_qwen(tokenizer, arch: str):
    """A random Qwen2 or Qwen3 of the tokenizer's full vocabulary, small enough for a test."""
    from transformers import Qwen2Config, Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM

    config_cls, model_cls = {"qwen2": (Qwen2Config, Qwen2ForCausalLM), "qwen3": (Qwen3Config, Qwen3ForCausalLM)}[arch]
    torch.manual_seed(0)
    config = config_cls(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                        num_attention_heads=2, num_key_value_heads=2, head_dim=8, max_position_embeddings=256,
                        eos_token_id=IM_END, pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True)
    return model_cls(config).eval()


@pytest.mark.parametrize("arch", ["qwen2", "qwen3"])
def test_generation_stops_at_im_end(qwen3, arch):
    model = tiny_qwen(qwen3, arch)
    word = qwen3("hello", add_special_tokens=False)["input_ids"][0]
    steps = []

    def force(module, inputs, logits):  # first new token "hello", then <|im_end|>
        steps.append(1)
        logits[..., word if len(steps) == 1 else IM_END] += 1e4
        return logits

    model.lm_head.register_forward_hook(force)
    out = LM(model, qwen3, PromptFormat("chat", "You are a helpful assistant."), max_length=256).generate(["Who?"], 20)
    assert out == ["hello"] and len(steps) == 2  # stopped at <|im_end|>, not after 20 tokens


@pytest.mark.slow
@pytest.mark.parametrize("arch, name", [("qwen2", "qwen2.5-1.5b-instruct"), ("qwen3", "qwen3-0.6b")])
def test_tiny_qwen_vocab_runs_tofu_end_to_end(tmp_path, compose_cfg, smoke_overrides, shared_data, qwen3, arch, name):
    from unlearn_bench.pipeline.runner import run, run_dir_for

    path = tmp_path / f"tiny-{arch}"
    tiny_qwen(qwen3, arch).save_pretrained(path)
    qwen3.save_pretrained(path)  # Qwen2.5's ids are the first 151,665 of these; its template differs (qwen3's here)
    cfg = compose_cfg(smoke_overrides + [
        f"model={name}", f"model.path={path}", "model.dtype=float32", "model.gradient_checkpointing=false",
        "model.finetune.max_steps=1", "model.finetune.batch_size=2", "model.finetune.grad_accum=1",
        "bench=tofu", f"bench.data_dir={shared_data / 'tofu'}", "bench.eval_max_examples=2", "bench.max_new_tokens=4",
        "method=ga", "method.max_steps=1", "method.batch_size=2", "eval.batch_size=2",
    ])
    assert run(cfg).status == "ok"
    run_dir, _ = run_dir_for(cfg)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    summary = {(r["method"], r["metric"]): r["value"] for r in rows if r["split"] == "summary"}
    assert summary[("retain", "forget_quality")] == pytest.approx(1.0) and 0 <= summary[("ga", "model_utility")] <= 1
