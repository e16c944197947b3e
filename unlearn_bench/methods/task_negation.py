"""Task negation: fine-tune on the forget set, then subtract the task vector.

Ilharco, Ribeiro, Wortsman, Gururangan, Schmidt, Hajishirzi & Farhadi 2023, "Editing models with task arithmetic"
(ICLR 2023), section "Forgetting via negation". `setup` stores the starting weights theta0, the loop fine-tunes on
the forget set (plain NLL), and `finalize` sets
    theta <- theta0 - alpha * (theta_ft - theta0)
so alpha = 0 restores the starting model exactly and alpha = 1 gives 2 * theta0 - theta_ft.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from unlearn_bench.runtime.lazy import torch  # imported on first use: composing a config needs no torch
from unlearn_bench.methods.base import LossOutput, UnlearnBatch, batch_nll


@dataclass
class TaskNegation:
    intent: ClassVar[str] = "removal"
    needs_reference: ClassVar[bool] = False
    alternate: ClassVar[str | None] = None

    alpha: float = 1.0  # scaling coefficient of the negated task vector (the paper picks it on held-out data)

    def setup(self, model: torch.nn.Module, reference: torch.nn.Module | None) -> None:
        # A CPU copy: it is only read again in finalize, so it need not take accelerator memory during training.
        self._theta0 = {name: p.detach().to("cpu", copy=True) for name, p in model.named_parameters()}

    def loss(self, model: torch.nn.Module, batch: UnlearnBatch, reference: torch.nn.Module | None) -> LossOutput:
        forget_nll = batch_nll(model, batch.forget)
        return LossOutput(forget_nll, {"forget_nll": forget_nll.item()})

    def finalize(self, model: torch.nn.Module, reference: torch.nn.Module | None) -> None:
        theta0 = getattr(self, "_theta0", None)
        if theta0 is None:
            raise RuntimeError("TaskNegation.finalize called before setup: the starting weights were not stored")
        with torch.no_grad():
            for name, p in model.named_parameters():
                start = theta0[name].to(device=p.device, dtype=p.dtype)
                p.copy_(start - self.alpha * (p - start))
        del self._theta0


METHOD = TaskNegation
