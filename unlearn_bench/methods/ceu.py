"""CE-U: cross-entropy unlearning, towards the model's own distribution with the true token removed.

"CE-U: Cross entropy unlearning" (2025, arXiv 2503.01224). Follows open-unlearning's CEU
(src/trainer/unlearn/ceu.py, `compute_batch_ceu` and `cross_entropy_unlearning_loss`):
    p_t = softmax(stopgrad(z_t) with z_t[y_t] = -inf);  forget = mean_t CE(z_t, p_t)
over the answer tokens of the forget batch pooled across rows, after dropping each row's first
`ignore_first_n_answer_tokens` answer tokens (the paper's footnote in "Training settings"). The target keeps the
model's ranking of every other token and gives the true one probability 0, so the gradient only pushes the true
token down. There is no retain term, as in open-unlearning.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from unlearn_bench.methods.base import IGNORE_INDEX, Batch, LossOutput, UnlearnBatch, answer_logits
from unlearn_bench.runtime.lazy import F

if TYPE_CHECKING:
    from torch import Tensor, nn


def without_first_answer_tokens(labels: Tensor, n: int) -> Tensor:
    """`labels` with each row's first `n` answer tokens set to IGNORE_INDEX."""
    valid = labels != IGNORE_INDEX
    return labels.masked_fill(valid & (valid.cumsum(dim=-1) <= n), IGNORE_INDEX)


def ceu_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean over the scored positions (targets != IGNORE_INDEX) of the cross-entropy between the logits and the
    detached softmax of the same logits with the target's entry at -inf; 0 when nothing is scored."""
    mask = targets != IGNORE_INDEX
    z, y = logits[mask], targets[mask]
    if y.numel() == 0:
        return logits.sum() * 0.0
    suppressed = z.detach().scatter(-1, y.unsqueeze(-1), float("-inf"))
    return F.cross_entropy(z, F.softmax(suppressed, dim=-1))


@dataclass
class CEU:
    intent: ClassVar[str] = "removal"
    needs_reference: ClassVar[bool] = False
    alternate: ClassVar[str | None] = None

    ignore_first_n_answer_tokens: int = 1

    def __post_init__(self) -> None:
        if self.ignore_first_n_answer_tokens < 0:
            raise ValueError(f"ceu: ignore_first_n_answer_tokens must be >= 0, got {self.ignore_first_n_answer_tokens}")

    def loss(self, model: nn.Module, batch: UnlearnBatch, reference: nn.Module | None) -> LossOutput:
        f = batch.forget
        trimmed = Batch(f.input_ids, f.attention_mask, without_first_answer_tokens(f.labels, self.ignore_first_n_answer_tokens))
        forget = ceu_loss(*answer_logits(model, trimmed))
        return LossOutput(forget, {"ceu": forget.item()})


METHOD = CEU
