"""Gradient ascent on the forget set + KL(reference || model) on the retain set.

Maini et al. 2024 ("TOFU: A task of fictitious unlearning for LLMs", the `KL` baseline); open-unlearning's GradDiff
with retain_loss_type=KL (src/trainer/unlearn/grad_diff.py, `compute_kl_divergence` in src/trainer/utils.py).
The KL is averaged over every retain position, prompt and padding included, as both references compute it;
`retain_loss=kl_answer` averages over the retain answer tokens instead (base.kl_to_reference says why).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from unlearn_bench.runtime.lazy import torch  # imported on first use: composing a config needs no torch
from unlearn_bench.methods.base import KL_KINDS, LossOutput, UnlearnBatch, ascent_with_retain


@dataclass
class GradAscentKL:
    intent: ClassVar[str] = "removal"
    needs_reference: ClassVar[bool] = True
    alternate: ClassVar[str | None] = None

    forget_weight: float = 1.0  # open-unlearning: gamma
    retain_weight: float = 1.0  # open-unlearning: alpha
    retain_loss: str = "kl"     # kl (every position, as the references) | kl_answer (answer tokens only)

    def __post_init__(self) -> None:
        if self.retain_loss not in KL_KINDS:
            raise ValueError(f"GradAscentKL: retain_loss='{self.retain_loss}' is not supported (choose from: {', '.join(KL_KINDS)})")

    def loss(self, model: torch.nn.Module, batch: UnlearnBatch, reference: torch.nn.Module | None) -> LossOutput:
        return ascent_with_retain(model, batch, reference, kind=self.retain_loss, retain_weight=self.retain_weight,
                                  forget_weight=self.forget_weight)


METHOD = GradAscentKL
