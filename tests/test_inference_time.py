"""The inference-time method interface: zero training steps, and the wrapper between every evaluator and the
unchanged weights (a probe method counts which evaluators its prompt transform and logits hook serve)."""
from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import pytest
import torch
from omegaconf import OmegaConf

from unlearn_bench.pipeline import runner
from unlearn_bench.training import recipes
from unlearn_bench.benchmarks.base import BenchData
from unlearn_bench.data.collate import PromptFormat
from unlearn_bench.data.records import QA
from unlearn_bench.evaluation.lm import LM
from unlearn_bench.evaluation.wrapper import InferenceWrapper
from unlearn_bench.methods import registry
from unlearn_bench.methods.base import is_inference_time

# Files whose functions call the model on the evaluators' behalf: a hook call is attributed to the outermost
# (the sequential diagnostic reaches the model through the bench's qa_eval).
EVALUATORS = ("qa_eval.py", "mia_eval.py", "lm_eval.py", "rephrase.py", "sampling.py", "sequential.py")


def caller() -> str:
    """The outermost evaluator file on the stack ('' when none)."""
    found, frame = "", sys._getframe(2)
    while frame is not None:
        name = Path(frame.f_code.co_filename).name
        if name in EVALUATORS and "unlearn_bench" in frame.f_code.co_filename:
            found = name
        frame = frame.f_back
    return found


@dataclass
class Probe:
    """An inference-time method that changes nothing and counts: fit calls, and prompt / logits calls per
    evaluator."""

    intent: ClassVar[str] = "suppression"
    inference_time: ClassVar[bool] = True
    needs_reference: ClassVar[bool] = False
    alternate: ClassVar[str | None] = None
    fitted: list[int] = field(default_factory=list)  # size of each request's forget set
    prompts: Counter = field(default_factory=Counter)
    logits: Counter = field(default_factory=Counter)

    def fit(self, model, tokenizer, data, **_) -> None:
        self.fitted.append(len(data.forget))

    def wrapper(self, model, tokenizer) -> InferenceWrapper:
        def prompt(text: str) -> str:
            self.prompts[caller()] += 1
            return text

        def logits(inputs, values: torch.Tensor) -> torch.Tensor:
            self.logits[caller()] += 1
            return values

        return InferenceWrapper(prompt, logits)


def probe_run(compose_cfg, overrides, monkeypatch) -> tuple[Probe, object, list[dict]]:
    """A smoke run whose method is one shared Probe (the runner and the sequential diagnostic get the same)."""
    probe = Probe()
    monkeypatch.setattr(runner, "build_method", lambda method_cfg: probe)
    ga, method_class = registry.method_class("ga"), registry.method_class  # the start check reads ga's schema
    monkeypatch.setattr(registry, "method_class", lambda name: ga if name == "probe" else method_class(name))
    cfg = compose_cfg(overrides + ["method=ga"])
    OmegaConf.update(cfg, "method.name", "probe")
    OmegaConf.update(cfg, "method.intent", "suppression")
    record = runner.run(cfg)
    run_dir, _ = runner.run_dir_for(cfg)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert (run_dir / "train_history.jsonl").read_text() == ""  # zero training steps recorded
    return probe, record, rows


def test_wrapper_reaches_the_bench_and_the_black_box_diagnostics(compose_cfg, smoke_overrides, monkeypatch):
    probe, record, rows = probe_run(compose_cfg, smoke_overrides + [
        "eval.diagnostics=[rephrase,sampling,sequential]", "eval.diag.sampling.k=1",
        "eval.diag.sequential.requests=2"], monkeypatch)
    assert record.status == "ok"
    # fitted once by the run on the whole forget set, then request by request by the sequential diagnostic
    n = probe.fitted[0]
    assert len(probe.fitted) == 3 and sum(probe.fitted[1:]) == n
    for evaluator in ("qa_eval.py", "mia_eval.py", "rephrase.py", "sampling.py", "sequential.py"):
        assert probe.logits[evaluator] > 0, evaluator
    for evaluator in ("qa_eval.py", "mia_eval.py", "rephrase.py", "sampling.py", "sequential.py"):
        assert probe.prompts[evaluator] > 0, evaluator
    assert {r["intent"] for r in rows if r["method"] == "probe"} == {"suppression"}
    assert any(r["split"] == "diag/sequential/request_2" for r in rows)


