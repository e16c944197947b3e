"""PDU: primal-dual unlearning, a logit-flattening forget loss under a retain-loss constraint.

Entesari, Hatami, Khaziev, Ramakrishna & Fazlyab 2025, "Constrained entropic unlearning: A primal-dual framework
for large language models" (arXiv 2506.05314): minimise the forget loss subject to retain NLL <= eps, through the
Lagrangian with a dual variable lambda. Follows open-unlearning's PDU (src/trainer/unlearn/pdu.py):
    forget = mean over forget positions t whose own label is an answer token of (max_v z_tv - mean_v z_tv)^2
    loss   = gamma * forget + lambda * (retain_nll - eps)
(the forget mask is the unshifted labels', as there: the positions that read an answer token). lambda starts at
alpha (`retain_weight`) and, with `primal_dual`, takes a dual ascent step lambda <- max(0, lambda + dual_step_size *
(retain_nll - eps)) after each loss (`dual_update_upon: step`, per micro-batch as open-unlearning's compute_loss) or
after each epoch from the mean retain NLL of a no-grad pass (`epoch`), once `dual_warmup_epochs` epochs are done
(open-unlearning's DualOptimizationCallback). The state lives on this object; the loop's batches carry their epoch
(`UnlearnBatch.epoch`), so the end of an epoch is seen at the next epoch's first batch, with the weights that
epoch ended with. Differences: the epoch-mode pass runs over the retain batches the epoch trained on, where
open-unlearning draws the train loader again (other random retain items); on several processes each keeps its own
lambda from its own retain batches, as each of open-unlearning's ranks does. The paper's choice of eps is
(1 + tolerance) x the starting model's retain loss. Reference-free: the retain term is NLL.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from unlearn_bench.methods.base import IGNORE_INDEX, Batch, LossOutput, UnlearnBatch, batch_nll, logits_at
from unlearn_bench.runtime.lazy import torch

if TYPE_CHECKING:
    from torch import Tensor, nn

DUAL_UPDATES = ("step", "epoch")


def logit_margin_loss(model: nn.Module, batch: Batch) -> Tensor:
    """Mean of (max - mean logit)^2 over the positions whose label is an answer token (open-unlearning's mask)."""
    scored = batch.labels != IGNORE_INDEX
    keep = scored.any(dim=0).nonzero().squeeze(1)
    logits = logits_at(model, batch, keep).float()
    margin = (logits.max(dim=-1).values - logits.mean(dim=-1)) ** 2
    mask = scored[:, keep]
    return (margin * mask).sum() / mask.sum().clamp(min=1)


@dataclass
class PDU:
    intent: ClassVar[str] = "removal"
    needs_reference: ClassVar[bool] = False
    needs_retain: ClassVar[bool] = True  # the constraint is on the retain loss
    alternate: ClassVar[str | None] = None

    retain_loss_eps: float = 0.0  # eps: the bound on the retain NLL (open-unlearning's config requires it)
    primal_dual: bool = True      # False: fixed weights gamma and alpha
    dual_step_size: float = 1.0
    dual_update_upon: str = "step"  # step | epoch
    dual_warmup_epochs: int = 5
    retain_weight: float = 1.0  # open-unlearning: alpha, lambda's starting value
    forget_weight: float = 1.0  # open-unlearning: gamma

    def __post_init__(self) -> None:
        if self.dual_step_size <= 0:
            raise ValueError(f"pdu: dual_step_size must be > 0, got {self.dual_step_size}")
        if self.dual_update_upon not in DUAL_UPDATES:
            raise ValueError(f"pdu: dual_update_upon='{self.dual_update_upon}' is not one of {', '.join(DUAL_UPDATES)}")
        if self.dual_warmup_epochs < 0:
            raise ValueError(f"pdu: dual_warmup_epochs must be >= 0, got {self.dual_warmup_epochs}")
        if self.retain_weight < 0:
            raise ValueError(f"pdu: retain_weight (the dual variable's start) must be >= 0, got {self.retain_weight}")
        self.setup(None, None)

    def setup(self, model: nn.Module | None, reference: nn.Module | None) -> None:
        """A fresh dual variable for each unlearning run."""
        self.dual = self.retain_weight
        self._epoch = 0
        self._epoch_retain: list[Batch] = []

    def loss(self, model: nn.Module, batch: UnlearnBatch, reference: nn.Module | None) -> LossOutput:
        if batch.retain is None:
            raise ValueError("pdu needs retain data: its constraint is on the retain loss")
        if batch.epoch != self._epoch:  # the previous epoch has ended, with the weights `model` has now
            if self._updates("epoch", batch.epoch) and self._epoch_retain:
                self._ascend(self._mean_retain_nll(model))
            self._epoch, self._epoch_retain = batch.epoch, []
        forget = logit_margin_loss(model, batch.forget)
        retain = batch_nll(model, batch.retain)
        total = self.forget_weight * forget + self.dual * (retain - self.retain_loss_eps)
        if self._updates("step", batch.epoch):
            self._ascend(retain.item())
        elif self._updates("epoch", batch.epoch + 1):
            self._epoch_retain.append(batch.retain)
        return LossOutput(total, {"pdu_forget": forget.item(), "retain_nll": retain.item(),
                                  "retain_preference": self.dual})

    def _updates(self, mode: str, epochs_done: int) -> bool:
        """Whether lambda moves in `mode` once `epochs_done` epochs are complete (after the warm-up)."""
        return self.primal_dual and self.dual_update_upon == mode and epochs_done >= self.dual_warmup_epochs

    def _ascend(self, retain_nll: float) -> None:
        self.dual = max(0.0, self.dual + self.dual_step_size * (retain_nll - self.retain_loss_eps))

    def _mean_retain_nll(self, model: nn.Module) -> float:
        """open-unlearning's post-epoch pass: the mean of the per-batch retain NLLs, no gradient, eval mode."""
        training = model.training
        model.eval()
        with torch.no_grad():
            losses = [batch_nll(model, b).item() for b in self._epoch_retain]
        model.train(training)
        return sum(losses) / len(losses)


METHOD = PDU
