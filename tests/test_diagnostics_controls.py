"""A verdict that can be wrong: the utility gate, who votes, simultaneous intervals, the cross-fitted relearning
ladder, the known-answer controls' models and their pass rules, and diagnosing a given unlearned checkpoint."""
from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch

from unlearn_bench.benchmarks.base import EvalOutput, Metric
from unlearn_bench.benchmarks.fictitious.adapter import FictitiousBenchmark
from unlearn_bench.benchmarks.fictitious.config import FictitiousConfig
from unlearn_bench.data.records import QA
from unlearn_bench.diagnostics import controls, gate
from unlearn_bench.diagnostics.groups import forget_groups
from unlearn_bench.diagnostics.relearn import crossfit_folds
from unlearn_bench.diagnostics.share import Share, bootstrap_share, gap_fraction, resamples_needed, simultaneous_level
from unlearn_bench.diagnostics.verdict import Vote, decide, signal


def share(value: float, low: float, high: float, finetuned: float = 0.9, retain: float = 0.2) -> Share:
    return Share({"unlearned": math.nan, "finetuned": finetuned, "retain": retain}, value, low, high)


# the utility gate -------------------------------------------------------------------------------------------

class WordTokenizer:
    """Whitespace tokens, ids by first appearance: distinct-token shares by hand."""

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict[str, list[int]]:
        return {"input_ids": [self.vocab.setdefault(w, len(self.vocab)) for w in text.split()]}


def evaluation(model_utility: float, retain_rouge: float, answers: list[str]) -> EvalOutput:
    return EvalOutput([Metric("summary", "model_utility", model_utility, True), Metric("retain", "rouge", retain_rouge, True)],
                      [{"split": "retain", "generation": a} for a in answers] + [{"split": "forget", "generation": "x x x x"}])


def test_distinct_token_share_by_hand():
    tok = WordTokenizer()
    # "a b c" 3/3; "c c c c" 1/4; "" 0: mean (1 + 0.25 + 0) / 3
    assert gate.distinct_token_share(["a b c", "c c c c", ""], tok) == pytest.approx(1.25 / 3)


def test_utility_gate_labels_a_wreck_collapsed_before_any_attack():
    tok = WordTokenizer()
    target = gate.utility(evaluation(0.8, 0.98, ["Mostly adventure.", "In Tromsa, Veria."]), tok)
    assert target == {"model_utility": 0.8, "retain_rougeL": 0.98, "distinct_tokens": 1.0}  # forget answers not read
    kept = gate.utility(evaluation(0.75, 0.9, ["Mostly poetry.", "In Ardel."]), tok)
    assert gate.gate(kept, target, 0.5) == ""
    # ga far past collapse: "cccc..." for every prompt, utility 0
    wreck = gate.utility(evaluation(0.0, 0.01, ["cc cc cc cc cc cc cc cc"] * 2), tok)
    reason = gate.gate(wreck, target, 0.5)
    assert reason == "model_utility 0.00 < 0.5 x 0.80; retain_rougeL 0.01 < 0.5 x 0.98; distinct_tokens 0.12 < 0.5 x 1.00"
    # fluent but repetitive: only the degenerate-output check catches it
    looping = gate.utility(evaluation(0.7, 0.9, ["the the the the the the"] * 2), tok)
    assert gate.gate(looping, target, 0.5) == "distinct_tokens 0.17 < 0.5 x 1.00"
    # the gate decides before the shares are read: strongly negative shares would otherwise say `removed`
    below = {"none": Vote(share(-0.3, -0.4, -0.2)), "relearn": Vote(share(-0.2, -0.3, -0.1), weight_access=True)}
    assert decide(below, 0.25).label == "removed"
    verdict = decide(below, 0.25, gate=reason)
    assert verdict.label == "collapsed" and verdict.note == f"collapsed ({reason})"


# who votes ----------------------------------------------------------------------------------------------------

