"""Removal or suppression? The diagnose stage (`eval.diagnostics=[...]`).

Every attack is a function model -> per-example forget scores, applied identically to the unlearned model,
the fine-tuned target and the retain model; attack zero, `none`, is the bench's own greedy answers. With A(.)
the mean attacked score over the same forget examples,

    knowledge_share = (A(unlearned) - A(retain)) / (A(finetuned) - A(retain))

0: no more than a model that never saw the forget data shows under the same attack; 1: all that the target
knew. Each share gets a seeded group-bootstrap interval (`diagnostics.share`, groups from `diagnostics.groups`),
simultaneous over the voting attacks (Bonferroni). The utility gate (`diagnostics.gate`) labels a wrecked model
`collapsed` first; attacks vote only where they have signal, and the verdict (`diagnostics.verdict`) reads the
voters' intervals: not unlearned / removed / suppressed / inconclusive / undefined. Known-answer controls
(`diagnostics.controls`: exact, refusal, partial, collapsed), models with weights of their own, go through the
same stage; one that gets the wrong answer or was not built marks every verdict of the run `uncalibrated`.

Rows: per attack, split `diag/<attack>` with the three models' mean scores (`unlearned`, `finetuned`,
`retain`), `knowledge_share`, `ci_low`, `ci_high` and `votes` (1 or 0, the note says why not); split
`diag/utility` with the gate's ratios to the target; one `diagnostics/verdict` row whose note names the
deciding attack, its interval and the voters. `sequential` adds utility/forget curves over K successive
requests and does not vote. Attacks need TOFU-family QA evaluations (per-example forget scores); on other
benches they are skipped with a warning. Every model's attacked scores are cached by the hash of what
determines them, so a sweep over methods attacks the references and the controls once.
"""
from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from omegaconf import OmegaConf

from unlearn_bench.benchmarks.base import EvalOutput
from unlearn_bench.store.cache import cached_stage
from unlearn_bench.runtime.device import seed_everything
from unlearn_bench.diagnostics import (controls, gate, partial, probe, quantize, relearn, rephrase, sampling,
                                       sequential, soft_prompt)
from unlearn_bench.diagnostics.common import Attack, DiagInputs, Subject, no_attack
from unlearn_bench.diagnostics.controls import PREFIX, Control
from unlearn_bench.diagnostics.share import (ROLES, Share, bootstrap_share, gap_fraction, resamples_needed,
                                             simultaneous_level)
from unlearn_bench.diagnostics.settings import DiagnosticsConfig
from unlearn_bench.diagnostics.verdict import NO_ATTACK, Verdict, Vote, decide, signal
from unlearn_bench.evaluation.wrapper import InferenceWrapper
from unlearn_bench.models import loading
from unlearn_bench.store.results import MetricRow

log = logging.getLogger(__name__)

ATTACKS: dict[str, Callable[[DiagInputs, Any], list[Attack]]] = {
    "relearn": relearn.attacks,
    "quantize": quantize.attacks,
    "rephrase": rephrase.attacks,
    "sampling": sampling.attacks,
    "probe": probe.attacks,
    "partial": partial.attacks,
    "soft_prompt": soft_prompt.attacks,
}
DIAGNOSTICS = (*ATTACKS, "sequential")
SCORES_VERSION = 2  # bump when an attack's scoring changes: cached attacked scores of older code are not reused


def check_names(names: Sequence[str]) -> None:
    unknown = [n for n in names if n not in DIAGNOSTICS]
    if unknown:
        raise ValueError(f"eval.diagnostics: unknown {unknown}; choose from {list(DIAGNOSTICS)}")


