"""The optimisation fields of every training config (model.finetune, method, eval.diag.relearn, ...), apart from
the loop so that composing a config imports no torch."""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Scheduler(Enum):
    """Learning-rate schedules (transformers' `get_scheduler` names); an unknown name fails at config time."""

    linear = "linear"
    cosine = "cosine"
    constant = "constant"
    constant_with_warmup = "constant_with_warmup"


@dataclass
class OptimFields:
    """The optimisation fields every training config shares (model.finetune, method, eval.diag.relearn); each
    config extends it and redeclares only the defaults it changes."""

    lr: float = 1e-5
    epochs: float = 5
    max_steps: int = 0  # 0: derived from epochs
    batch_size: int = 8
    grad_accum: int = 1
    warmup_ratio: float = 0.0
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    scheduler: Scheduler = Scheduler.linear  # warmup (warmup_ratio) then this schedule


@dataclass
class OptimSettings(OptimFields):
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