def test_signal_rules():
    s = share(0.1, 0.0, 0.2)  # ceiling 0.9 - 0.2 = 0.7
    assert signal(s, max_width=0.5) == ""
    assert signal(share(0.9, -0.1, 1.9), max_width=0.5) == "interval 2.00 wide (> 0.5)"  # mcq's ~2-wide intervals
    assert signal(s, max_width=0.5, noise=0.69) == ""
    assert signal(s, max_width=0.5, noise=0.7) == "ceiling 0.700 within the noise floor 0.700 (control:exact)"
    # relearning that wrecks the target's own answers (0.99 -> 0.58) measures against a wrecked ceiling
    assert signal(s, 0.5, ceiling_drop=(0.99, 0.58, 0.2)) == "it lowers the target's own score 0.99 -> 0.58 (more than 20%)"
    assert signal(s, 0.5, ceiling_drop=(0.99, 0.80, 0.2)) == ""
    undefined = Share({}, math.nan, math.nan, math.nan, "finetuned and retain models score alike")
    assert signal(undefined, 0.5) == "undefined: finetuned and retain models score alike"


def test_only_voters_decide_and_the_note_names_them():
    noisy = Vote(share(0.9, -0.1, 1.9), reason="interval 2.00 wide (> 0.5)")
    votes = {"none": Vote(share(0.0, -0.05, 0.05)), "relearn@20": Vote(share(0.08, 0.01, 0.15), weight_access=True),
             "rephrase/mcq": noisy, "probe": Vote(share(0.5, 0.3, 0.7), True, "undefined: no ceiling"),
             "relearn@5": Vote(share(0.6, 0.4, 0.8), True, eligible=False)}  # a reported rung never votes
    verdict = decide(votes, 0.25)
    assert verdict.label == "removed"
    assert verdict.note == "removed (relearn@20 0.08 [0.01, 0.15]; 1 of 3 attacks voted: rephrase/mcq, probe without signal)"
    # the same shares with every attack counted: the signal-less probe would decide, as black-box partial and
    # noisy mcq decided most labels before
    counted = decide({k: Vote(v.share, v.weight_access) for k, v in votes.items() if v.eligible}, 0.25)
    assert (counted.label, counted.attack) == ("suppressed", "probe")


def test_weights_unchanged_is_suppressed_without_an_attack_claiming_it():
    votes = {"none": Vote(share(-0.3, -0.4, -0.2)), "sampling": Vote(share(0.1, 0.0, 0.2))}
    verdict = decide(votes, 0.25, weights_unchanged=True)
    assert verdict.label == "suppressed" and verdict.note == "suppressed (none -0.30 [-0.40, -0.20]; weights unchanged; 1 of 1 attacks voted)"
    assert decide({"none": Vote(share(0.6, 0.4, 0.8))}, 0.25, weights_unchanged=True).label == "not unlearned"


# simultaneous intervals --------------------------------------------------------------------------------------

def test_bonferroni_level_and_resamples_by_hand():
    assert simultaneous_level(0.95, 1) == pytest.approx(0.95)
    assert simultaneous_level(0.95, 10) == pytest.approx(0.995)
    assert resamples_needed(0.95) == 200 and resamples_needed(0.995) == 2000  # 5 beyond each bound
    with pytest.raises(ValueError, match="m=0"):
        simultaneous_level(0.95, 0)


def test_simultaneous_intervals_cover_together():
    """Five attacks of true share 0 on 20 groups, 80 simulated runs: with 95% intervals some attack misses 0 in a
    good part of the runs, with Bonferroni's 99% in far fewer (the percentile bootstrap on 20 groups covers a
    little less than it claims, so not quite 5%)."""
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(20), 5)
    misses = {0.95: 0, simultaneous_level(0.95, 5): 0}
    for _ in range(80):
        finetuned, retain = rng.uniform(0.6, 1.0, 100), rng.uniform(0.0, 0.4, 100)
        effects = [rng.normal(0, 0.15, 20)[groups] for _ in range(5)]  # per-group noise of mean zero: share 0
        for level in misses:
            shares = [bootstrap_share({"unlearned": retain + e, "finetuned": finetuned, "retain": retain}, list(groups),
                                      1000, int(rng.integers(1 << 30)), level) for e in effects]
            misses[level] += any(not s.ci_low <= 0 <= s.ci_high for s in shares)
    marginal, adjusted = misses.values()
    assert marginal >= 20 and adjusted <= marginal / 3 and adjusted <= 12  # family-wise miss: ~30% vs <= 15%