def check_settings(eval_cfg: Any, on_cuda: bool) -> None:
    """Fail at start on unknown diagnostics or controls and on settings no attack can run with (the hardware an
    attack needs only where it is asked for)."""
    check_names(list(eval_cfg.diagnostics))
    settings: DiagnosticsConfig = OmegaConf.to_object(eval_cfg.diag)
    if not 0 < settings.threshold < 1:
        raise ValueError(f"eval.diag.threshold={settings.threshold} must be in (0, 1)")
    if not 0.5 < settings.level < 1:
        raise ValueError(f"eval.diag.level={settings.level} must be in (0.5, 1)")
    level = simultaneous_level(settings.level, voting_attacks(eval_cfg.diagnostics, settings))
    if settings.bootstrap < resamples_needed(level):
        raise ValueError(f"eval.diag.bootstrap={settings.bootstrap}: the {level:.4f} intervals (level {settings.level} "
                         f"over {voting_attacks(eval_cfg.diagnostics, settings)} voting attacks, Bonferroni) need >= "
                         f"{resamples_needed(level)} resamples")
    if not 0 < settings.min_utility < 1 or settings.max_width <= 0:
        raise ValueError(f"eval.diag.min_utility={settings.min_utility} must be in (0, 1) and eval.diag.max_width="
                         f"{settings.max_width} > 0")
    controls.check(settings.controls)
    relearn.check(settings.relearn)
    quantize.check(settings.quantize)
    if "quantize" in eval_cfg.diagnostics:
        quantize.check_hardware(settings.quantize, on_cuda)
    rephrase.check(settings.rephrase)
    sampling.check(settings.sampling)
    partial.check(settings.partial)
    soft_prompt.check(settings.soft_prompt)


def voting_attacks(names: Sequence[str], settings: DiagnosticsConfig) -> int:
    """How many attacks vote (`none` included) for these diagnostics: the m of the Bonferroni adjustment."""
    per = {"relearn": 1 + int(settings.relearn.unrelated), "quantize": len(settings.quantize.bits),
           "rephrase": len(settings.rephrase.probes)}
    return 1 + sum(per.get(name, 1) for name in names if name in ATTACKS)


def score_subject(inputs: DiagInputs, attacks: Sequence[Attack], subject: Subject) -> dict[str, np.ndarray]:
    """Each attack's per-example scores of one subject: from its own evaluation where the attack is the bench's
    own, from the cache, or computed (the model loaded on first need, reseeded before every attack so that each
    model meets the same random draws)."""
    model = None
    out = {}
    for attack in attacks:
        if attack.from_evaluation is not None:
            out[attack.name] = attack.from_evaluation(subject.evaluation)
            continue

        def compute() -> np.ndarray:
            nonlocal model
            if model is None:
                model = subject.load()
            start = time.time()
            seed_everything(inputs.seed)
            scores = np.asarray(attack.score(model, None if attack.white_box else subject.wrapper), dtype=float)
            log.info("diagnostic %s on %s: %.1fs", attack.name, subject.name, time.time() - start)
            return scores

        out[attack.name] = compute() if subject.cache_key is None else cached_scores(inputs, attack, subject.cache_key, compute)
    return out


def cached_scores(inputs: DiagInputs, attack: Attack, subject_key: Any, compute: Callable[[], np.ndarray]) -> np.ndarray:
    cfg = inputs.cfg
    key = {"version": SCORES_VERSION, "subject": subject_key, "attack": attack.name, "metric": attack.metric,
           "settings": attack.settings, "index": attack.index, "seed": inputs.seed,
           "train_fraction": inputs.settings.relearn.train_fraction, "batch_size": cfg.eval.batch_size,
           "bench": OmegaConf.to_container(cfg.bench, resolve=True)}

    def build(out: Path) -> None:
        (out / "scores.json").write_text(json.dumps([None if not np.isfinite(v) else float(v) for v in compute()]))

    path, _ = cached_stage(cfg.paths.cache_dir, "diag_scores", key, build)
    return np.asarray([np.nan if v is None else v for v in json.loads((path / "scores.json").read_text())], dtype=float)


def shares_of(inputs: DiagInputs, attacks: Sequence[Attack], scores: Mapping[str, Mapping[str, np.ndarray]],
              level: float) -> dict[str, Share]:
    """Knowledge share of every attack at interval `level`; `scores`: role -> attack name -> per-example scores."""
    return {a.name: bootstrap_share({role: scores[role][a.name] for role in ROLES}, [inputs.groups[i] for i in a.index],
                                    inputs.settings.bootstrap, inputs.seed, level)
            for a in attacks}


