"""The inference-time methods: retrieval guard, in-context unlearning, logit difference; hand-made inputs."""
from __future__ import annotations

import copy
import json
import math

import pytest
import torch

from unlearn_bench.benchmarks.base import BenchData
from unlearn_bench.data.collate import PromptFormat
from unlearn_bench.data.records import QA
from unlearn_bench.evaluation.lm import LM
from unlearn_bench.methods.icul import ICUL
from unlearn_bench.methods.lexical_index import LexicalIndex
from unlearn_bench.methods.rag_guard import RagGuard
from unlearn_bench.methods.uld import ULD, logit_difference

RETAIN = [QA(f"What genre does {name} write?", f"{name} writes poetry.") for name in ("Mia Holt", "Ravi Sen", "Olga Dunn")]


def request(*names: str) -> BenchData:
    forget = [QA(f"{q} {name}?", f"{name} {a}.") for name in names
              for q, a in (("What genre does", "writes crime novels"), ("Where was", "was born in Lisbon"))]
    return BenchData(target_train=[], retain_train=[], forget=forget, retain=RETAIN,
                     forget_perturbed=[[f"wrong {i}"] for i in range(len(forget))])


def test_index_ranks_by_what_singles_a_question_out():
    index = LexicalIndex()
    with pytest.raises(ValueError, match="empty"):
        index.search(["anything"], 1)
    index.add(["What genre does Anna Berg write?", "Where was Tom Li born?"], background=[q.question for q in RETAIN])
    indices, similarity = index.search(["Which genre does Anna Berg write in?", "What genre does Mia Holt write?"], 2)
    assert indices[0, 0] == 0 and similarity[0, 0] > 0.8
    # shares only the template with forget questions: the retain background makes "genre ... write" weigh little
    assert similarity[1, 0] < 0.5


def test_guard_index_grows_per_request_and_guards_hits_only():
    guard = RagGuard(threshold=0.5)
    guard.fit(None, None, request("Anna Berg"))
    assert len(guard.index) == 2
    assert guard.hits(["Where was Anna Berg born?", "Where was Tom Li born?"]).tolist() == [True, False]
    guard.fit(None, None, request("Tom Li"))
    assert len(guard.index) == 4  # the second request added its questions, the first's stay
    assert guard.hits(["Where was Anna Berg born?", "Where was Tom Li born?"]).tolist() == [True, True]
    prompt = guard.wrapper(None, None).prompt
    assert prompt("Where was Tom Li born?") == f"{guard.instruction} Where was Tom Li born?"
    assert prompt("What is the capital of Peru?") == "What is the capital of Peru?"
    withhold = RagGuard(action="withhold")
    withhold.fit(None, None, request("Anna Berg"))
    assert withhold.guard("Where was Anna Berg born?") == withhold.instruction
    rows = {m.split: m.value for m in guard.question_metrics(
        {"forget": ["Where was Tom Li born?", "What genre does Anna Berg write?"],
         "retain": ["What genre does Mia Holt write?", "Where was Tom Li born?", "Where was Olga Dunn born?",
                    "Where was Ravi Sen born?"]})}
    assert rows == {"forget": 1.0, "retain": 0.25}
    with pytest.raises(ValueError, match="action"):
        RagGuard(action="refuse")


def test_icul_context_holds_wrong_answers_then_right_ones_within_the_window(tiny_lm):
    model, tok = tiny_lm
    icul = ICUL(n_forget=1, n_correct=1, answer_tokens=8)
    icul.fit(model, tok, request("Anna Berg"), max_length=64, seed=0)
    icul.fit(model, tok, request("Tom Li"), max_length=64, seed=0)
    assert len(icul.pool) == 4 and len(icul.wrong) == 4  # the pool grew with the second request
    question = "Where was Tom Li born?"
    shown = icul.demonstrations(question)
    assert shown[0] == "Where was Tom Li? wrong 1"  # the most similar forget item, with its wrong answer
    assert shown[1] in {f"{q.question} {q.answer}" for q in RETAIN}
    prompt = icul.wrapper(model, tok).prompt
    assert prompt(question) == " ".join(shown + [question])
    # a window too small for any example leaves the question alone; one in between drops examples first
    icul.window = len(tok(question)["input_ids"]) + icul.answer_tokens
    assert icul.wrapper(model, tok).prompt(question) == question
    icul.window = len(tok(" ".join(shown[1:] + [question]))["input_ids"]) + icul.answer_tokens
    assert icul.wrapper(model, tok).prompt(question) == " ".join(shown[1:] + [question])


