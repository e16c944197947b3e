"""The hub-model code paths with the real Llama-2 and Llama-3 tokenizers (../shared/tokenizers): prompts as the
benchmarks write them, the answer tokens their code scores, generation stopping at the end-of-turn token, and a
tiny random Llama of each real vocabulary run end to end through `model.path`."""
from __future__ import annotations

import copy
import json

import pytest
import torch

from conftest import SHARED_DATA, shared_tokenizer
from unlearn_bench.data.collate import PromptFormat, encode_example
from unlearn_bench.data.records import QA
from unlearn_bench.evaluation.lm import LM
from unlearn_bench.methods.base import IGNORE_INDEX
from unlearn_bench.benchmarks.rwku.metrics import FB, QA as QA_LEVEL, probe_prompt, render_prompt

# TOFU forget10_perturbed record 1 (locuslab/TOFU), key "1" of TOFU's forget10 log.
TOFU_Q = "What does Hsiao Yun-Hwa identify as in terms of gender?"
TOFU_A = "Hsiao Yun-Hwa is part of the LGBTQ+ community."


@pytest.fixture(scope="module")
def llama2():
    # ../shared/tokenizers/llama2 is Meta's Llama-2 tokenizer ("[INST]" -> 518 25580 29962 after BOS).
    tokenizer = shared_tokenizer("llama2")
    if tokenizer("[INST]")["input_ids"] != [1, 518, 25580, 29962]:
        raise ValueError("../shared/tokenizers/llama2 is not Meta's Llama-2 vocabulary ('[INST]' ids differ)")
    return tokenizer


@pytest.fixture(scope="module")
def llama3():
    return shared_tokenizer("llama3")


def tofu_scored_ids(tokenizer, question: str, answer: str, start: str, end: str, answer_tag: str) -> list[int]:
    """The label ids TOFU's data_module.py `convert_raw_data_to_model_format` scores: the tagged question +
    answer tokenized as one text with BOS, EOS appended, the first len(tokenize(question, add_special_tokens))
    positions masked."""
    new_question = start + question + end
    ids = tokenizer(new_question + answer_tag + answer, add_special_tokens=True)["input_ids"] + [tokenizer.eos_token_id]
    return ids[len(tokenizer.tokenize(new_question, add_special_tokens=True)):]


def scored(labels: list[int]) -> list[int]:
    return [t for t in labels if t != IGNORE_INDEX]


def tofu_records(n: int) -> list[dict]:
    path = SHARED_DATA / "tofu" / "forget10_perturbed.json"
    extra = [json.loads(line) for line in path.read_text().splitlines()[:n]] if path.is_file() else []
    return [{"question": TOFU_Q, "answer": TOFU_A}] + extra


def test_llama2_tofu_prompt_and_answer_tokens_are_tofus(llama2, compose_cfg):
    fmt = PromptFormat(compose_cfg(["model=llama2-7b-chat"]).model.prompt_format)
    for rec in tofu_records(20):
        q, a = rec["question"], rec["answer"]
        assert fmt.prompt(q, llama2) == f"[INST] {q} [/INST]"  # TOFU model_config.yaml llama2-7b tags
        ids, labels = encode_example(QA(q, a), llama2, fmt, 512)
        assert ids[0] == llama2.bos_token_id and ids[-1] == llama2.eos_token_id
        assert scored(labels) == tofu_scored_ids(llama2, q, a, "[INST] ", " [/INST]", "")
    ids, labels = encode_example(QA(TOFU_Q, TOFU_A), llama2, fmt, 512)
    # TOFU's log (eval_log_forget.json, num_token_gt of key "1") scores 20 tokens.
    log = SHARED_DATA / "tofu_eval_logs" / "llama2-7b_full" / "eval_log_forget.json"
    logged = json.loads(log.read_text(encoding="utf-8"))["num_token_gt"]["1"] if log.is_file() else 20
    assert len(scored(labels)) == logged == 20
    assert llama2.decode(scored(labels)) == TOFU_A + "</s>"  # "Hsiao", not "▁Hsiao": TOFU's answer_tag is ""