@dataclass
class Case:
    """The stage's result for one model in the unlearned role (the run's method or a control)."""

    method: str
    intent: str
    metrics: dict[str, str]       # attack -> what its scores are
    votes: dict[str, Vote]        # attack -> its share and whether it voted
    verdict: Verdict
    utility: dict[str, tuple[float, float]]  # gate measure -> (this model's, the target's)
    check: tuple[bool, str] | None = None    # a control's (passed, what was expected)
    uncalibrated: list[str] = field(default_factory=list)  # the run's controls that failed or did not run

    def verdict_note(self) -> str:
        note = self.verdict.note
        if self.check is not None:
            note += f"; {self.check[1]}: {'pass' if self.check[0] else 'FAIL'}"
        return f"uncalibrated: {note} ({'; '.join(self.uncalibrated)})" if self.uncalibrated else note


def case_rows(c: Case, row: Callable[..., MetricRow]) -> list[MetricRow]:
    """Per attack the three models' mean scores, the share, its interval and the vote; the gate's ratios; then
    the verdict row."""
    out = []
    for attack, v in c.votes.items():
        s = v.share
        split, note = f"diag/{attack}", c.metrics[attack] + (f"; {v.reason}" if v.reason else "")
        out += [row(c.method, c.intent, split, role, s.means[role], False if role == "unlearned" else None, note)
                for role in ROLES]
        out += [row(c.method, c.intent, split, name, value, False, note)
                for name, value in (("knowledge_share", s.value), ("ci_low", s.ci_low), ("ci_high", s.ci_high))]
        if v.eligible:
            out.append(row(c.method, c.intent, split, "votes", float(v.votes), None, note))
    for name, (value, target) in c.utility.items():
        out.append(row(c.method, c.intent, "diag/utility", name, value / target if target else math.nan, True,
                       f"{value:.3f} vs the target's {target:.3f}"))
    out.append(row(c.method, c.intent, "diagnostics", "verdict",
                   c.verdict.share.value if c.verdict.share is not None else None, False, c.verdict_note()))
    return out


def diag_inputs(ctx: Any, tokenizer: Any, evals: Mapping[str, EvalOutput], model_dirs: Mapping[str, Path],
                new_method: Callable[[], Any]) -> DiagInputs:
    settings: DiagnosticsConfig = OmegaConf.to_object(ctx.cfg.eval.diag)
    return DiagInputs(ctx.cfg, settings, ctx.bench, ctx.data, ctx.fmt, ctx.accelerator, tokenizer, evals, model_dirs,
                      new_method)


def reference_subjects(inputs: DiagInputs, model_keys: Mapping[str, Any]) -> dict[str, Subject]:
    """The fine-tuned target and the retain model as attacked subjects, loaded from their saved folders."""
    device = inputs.accelerator.device

    def saved(role: str) -> Callable[[], Any]:
        return lambda: loading.load_saved(inputs.model_dirs[role], inputs.cfg.model).to(device)

    return {role: Subject(role, saved(role), inputs.evals[role], model_keys.get(role)) for role in ("finetuned", "retain")}


def run_attacks(inputs: DiagInputs, attack_names: Sequence[str]) -> list[Attack]:
    """`none` and every attack of `attack_names`, each with its settings."""
    return [no_attack(inputs)] + [a for name in attack_names for a in ATTACKS[name](inputs, getattr(inputs.settings, name))]


def prescore_references(ctx: Any, tokenizer: Any, evals: Mapping[str, EvalOutput], model_dirs: Mapping[str, Path],
                        model_keys: Mapping[str, Any]) -> None:
    """The fine-tuned and retain models' attacked scores into the cache (`diag_scores`), where the diagnose stage
    then reads them: the runner calls it while control:exact may still train in the side process, so that this
    process's share of the work is done meanwhile. Same attacks, seeds and keys as `run_diagnostics`."""
    inputs = diag_inputs(ctx, tokenizer, evals, model_dirs, lambda: None)
    attack_names = [n for n in ctx.cfg.eval.diagnostics if n in ATTACKS]
    if not attack_names or not inputs.is_qa():
        return
    attacks = run_attacks(inputs, attack_names)
    for subject in reference_subjects(inputs, model_keys).values():
        if subject.cache_key is not None:  # uncached scores would only be computed twice
            score_subject(inputs, attacks, subject)


