"""SimNPO: reference-free, length-normalised NPO.

Fan, Liu, Lin, Jia, Zhang, Mei & Liu 2024, "Simplicity prevails: Rethinking negative preference optimization for
LLM unlearning". Follows open-unlearning's SimNPO (src/trainer/unlearn/simnpo.py):
    forget = -(2/beta) * mean_i logsigmoid(beta * (nll_i / |y_i| - delta))
where nll_i is the summed answer NLL and |y_i| the answer length. The paper writes the margin as
logsigmoid(-(beta/|y|) log p - gamma_paper), i.e. delta = gamma_paper / beta. loss = gamma * forget + alpha * retain.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from unlearn_bench.runtime.lazy import torch  # imported on first use: composing a config needs no torch
from unlearn_bench.methods.base import (
    LossOutput, UnlearnBatch, check_retain_loss, sequence_nll, with_retain,
)
from unlearn_bench.methods.preference import scaled_logsigmoid_loss


@dataclass
class SimNPO:
    intent: ClassVar[str] = "removal"
    needs_reference: ClassVar[bool] = False
    alternate: ClassVar[str | None] = None

    beta: float = 4.5
    delta: float = 0.0            # margin on the per-token NLL
    retain_loss: str = "nll"      # nll | none (reference-free, so no kl)
    retain_weight: float = 1.0    # open-unlearning: alpha
    forget_weight: float = 0.125  # open-unlearning: gamma

    def __post_init__(self) -> None:
        check_retain_loss(self, self.retain_loss)

    def loss(self, model: torch.nn.Module, batch: UnlearnBatch, reference: torch.nn.Module | None) -> LossOutput:
        mean_nll = sequence_nll(model, batch.forget, mean=True)
        forget = scaled_logsigmoid_loss(self.beta, mean_nll - self.delta)
        components = {"simnpo": forget.item(), "forget_nll": mean_nll.mean().item()}
        return with_retain(
            forget, components, model=model, reference=reference, batch=batch,
            kind=self.retain_loss, retain_weight=self.retain_weight, forget_weight=self.forget_weight,
        )


METHOD = SimNPO
