"""AltPO's alternates: the prompts open-unlearning's generate.py writes, the cut at its stop strings, sampling by the
target model, the check at start that the forget set has questions, and the cache that a second run reuses."""
from __future__ import annotations

import copy
import json
import logging
from pathlib import Path

import pytest
import torch

from unlearn_bench.benchmarks.base import BenchData
from unlearn_bench.data.collate import PromptFormat
from unlearn_bench.data.records import QA
from unlearn_bench.evaluation.lm import LM
from unlearn_bench.methods.altpo import INSTRUCTION, alternate_prompt, cut_at_stop_strings
from unlearn_bench.methods.registry import method_class
from unlearn_bench.pipeline import validation
from unlearn_bench.training import recipes

ITEM = QA("Where was Basil Mahfouz Al-Kuwaiti born?", "In Kuwait City.")


def test_prompts_are_generate_pys(tiny_lm):
    # community/methods/AltPO/generate.py INST_QAS_TEMPLATE_QUERY (Llama-2): "Answer:" and the answer unspaced
    assert alternate_prompt(ITEM, "llama2", "10 Apr 2025", None) == (
        "[INST] Question: Where was Basil Mahfouz Al-Kuwaiti born?\nAnswer:In Kuwait City.\n"
        "Now write another version of the answer with some alternate plausible facts that change answer details.\n"
        " [/INST] Alternate Answer :")
    # INST_QAS_LLAMA3_TEMPLATE_QUERY's turns, through the model's own template (a stand-in one here)
    tokenizer = copy.deepcopy(tiny_lm[1])
    tokenizer.chat_template = ("{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}</{{ m['role'] }}>{% endfor %}"
                               "{% if add_generation_prompt %}<assistant>{% endif %}")
    user = f"Question: {ITEM.question}\nAnswer: {ITEM.answer}\n{INSTRUCTION}"
    assert alternate_prompt(ITEM, "chat", "10 Apr 2025", tokenizer) == (
        f"<system>You are a helpful AI assistant</system><user>{user}</user><assistant>Alternate Answer :")
    assert alternate_prompt(ITEM, "plain", "10 Apr 2025", tiny_lm[1]) == f"{user}\nAlternate Answer :"


def test_alternates_are_cut_at_generate_yamls_stop_strings():
    assert cut_at_stop_strings(" In Paris, France.\nQuestion: Where") == "In Paris, France."
    assert cut_at_stop_strings("Born in Oslo. Q: and") == "Born in Oslo."
    assert cut_at_stop_strings("Question: x") == ""  # kept: generate.py filters nothing


def test_the_target_samples_alternates_per_question(tiny_lm):
    model, tokenizer = tiny_lm
    lm = LM(model, tokenizer, PromptFormat("plain"), max_length=64, batch_size=4)
    forget = [ITEM, QA("What is item 3?", "item 3 is a tree.")]
    altpo = method_class("altpo")(alternates_per_question=3, alternate_max_new_tokens=8)
    torch.manual_seed(0)
    first = altpo.generate_alternates(lm, forget)
    torch.manual_seed(0)
    assert altpo.generate_alternates(lm, forget) == first  # seeded: the same draws
    assert [len(a) for a in first] == [3, 3]
    assert len({a for alts in first for a in alts}) > 1  # sampled, not greedy
    assert all("Question:" not in a and "Q:" not in a for alts in first for a in alts)


def test_generated_alternates_need_forget_questions_at_start():
    altpo = method_class("altpo")()
    qa = BenchData([], [], [ITEM], [ITEM])
    validation.check_method_fits(altpo, "altpo", qa)  # generated later, from the questions
    with pytest.raises(ValueError, match="altpo.*alternate answers the target model writes"):
        recipes.method_alternates(altpo, "altpo", qa)  # ... and needed by then
    raw = BenchData([], [], [QA(None, "Some article text.")], [ITEM])
    with pytest.raises(ValueError, match="method 'altpo'.*1 of the 1 forget records are raw text"):
        validation.check_method_fits(altpo, "altpo", raw)


def test_pdu_needs_retain_data_at_start():
    pdu = method_class("pdu")()
    validation.check_method_fits(pdu, "pdu", BenchData([], [], [ITEM], [ITEM]))
    with pytest.raises(ValueError, match="method 'pdu' needs retain data"):
        validation.check_method_fits(pdu, "pdu", BenchData([], [], [ITEM], []))


@pytest.mark.slow
def test_altpo_end_to_end_generates_once_per_target(compose_cfg, smoke_overrides, caplog):
    from unlearn_bench.pipeline.runner import run, run_dir_for

    caplog.set_level(logging.INFO)
    base = smoke_overrides + ["method=altpo", "method.alternates_per_question=2", "method.alternate_max_new_tokens=8"]
    for lr in ("1e-3", "3e-4"):
        cfg = compose_cfg(base + [f"method.lr={lr}"])
        assert run(cfg).status == "ok"
    (entry,) = (Path(cfg.paths.cache_dir) / "alternates").iterdir()
    records = json.loads((entry / "alternates.json").read_text())
    assert records and all(len(r["alternates"]) == 2 and r["question"] for r in records)
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("generated alternates")]
    assert [m.endswith("(written)") for m in logged] == [True, False] and logged[1].endswith("(reused from cache)")
    history = [json.loads(line) for line in (run_dir_for(cfg)[0] / "train_history.jsonl").read_text().splitlines()]
    assert all("alternate_log_ratio" in step for step in history)
