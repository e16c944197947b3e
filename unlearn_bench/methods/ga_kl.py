"""Gradient ascent on the forget set + KL(reference || model) on the retain set.

Maini et al. 2024 ("TOFU: A task of fictitious unlearning for LLMs", the `KL` baseline); open-unlearning's GradDiff
with retain_loss_type=KL (src/trainer/unlearn/grad_diff.py, `compute_kl_divergence` in src/trainer/utils.py).
The KL is averaged over retain answer tokens (base.kl_to_reference); open-unlearning's version averages over every
position, prompt and padding included, which only rescales it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from unlearn_bench.methods.base import LossOutput, UnlearnBatch, ascent_with_retain


@dataclass
class GradAscentKL:
    intent: ClassVar[str] = "removal"
    needs_reference: ClassVar[bool] = True
    alternate: ClassVar[str | None] = None

    forget_weight: float = 1.0  # open-unlearning: gamma
    retain_weight: float = 1.0  # open-unlearning: alpha

    def loss(self, model: torch.nn.Module, batch: UnlearnBatch, reference: torch.nn.Module | None) -> LossOutput:
        return ascent_with_retain(model, batch, reference, kind="kl", retain_weight=self.retain_weight,
                                  forget_weight=self.forget_weight)


METHOD = GradAscentKL
