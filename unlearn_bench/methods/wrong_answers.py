"""Fine-tune the forget questions toward perturbed (wrong) answers, plus retain NLL.

A relabelling baseline in the spirit of Yao, Xu & Liu 2023 ("Large language model unlearning", mismatched answers)
and Eldan & Russinovich 2023 ("Who's Harry Potter?", alternative labels), using the benchmark's perturbed answers
(TOFU's `perturbed_answer`). There is no single reference implementation; the loss mirrors `idk` with a different
alternate set. Suppression-intended: the model learns to say something else.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from unlearn_bench.runtime.lazy import torch  # imported on first use: composing a config needs no torch
from unlearn_bench.methods.base import LossOutput, UnlearnBatch, alternate_nll_with_retain


@dataclass
class WrongAnswers:
    intent: ClassVar[str] = "suppression"
    needs_reference: ClassVar[bool] = False
    alternate: ClassVar[str | None] = "perturbed"

    retain_weight: float = 1.0

    def loss(self, model: torch.nn.Module, batch: UnlearnBatch, reference: torch.nn.Module | None) -> LossOutput:
        return alternate_nll_with_retain(self, model, batch, reference, component="perturbed_nll",
                                         retain_weight=self.retain_weight)


METHOD = WrongAnswers
