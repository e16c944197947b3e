"""Rejection tuning ("I don't know"): fine-tune the forget questions toward refusal answers, plus retain NLL.

Maini, Feng, Schwarzschild, Lipton & Kolter 2024, "TOFU: A task of fictitious unlearning for LLMs" (the `idk`
baseline: NLL on forget questions paired with an answer drawn from a list of refusals + NLL on the retain set).
Suppression-intended: the model learns to refuse, the knowledge need not leave the weights.

reduction="joint" (default) is TOFU's: forget.py's `idk` loss runs the refusal and retain batches as one
concatenated batch, so the loss is one mean over all their answer tokens (a long retain answer weighs more).
reduction="sum" adds the refusal mean and retain_weight x the retain mean, open-unlearning's gamma/alpha form,
whose weights mean the same whatever the answer lengths. The default follows TOFU, whose baseline this is.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from unlearn_bench.runtime.lazy import torch  # imported on first use: composing a config needs no torch
from unlearn_bench.methods.base import (
    LossOutput, UnlearnBatch, alternate_nll_with_retain, answer_token_nll, require_alternate,
)

REDUCTIONS = ("joint", "sum")


@dataclass
class IdkTuning:
    intent: ClassVar[str] = "suppression"
    needs_reference: ClassVar[bool] = False
    alternate: ClassVar[str | None] = "refusal"

    retain_weight: float = 1.0
    reduction: str = "joint"  # joint (TOFU: one mean over refusal + retain tokens) | sum (mean + weight x mean)

    def __post_init__(self) -> None:
        if self.reduction not in REDUCTIONS:
            raise ValueError(f"IdkTuning: reduction='{self.reduction}' is not supported (choose from: {', '.join(REDUCTIONS)})")

    def loss(self, model: torch.nn.Module, batch: UnlearnBatch, reference: torch.nn.Module | None) -> LossOutput:
        if self.reduction == "sum":
            return alternate_nll_with_retain(self, model, batch, reference, component="refusal_nll",
                                             retain_weight=self.retain_weight)
        parts = {"refusal_nll": require_alternate(self, batch), "retain_nll": batch.retain}
        sums, counts = {}, {}
        for name, part in parts.items():
            if part is not None:
                nll, mask = answer_token_nll(model, part)
                sums[name], counts[name] = nll.sum(), mask.sum().clamp(min=1)
        weighted = sums["refusal_nll"] + self.retain_weight * sums.get("retain_nll", 0.0)
        loss = weighted / sum(counts.values())
        components = {name: (sums[name] / counts[name]).item() for name in sums}
        return LossOutput(loss, components)


METHOD = IdkTuning
