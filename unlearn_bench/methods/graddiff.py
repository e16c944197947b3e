"""Gradient difference: gradient ascent on the forget set + NLL on the retain set.

Liu, Liu & Stone 2022 ("Continual learning and private unlearning") / Maini et al. 2024 ("TOFU: A task
of fictitious unlearning for LLMs", `grad_diff` baseline). Follows open-unlearning's GradDiff
(src/trainer/unlearn/grad_diff.py, retain_loss_type=NLL): loss = gamma * (-forget_nll) + alpha * retain_nll.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from unlearn_bench.runtime.lazy import torch  # imported on first use: composing a config needs no torch
from unlearn_bench.methods.base import LossOutput, UnlearnBatch, ascent_with_retain


@dataclass
class GradDiff:
    intent: ClassVar[str] = "removal"
    needs_reference: ClassVar[bool] = False
    alternate: ClassVar[str | None] = None

    forget_weight: float = 1.0  # open-unlearning: gamma
    retain_weight: float = 1.0  # open-unlearning: alpha

    def loss(self, model: torch.nn.Module, batch: UnlearnBatch, reference: torch.nn.Module | None) -> LossOutput:
        return ascent_with_retain(model, batch, reference, kind="nll", retain_weight=self.retain_weight,
                                  forget_weight=self.forget_weight)


METHOD = GradDiff