def run_diagnostics(ctx: Any, model: Any, tokenizer: Any, run_id: str, new_method: Callable[[], Any],
                    evals: Mapping[str, EvalOutput], model_dirs: Mapping[str, Path],
                    wrapper: InferenceWrapper | None = None, model_keys: Mapping[str, Any] | None = None,
                    controls: Sequence[Control] = ()) -> list[MetricRow]:
    """Rows of every diagnostic in `ctx.cfg.eval.diagnostics`, the verdict row, and the controls' rows.

    ctx: the runner's Context (cfg, bench, data, fmt, accelerator); evals: unlearned/finetuned/retain
    evaluations; model_dirs / model_keys: saved finetuned/retain models and their cache identities (None: their
    attacked scores are not cached); new_method: a fresh method object per call; wrapper: an inference-time
    method's wrapper over `model` (whose weights are then the target's); controls: the known-answer controls
    the pipeline built (`pipeline.controls`)."""
    cfg = ctx.cfg
    names = list(cfg.eval.diagnostics)
    check_names(names)
    inputs = diag_inputs(ctx, tokenizer, evals, model_dirs, new_method)
    settings = inputs.settings
    attack_names = [n for n in names if n in ATTACKS]
    if attack_names and not inputs.is_qa():
        log.warning("diagnostics %s need TOFU-family QA evaluations; bench '%s' has none: skipped", attack_names, cfg.bench.name)
        attack_names = []

    def row(method: str, intent: str, split: str, metric: str, value: float | None, higher: bool | None, note: str = "") -> MetricRow:
        return MetricRow(cfg.bench.name, cfg.model.name, method, split, metric, value, higher, cfg.seed, run_id, intent,
                         note=note)

    rows = []
    if "sequential" in names:
        start = time.time()
        seed_everything(cfg.seed)
        rows += [row(cfg.method.name, cfg.method.intent, m.split, m.metric, m.value, m.higher_is_better)
                 for m in sequential.run(inputs, settings.sequential)]
        log.info("diagnostic sequential done in %.1fs", time.time() - start)
    if attack_names:
        cases = attack_cases(inputs, Subject("unlearned", lambda: model, evals["unlearned"], wrapper=wrapper),
                             attack_names, reference_subjects(inputs, model_keys or {}), controls)
        rows += [r for case in cases for r in case_rows(case, row)]
        rows += [row(PREFIX + c.name, "control", "diagnostics", "verdict", None, False, f"not run: {c.reason}")
                 for c in controls if c.subject is None]
    return rows