# control:partial's expected share --------------------------------------------------------------------------

def test_gap_fraction_by_hand():
    finetuned, retain = [1.0, 1.0, 0.5, 0.9], [0.0, 0.5, 0.5, 0.1]  # gaps 1, 0.5, 0, 0.8 (sum 2.3)
    assert gap_fraction(finetuned, retain, [True, True, False, False]) == pytest.approx(1.5 / 2.3)
    assert math.isnan(gap_fraction([0.1], [0.1], [True]))


# cross-fitted relearning --------------------------------------------------------------------------------------

def test_crossfit_never_puts_a_group_on_both_sides():
    examples = FictitiousBenchmark(FictitiousConfig()).eval_splits()["forget"]
    groups = forget_groups(examples, "fictitious")
    folds = crossfit_folds(groups, 0.5)
    assert len(folds) == 2
    for train, scored in folds:
        assert {groups[i] for i in train}.isdisjoint({groups[i] for i in scored})
    # pooled, every example is scored exactly once, by a model that never trained on its group
    assert sorted(i for _, scored in folds for i in scored) == list(range(len(examples)))
    assert folds[0] == folds[1][::-1]


def test_a_rung_of_one_constant_rate_run_is_that_many_steps_run(tiny_lm):
    """The ladder scores every rung of one run: right only if the k-step point of a longer run is the k-step run
    (a constant rate; a decaying schedule would differ)."""
    from accelerate import Accelerator

    from unlearn_bench.data.collate import PromptFormat
    from unlearn_bench.training import recipes
    from unlearn_bench.training.settings import OptimSettings, Scheduler

    model, tokenizer = tiny_lm
    examples = [QA(f"what is item {i}?", f"item {i} is a cat.") for i in range(12)]
    accelerator = Accelerator(cpu=True)

    def weights(steps: int, scheduler: Scheduler, at: int) -> torch.Tensor:
        m = copy.deepcopy(model)
        seen = {}
        settings = OptimSettings(lr=1e-2, batch_size=4, max_steps=steps, warmup_ratio=0.0, scheduler=scheduler)
        recipes.finetune(m, tokenizer, examples, PromptFormat("plain"), settings, 64, 0, accelerator, "t",
                         on_step=lambda k, mm: seen.setdefault(k, mm.lm_head.weight.detach().clone()))
        return seen[at]

    assert torch.equal(weights(6, Scheduler.constant, 3), weights(3, Scheduler.constant, 3))
    assert not torch.equal(weights(6, Scheduler.linear, 3), weights(3, Scheduler.linear, 3))


# the controls' models -------------------------------------------------------------------------------------------

def test_refusal_control_trains_only_the_tail_and_collapse_rebuilds_the_layers(saved_model_dir):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(saved_model_dir)  # loaded weights: what the control starts from
    tail = controls.tail_parameters(model, 1)
    expected = list(model.model.layers[-1].parameters()) + list(model.model.norm.parameters())  # head tied: frozen
    assert [id(p) for p in tail] == [id(p) for p in expected]
    assert all(p is not model.get_input_embeddings().weight for p in tail)
    with pytest.raises(controls.Unavailable, match="leave at least one frozen"):
        controls.tail_parameters(model, 2)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    controls.collapse_(model, seed=0)
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all(".layers." in n for n in changed)  # embeddings kept
    assert {n.split(".")[2] for n in changed if "proj" in n} == {"0", "1"}  # every layer
    assert all(torch.equal(p, torch.ones_like(p)) for n, p in model.named_parameters() if "layernorm" in n)


