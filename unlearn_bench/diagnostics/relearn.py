"""Relearning attack: a budget ladder of fine-tuning steps on some forget groups, greedy answers on the others.

Lynch et al. 2024, "Eight methods to evaluate robust unlearning in LLMs" (arXiv:2402.16835), and Hu et al. 2024,
"Jogging the memory of unlearned LLMs through targeted relearning attacks" (arXiv:2406.13356): knowledge that
was only suppressed comes back for held-out facts after briefly training on related ones; removed knowledge
has to be learned from scratch, which the held-out groups cannot be. Deeb & Roger 2024 (arXiv:2410.08827) and
Łucki et al. 2024 (arXiv:2409.18025) find that a few steps, even on unrelated data, restore most "unlearned"
knowledge, so the attack is a curve over budgets, not one point:

  relearn@<k>         k steps (`eval.diag.relearn.steps`, constant rate, so the k-step point of one run is the
                      k-step run), cross-fitted: trained on each fold of forget groups, scored on the other,
                      pooled, so every forget example is scored by a model that never trained on its group.
                      The rung at `verdict_steps` votes; the others are reported (rung 0 is `none`).
  relearn/unrelated   `verdict_steps` steps on retain examples only (as many as a fold holds), scored on every
                      forget example: what relearning restores without any forget data.

The budget is the same for every model of a run (learning rate `lr_fraction` x the model's fine-tuning rate,
its batch size), so recoveries compare across methods; the retain model gets the same steps: what it
"recovers" on groups it never saw is what the attack itself teaches (format), the floor of the share. The rate
is gentle on purpose: an attack that lowers the target's own answers measures recovery against a wrecked
ceiling, so a rung where the target loses more than `max_ceiling_drop` of its unattacked score does not vote.
"""
from __future__ import annotations

import copy
import dataclasses
import logging
import random
from typing import Any, Hashable, Iterable, Sequence

import numpy as np
import torch

from unlearn_bench.data.records import QA
from unlearn_bench.diagnostics.common import Attack, DiagInputs, greedy_rouge, shared_scorer
from unlearn_bench.diagnostics.groups import disjoint_split
from unlearn_bench.diagnostics.settings import RelearnConfig
from unlearn_bench.training import recipes

log = logging.getLogger(__name__)

# Which parameters the attacker trains, by module name (Llama/Phi/Mistral naming).
PARAMS = {"all": lambda name: True, "mlp": lambda name: ".mlp." in name, "attention": lambda name: ".self_attn." in name}
METRIC = "rougeL_recall"


def check(cfg: RelearnConfig) -> None:
    if cfg.params not in PARAMS:
        raise ValueError(f"eval.diag.relearn.params='{cfg.params}': choose from {list(PARAMS)}")
    if not cfg.steps or any(k < 1 for k in cfg.steps) or len(set(cfg.steps)) != len(cfg.steps):
        raise ValueError(f"eval.diag.relearn.steps={list(cfg.steps)}: distinct budgets of >= 1 step (rung 0 is the "
                         "`none` attack)")
    if cfg.verdict_steps not in cfg.steps:
        raise ValueError(f"eval.diag.relearn.verdict_steps={cfg.verdict_steps} is not a rung of eval.diag.relearn.steps="
                         f"{list(cfg.steps)}")
    if cfg.max_steps or cfg.epochs != RelearnConfig.epochs:
        raise ValueError("eval.diag.relearn: the budget is `steps` (a ladder) and `verdict_steps`, not max_steps or epochs")
    if not 0 < cfg.train_fraction < 1:
        raise ValueError(f"eval.diag.relearn.train_fraction={cfg.train_fraction} must be in (0, 1)")
    if not 0 <= cfg.max_ceiling_drop < 1 or cfg.lr_fraction <= 0:
        raise ValueError(f"eval.diag.relearn: max_ceiling_drop={cfg.max_ceiling_drop} must be in [0, 1) and "
                         f"lr_fraction={cfg.lr_fraction} > 0")


