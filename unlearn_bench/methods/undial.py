"""UNDIAL: self-distillation toward the frozen model's logits with the target token's logit lowered.

Dong, Lin, Belkin, Huerta & Vulić 2024, "UNDIAL: Self-distillation with adjusted logits for robust unlearning in
large language models". Follows open-unlearning's UNDIAL (src/trainer/unlearn/undial.py, `compute_undial_loss`):
    teacher_t = softmax(ref_logits_t - strength * onehot(y_t));  forget = mean_t CE(teacher_t, model_logits_t)
Differences from that code: the mean runs over answer tokens only (open-unlearning averages every position, and its
one-hot scatter of label -100 marks vocabulary entry V-100 on prompt tokens); loss = gamma * forget + alpha * retain.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from unlearn_bench.runtime.lazy import F, torch  # imported on first use: composing a config needs no torch
from unlearn_bench.methods.base import (
    IGNORE_INDEX, LossOutput, UnlearnBatch, check_retain_loss, forward_logits, with_retain,
)


def adjusted_teacher(ref_logits: torch.Tensor, targets: torch.Tensor, strength: float) -> torch.Tensor:
    """softmax of the teacher's logits with `strength` subtracted from each target token's logit, [B, T, V].
    `targets` are the next-token labels aligned with `ref_logits`; IGNORE_INDEX positions are left unchanged."""
    mask = (targets != IGNORE_INDEX).unsqueeze(-1)
    onehot = F.one_hot(targets.clamp(min=0), ref_logits.size(-1)).to(ref_logits.dtype) * mask
    return F.softmax(ref_logits - strength * onehot, dim=-1)


@dataclass
class UNDIAL:
    intent: ClassVar[str] = "removal"
    needs_reference: ClassVar[bool] = True
    alternate: ClassVar[str | None] = None

    strength: float = 10.0      # open-unlearning: beta ("the strength of penalty for memorized tokens")
    retain_loss: str = "nll"    # nll | kl | none
    retain_weight: float = 0.0  # open-unlearning: alpha (0: pure self-distillation)
    forget_weight: float = 1.0  # open-unlearning: gamma

    def __post_init__(self) -> None:
        check_retain_loss(self, self.retain_loss)

    def loss(self, model: torch.nn.Module, batch: UnlearnBatch, reference: torch.nn.Module | None) -> LossOutput:
        if reference is None:
            raise ValueError("UNDIAL needs a reference model (the frozen teacher)")
        forget = batch.forget
        logits = forward_logits(model, forget)[:, :-1].float()
        with torch.no_grad():
            teacher = adjusted_teacher(forward_logits(reference, forget)[:, :-1].float(), forget.labels[:, 1:], self.strength)
        mask = forget.labels[:, 1:] != IGNORE_INDEX
        ce = -(teacher * F.log_softmax(logits, dim=-1)).sum(-1)
        distill = (ce * mask).sum() / mask.sum().clamp(min=1)
        return with_retain(
            distill, {"distill_ce": distill.item()}, model=model, reference=reference, batch=batch,
            kind=self.retain_loss, retain_weight=self.retain_weight, forget_weight=self.forget_weight,
        )


METHOD = UNDIAL