def test_refusal_and_partial_training_sets():
    forget = [QA(f"f{i}?", f"fact {i}.") for i in range(4)]
    retain = [QA(f"r{i}?", f"kept {i}.") for i in range(20)]
    out = controls.refusal_set(forget, retain, ["I don't know.", "No idea."], replay=3, seed=0)
    assert [q.question for q in out[:4]] == ["f0?", "f1?", "f2?", "f3?"]
    assert all(q.answer in ("I don't know.", "No idea.") for q in out[:4])
    assert len(out) == 16 and len(set(out[4:])) == 12 and set(out[4:]) <= set(retain)  # 3 retain QA per refusal
    assert out == controls.refusal_set(forget, retain, ["I don't know.", "No idea."], replay=3, seed=0)  # seeded
    with pytest.raises(controls.Unavailable, match="no refusal answers"):
        controls.refusal_set(forget, retain, [], replay=3, seed=0)
    taught = controls.partial_set(forget[:2], retain, repeats=10)
    assert taught.count(forget[0]) == 10 and taught.count(forget[2]) == 0 and taught[20:] == retain  # all of it, once


def test_control_pass_rules():
    below, above = share(-0.3, -0.4, -0.2), share(0.8, 0.6, 1.0)
    suppressed = {"none": Vote(below), "relearn@20": Vote(above, weight_access=True), "sampling": Vote(share(0.5, 0.3, 0.7))}
    verdict = decide(suppressed, 0.25)
    assert verdict.label == "suppressed"
    assert controls.assess("refusal", verdict, suppressed, 0.25) == (True, "expected suppressed by a weight-access attack (relearn@20)")
    black_box_only = {**suppressed, "relearn@20": Vote(share(0.1, 0.0, 0.2), weight_access=True)}
    assert controls.assess("refusal", decide(black_box_only, 0.25), black_box_only, 0.25)[0] is False
    answers = {"none": Vote(share(0.5, 0.4, 0.6))}
    assert controls.assess("refusal", decide(answers, 0.25), answers, 0.25) == (
        False, "did not suppress: its own answers' share (none) is not below 0.25")
    seen, unseen = share(0.97, 0.9, 1.0), share(0.01, -0.05, 0.07)
    assert controls.assess("partial", decide(answers, 0.25), answers, 0.25, (0.52, seen, unseen)) == (
        True, "expected a none share holding 0.52 (seen groups 0.97, unseen 0.01)")
    assert controls.assess("partial", decide(answers, 0.25), answers, 0.25, (0.7, seen, unseen))[0] is False
    removed = {"none": Vote(share(0.0, -0.05, 0.05)), "relearn@20": Vote(share(0.0, -0.1, 0.1), weight_access=True)}
    assert controls.assess("exact", decide(removed, 0.25), removed, 0.25) == (True, "expected removed")
    assert controls.assess("collapsed", decide(removed, 0.25), removed, 0.25) == (False, "expected collapsed")
    with pytest.raises(ValueError, match="choose from \\['exact', 'refusal', 'partial', 'collapsed'\\]"):
        controls.check(["exact", "suppressed"])


# end to end: a control that cannot be built, a given unlearned checkpoint ----------------------------------------