def test_assistant_logits_subtracted_on_a_hand_made_example():
    target, assistant = torch.tensor([[[1.0, 2.0, 3.0]]]), torch.tensor([[[0.5, 1.0, -1.0]]])
    assert logit_difference(target, assistant, 2.0, 0.0).tolist() == [[[0.0, 0.0, 5.0]]]
    # filter 0.5: only the top token has probability >= half the top's; the others keep the target's log-prob
    logp = torch.log_softmax(target, -1)
    expected = logp + torch.tensor([0.0, 0.0, 2.0])
    assert torch.allclose(logit_difference(target, assistant, 2.0, 0.5), expected)
    with pytest.raises(ValueError, match="tokenizer"):
        logit_difference(target, torch.zeros(1, 1, 4), 1.0, 0.0)


def test_uld_wrapper_subtracts_the_assistant_in_every_lm_call(tiny_lm):
    model, tok = tiny_lm
    uld = ULD(alpha=0.5, top_logit_filter=0.0)
    uld.assistant = copy.deepcopy(model)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in uld.assistant.parameters():
            p.add_(0.1 * torch.randn_like(p))
    lm = LM(model, tok, PromptFormat(), 64, 4, uld.wrapper(model, tok))
    ids = torch.tensor([tok("what is item 1? item 1 is a dog.")["input_ids"]])
    mask = torch.ones_like(ids)
    with torch.no_grad():
        expected = model(input_ids=ids, attention_mask=mask).logits - 0.5 * uld.assistant(input_ids=ids, attention_mask=mask).logits
    (_, _, logits), = list(lm.forward_batches([(ids[0].tolist(), ids[0].tolist())]))
    assert torch.allclose(logits, expected, atol=1e-5)


def test_uld_fit_trains_the_assistant_and_leaves_the_target(tiny_lm):
    from accelerate import Accelerator

    from unlearn_bench.training.settings import OptimSettings

    model, tok = tiny_lm
    before = {k: v.clone() for k, v in model.state_dict().items()}
    uld = ULD()
    with pytest.raises(RuntimeError, match="before fit"):
        uld.wrapper(model, tok)
    settings = OptimSettings(lr=1e-2, max_steps=3, batch_size=2)
    uld.fit(model, tok, request("Anna Berg"), fmt=PromptFormat(), max_length=64, seed=0,
            accelerator=Accelerator(cpu=True), settings=settings)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assistant = uld.assistant.state_dict()
    assert any(not torch.equal(before[k], assistant[k]) for k in before)
    assert not any(p.requires_grad for p in uld.assistant.parameters())


def test_smoke_run_of_each_inference_time_method(compose_cfg, smoke_overrides):
    from unlearn_bench.pipeline.runner import run, run_dir_for

    for method in ("rag_guard", "icul", "uld"):  # one test: the three runs share the fine-tuned models
        cfg = compose_cfg(smoke_overrides + [f"method={method}", "eval.diagnostics=[sequential]",
                                             "eval.diag.sequential.requests=2", "eval.cost.questions=2",
                                             "eval.cost.repeats=1"])
        assert run(cfg).status == "ok"
        run_dir, _ = run_dir_for(cfg)
        rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        mine = {(r["split"], r["metric"]): r["value"] for r in rows if r["method"] == method}
        assert {r["intent"] for r in rows if r["method"] == method} == {"suppression"}
        assert mine[("cost", "unlearn_seconds")] >= 0 and mine[("cost", "inference_overhead")] > 0
        assert ("diag/sequential/request_2", "forget_quality") in mine
        assert math.isfinite(mine[("summary", "forget_quality")])
        assert (run_dir / "train_history.jsonl").read_text() == ""  # the target model is never trained
    # the guard (run first) indexed every forget question
    guard_rows = [json.loads(line) for d in run_dir.parents[1].glob("rag_guard/*")
                  for line in (d / "metrics.jsonl").read_text().splitlines()]
    hit = {r["split"]: r["value"] for r in guard_rows if r["metric"] == "guard_hit_rate"}
    assert hit["forget"] == 1.0 and 0 <= hit["world_facts"] <= 1
