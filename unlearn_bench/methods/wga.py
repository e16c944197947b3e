"""Weighted gradient ascent: each forget token's ascent term weighted by the model's own (detached) p(y_t)^beta.

Wang, Zhou, Zhou, Shin, Han & Weinberger 2025, "Rethinking LLM unlearning objectives: A gradient perspective and
go beyond" (ICLR 2025). Follows open-unlearning's WGA (src/trainer/unlearn/wga.py, `compute_wga_loss`):
    forget = -mean_t [ stopgrad(p(y_t))^beta * nll_t ]   over answer tokens
so tokens the model has already made unlikely stop pushing; loss = gamma * forget + alpha * retain.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from unlearn_bench.runtime.lazy import torch  # imported on first use: composing a config needs no torch
from unlearn_bench.methods.base import (
    LossOutput, UnlearnBatch, answer_token_nll, check_retain_loss, with_retain,
)


def wga_weights(token_nll: torch.Tensor, beta: float) -> torch.Tensor:
    """p(y_t)^beta = exp(-nll_t)^beta, detached."""
    return torch.exp(-token_nll.detach()) ** beta


@dataclass
class WGA:
    intent: ClassVar[str] = "removal"
    needs_reference: ClassVar[bool] = False
    alternate: ClassVar[str | None] = None

    beta: float = 1.0
    retain_loss: str = "nll"    # nll | none
    retain_weight: float = 1.0  # open-unlearning: alpha
    forget_weight: float = 1.0  # open-unlearning: gamma

    def __post_init__(self) -> None:
        check_retain_loss(self, self.retain_loss)

    def loss(self, model: torch.nn.Module, batch: UnlearnBatch, reference: torch.nn.Module | None) -> LossOutput:
        nll, mask = answer_token_nll(model, batch.forget)
        weights = wga_weights(nll, self.beta)
        n = mask.sum().clamp(min=1)
        forget = -(weights * nll * mask).sum() / n
        components = {"forget_nll": ((nll * mask).sum() / n).item(), "wga_weight": ((weights * mask).sum() / n).item()}
        return with_retain(
            forget, components, model=model, reference=reference, batch=batch,
            kind=self.retain_loss, retain_weight=self.retain_weight, forget_weight=self.forget_weight,
        )


METHOD = WGA
