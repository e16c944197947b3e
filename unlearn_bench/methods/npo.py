"""Negative Preference Optimization.

Zhang, Lin, Bai & Mei 2024, "Negative preference optimization: From catastrophic collapse to effective unlearning".
Follows open-unlearning's NPO (src/trainer/unlearn/npo.py: `compute_dpo_loss` with only a losing side):
    forget = -(2/beta) * mean_i logsigmoid(-beta * (log p_model(y_i|x_i) - log p_ref(y_i|x_i)))
with sequence log-probs summed over answer tokens; loss = gamma * forget + alpha * retain (NLL, or KL to the reference).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from unlearn_bench.runtime.lazy import torch  # imported on first use: composing a config needs no torch
from unlearn_bench.methods.base import LossOutput, UnlearnBatch, check_retain_loss, with_retain
from unlearn_bench.methods.preference import log_ratio, scaled_logsigmoid_loss


@dataclass
class NPO:
    intent: ClassVar[str] = "removal"
    needs_reference: ClassVar[bool] = True
    alternate: ClassVar[str | None] = None

    beta: float = 0.1
    retain_loss: str = "nll"    # nll | kl | none (open-unlearning: retain_loss_type)
    retain_weight: float = 1.0  # open-unlearning: alpha
    forget_weight: float = 1.0  # open-unlearning: gamma

    def __post_init__(self) -> None:
        check_retain_loss(self, self.retain_loss)

    def loss(self, model: torch.nn.Module, batch: UnlearnBatch, reference: torch.nn.Module | None) -> LossOutput:
        ratio = log_ratio(model, reference, batch.forget)
        forget = scaled_logsigmoid_loss(self.beta, -ratio)
        components = {"npo": forget.item(), "forget_log_ratio": ratio.mean().item()}
        return with_retain(
            forget, components, model=model, reference=reference, batch=batch,
            kind=self.retain_loss, retain_weight=self.retain_weight, forget_weight=self.forget_weight,
        )


METHOD = NPO
