"""Robustness diagnostics: each attack's pieces on tiny models and hand-made numbers, then one smoke run."""
from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch

from unlearn_bench.data.collate import PromptFormat
from unlearn_bench.data.records import EvalQA
from unlearn_bench.diagnostics import check_names, verdict
from unlearn_bench.diagnostics.common import compare, recovery
from unlearn_bench.diagnostics.probe import choose_attribute, probe_correct, question_features
from unlearn_bench.diagnostics.quantize import int8_dynamic, rtn_quantize_
from unlearn_bench.diagnostics.relearn import disjoint_split
from unlearn_bench.diagnostics.rephrase import mcq_accuracy
from unlearn_bench.diagnostics.sampling import leaks, sample_answers
from unlearn_bench.diagnostics.sequential import split_requests
from unlearn_bench.evaluation.lm import LM


def qa(i: int, author: int | None = None, attribute: int = 0, value: str = "v") -> EvalQA:
    meta = {"attribute": attribute, "value": value} | ({} if author is None else {"author": author})
    return EvalQA(f"Question {i}?", f"Answer {i}.", perturbed_answers=("Wrong one.", "Wrong two."), meta=meta)


# relearning -------------------------------------------------------------------------------------------------

def test_relearn_split_is_disjoint_by_author():
    examples = [qa(i, author=i // 3) for i in range(12)]  # 4 authors x 3 questions
    train, held = disjoint_split(examples, 0.5)
    assert set(train).isdisjoint(held) and sorted(train + held) == list(range(12))
    assert {examples[i].meta["author"] for i in train}.isdisjoint({examples[i].meta["author"] for i in held})
    assert len(train) == 6


def test_relearn_split_by_index_without_authors():
    train, held = disjoint_split([qa(i) for i in range(5)], 0.4)
    assert train == [0, 1] and held == [2, 3, 4]
    # one author only: authors cannot be split, indices can
    train, held = disjoint_split([qa(i, author=7) for i in range(4)], 0.5)
    assert train == [0, 1] and held == [2, 3]
    with pytest.raises(ValueError, match="train_fraction"):
        disjoint_split([qa(i) for i in range(4)], 1.0)
    with pytest.raises(ValueError, match=">= 2"):
        disjoint_split([qa(0)], 0.5)


# quantization -----------------------------------------------------------------------------------------------

def _logits(model: torch.nn.Module, tokenizer) -> torch.Tensor:
    ids = tokenizer("Question: what is item 3? Answer:", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        return model(input_ids=ids).logits


@pytest.mark.parametrize("bits", [4, 8])
def test_rtn_quantization_changes_weights_and_runs(tiny_lm, bits):
    model, tokenizer = tiny_lm
    quantized = rtn_quantize_(copy.deepcopy(model), bits)
    before, after = model.model.layers[0].mlp.up_proj.weight, quantized.model.layers[0].mlp.up_proj.weight
    assert not torch.equal(before, after)
    assert max(len(torch.unique(row)) for row in after) <= 2 ** bits  # at most 2^bits levels per output channel
    assert (after - before).abs().max() <= before.abs().max() / (2 ** (bits - 1) - 1)  # within one step
    assert torch.isfinite(_logits(quantized, tokenizer)).all()
    with pytest.raises(ValueError, match="bits"):
        rtn_quantize_(copy.deepcopy(model), 1)


def test_int8_dynamic_quantization_runs(tiny_lm):
    model, tokenizer = tiny_lm
    quantized = int8_dynamic(model)
    layer = quantized.model.layers[0].mlp.up_proj
    assert isinstance(layer, torch.ao.nn.quantized.dynamic.Linear)
    assert not torch.equal(layer.weight().dequantize(), model.model.layers[0].mlp.up_proj.weight)
    logits = _logits(quantized, tokenizer)
    assert torch.isfinite(logits).all() and not torch.equal(logits, _logits(model, tokenizer))


# rephrased / multiple-choice probes ---------------------------------------------------------------------------

class ScriptedLM:
    """A stub LM: answer losses from a table (lowest for the strings it 'knows'), generations from a function."""

    def __init__(self, known: set[str] | None = None, generation=lambda q: "") -> None:
        self.known, self.generation, self.calls, self.scored = known or set(), generation, [], []

    def answer_losses(self, pairs):
        self.scored += pairs
        return [0.1 if p.answer in self.known else 2.0 for p in pairs]

    def generate(self, questions, max_new_tokens=200, raw=False, sample=False):
        self.calls.append(sample)
        return [self.generation(q) for q in questions]


def test_mcq_accuracy_shows_options_and_scores_the_true_answer():
    examples = [qa(i) for i in range(3)] + [EvalQA("Question 3?", "Answer 3.", perturbed_answers=("Decoy.", "Other."))]
    lm = ScriptedLM(known={"Answer 0.", "Answer 1.", "Answer 2.", "Decoy."})
    assert mcq_accuracy(lm, examples, seed=0).tolist() == [1.0, 1.0, 1.0, 0.0]
    assert len(lm.scored) == 12 and all(
        p.question.startswith(ex.question + " Options: (A) ") and all(o in p.question for o in (ex.answer, *ex.perturbed_answers))
        for p, ex in zip(lm.scored, [ex for ex in examples for _ in range(3)]))


# sampling leakage -----------------------------------------------------------------------------------------

def test_leak_rate_zero_for_a_model_that_never_answers_and_one_for_one_that_always_does():
    examples = [EvalQA("Where was Ana Bel born?", "In Tromsa, Veria."), EvalQA("What genre does Ana Bel write?", "Satire.")]
    answers = {ex.question: ex.answer for ex in examples}
    questions = [ex.question for ex in examples]
    silent = ScriptedLM(generation=lambda q: "")
    leaky = ScriptedLM(generation=lambda q: f"I think {answers[q]}")
    for lm, expected in ((silent, [0.0, 0.0]), (leaky, [1.0, 1.0])):
        samples = sample_answers(lm, questions, k=4, max_new_tokens=8, seed=0)
        assert [len(s) for s in samples] == [4, 4] and lm.calls == [True]
        assert leaks(samples, list(answers.values()), 0.8).tolist() == expected
    # one matching sample out of k is enough; a partial answer below the threshold is not
    assert leaks([["nothing", "In Tromsa, Veria."], ["Veria"]], ["In Tromsa, Veria.", "In Tromsa, Veria."], 0.8).tolist() == [1.0, 0.0]


def test_sampling_is_seeded_and_varies(tiny_lm):
    model, tokenizer = tiny_lm
    lm = LM(model, tokenizer, PromptFormat("plain"), max_length=64, batch_size=8)
    first = sample_answers(lm, ["what is item 1?", "what is item 2?"], k=3, max_new_tokens=6, seed=1)
    assert first == sample_answers(lm, ["what is item 1?", "what is item 2?"], k=3, max_new_tokens=6, seed=1)
    assert len({s for group in first for s in group}) > 1  # temperature 1 on a random model: not one greedy string


# representation probe -------------------------------------------------------------------------------------

def test_probe_finds_a_planted_linear_feature():
    rng = np.random.default_rng(0)
    labels = np.array(["mystery", "poetry", "satire"])
    directions = rng.normal(size=(3, 32))

    def features(y: np.ndarray, signal: float) -> np.ndarray:
        return rng.normal(size=(len(y), 32)) + signal * directions[np.searchsorted(labels, y)]

    train_y, test_y = rng.choice(labels, 120), rng.choice(labels, 60)
    planted = probe_correct(features(train_y, 3.0), train_y, features(test_y, 3.0), test_y, C=1.0, seed=0)
    absent = probe_correct(features(train_y, 3.0), train_y, features(test_y, 0.0), test_y, C=1.0, seed=0)
    assert planted.mean() > 0.95 and absent.mean() < 0.6


def test_probe_picks_an_attribute_with_shared_values_and_features_have_model_width(tiny_lm):
    train = [qa(i, attribute=3, value=g) for i, g in enumerate(["drama", "poetry", "drama"])]
    train += [qa(10 + i, attribute=8, value=f"pen{i}") for i in range(3)]  # unique values: unlearnable
    test = [qa(20, attribute=3, value="poetry"), qa(21, attribute=8, value="pen9")]
    assert choose_attribute(train, test) == 3
    assert choose_attribute(train[3:], test) is None
    model, tokenizer = tiny_lm
    lm = LM(model, tokenizer, PromptFormat("plain"), max_length=64, batch_size=2)
    x = question_features(lm, ["what is item 1?", "what is item 22 today?", "hi"], layer=1)
    assert x.shape == (3, model.config.hidden_size) and np.isfinite(x).all()


# recovery and verdict -------------------------------------------------------------------------------------

def test_recovery_of_the_gap():
    assert recovery(0.5, unlearned=0.2, finetuned=0.8, min_gap=0.05) == pytest.approx(0.5)
    assert recovery(0.9, unlearned=0.2, finetuned=0.8, min_gap=0.05) == pytest.approx(7 / 6)
    assert math.isnan(recovery(0.5, unlearned=0.2, finetuned=0.22, min_gap=0.05))  # nothing was forgotten
    assert math.isnan(recovery(0.0, unlearned=0.5, finetuned=0.2, min_gap=0.05))  # 'unlearning' added knowledge


def test_compare_uses_the_measured_examples_only():
    refs = {"unlearned": {"rouge": np.array([0.0, 0.0, 1.0, 1.0])},
            "finetuned": {"rouge": np.array([1.0, 1.0, 1.0, 1.0])},
            "retain": {"rouge": np.array([0.0, 0.5, 0.0, 0.0])}}
    out = compare("relearn", {"rouge": np.array([0.5, 0.5])}, refs, [0, 1], min_gap=0.05)
    values = {m.metric: m.value for m in out.metrics}
    # unlearned 0 on examples 0-1, retain 0.25 there: half the gap recovered, a third of it beyond the retain model
    assert values == pytest.approx({"rouge": 0.5, "rouge_recovery": 0.5, "rouge_recovery_beyond_retain": 1 / 3})
    assert out.recovery == pytest.approx({"relearn": 1 / 3}) and {m.split for m in out.metrics} == {"diag/relearn"}


def test_verdict_names_the_strongest_attack():
    assert verdict({"relearn": 0.83, "quantize/int4": 0.4, "sampling": math.nan}, 0.25) == (0.83, "suppressed (relearn 0.83)")
    assert verdict({"relearn": 0.1, "probe": -0.2}, 0.25) == (0.1, "removed (relearn 0.10)")
    value, note = verdict({"relearn": math.nan}, 0.25)
    assert math.isnan(value) and note.startswith("undetermined")


def test_requests_cover_the_forget_set_once():
    parts = split_requests(10, 3)
    assert [list(p) for p in parts] == [[0, 1, 2], [3, 4, 5, 6], [7, 8, 9]]
    with pytest.raises(ValueError, match="requests"):
        split_requests(2, 3)


def test_unknown_diagnostic_names_the_choices():
    check_names(["relearn", "probe"])
    with pytest.raises(ValueError, match="relearn"):
        check_names(["relearning"])


# end to end -----------------------------------------------------------------------------------------------

ALL = ["relearn", "quantize", "rephrase", "sampling", "probe", "sequential"]


def test_smoke_run_writes_diagnostic_rows_and_a_verdict(tmp_path):
    from hydra import compose, initialize_config_module

    from unlearn_bench.config import register_configs
    from unlearn_bench.runner import run, run_dir_for

    register_configs()
    with initialize_config_module(config_module="unlearn_bench.conf", version_base="1.3"):
        cfg = compose("config", overrides=[
            "experiment=smoke", "method=ga", "cpu=true", f"paths.cache_dir={tmp_path / 'cache'}",
            f"paths.results_dir={tmp_path / 'results'}", f"eval.diagnostics=[{','.join(ALL)}]",
            "eval.diag.sampling.k=2", "eval.diag.relearn.max_steps=3", "eval.diag.sequential.requests=2",
        ])
    record = run(cfg)
    assert record.status == "ok"
    run_dir, _ = run_dir_for(cfg)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    diag = [r for r in rows if r["split"].startswith("diag/")]
    splits = {r["split"] for r in diag}
    assert {"diag/relearn", "diag/quantize/int8", "diag/quantize/int4", "diag/rephrase/paraphrase", "diag/rephrase/mcq",
            "diag/rephrase/mixed", "diag/sampling", "diag/probe", "diag/sequential/request_1",
            "diag/sequential/request_2"} == splits
    assert all(r["method"] == "ga" and r["intent"] == "removal" for r in diag)
    assert {r["metric"] for r in diag if r["split"] == "diag/sequential/request_2"} == set(cfg.eval.diag.sequential.metrics)
    (verdict_row,) = [r for r in rows if r["split"] == "diagnostics"]
    assert verdict_row["metric"] == "verdict" and verdict_row["intent"] == "removal"
    assert verdict_row["note"].split()[0] in ("removed", "suppressed", "undetermined")
