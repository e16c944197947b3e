"""Relearning attack: a few fine-tuning steps on one part of the forget set, measured on the other part.

Lynch et al. 2024, "Eight methods to evaluate robust unlearning in LLMs" (arXiv:2402.16835), and Hu et al. 2024,
"Jogging the memory of unlearned LLMs through targeted relearning attacks" (arXiv:2406.13356): knowledge that
was only suppressed comes back for held-out facts after briefly training on related ones; removed knowledge
has to be learned from scratch, which the held-out half cannot be.
"""
from __future__ import annotations

import copy
import dataclasses
import logging
from dataclasses import dataclass
from typing import Optional, Sequence

from unlearn_bench import stages
from unlearn_bench.data.records import EvalQA
from unlearn_bench.diagnostics.common import DiagInputs, DiagResult, compare, forget_metrics
from unlearn_bench.training import OptimFields

log = logging.getLogger(__name__)


@dataclass
class RelearnConfig(OptimFields):
    """The fields `stages.finetune` reads, plus which share of the forget set the attacker trains on."""

    train_fraction: float = 0.5
    lr: Optional[float] = None  # None: the unlearning method's lr (the attacker gets the unlearner's budget)
    epochs: float = 1
    max_steps: int = 10


def disjoint_split(examples: Sequence[EvalQA], train_fraction: float) -> tuple[list[int], list[int]]:
    """Indices (train, held out): whole authors (`meta["author"]`) where every example has one and there are
    two or more, else the first `train_fraction` of the examples by index, so that no held-out fact shares an
    author with a trained one where authors are known."""
    if not 0 < train_fraction < 1:
        raise ValueError(f"eval.diag.relearn.train_fraction={train_fraction} must be in (0, 1)")
    group_of: list = list(range(len(examples)))
    if all("author" in ex.meta for ex in examples) and len({ex.meta["author"] for ex in examples}) > 1:
        group_of = [ex.meta["author"] for ex in examples]
    groups = list(dict.fromkeys(group_of))
    if len(groups) < 2:
        raise ValueError(f"the relearning attack needs >= 2 forget examples, got {len(examples)}")
    trained = set(groups[: min(len(groups) - 1, max(1, round(len(groups) * train_fraction)))])
    return ([i for i, g in enumerate(group_of) if g in trained], [i for i, g in enumerate(group_of) if g not in trained])


def run(inputs: DiagInputs, cfg: RelearnConfig) -> DiagResult:
    examples = inputs.forget_examples
    train_idx, held_out = disjoint_split(examples, cfg.train_fraction)
    settings = dataclasses.replace(cfg, lr=cfg.lr if cfg.lr is not None else inputs.cfg.method.lr)
    attacked = copy.deepcopy(inputs.model)
    result = stages.finetune(attacked, inputs.tokenizer, [examples[i].as_qa() for i in train_idx], inputs.fmt, settings,
                             inputs.cfg.model.max_length, inputs.cfg.seed, inputs.accelerator, desc="diag:relearn")
    if result.status != "ok":
        log.warning("relearning attack diverged (%s): no relearn rows", result.message)
        return DiagResult()
    attacked = inputs.accelerator.unwrap_model(attacked)
    after = forget_metrics(inputs.lm(attacked), [examples[i] for i in held_out], inputs.max_new_tokens)
    return compare("relearn", after, inputs.references(), held_out, inputs.min_gap)