def attack_cases(inputs: DiagInputs, unlearned: Subject, attack_names: Sequence[str], references: Mapping[str, Subject],
                 controls: Sequence[Control] = ()) -> list[Case]:
    """The run's method and each control through every attack (an inference-time method, whose weights are the
    target's, through the black-box ones only; a model the utility gate calls collapsed through none);
    verdicts marked `uncalibrated` where a control failed or was not built. `control:exact` is scored first:
    its distance from the retain model is every other case's noise floor."""
    settings = inputs.settings
    attacks = run_attacks(inputs, attack_names)
    level = simultaneous_level(settings.level, sum(a.votes for a in attacks))
    ref_scores = {role: score_subject(inputs, attacks, subject) for role, subject in references.items()}
    target_utility = gate.utility(references["finetuned"].evaluation, inputs.tokenizer)

    def case(subject: Subject, method: str, intent: str, noise: Mapping[str, float] | None,
             weights_unchanged: bool = False) -> tuple[Case, dict[str, np.ndarray]]:
        mine = gate.utility(subject.evaluation, inputs.tokenizer)
        collapsed = gate.gate(mine, target_utility, settings.min_utility)
        # a wreck's verdict reads no attack, so only its own answers (`none`, free) are scored
        scored = [a for a in attacks if not (weights_unchanged and a.white_box) and not (collapsed and a.name != NO_ATTACK)]
        scores = score_subject(inputs, scored, subject)
        shares = shares_of(inputs, scored, {**ref_scores, "unlearned": scores}, level)
        votes = {a.name: Vote(shares[a.name], a.weight_access, signal(shares[a.name], settings.max_width,
                                                                      None if noise is None else noise.get(a.name),
                                                                      ceiling_drop(a, ref_scores["finetuned"])),
                              eligible=a.votes)
                 for a in scored}
        verdict = decide(votes, settings.threshold, collapsed, weights_unchanged)
        utility = {name: (mine[name], target_utility[name]) for name in mine if np.isfinite(target_utility[name])}
        return Case(method, intent, {a.name: a.metric for a in scored}, votes, verdict, utility), scores

    built = {c.name: c for c in controls if c.subject is not None}
    cases, noise = [], None
    if "exact" in built:
        exact, scores = case(built["exact"].subject, PREFIX + "exact", "control", None)
        noise = {name: abs(float(np.mean(v)) - float(np.mean(ref_scores["retain"][name]))) for name, v in scores.items()}
        cases.append(assessed(exact, "exact", settings.threshold))
    cfg = inputs.cfg
    cases.insert(0, case(unlearned, cfg.method.name, cfg.method.intent, noise, unlearned.wrapper is not None)[0])
    for name, control in built.items():
        if name == "exact":
            continue
        c, scores = case(control.subject, PREFIX + name, "control", noise)
        cases.append(assessed(c, name, settings.threshold, partial_expectation(inputs, attacks[0], control, ref_scores,
                                                                              scores, level) if name == "partial" else None))
    failed = [f"{c.method} {c.verdict.label}: FAIL" for c in cases if c.check is not None and not c.check[0]]
    failed += [f"{PREFIX}{c.name} not run: {c.reason}" for c in controls if c.subject is None]
    for message in failed:
        log.warning("diagnostics uncalibrated: %s; every verdict of this run is marked uncalibrated", message)
    for c in cases:
        c.uncalibrated = failed
        log.info("diagnostics verdict for %s (intent %s): %s", c.method, c.intent, c.verdict_note())
    return cases


def ceiling_drop(attack: Attack, finetuned: Mapping[str, np.ndarray]) -> tuple[float, float, float] | None:
    """(the target's unattacked mean, its attacked mean, the allowed drop) over the attack's examples, for an
    attack that trains the weights; None for the others."""
    if attack.max_ceiling_drop is None:
        return None
    before = float(np.mean(finetuned[NO_ATTACK][attack.index]))
    return before, float(np.mean(finetuned[attack.name])), attack.max_ceiling_drop


def partial_expectation(inputs: DiagInputs, none: Attack, control: Control, ref_scores: Mapping[str, Mapping[str, np.ndarray]],
                        scores: Mapping[str, np.ndarray], level: float) -> tuple[float, Share, Share]:
    """control:partial's expected none share (the target's knowledge in the groups it saw) and its shares on
    the seen and the unseen groups."""
    seen = np.zeros(len(none.index), dtype=bool)
    seen[control.seen] = True
    roles = {**ref_scores, "unlearned": scores}

    def on(mask: np.ndarray) -> Share:
        return bootstrap_share({role: np.asarray(roles[role][NO_ATTACK])[mask] for role in ROLES},
                               [g for g, m in zip(inputs.groups, mask) if m], inputs.settings.bootstrap, inputs.seed, level)

    fraction = gap_fraction(ref_scores["finetuned"][NO_ATTACK], ref_scores["retain"][NO_ATTACK], seen)
    return fraction, on(seen), on(~seen)


def assessed(c: Case, name: str, threshold: float, partial: tuple[float, Share, Share] | None = None) -> Case:
    c.check = controls.assess(name, c.verdict, c.votes, threshold, partial)
    return c
