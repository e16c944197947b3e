"""Removal or suppression? The diagnose stage (`eval.diagnostics=[...]`).

Every attack is a function model -> per-example forget scores, applied identically to the unlearned model,
the fine-tuned target and the retain model; attack zero, `none`, is the bench's own greedy answers. With A(.)
the mean attacked score over the same forget examples,

    knowledge_share = (A(unlearned) - A(retain)) / (A(finetuned) - A(retain))

0: no more than a model that never saw the forget data shows under the same attack; 1: all that the target
knew. Each share gets a seeded group-bootstrap interval (`diagnostics.share`, groups from
`diagnostics.groups`), and the verdict (`diagnostics.verdict`) reads the intervals: not unlearned / removed /
suppressed / inconclusive / undefined. Known-answer controls (`diagnostics.controls`) run the same stage on
a model known to have removed (the retain model) and one known to suppress (the target behind a generation
filter); a wrong control verdict marks every verdict of the run `uncalibrated`.

Rows: per attack, split `diag/<attack>` with the three models' mean scores (`unlearned`, `finetuned`,
`retain`), `knowledge_share`, `ci_low`, `ci_high`; one `diagnostics/verdict` row whose note names the deciding
attack and its interval. `sequential` adds utility/forget curves over K successive requests and does not vote.
Attacks need TOFU-family QA evaluations (per-example forget scores); on other benches they are skipped with a
warning. The finetuned and retain models' attacked scores are cached by the hash of what determines them, so a
sweep over methods attacks them once.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from omegaconf import OmegaConf

from unlearn_bench.benchmarks.base import EvalOutput
from unlearn_bench.store.cache import cached_stage
from unlearn_bench.runtime.device import seed_everything
from unlearn_bench.diagnostics import (controls, partial, probe, quantize, relearn, rephrase, sampling, sequential,
                                       soft_prompt)
from unlearn_bench.diagnostics.common import Attack, DiagInputs, no_attack
from unlearn_bench.diagnostics.share import ROLES, Share, bootstrap_share
from unlearn_bench.diagnostics.settings import DiagnosticsConfig
from unlearn_bench.diagnostics.verdict import Verdict, decide
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
SCORES_VERSION = 1  # bump when an attack's scoring changes: cached attacked scores of older code are not reused


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
    if settings.bootstrap < 100 or not 0.5 < settings.level < 1:
        raise ValueError(f"eval.diag.bootstrap={settings.bootstrap} (>= 100) and eval.diag.level={settings.level} "
                         "(in (0.5, 1)) give no usable interval")
    controls.check(settings.controls)
    relearn.check(settings.relearn)
    quantize.check(settings.quantize)
    if "quantize" in eval_cfg.diagnostics:
        quantize.check_hardware(settings.quantize, on_cuda)
    rephrase.check(settings.rephrase)
    sampling.check(settings.sampling)
    partial.check(settings.partial)
    soft_prompt.check(settings.soft_prompt)


@dataclass
class Subject:
    """A model the attacks run on: loaded at most once, its scores cached under `cache_key` (None: not cached)."""

    name: str
    load: Callable[[], Any]
    evaluation: EvalOutput | None = None
    cache_key: Any = None
    wrapper: InferenceWrapper | None = None  # what it is deployed behind (an inference-time method, a control)
    # Scores of white-box attacks, which run the bare weights, where these weights are another subject's.
    white_box_scores: Mapping[str, np.ndarray] | None = None


def score_subject(inputs: DiagInputs, attacks: Sequence[Attack], subject: Subject) -> dict[str, np.ndarray]:
    """Each attack's per-example scores of one subject: from its evaluation where the attack is the bench's own,
    from the cache, or computed (the model loaded on first need, reseeded before every attack so that each
    model meets the same random draws)."""
    model = None
    out = {}
    for attack in attacks:
        if subject.evaluation is not None and attack.from_evaluation is not None:
            out[attack.name] = attack.from_evaluation(subject.evaluation)
            continue
        if attack.white_box and subject.white_box_scores is not None:
            out[attack.name] = subject.white_box_scores[attack.name]
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


def shares_of(inputs: DiagInputs, attacks: Sequence[Attack], scores: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, Share]:
    """Knowledge share of every attack; `scores`: role -> attack name -> per-example scores."""
    settings = inputs.settings
    return {a.name: bootstrap_share({role: scores[role][a.name] for role in ROLES}, [inputs.groups[i] for i in a.index],
                                    settings.bootstrap, inputs.seed, settings.level)
            for a in attacks}


@dataclass
class Case:
    """The stage's result for one model in the unlearned role (the run's method or a control)."""

    method: str
    intent: str
    metrics: dict[str, str]       # attack -> what its scores are
    shares: dict[str, Share]
    verdict: Verdict
    expected: str | None = None   # a control's correct verdict
    uncalibrated: list[str] = field(default_factory=list)  # the controls of the run that got the wrong verdict

    def verdict_note(self) -> str:
        note = self.verdict.note + (f"; expected {self.expected}" if self.expected else "")
        return f"uncalibrated: {note} (wrong verdict of {', '.join(self.uncalibrated)})" if self.uncalibrated else note


def case_rows(c: Case, row: Callable[..., MetricRow]) -> list[MetricRow]:
    """Per attack the three models' mean scores, the share and its interval; then the verdict row."""
    out = []
    for attack, s in c.shares.items():
        split, note = f"diag/{attack}", c.metrics[attack] + (f"; undefined: {s.reason}" if s.reason else "")
        out += [row(c.method, c.intent, split, role, s.means[role], False if role == "unlearned" else None, note)
                for role in ROLES]
        out += [row(c.method, c.intent, split, name, value, False, note)
                for name, value in (("knowledge_share", s.value), ("ci_low", s.ci_low), ("ci_high", s.ci_high))]
    out.append(row(c.method, c.intent, "diagnostics", "verdict", c.verdict.share.value, False, c.verdict_note()))
    return out


