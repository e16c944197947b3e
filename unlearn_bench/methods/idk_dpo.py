"""DPO preferring a refusal (alternate batch) over the original answer (forget batch), plus retain NLL.

Rafailov, Sharma, Mitchell, Ermon, Manning & Finn 2023, "Direct preference optimization: Your language model is
secretly a reward model"; used for unlearning with refusals as the preferred answer by Maini et al. 2024 (TOFU) and
Zhang et al. 2024 (NPO). Follows open-unlearning's DPO (src/trainer/unlearn/dpo.py, `compute_dpo_loss`):
    forget = -(2/beta) * mean logsigmoid(beta * (logratio(refusal) - logratio(original)))
with logratio = log p_model - log p_ref summed over answer tokens (the 2/beta scale is open-unlearning's and
TOFU's; textbook DPO has 1); loss = gamma * forget + alpha * retain.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from unlearn_bench.runtime.lazy import torch  # imported on first use: composing a config needs no torch
from unlearn_bench.methods.base import LossOutput, UnlearnBatch, check_retain_loss
from unlearn_bench.methods.preference import alternate_preference_loss


@dataclass
class IdkDPO:
    intent: ClassVar[str] = "suppression"
    needs_reference: ClassVar[bool] = True
    alternate: ClassVar[str | None] = "refusal"

    beta: float = 0.1
    retain_loss: str = "nll"    # nll | kl | none
    retain_weight: float = 1.0  # open-unlearning: alpha
    forget_weight: float = 1.0  # open-unlearning: gamma

    def __post_init__(self) -> None:
        check_retain_loss(self, self.retain_loss)

    def loss(self, model: torch.nn.Module, batch: UnlearnBatch, reference: torch.nn.Module | None) -> LossOutput:
        return alternate_preference_loss(self, model, batch, reference, alternate_name="refusal")


METHOD = IdkDPO
