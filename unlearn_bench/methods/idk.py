"""Rejection tuning ("I don't know"): fine-tune the forget questions toward refusal answers, plus retain NLL.

Maini, Feng, Schwarzschild, Lipton & Kolter 2024, "TOFU: A task of fictitious unlearning for LLMs" (the `idk`
baseline: NLL on forget questions paired with an answer drawn from a list of refusals + NLL on the retain set).
Suppression-intended: the model learns to refuse, the knowledge need not leave the weights.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from unlearn_bench.methods.base import LossOutput, UnlearnBatch, alternate_nll_with_retain


@dataclass
class IdkTuning:
    intent: ClassVar[str] = "suppression"
    needs_reference: ClassVar[bool] = False
    alternate: ClassVar[str | None] = "refusal"

    retain_weight: float = 1.0

    def loss(self, model: torch.nn.Module, batch: UnlearnBatch, reference: torch.nn.Module | None) -> LossOutput:
        return alternate_nll_with_retain(self, model, batch, reference, component="refusal_nll",
                                         retain_weight=self.retain_weight)


METHOD = IdkTuning
