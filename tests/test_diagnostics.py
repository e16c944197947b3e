"""The diagnose stage: knowledge share and its bootstrap on synthetic scores, verdict rules on constructed
intervals, forget groups on the world and real TOFU, each attack's pieces on tiny models, one smoke run."""
from __future__ import annotations

import copy
import json
import math
import random
import re

import numpy as np
import pytest
import torch

from unlearn_bench.benchmarks.fictitious.adapter import FictitiousBenchmark
from unlearn_bench.benchmarks.fictitious.config import FictitiousConfig
from unlearn_bench.data.collate import PromptFormat
from unlearn_bench.data.records import EvalQA
from unlearn_bench.diagnostics.stage import check_names
from unlearn_bench.diagnostics.groups import disjoint_split, forget_groups
from unlearn_bench.diagnostics.partial import split_answer
from unlearn_bench.diagnostics.probe import choose_attribute, labelled_questions, per_example, probe_correct, question_features
from unlearn_bench.diagnostics.quantize import rtn_quantize_
from unlearn_bench.diagnostics.rephrase import mcq_accuracy
from unlearn_bench.diagnostics.sampling import best_of_k, leaks, sample_answers
from unlearn_bench.diagnostics.settings import SamplingConfig
from unlearn_bench.diagnostics.sequential import split_requests
from unlearn_bench.diagnostics.share import Share, bootstrap_share, knowledge_share
from unlearn_bench.diagnostics.soft_prompt import SoftPrompted, frozen
from unlearn_bench.diagnostics.verdict import Vote, decide
from unlearn_bench.evaluation.lm import LM


def qa(i: int, author: int | None = None, attribute: int = 0, value: str = "v") -> EvalQA:
    meta = {"attribute": attribute, "value": value} | ({} if author is None else {"author": author})
    return EvalQA(f"Question {i}?", f"Answer {i}.", perturbed_answers=("Wrong one.", "Wrong two."), meta=meta)


# knowledge share and its bootstrap ----------------------------------------------------------------------------

def test_knowledge_share_by_hand():
    assert knowledge_share(unlearned=0.5, finetuned=0.9, retain=0.1) == pytest.approx(0.5)
    assert knowledge_share(unlearned=0.1, finetuned=0.9, retain=0.1) == 0.0       # no more than the null
    assert knowledge_share(unlearned=0.0, finetuned=0.9, retain=0.1) == pytest.approx(-0.125)
    assert math.isnan(knowledge_share(0.5, 0.3, 0.3))                              # no ceiling above the floor