def test_wrapper_reaches_lm_eval_utility(compose_cfg, smoke_overrides, shared_data, monkeypatch):
    probe, record, rows = probe_run(compose_cfg, smoke_overrides + [
        "eval.utility.tasks=[mmlu_college_biology]", f"eval.utility.data_dir={shared_data}", "eval.utility.limit=3"],
        monkeypatch)
    assert record.status == "ok"
    assert probe.prompts["lm_eval.py"] > 0 and probe.logits["lm_eval.py"] > 0
    # an identity wrapper scores exactly as the bare model: the fine-tuned target is the same weights
    utility = {r["method"]: r["value"] for r in rows if r["split"] == "utility"}
    assert utility["probe"] == utility["finetuned"]


def test_unlearn_fits_an_inference_time_method_without_training(tiny_lm):
    from accelerate import Accelerator

    model, tok = tiny_lm
    before = {k: v.clone() for k, v in model.state_dict().items()}
    forget = [QA("what is item 1?", "item 1 is a dog.")] * 3
    data = BenchData(target_train=forget, retain_train=[], forget=forget, retain=[QA("what is item 2?", "a tree.")])
    method_cfg = OmegaConf.create({"name": "probe", "lr": 1.0, "epochs": 5, "max_steps": 0, "batch_size": 2,
                                   "grad_accum": 1, "warmup_ratio": 0.0, "weight_decay": 0.0, "max_grad_norm": 1.0,
                                   "scheduler": "linear"})
    probe = Probe()
    assert is_inference_time(probe)
    result = recipes.unlearn(model, tok, probe, method_cfg, data, PromptFormat(), 64, 0, Accelerator(cpu=True))
    assert (result.status, result.steps, result.history) == ("ok", 0, [])
    assert probe.fitted == [3]
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_wrapper_rewrites_prompts_and_logits_in_every_lm_call(tiny_lm):
    model, tok = tiny_lm
    bare = LM(model, tok, PromptFormat(), 64, 4)
    prefix = "item 3 is a cat. "
    boost = tok("Question")["input_ids"][-1]

    def logits(inputs, values):
        return values + 50.0 * torch.nn.functional.one_hot(torch.tensor(boost), values.shape[-1])

    wrapped = LM(model, tok, PromptFormat(), 64, 4, InferenceWrapper(lambda q: prefix + q, logits))
    pair = QA("what is item 1?", "item 1 is a dog.")
    # input space: the wrapped question is scored as the bare model scores the rewritten question; the hook's
    # boost of one token then lowers every other token's probability
    rewritten = QA(prefix + pair.question, pair.answer)
    assert LM(model, tok, PromptFormat(), 64, 4, InferenceWrapper(lambda q: prefix + q)).answer_losses([pair]) == \
        pytest.approx(bare.answer_losses([rewritten]))
    assert wrapped.answer_losses([pair])[0] > bare.answer_losses([rewritten])[0] + 1
    assert wrapped.next_token_choices(["what is"], [boost, boost + 1]) == [0]
    # raw-prompt scoring (RWKU's utility files) and per-token log-probabilities (MIA) go through both parts
    assert wrapped.completion_logprobs([("what is", "item 1")])[0] < bare.completion_logprobs([(prefix + "what is", "item 1")])[0] - 1
    assert wrapped.token_logprobs([pair])[0].sum() < bare.token_logprobs([rewritten])[0].sum() - 1
    # generation, left-padded batch of two lengths: the boosted token wins every step of both
    texts = wrapped.generate(["what is item 1? item 1 is a", "what is"], max_new_tokens=3)
    assert [t.replace(" ", "") for t in texts] == [tok.decode([boost] * 3).replace(" ", "")] * 2
