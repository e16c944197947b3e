"""Relearning attack: a few fine-tuning steps on some forget groups, greedy answers on the others.

Lynch et al. 2024, "Eight methods to evaluate robust unlearning in LLMs" (arXiv:2402.16835), and Hu et al. 2024,
"Jogging the memory of unlearned LLMs through targeted relearning attacks" (arXiv:2406.13356): knowledge that
was only suppressed comes back for held-out facts after briefly training on related ones; removed knowledge
has to be learned from scratch, which the held-out groups cannot be.

The budget is the same for every method and every model of a run: `eval.diag.relearn` (learning rate and
batch size default to the model's own fine-tuning settings, `model.finetune`), so recoveries compare across
methods. The retain model gets the same steps: what it "recovers" on groups it never saw is what the attack
itself teaches (format), the floor of the share.
"""
from __future__ import annotations

import copy
import dataclasses
import logging
from typing import Any, Iterable

import torch

from unlearn_bench.diagnostics.settings import RelearnConfig
from unlearn_bench.training import recipes
from unlearn_bench.diagnostics.common import Attack, DiagInputs, rouge_attack

log = logging.getLogger(__name__)

# Which parameters the attacker trains, by module name (Llama/Phi/Mistral naming).
PARAMS = {"all": lambda name: True, "mlp": lambda name: ".mlp." in name, "attention": lambda name: ".self_attn." in name}


def check(cfg: RelearnConfig) -> None:
    if cfg.params not in PARAMS:
        raise ValueError(f"eval.diag.relearn.params='{cfg.params}': choose from {list(PARAMS)}")
    if cfg.max_steps < 1:
        raise ValueError(f"eval.diag.relearn.max_steps={cfg.max_steps}: the attack needs >= 1 step")
    if not 0 < cfg.train_fraction < 1:
        raise ValueError(f"eval.diag.relearn.train_fraction={cfg.train_fraction} must be in (0, 1)")


def budget(cfg: RelearnConfig, finetune: Any) -> RelearnConfig:
    """The attack's optimisation settings: its own, with the model's fine-tuning lr / batch size for None."""
    return dataclasses.replace(cfg, lr=cfg.lr if cfg.lr is not None else finetune.lr,
                               batch_size=cfg.batch_size if cfg.batch_size is not None else finetune.batch_size)


def trained_parameters(model: torch.nn.Module, params: str) -> Iterable[torch.nn.Parameter]:
    chosen = [p for name, p in model.named_parameters() if PARAMS[params](name)]
    if not chosen:
        raise ValueError(f"eval.diag.relearn.params='{params}' selects no parameter of {type(model).__name__}")
    return chosen


def attacks(inputs: DiagInputs, cfg: RelearnConfig) -> list[Attack]:
    examples = inputs.forget_examples
    train_idx, held_out = inputs.split
    settings = budget(cfg, inputs.cfg.model.finetune)

    def relearned(model: torch.nn.Module) -> torch.nn.Module | None:
        attacked = copy.deepcopy(model)
        result = recipes.finetune(attacked, inputs.tokenizer, [examples[i].as_qa() for i in train_idx], inputs.fmt,
                                 settings, inputs.cfg.model.max_length, inputs.seed, inputs.accelerator,
                                 desc="diag:relearn", parameters=trained_parameters(attacked, cfg.params))
        if result.status != "ok":
            log.warning("relearning attack diverged (%s): its scores are undefined", result.message)
            return None
        return inputs.accelerator.unwrap_model(attacked)

    return [rouge_attack(inputs, "relearn", held_out, [examples[i].question for i in held_out],
                         dataclasses.asdict(settings), transform=relearned)]
