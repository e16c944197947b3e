"""SatImp: gradient ascent with each forget token weighted by saturation and importance.

"Exploring criteria of loss reweighting to enhance LLM unlearning" (2025, arXiv 2505.11953). Follows
open-unlearning's SatImp (src/trainer/unlearn/satimp.py; `compute_satimp_loss` in src/trainer/utils.py):
    w_t = stopgrad(p_t^beta1 * (1 - p_t)^beta2),  p_t = p(y_t);   forget = -mean_t [ w_t * nll_t ]
over the answer tokens of the forget batch pooled across rows (WGA's weight p^beta times the importance term
(1 - p)^beta2); loss = gamma * forget + alpha * retain NLL. Defaults are open-unlearning's configs/trainer/SatImp.yaml
(beta1 5, beta2 1, gamma 0.1, alpha 1; the Python class's own defaults swap gamma and alpha, the config wins).
Reference-free, so the retain term is NLL (or none): open-unlearning's retain_loss_type=KL needs a frozen copy, which
`ga_kl` and the preference methods offer.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from unlearn_bench.methods.base import LossOutput, UnlearnBatch, answer_token_nll, check_retain_loss, with_retain
from unlearn_bench.methods.wga import wga_weights

if TYPE_CHECKING:
    from torch import Tensor, nn


def satimp_weights(token_nll: Tensor, beta1: float, beta2: float) -> Tensor:
    """p^beta1 * (1 - p)^beta2 with p = exp(-nll), detached."""
    return wga_weights(token_nll, beta1) * (1 - (-token_nll.detach()).exp()) ** beta2


@dataclass
class SatImp:
    intent: ClassVar[str] = "removal"
    needs_reference: ClassVar[bool] = False
    alternate: ClassVar[str | None] = None

    beta1: float = 5.0          # saturation: weight p^beta1
    beta2: float = 1.0          # importance: weight (1 - p)^beta2
    retain_loss: str = "nll"    # nll | none
    retain_weight: float = 1.0  # open-unlearning: alpha
    forget_weight: float = 0.1  # open-unlearning: gamma

    def __post_init__(self) -> None:
        for name in ("beta1", "beta2"):
            if getattr(self, name) < 0:
                raise ValueError(f"satimp: {name} must be >= 0, got {getattr(self, name)}")
        check_retain_loss(self, self.retain_loss)

    def loss(self, model: nn.Module, batch: UnlearnBatch, reference: nn.Module | None) -> LossOutput:
        nll, mask = answer_token_nll(model, batch.forget)
        weights = satimp_weights(nll, self.beta1, self.beta2)
        n = mask.sum().clamp(min=1)
        forget = -(weights * nll * mask).sum() / n
        components = {"satimp": forget.item(), "forget_nll": ((nll * mask).sum() / n).item(),
                      "satimp_weight": ((weights * mask).sum() / n).item()}
        return with_retain(
            forget, components, model=model, reference=reference, batch=batch,
            kind=self.retain_loss, retain_weight=self.retain_weight, forget_weight=self.forget_weight,
        )


METHOD = SatImp
