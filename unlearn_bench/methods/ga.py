"""Gradient ascent on the forget set (Jang et al. 2023; TOFU's `grad_ascent` baseline)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from unlearn_bench.runtime.lazy import torch  # imported on first use: composing a config needs no torch
from unlearn_bench.methods.base import LossOutput, UnlearnBatch, batch_nll


@dataclass
class GradientAscent:
    intent: ClassVar[str] = "removal"
    needs_reference: ClassVar[bool] = False
    alternate: ClassVar[str | None] = None

    def loss(self, model: torch.nn.Module, batch: UnlearnBatch, reference: torch.nn.Module | None) -> LossOutput:
        forget_nll = batch_nll(model, batch.forget)
        return LossOutput(-forget_nll, {"forget_nll": forget_nll.item()})


METHOD = GradientAscent