def budget(cfg: RelearnConfig, finetune: Any) -> RelearnConfig:
    """The attack's optimisation settings: its own, the model's fine-tuning batch size and `lr_fraction` x its
    rate for None, and as many steps as the ladder's top rung."""
    return dataclasses.replace(cfg, lr=cfg.lr if cfg.lr is not None else cfg.lr_fraction * finetune.lr,
                               batch_size=cfg.batch_size if cfg.batch_size is not None else finetune.batch_size,
                               max_steps=max(cfg.steps))


def trained_parameters(model: torch.nn.Module, params: str) -> Iterable[torch.nn.Parameter]:
    chosen = [p for name, p in model.named_parameters() if PARAMS[params](name)]
    if not chosen:
        raise ValueError(f"eval.diag.relearn.params='{params}' selects no parameter of {type(model).__name__}")
    return chosen


def crossfit_folds(groups: Sequence[Hashable], train_fraction: float) -> list[tuple[list[int], list[int]]]:
    """(train, scored) index pairs: each side of the group split trains once and is scored once by the other,
    so no group is ever on both sides of one relearning run."""
    first, second = disjoint_split(groups, train_fraction)
    return [(first, second), (second, first)]


def relearn_curve(inputs: DiagInputs, model: torch.nn.Module, train: list[QA], scored: Sequence[int],
                  settings: RelearnConfig, rungs: Sequence[int]) -> dict[int, np.ndarray]:
    """Greedy ROUGE-L recall on the `scored` forget examples after each rung's steps of one relearning run on a
    copy of `model`; NaN at every rung when the run diverges (the rungs before it are kept)."""
    examples = inputs.forget_examples
    questions, answers = [examples[i].question for i in scored], [examples[i].answer for i in scored]
    attacked = copy.deepcopy(model)
    curve: dict[int, np.ndarray] = {}

    def score(step: int, m: torch.nn.Module) -> None:
        if step in rungs:
            curve[step] = greedy_rouge(inputs.lm(m), questions, answers, inputs.max_new_tokens)

    settings = dataclasses.replace(settings, max_steps=max(rungs))
    result = recipes.finetune(attacked, inputs.tokenizer, train, inputs.fmt, settings, inputs.cfg.model.max_length,
                             inputs.seed, inputs.accelerator, desc="diag:relearn",
                             parameters=trained_parameters(attacked, settings.params), on_step=score)
    if result.status != "ok":
        log.warning("relearning attack diverged (%s): the rungs it did not reach are undefined", result.message)
    return {k: curve.get(k, np.full(len(scored), np.nan)) for k in rungs}


def attacks(inputs: DiagInputs, cfg: RelearnConfig) -> list[Attack]:
    examples = inputs.forget_examples
    everything = list(range(len(examples)))
    settings = budget(cfg, inputs.cfg.model.finetune)
    folds = crossfit_folds(inputs.groups, cfg.train_fraction)
    rungs = sorted(cfg.steps)
    # relearn/unrelated: retain examples only, as many as the larger fold holds (seeded draw)
    retain = list(inputs.data.retain)
    unrelated = random.Random(inputs.seed).sample(retain, min(len(retain), max(len(t) for t, _ in folds)))

    def compute(model: torch.nn.Module, _: object) -> dict[str, np.ndarray]:  # white-box: the bare weights train
        pooled = {k: np.full(len(examples), np.nan) for k in rungs}
        for train, scored in folds:
            for k, scores in relearn_curve(inputs, model, [examples[i].as_qa() for i in train], scored, settings,
                                           rungs).items():
                pooled[k][scored] = scores
        out = {f"relearn@{k}": v for k, v in pooled.items()}
        if cfg.unrelated:
            out["relearn/unrelated"] = relearn_curve(inputs, model, unrelated, everything, settings,
                                                     [cfg.verdict_steps])[cfg.verdict_steps]
        return out

    part = shared_scorer(compute)
    key = dataclasses.asdict(settings) | {"folds": [t for t, _ in folds]}

    def attack(name: str, votes: bool) -> Attack:
        return Attack(name, METRIC, everything, part(name), key, white_box=True, weight_access=True, votes=votes,
                      max_ceiling_drop=cfg.max_ceiling_drop)

    out = [attack(f"relearn@{k}", k == cfg.verdict_steps) for k in rungs]
    if cfg.unrelated:
        out.append(attack("relearn/unrelated", True))
    return out