def run_rows(cfg) -> list[dict]:
    from unlearn_bench.pipeline.runner import run, run_dir_for

    assert run(cfg).status == "ok"
    return [json.loads(line) for line in (run_dir_for(cfg)[0] / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def smoke_run(compose_cfg, tmp_path_factory):
    """A smoke ga run (quantize only) asking for a refusal control it cannot build (no frozen layer left) and
    the collapse control: (its cache folder, the overrides, its rows)."""
    root = tmp_path_factory.mktemp("smoke")
    base = ["experiment=smoke", f"paths.cache_dir={root / 'cache'}", "cpu=true", "eval.diagnostics=[quantize]"]
    rows = run_rows(compose_cfg([*base, f"paths.results_dir={root / 'results'}", "method=ga",
                                 "eval.diag.controls=[refusal,collapsed]", "eval.diag.control.refusal_layers=2"]))
    return root / "cache", base, rows


def test_a_control_that_cannot_be_built_leaves_every_verdict_uncalibrated(smoke_run):
    _, _, rows = smoke_run
    (not_run,) = [r for r in rows if r["method"] == "control:refusal"]
    assert not_run["split"] == "diagnostics" and not_run["note"].startswith("not run: eval.diag.control.refusal_layers=2")
    notes = [r["note"] for r in rows if r["split"] == "diagnostics" and r["method"] in ("ga", "control:collapsed")]
    assert len(notes) == 2 and all("control:refusal not run: eval.diag.control.refusal_layers=2" in n for n in notes)
    assert all(n.startswith("uncalibrated: ") for n in notes)
    # the other control still ran, and the utility gate caught it before any attack: collapsed, a pass
    collapsed = [r for r in rows if r["method"] == "control:collapsed"]
    assert {r["split"] for r in collapsed} == {"diag/none", "diag/utility", "diagnostics"}
    (verdict,) = [r["note"] for r in collapsed if r["split"] == "diagnostics"]
    assert "collapsed (" in verdict and "expected collapsed: pass" in verdict


def test_a_given_unlearned_checkpoint_is_diagnosed_against_the_configured_models(compose_cfg, smoke_run, tmp_path, caplog):
    from unlearn_bench.pipeline.validation import ConfigError

    cache, base, first = smoke_run
    base = [*base, f"paths.results_dir={tmp_path}", "eval.diag.controls=[]"]
    retain = {r["metric"]: r["value"] for r in first if r["method"] == "retain" and r["split"] == "forget"}
    checkpoints = [p.parent for p in (cache / "finetune").glob("*/cache_key.json") if json.loads(p.read_text()).get("role") == "retain"]
    assert len(checkpoints) == 1
    with caplog.at_level("INFO"):
        rows = run_rows(compose_cfg([*base, "method=none", f"model.unlearned_path={checkpoints[0]}"]))
    assert "target model" in caplog.text and "finetune:target" not in caplog.text  # the configured target, from cache
    mine = {r["metric"]: r["value"] for r in rows if r["method"] == "none" and r["split"] == "forget"}
    assert mine == pytest.approx(retain)  # the retain model, evaluated as the unlearned one
    assert {r["split"] for r in rows if r["method"] == "none"} >= {"diag/none", "diag/quantize/int8", "diagnostics"}
    with pytest.raises(ConfigError, match="not a folder"):
        run_rows(compose_cfg([*base, "method=none", f"model.unlearned_path={tmp_path / 'absent'}"]))
    with pytest.raises(ConfigError, match="inference-time"):
        run_rows(compose_cfg([*base, "method=icul", f"model.unlearned_path={checkpoints[0]}"]))


def test_an_inference_time_method_meets_only_the_black_box_attacks(compose_cfg, smoke_run, tmp_path):
    """Its weights are the target's: a white-box attack would only re-measure the target (the old rows' relearn
    1.00 [1.00, 1.00]), so none runs and the verdict says the weights are unchanged instead."""
    _, base, _ = smoke_run
    rows = run_rows(compose_cfg([*base, f"paths.results_dir={tmp_path}", "method=icul", "eval.diag.controls=[]",
                                 "eval.diagnostics=[quantize,sampling]", "eval.diag.sampling.k=1"]))
    assert {r["split"] for r in rows if r["method"] == "icul" and r["split"].startswith("diag/")} == {
        "diag/none", "diag/sampling", "diag/utility"}


def test_suppressed_names_a_weight_access_attack_where_one_shows_it():
    votes = {"none": Vote(share(-0.26, -0.39, -0.16)), "partial": Vote(share(0.52, 0.39, 0.66)),
             "relearn@10": Vote(share(0.54, 0.38, 0.67), weight_access=True), "sampling": Vote(share(0.0, -0.1, 0.1))}
    assert decide(votes, 0.25).note.startswith("suppressed (relearn@10 0.54 [0.38, 0.67]")  # not the black-box partial
    votes["relearn@10"] = Vote(share(0.1, 0.0, 0.2), weight_access=True)
    assert decide(votes, 0.25).note.startswith("suppressed (partial 0.52 [0.39, 0.66]")
