"""Inverted hinge loss.

Cha, Cho, Hwang & Lee 2024, "Towards robust and cost-efficient knowledge unlearning for large language models"
(arXiv 2408.06621; ICLR 2025). Per answer token,
    IHL_t = 1 + p(y_t | y_<t) - max_{v != y_t} p(v | y_<t)
averaged over answer tokens: it lowers the target token only until another token overtakes it, pushing that runner-up
up instead of spreading mass everywhere as gradient ascent does. The paper pairs it with the usual retain NLL
(replacing GA in gradient difference), which is kept here. The paper frames IHL as knowledge unlearning; the issue
classes it as suppression-intended (it trains the model to emit the runner-up token, not to lose the fact).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from unlearn_bench.runtime.lazy import F, torch  # imported on first use: composing a config needs no torch
from unlearn_bench.methods.base import IGNORE_INDEX, LossOutput, UnlearnBatch, forward_logits, with_retain


def inverted_hinge(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-token IHL of next-token prediction, [B, T-1], zero on unscored positions; also returns the mask."""
    probs = F.softmax(logits[:, :-1].float(), dim=-1)
    targets = labels[:, 1:]
    mask = targets != IGNORE_INDEX
    index = targets.clamp(min=0).unsqueeze(-1)
    p_target = probs.gather(-1, index).squeeze(-1)
    p_other = probs.scatter(-1, index, float("-inf")).max(-1).values
    return (1 + p_target - p_other) * mask, mask


@dataclass
class InvertedHinge:
    intent: ClassVar[str] = "suppression"
    needs_reference: ClassVar[bool] = False
    alternate: ClassVar[str | None] = None

    retain_weight: float = 1.0
    forget_weight: float = 1.0

    def loss(self, model: torch.nn.Module, batch: UnlearnBatch, reference: torch.nn.Module | None) -> LossOutput:
        hinge, mask = inverted_hinge(forward_logits(model, batch.forget), batch.forget.labels)
        forget = hinge.sum() / mask.sum().clamp(min=1)
        return with_retain(
            forget, {"ihl": forget.item()}, model=model, reference=reference, batch=batch,
            kind="nll", retain_weight=self.retain_weight, forget_weight=self.forget_weight,
        )


METHOD = InvertedHinge