def test_phi_format_scores_the_answer_tag_as_tofu(llama2, compose_cfg):
    # Phi-1.5's own tokenizer is not among the shared ones; the Llama-2 one shows the template's token split.
    fmt = PromptFormat(compose_cfg(["model=phi-1_5"]).model.prompt_format)
    assert fmt.prompt(TOFU_Q, llama2) == f"Question: {TOFU_Q}\n"  # TOFU run_generation generates from here
    ids, labels = encode_example(QA(TOFU_Q, TOFU_A), llama2, fmt, 512)
    assert scored(labels) == tofu_scored_ids(llama2, TOFU_Q, TOFU_A, "Question: ", "\n", "Answer: ")
    assert llama2.decode(scored(labels)) == f"Answer: {TOFU_A}</s>"


def test_llama3_rwku_prompts_are_rwkus(llama3, compose_cfg):
    assert compose_cfg(["model=llama3-8b-instruct"]).model.prompt_format == "chat"
    query = "Stephen King's first novel was ___."
    # RWKU eval_forget.py: the FB template through the chat template (which trims the turn), then "Answer:".
    assert render_prompt(probe_prompt(query, FB, "", "Stephen King"), llama3) == (
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n"
        f"Please complete the blank in the following question.\nQuestion: {query}<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nAnswer:")
    assert render_prompt(probe_prompt("Who is he?", QA_LEVEL, "", "x"), llama3).endswith(
        "briefly answer the following question.\nQuestion: Who is he?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nAnswer:")


def test_llama3_chat_answers_end_in_eot_as_open_unlearning_scores_them(llama3):
    fmt = PromptFormat("chat")
    eot = llama3.convert_tokens_to_ids("<|eot_id|>")
    assert fmt.turn_end(llama3) == "<|eot_id|>" and fmt.stop_ids(llama3) == [eot]
    ids, labels = encode_example(QA(TOFU_Q, TOFU_A), llama3, fmt, 512)
    # open-unlearning preprocess_chat_instance: the whole conversation through the template, the prompt's tokens
    # (add_generation_prompt=True) masked, so the answer and its <|eot_id|> are scored; one BOS only. This first
    # Llama-3 template appends another assistant header after the turn, which we do not score: the answer ends at
    # <|eot_id|>, where generation stops.
    conversation = [{"role": "user", "content": TOFU_Q}, {"role": "assistant", "content": TOFU_A}]
    full = llama3.apply_chat_template(conversation, tokenize=False)
    prompt = llama3.apply_chat_template(conversation[:1], tokenize=False, add_generation_prompt=True)
    full_ids = llama3(full, add_special_tokens=False)["input_ids"]
    assert ids == full_ids[: full_ids.index(eot, len(full_ids) - 6) + 1]
    assert ids.count(llama3.bos_token_id) == 1
    n_prompt = len(llama3(prompt, add_special_tokens=False)["input_ids"])
    assert labels == [IGNORE_INDEX] * n_prompt + ids[n_prompt:]
    assert llama3.decode(scored(labels)) == TOFU_A + "<|eot_id|>"


def test_chat_system_prompt_and_date_reach_the_template_and_the_cache_key(llama3, compose_cfg):
    from unlearn_bench.pipeline.context import Context

    tok = copy.deepcopy(llama3)
    tok.chat_template = ("{% for m in messages %}[{{ m['role'] }}|{{ m['content'] }}]{% endfor %}"
                         "{% if add_generation_prompt %}<{{ date_string }}>{% endif %}")
    assert PromptFormat("chat", "You are a helpful assistant.").prompt("q?", tok) == \
        "[system|You are a helpful assistant.][user|q?]<10 Apr 2025>"
    cfg = compose_cfg(["model=llama3.2-1b-instruct"])
    assert (cfg.model.system_prompt, cfg.model.date_string) == ("You are a helpful assistant.", "10 Apr 2025")
    settings = Context(cfg, None, None, None, None).model_settings()
    assert settings["system_prompt"] == "You are a helpful assistant." and settings["date_string"] == "10 Apr 2025"