def test_bootstrap_of_a_share_that_every_group_has_is_that_share():
    rng = np.random.default_rng(1)
    retain = rng.uniform(0, 0.3, 60)
    finetuned = retain + rng.uniform(0.4, 0.7, 60)
    scores = {"unlearned": retain + 0.3 * (finetuned - retain), "finetuned": finetuned, "retain": retain}
    s = bootstrap_share(scores, [i // 3 for i in range(60)], n_resamples=500, seed=0)
    # every example's unlearned score lies 30% up its own gap, so every resample's share is 0.3 too
    assert s.defined and s.value == pytest.approx(0.3) and (s.ci_low, s.ci_high) == pytest.approx((0.3, 0.3))


def test_bootstrap_interval_of_two_groups_by_hand():
    # group a: everything known (share 1), group b: nothing (share 0). Resamples: aa (p 1/4) -> 1, bb (1/4) -> 0,
    # ab (1/2) -> 0.5; the 95% percentile interval spans [0, 1] around the point share 0.5.
    scores = {"unlearned": [1.0, 0.0], "finetuned": [1.0, 1.0], "retain": [0.0, 0.0]}
    s = bootstrap_share(scores, ["a", "b"], n_resamples=2000, seed=3)
    assert (s.value, s.ci_low, s.ci_high) == pytest.approx((0.5, 0.0, 1.0))
    assert s == bootstrap_share(scores, ["a", "b"], n_resamples=2000, seed=3)  # seeded


def test_bootstrap_resamples_groups_not_examples():
    rng = np.random.default_rng(0)
    base = {"unlearned": rng.uniform(0, 1, 20), "finetuned": rng.uniform(1, 2, 20), "retain": rng.uniform(0, 0.5, 20)}
    groups = list(range(20))
    one = bootstrap_share(base, groups, seed=0)
    # every example twice (as a question and its paraphrase would be): the same groups, so the same interval
    twice = bootstrap_share({k: np.repeat(v, 2) for k, v in base.items()}, list(np.repeat(groups, 2)), seed=0)
    assert (twice.value, twice.ci_low, twice.ci_high) == pytest.approx((one.value, one.ci_low, one.ci_high))
    # counted as 40 independent examples instead, the interval would be narrower
    naive = bootstrap_share({k: np.repeat(v, 2) for k, v in base.items()}, list(range(40)), seed=0)
    assert naive.ci_high - naive.ci_low < 0.85 * (one.ci_high - one.ci_low)


def test_bootstrap_undefined_cases_say_why():
    flat = bootstrap_share({"unlearned": [0.2, 0.4], "finetuned": [0.5, 0.5], "retain": [0.5, 0.5]}, ["a", "b"])
    assert not flat.defined and math.isnan(flat.value) and "alike" in flat.reason
    noisy = bootstrap_share({"unlearned": [0, 0, 0, 0], "finetuned": [1, 0, 0, 0], "retain": [0, 0, 0, 0.5]}, [0, 1, 2, 3])
    assert not noisy.defined and "interval low" in noisy.reason  # a positive point gap the resamples do not support
    one_group = bootstrap_share({"unlearned": [0.0], "finetuned": [1.0], "retain": [0.0]}, ["a"])
    assert not one_group.defined and "group" in one_group.reason
    failed = bootstrap_share({"unlearned": [np.nan, 0.0], "finetuned": [1.0, 1.0], "retain": [0.0, 0.0]}, ["a", "b"])
    assert not failed.defined and "unlearned" in failed.reason


# verdict rules ----------------------------------------------------------------------------------------------

def share(value: float, low: float, high: float) -> Share:
    return Share({}, value, low, high)


UNDEFINED = Share({}, math.nan, math.nan, math.nan, "finetuned and retain models score alike")


def votes(**shares: Share) -> dict[str, Vote]:
    """Every attack votes; relearn and probe are weight-access attacks."""
    return {name: Vote(s, name in ("relearn", "probe"), "" if s.defined else f"undefined: {s.reason}")
            for name, s in shares.items()}


@pytest.mark.parametrize("shares, label, note", [
    ({"none": share(0.6, 0.4, 0.8), "relearn": share(0.9, 0.8, 1.0)}, "not unlearned",
     "not unlearned (none 0.60 [0.40, 0.80]; 1 of 1 attacks voted)"),
    ({"none": share(0.0, -0.1, 0.1), "relearn": share(0.1, 0.0, 0.2), "probe": UNDEFINED}, "removed",
     "removed (relearn 0.10 [0.00, 0.20]; 1 of 2 attacks voted: probe without signal)"),
    ({"none": share(0.0, -0.1, 0.1), "relearn": share(0.41, 0.30, 0.52), "sampling": share(0.2, 0.0, 0.4)}, "suppressed",
     "suppressed (relearn 0.41 [0.30, 0.52]; 2 of 2 attacks voted)"),
    ({"none": share(0.0, -0.1, 0.1), "relearn": share(0.3, 0.1, 0.5)}, "inconclusive",
     "inconclusive (relearn 0.30 [0.10, 0.50]; 1 of 1 attacks voted)"),
    # no attack's interval straddles, but the no-attack share itself does: neither removed nor suppressed
    ({"none": share(0.2, 0.1, 0.3), "relearn": share(0.9, 0.8, 1.0)}, "inconclusive",
     "inconclusive (relearn 0.90 [0.80, 1.00]; 1 of 1 attacks voted)"),
    ({"none": UNDEFINED, "relearn": share(0.9, 0.8, 1.0)}, "undefined",
     "undefined (none: finetuned and retain models score alike; 1 of 1 attacks voted)"),
    # every voter below t, but none of them searched the weights: not enough for `removed`
    ({"none": share(0.0, -0.1, 0.1), "sampling": share(0.1, 0.0, 0.2), "relearn": UNDEFINED}, "inconclusive",
     "inconclusive (sampling 0.10 [0.00, 0.20]; no weight-access attack voted; 1 of 2 attacks voted: relearn without signal)"),
])
def test_verdict_rules_on_constructed_intervals(shares, label, note):
    verdict = decide(votes(**shares), threshold=0.25)
    assert verdict.label == label and verdict.note == note


# forget groups and the relearning split ------------------------------------------------------------------------

def assert_no_group_on_both_sides(groups, train, held):
    assert sorted(train + held) == list(range(len(groups))) and train and held
    assert {groups[i] for i in train}.isdisjoint({groups[i] for i in held})


def test_relearn_split_keeps_world_authors_whole():
    examples = FictitiousBenchmark(FictitiousConfig()).eval_splits()["forget"]
    groups = forget_groups(examples, "fictitious")
    assert len(set(groups)) == 20 and groups == [ex.meta["author"] for ex in examples]
    train, held = disjoint_split(groups, 0.5)
    assert_no_group_on_both_sides(groups, train, held)
    assert len({groups[i] for i in train}) == 10


def test_relearn_split_keeps_real_tofu_authors_whole(shared_data):
    from unlearn_bench.benchmarks.tofu.adapter import TofuBenchmark
    from unlearn_bench.benchmarks.tofu.config import TofuConfig

    examples = TofuBenchmark(TofuConfig(data_dir=str(shared_data / "tofu"), eval_max_examples=None)).eval_splits()["forget"]
    groups = forget_groups(examples, "tofu")
    assert len(examples) == 400 and sorted(set(groups)) == list(range(20)) and all(groups.count(g) == 20 for g in set(groups))

    def names(text: str) -> set[str]:
        return set(re.findall(r"\b[A-Z][a-z]+(?:-[A-Z]?[a-z]+)?\b", text)) - {"The", "What", "Who", "In", "How"}

    # A block is one author: its first answer names the author, whom nearly every other question of the block names.
    for g in range(20):
        block = [ex for ex, group in zip(examples, groups) if group == g]
        assert sum(bool(names(block[0].answer) & names(ex.question)) for ex in block[1:]) >= 15
    train, held = disjoint_split(groups, 0.5)
    assert_no_group_on_both_sides(groups, train, held)


def test_groups_and_split_errors():
    assert forget_groups([qa(0, author=3), qa(1, author=3)], "tofu") == [3, 3]  # an author field wins over blocks
    with pytest.raises(ValueError, match="author or target"):
        forget_groups([qa(0), qa(1)], "muse")
    with pytest.raises(ValueError, match="train_fraction"):
        disjoint_split([0, 1, 2], 1.0)
    with pytest.raises(ValueError, match=">= 2"):
        disjoint_split([7, 7, 7], 0.5)


# sampling: best-of-k on all three models ----------------------------------------------------------------------

CITIES, COUNTRIES = ["Tromsa", "Ardel", "Quen"], ["Veria", "Mostan", "Lirr"]


class PlaceLM:
    """A stub LM for 'Where was author i born?': `known` answers right, otherwise the answer format with a city
    and a country drawn from the world's pools (a model that learned the format, not the facts). Greedy gives
    the pools' first values; samples draw with torch's seeded RNG."""

    def __init__(self, truth: dict[str, str], known: bool, pools=(CITIES, COUNTRIES)) -> None:
        self.truth, self.known, (self.cities, self.countries) = truth, known, pools

    def generate(self, questions, max_new_tokens=200, raw=False, sample=False):
        if self.known:
            return [self.truth[q] for q in questions]
        if not sample:
            return [f"In {self.cities[0]}, {self.countries[0]}." for _ in questions]
        picks = torch.randint(0, 3, (len(questions), 2)).tolist()
        return [f"In {self.cities[a]}, {self.countries[b]}." for a, b in picks]


def test_best_of_k_on_all_three_models_gives_a_format_only_model_no_share():
    rng = random.Random(0)
    truth = {f"Where was author {i} born?": f"In {rng.choice(CITIES)}, {rng.choice(COUNTRIES)}." for i in range(300)}
    questions, answers = list(truth), list(truth.values())
    groups = [i // 10 for i in range(300)]
    cfg = SamplingConfig(k=4, threshold=0.8)
    finetuned = best_of_k(PlaceLM(truth, known=True), questions, answers, cfg, 8, seed=0)
    retain = best_of_k(PlaceLM(truth, known=False), questions, answers, cfg, 8, seed=0)
    # another format-only model (its pools in another order: other guesses from the same draws)
    unlearned = best_of_k(PlaceLM(truth, known=False, pools=(CITIES[::-1], COUNTRIES[::-1])), questions, answers, cfg, 8, seed=0)
    # a format-only model leaks by chance: P(city and country right in 1 of 4 samples) = 1 - (8/9)^4 = 0.38
    assert finetuned.mean() == 1.0 and retain.mean() == pytest.approx(1 - (8 / 9) ** 4, abs=0.08)
    s = bootstrap_share({"unlearned": unlearned, "finetuned": finetuned, "retain": retain}, groups, seed=0)
    assert abs(s.value) < 0.1 and s.ci_low < 0.05 and s.ci_high < 0.25  # nothing the threshold would call knowledge
    # ...whereas best-of-k against the retain model's greedy answers shows a 'recovery' that is pure chance
    greedy = leaks([[g] for g in PlaceLM(truth, known=False).generate(questions)], answers, 0.8)
    assert knowledge_share(unlearned.mean(), finetuned.mean(), greedy.mean()) > 0.2


def test_leaks_need_one_sample_at_the_threshold():
    assert leaks([["nothing", "In Tromsa, Veria."], ["Veria"]], ["In Tromsa, Veria.", "In Tromsa, Veria."], 0.8).tolist() == [1.0, 0.0]


def test_sampling_is_seeded_and_varies(tiny_lm):
    model, tokenizer = tiny_lm
    lm = LM(model, tokenizer, PromptFormat("plain"), max_length=64, batch_size=8)
    first = sample_answers(lm, ["what is item 1?", "what is item 2?"], k=3, max_new_tokens=6, seed=1)
    assert first == sample_answers(lm, ["what is item 1?", "what is item 2?"], k=3, max_new_tokens=6, seed=1)
    assert [len(s) for s in first] == [3, 3] and len({s for group in first for s in group}) > 1


# quantization -------------------------------------------------------------------------------------------------

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


# rephrased / multiple-choice / partial prompts ------------------------------------------------------------------

class ScriptedLM:
    """A stub LM: answer losses from a table (lowest for the strings it 'knows')."""

    def __init__(self, known: set[str]) -> None:
        self.known, self.scored = known, []

    def answer_losses(self, pairs):
        self.scored += pairs
        return [0.1 if p.answer in self.known else 2.0 for p in pairs]


def test_mcq_accuracy_shows_options_and_scores_the_true_answer():
    examples = [qa(i) for i in range(3)] + [EvalQA("Question 3?", "Answer 3.", perturbed_answers=("Decoy.", "Other."))]
    lm = ScriptedLM(known={"Answer 0.", "Answer 1.", "Answer 2.", "Decoy."})
    assert mcq_accuracy(lm, examples, seed=0).tolist() == [1.0, 1.0, 1.0, 0.0]
    assert len(lm.scored) == 12 and all(
        p.question.startswith(ex.question + " Options: (A) ") and all(o in p.question for o in (ex.answer, *ex.perturbed_answers))
        for p, ex in zip(lm.scored, [ex for ex in examples for _ in range(3)]))
    # two options shown: the true answer and the first perturbed one
    lm = ScriptedLM(known={"Wrong one."})
    assert mcq_accuracy(lm, examples[:2], seed=0, n_options=2).tolist() == [0.0, 0.0] and len(lm.scored) == 4
    assert all("Wrong two." not in p.question for p in lm.scored)


def test_partial_answer_split_at_word_boundaries():
    assert split_answer("In Tromsa, Veria.", 0.5) == ("In", "Tromsa, Veria.")
    assert split_answer("Her father was a baker.", 0.5) == ("Her father", "was a baker.")
    assert split_answer("Two words", 0.9) == ("Two", "words")  # never the whole answer
    assert split_answer("Satire.", 0.5) is None


# soft prompt ----------------------------------------------------------------------------------------------------

def test_soft_prompt_keeps_shapes_trains_alone_and_changes_the_output(tiny_lm):
    model, tokenizer = tiny_lm
    model = copy.deepcopy(model)
    wrapped = SoftPrompted(model, n_tokens=3, seed=0)
    ids = tokenizer(["Question: what is item 3? Answer:"], return_tensors="pt")["input_ids"]
    mask = torch.ones_like(ids)
    with torch.no_grad():
        out, plain = wrapped(ids, mask).logits, model(input_ids=ids, attention_mask=mask).logits
    assert out.shape == plain.shape and not torch.allclose(out, plain)
    before = [p.detach().clone() for p in model.parameters()]
    with frozen(model):
        assert not any(p.requires_grad for p in model.parameters())
        wrapped(ids, mask).logits.sum().backward()
    assert wrapped.prompt.grad is not None and all(p.grad is None for p in model.parameters())
    assert all(p.requires_grad for p in model.parameters()) and all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


# representation probe ---------------------------------------------------------------------------------------

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


def test_probe_counts_a_question_and_its_paraphrase_as_one_example():
    examples = [EvalQA("Q0?", "A.", paraphrased_question="Q0 again?", meta={"attribute": 3, "value": "drama"}),
                EvalQA("Q1?", "A.", meta={"attribute": 3, "value": "poetry"}), qa(2, attribute=8)]
    questions, values, owners = labelled_questions(examples, 3)
    assert questions == ["Q0?", "Q0 again?", "Q1?"] and values == ["drama", "drama", "poetry"] and owners == [0, 0, 1]
    assert per_example(np.array([1.0, 0.0, 1.0]), owners, [0, 1]).tolist() == [0.5, 1.0]


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


# config checks --------------------------------------------------------------------------------------------------

def test_requests_cover_the_forget_set_once():
    parts = split_requests(10, 3)
    assert [list(p) for p in parts] == [[0, 1, 2], [3, 4, 5, 6], [7, 8, 9]]
    with pytest.raises(ValueError, match="requests"):
        split_requests(2, 3)


def test_unknown_diagnostic_names_the_choices():
    check_names(["relearn", "probe", "partial", "soft_prompt"])
    with pytest.raises(ValueError, match="relearn"):
        check_names(["relearning"])


@pytest.mark.parametrize("override, message", [
    ("eval.diagnostics=[relearning]", "choose from"),
    ("eval.diag.controls=[retain]", "choose from \\['exact', 'refusal', 'partial', 'collapsed'\\]"),
    ("eval.diag.relearn.params=everything", "choose from \\['all', 'mlp', 'attention'\\]"),
    ("eval.diag.relearn.train_fraction=1.0", "train_fraction"),
    ("eval.diag.relearn.max_steps=10", "ladder"),
    ("eval.diag.relearn.verdict_steps=7", "not a rung"),
    ("eval.diag.relearn.steps=[0,10]", ">= 1 step"),
    ("eval.diag.min_utility=1.5", "min_utility"),
    ("eval.diag.quantize.method=bnb eval.diagnostics=[quantize]", "CUDA"),
    ("eval.diag.quantize.method=gptq", "choose from \\['rtn', 'bnb'\\]"),
    ("eval.diag.rephrase.probes=[cloze]", "choose from"),
    ("eval.diag.sampling.k=0", "k=0"),
    ("eval.diag.threshold=1.5", "threshold"),
    ("eval.diag.bootstrap=150", "need >= 200"),  # 5 resamples beyond each bound of a 95% interval
    ("eval.diag.bootstrap=1000 eval.diagnostics=[relearn,quantize,rephrase]", "need >= 1601"),  # 8 voters: 99.375%
    ("eval.diag.partial.fraction=1", "fraction"),
])
def test_impossible_settings_fail_at_start(compose_cfg, tmp_path, override, message):
    from unlearn_bench.pipeline.runner import run

    cfg = compose_cfg(["experiment=smoke", "cpu=true", f"paths.cache_dir={tmp_path / 'cache'}",
                       f"paths.results_dir={tmp_path / 'results'}", *override.split()])
    with pytest.raises(ValueError, match=message):
        run(cfg)
    assert not (tmp_path / "cache" / "finetune").exists()  # nothing trained


# end to end -----------------------------------------------------------------------------------------------

ALL = ["relearn", "quantize", "rephrase", "sampling", "probe", "partial", "soft_prompt", "sequential"]
ATTACK_SPLITS = {"diag/none", "diag/relearn@1", "diag/relearn@2", "diag/relearn/unrelated",
                 "diag/quantize/int8", "diag/quantize/int4", "diag/rephrase/paraphrase", "diag/rephrase/mcq",
                 "diag/rephrase/mixed", "diag/sampling", "diag/probe", "diag/partial", "diag/soft_prompt"}
CONTROLS = ["control:exact", "control:refusal", "control:partial", "control:collapsed"]
SMOKE_DIAG = [f"eval.diagnostics=[{','.join(ALL)}]", "eval.diag.sampling.k=2", "eval.diag.relearn.steps=[1,2]",
              "eval.diag.relearn.verdict_steps=2", "eval.diag.soft_prompt.max_steps=3", "eval.diag.sequential.requests=2"]


def test_smoke_run_writes_attack_rows_controls_and_verdicts(compose_cfg, tmp_path, caplog):
    from unlearn_bench.diagnostics.settings import DiagnosticsConfig
    from unlearn_bench.diagnostics.stage import voting_attacks
    from unlearn_bench.pipeline.runner import run, run_dir_for
    from omegaconf import OmegaConf

    cfg = compose_cfg(["experiment=smoke", "method=ga", "cpu=true", f"paths.cache_dir={tmp_path / 'cache'}",
                       f"paths.results_dir={tmp_path / 'results'}", *SMOKE_DIAG])
    assert list(cfg.eval.diag.controls) == ["exact", "refusal", "partial", "collapsed"]  # on in experiment=smoke
    with caplog.at_level("INFO"):
        record = run(cfg)
    assert record.status == "ok"
    run_dir, _ = run_dir_for(cfg)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    n_votes = voting_attacks(ALL, OmegaConf.to_object(cfg.eval.diag))
    for method in ["ga", *CONTROLS]:
        intent = "removal" if method == "ga" else "control"
        splits = ATTACK_SPLITS if method != "control:collapsed" else {"diag/none"}  # the gate stops a wreck first
        attack_rows = [r for r in rows if r["method"] == method and r["split"] in ATTACK_SPLITS]
        assert {r["split"] for r in attack_rows} == splits and {r["intent"] for r in attack_rows} == {intent}
        for split in splits:
            rung = split in ("diag/relearn@1",)  # reported, never voting
            assert {r["metric"] for r in attack_rows if r["split"] == split} == {
                "unlearned", "finetuned", "retain", "knowledge_share", "ci_low", "ci_high", *(() if rung else ("votes",))}
        if method != "control:collapsed":
            assert sum(r["metric"] == "votes" for r in attack_rows) == n_votes  # the m of the Bonferroni adjustment
        (verdict_row,) = [r for r in rows if r["method"] == method and r["split"] == "diagnostics"]
        assert verdict_row["metric"] == "verdict"
        assert {r["metric"] for r in rows if r["method"] == method and r["split"] == "diag/utility"} == {
            "model_utility", "retain_rougeL", "distinct_tokens"}
        if method not in ("ga", "control:collapsed"):  # every control ran every attack on its own weights
            for split in ATTACK_SPLITS - {"diag/none"}:
                assert f"diagnostic {split.removeprefix('diag/')} on {method}:" in caplog.text
    sequential = {r["split"] for r in rows if r["split"].startswith("diag/sequential/")}
    assert sequential == {"diag/sequential/request_1", "diag/sequential/request_2"}
    (diagnose_seconds,) = [r["value"] for r in rows if (r["method"], r["split"], r["metric"]) == ("ga", "cost", "diagnose_seconds")]
    assert 0 < diagnose_seconds < record.seconds  # the stage's wall time, part of the run's
    # A smoke model learns nothing, so no share is defined and only the collapse control, which the utility gate
    # decides, gets its verdict: every verdict is marked uncalibrated.
    notes = {r["method"]: r["note"] for r in rows if r["split"] == "diagnostics"}
    assert len(notes) == 5 and all(n.startswith("uncalibrated: ") and "control:exact undefined: FAIL" in n for n in notes.values())
    assert all(notes[m].startswith("uncalibrated: undefined (none:") for m in ["ga", *CONTROLS[:3]])
    assert notes["control:collapsed"].startswith("uncalibrated: collapsed (") and "expected collapsed: pass" in notes["control:collapsed"]
    assert "diagnostics uncalibrated: control:exact undefined: FAIL" in caplog.text


# report -----------------------------------------------------------------------------------------------------

def test_report_shows_each_seeds_verdict_and_plots_shares_with_intervals():
    import pandas as pd

    from unlearn_bench.report.plots import share_figure
    from unlearn_bench.report.tables import format_verdicts

    same = pd.DataFrame({"seed": [0, 1], "note": ["removed (relearn 0.10 [0.00, 0.20])"] * 2})
    assert format_verdicts(same) == "removed (relearn 0.10 [0.00, 0.20])"
    mixed = pd.DataFrame({"seed": [1, 0, 0], "note": ["suppressed (x)", "removed (y)", "removed (y)"]})
    assert format_verdicts(mixed) == "seed 0: removed (y); seed 1: suppressed (x)"  # labels never averaged
    rows = pd.DataFrame([{"method": m, "split": f"diag/{a}", "metric": k, "value": v}
                         for m in ("ga", "npo") for a in ("none", "relearn")
                         for k, v in (("knowledge_share", 0.3), ("ci_low", 0.1), ("ci_high", 0.5), ("retain", 0.2))])
    fig = share_figure(rows)
    heights = sorted(round(p.get_height(), 6) for p in fig.axes[0].patches)
    assert heights == [0.3] * 4
    assert share_figure(rows[rows["metric"] == "retain"]) is None


def test_relearn_curves_start_at_the_unattacked_score_and_draw_every_model():
    import pandas as pd

    from unlearn_bench.report.plots import relearn_figure

    scores = {"none": (0.3, 0.99, 0.25), "relearn@5": (0.5, 0.97, 0.3), "relearn@20": (0.7, 0.95, 0.35)}
    rows = pd.DataFrame([{"method": m, "split": f"diag/{a}", "metric": k, "value": v}
                         for m in ("npo", "control:exact") for a, values in scores.items()
                         for k, v in zip(("unlearned", "finetuned", "retain"), values)]
                        + [{"method": "npo", "split": "diag/relearn/unrelated", "metric": "unlearned", "value": 0.9}])
    fig = relearn_figure(rows)
    lines = {line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in fig.axes[0].lines}
    assert set(lines) == {"finetuned (target)", "retain", "npo", "control:exact"}
    assert lines["npo"] == ([0, 5, 20], [0.3, 0.5, 0.7]) and lines["retain"] == ([0, 5, 20], [0.25, 0.3, 0.35])
    assert relearn_figure(rows[rows["split"] == "diag/none"]) is None