def run_diagnostics(ctx: Any, model: Any, tokenizer: Any, run_id: str, new_method: Callable[[], Any],
                    evals: Mapping[str, EvalOutput], model_dirs: Mapping[str, Path],
                    wrapper: InferenceWrapper | None = None, model_keys: Mapping[str, Any] | None = None) -> list[MetricRow]:
    """Rows of every diagnostic in `ctx.cfg.eval.diagnostics`, the verdict row, and the controls' rows.

    ctx: the runner's Context (cfg, bench, data, fmt, accelerator); evals: unlearned/finetuned/retain
    evaluations; model_dirs / model_keys: saved finetuned/retain models and their cache identities (None: their
    attacked scores are not cached); new_method: a fresh method object per call; wrapper: an inference-time
    method's wrapper over `model`."""
    cfg = ctx.cfg
    names = list(cfg.eval.diagnostics)
    check_names(names)
    settings: DiagnosticsConfig = OmegaConf.to_object(cfg.eval.diag)
    inputs = DiagInputs(cfg, settings, ctx.bench, ctx.data, ctx.fmt, ctx.accelerator, tokenizer, evals, model_dirs,
                        new_method)
    attack_names = [n for n in names if n in ATTACKS]
    if attack_names and not inputs.is_qa():
        log.warning("diagnostics %s need TOFU-family QA evaluations; bench '%s' has none: skipped", attack_names, cfg.bench.name)
        attack_names = []

    def row(method: str, intent: str, split: str, metric: str, value: float, higher: bool | None, note: str = "") -> MetricRow:
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
                             attack_names, model_keys or {})
        rows += [r for case in cases for r in case_rows(case, row)]
    return rows


def attack_cases(inputs: DiagInputs, unlearned: Subject, attack_names: Sequence[str], model_keys: Mapping[str, Any]) -> list[Case]:
    """The run's method and each control through every attack; verdicts marked `uncalibrated` where a control
    got the wrong one."""
    cfg, settings = inputs.cfg, inputs.settings
    attacks = [no_attack(inputs)] + [a for name in attack_names for a in ATTACKS[name](inputs, getattr(settings, name))]
    device = inputs.accelerator.device

    def saved(role: str) -> Callable[[], Any]:
        return lambda: loading.load_saved(inputs.model_dirs[role], cfg.model).to(device)

    references = {role: score_subject(inputs, attacks, Subject(role, saved(role), inputs.evals[role], model_keys.get(role)))
                  for role in ("finetuned", "retain")}
    cases = [case(inputs, cfg.method.name, cfg.method.intent, attacks,
                  {**references, "unlearned": score_subject(inputs, attacks, unlearned)})]
    for name in settings.controls:
        if name == "retain":
            scores = references["retain"]
        else:
            banned = controls.banned_tokens(inputs.forget_examples, inputs.tokenizer, inputs.fmt, cfg.model.max_length)
            key = {"finetuned": model_keys["finetuned"], "banned": banned} if "finetuned" in model_keys else None
            subject = Subject(controls.PREFIX + name, saved("finetuned"), None, key, controls.suppression(banned),
                              white_box_scores=references["finetuned"])
            scores = score_subject(inputs, attacks, subject)
        cases.append(case(inputs, controls.PREFIX + name, "control", attacks, {**references, "unlearned": scores},
                          expected=controls.EXPECTED[name]))
    wrong = [c for c in cases if c.expected is not None and c.verdict.label != c.expected]
    for c in wrong:
        log.warning("diagnostics uncalibrated: %s got '%s', expected '%s'; every verdict of this run is marked "
                    "uncalibrated", c.method, c.verdict.note, c.expected)
    for c in cases:
        c.uncalibrated = [w.method for w in wrong]
        log.info("diagnostics verdict for %s (intent %s): %s", c.method, c.intent, c.verdict_note())
    return cases


def case(inputs: DiagInputs, method: str, intent: str, attacks: Sequence[Attack],
         scores: Mapping[str, Mapping[str, np.ndarray]], expected: str | None = None) -> Case:
    shares = shares_of(inputs, attacks, scores)
    return Case(method, intent, {a.name: a.metric for a in attacks}, shares, decide(shares, inputs.settings.threshold),
                expected)