def tiny_llama(tokenizer, seed: int = 0):
    """A random Llama of the tokenizer's full vocabulary, small enough for a test (hidden size 16; a 128-token
    context keeps [T, 128k] logits of long RWKU texts small)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=128,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         tie_word_embeddings=True)
    return LlamaForCausalLM(config).eval()


@pytest.mark.parametrize("family,fmt,stop", [("llama2", "llama2", "</s>"), ("llama3", "chat", "<|eot_id|>")])
def test_generation_stops_at_the_end_of_turn_token(family, fmt, stop):
    tokenizer = shared_tokenizer(family)
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    model = tiny_llama(tokenizer)
    word, stop_id = tokenizer("hello", add_special_tokens=False)["input_ids"][0], tokenizer.convert_tokens_to_ids(stop)
    steps = []

    def force(module, inputs, logits):  # first new token "hello", then the stop token
        steps.append(1)
        logits[..., word if len(steps) == 1 else stop_id] += 1e4
        return logits

    model.lm_head.register_forward_hook(force)
    out = LM(model, tokenizer, PromptFormat(fmt), max_length=256).generate(["Who?"], max_new_tokens=20)
    assert out == [tokenizer.decode([word]).strip()] and len(steps) == 2  # stopped at the stop token, not after 20 tokens


def save_tiny(tmp_path, family: str):
    tokenizer = shared_tokenizer(family)
    path = tmp_path / f"tiny-{family}"
    tiny_llama(tokenizer).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def metrics_of(cfg) -> list[dict]:
    from unlearn_bench.pipeline.runner import run, run_dir_for

    assert run(cfg).status == "ok"
    run_dir, _ = run_dir_for(cfg)
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_tiny_llama2_vocab_runs_tofu_end_to_end(tmp_path, compose_cfg, smoke_overrides, shared_data):
    path = save_tiny(tmp_path, "llama2")
    cfg = compose_cfg(smoke_overrides + [
        "model=llama2-7b-chat", f"model.path={path}", "model.dtype=float32", "model.gradient_checkpointing=false",
        "model.finetune.max_steps=1", "model.finetune.batch_size=2", "model.finetune.grad_accum=1",
        "bench=tofu", f"bench.data_dir={shared_data / 'tofu'}", "bench.eval_max_examples=2", "bench.max_new_tokens=4",
        "method=ga", "method.max_steps=1", "method.batch_size=2", "eval.batch_size=2",
    ])
    rows = metrics_of(cfg)
    summary = {(r["method"], r["metric"]): r["value"] for r in rows if r["split"] == "summary"}
    assert summary[("retain", "forget_quality")] == pytest.approx(1.0)
    assert 0 <= summary[("ga", "model_utility")] <= 1


@pytest.mark.slow
def test_tiny_llama3_vocab_runs_rwku_end_to_end(tmp_path, compose_cfg, smoke_overrides, shared_data):
    path = save_tiny(tmp_path, "llama3")
    cfg = compose_cfg(smoke_overrides + [
        "model=llama3-8b-instruct", f"model.path={path}", "model.dtype=float32", "model.gradient_checkpointing=false",
        "model.finetune.epochs=0",  # RWKU unlearns the pretrained model as is (experiment=smoke would fine-tune it)
        "model.max_length=64", "bench=rwku", "bench.source=local", f"bench.data_dir={shared_data / 'rwku'}",
        "bench.targets=[1_Stephen_King]", "bench.eval_max_examples=2", "bench.retain_eval_examples=2",
        "bench.utility_tasks=[]", "bench.max_new_tokens=4", "method=ga", "method.max_steps=1", "method.batch_size=2",
        "eval.batch_size=2",
    ])
    rows = metrics_of(cfg)
    assert {r["method"] for r in rows} == {"finetuned", "retain", "ga"}
    forget = [r for r in rows if r["method"] == "ga" and r["split"].startswith("forget")]
    assert forget and all(0 <= r["value"] <= 1 for r in forget if r["value"] is not None)
    # The probes went through Llama-3's chat template as RWKU renders them.
    from unlearn_bench.pipeline.runner import run_dir_for

    lines = (run_dir_for(cfg)[0] / "generations.jsonl").read_text().splitlines()
    prompts = [json.loads(line)["prompt"] for line in lines]
    assert prompts and all(p.startswith("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n") for p in prompts)
    assert any(p.endswith("<|start_header_id|>assistant<|end_header_id|>\n\nAnswer:") for p in prompts)
