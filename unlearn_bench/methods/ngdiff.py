"""NGDiff: normalized gradient difference.

Bu, Jin, Vinzamuri, Ramakrishna, Chang, Cevher & Hong 2024, "Unlearning as multi-task optimization: A normalized
gradient difference approach with an adaptive learning rate". The update direction is
    g = g_f / ||g_f|| + g_r / ||g_r||,   g_f = grad(-forget_nll), g_r = grad(retain_nll)
(global L2 norms over the trainable parameters), so neither task dominates by gradient scale. The paper's adaptive
learning rate (a Taylor-expansion line search) is not implemented: the loop's lr schedule is used as is.
The `backward` hook adds g to p.grad (accumulating across gradient-accumulation micro-batches).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Sequence

from unlearn_bench.runtime.lazy import torch  # imported on first use: composing a config needs no torch
from unlearn_bench.methods.base import LossOutput, UnlearnBatch, batch_nll


def _grads(loss: torch.Tensor, params: Sequence[torch.nn.Parameter], retain_graph: bool = False) -> list[torch.Tensor]:
    grads = torch.autograd.grad(loss, params, allow_unused=True, retain_graph=retain_graph)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]


def global_norm(grads: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.sqrt(sum((g.float() ** 2).sum() for g in grads))


@dataclass
class NGDiff:
    intent: ClassVar[str] = "removal"
    needs_reference: ClassVar[bool] = False
    alternate: ClassVar[str | None] = None

    eps: float = 1e-12  # added to each norm, so a zero gradient stays zero

    def loss(self, model: torch.nn.Module, batch: UnlearnBatch, reference: torch.nn.Module | None) -> LossOutput:
        """The un-normalised objective -forget_nll + retain_nll, for logging/evaluation; training uses `backward`."""
        forget_nll = batch_nll(model, batch.forget)
        total, components = -forget_nll, {"forget_nll": forget_nll.item()}
        if batch.retain is not None:
            retain_nll = batch_nll(model, batch.retain)
            total = total + retain_nll
            components["retain_nll"] = retain_nll.item()
        return LossOutput(total, components)

    def backward(self, model: torch.nn.Module, batch: UnlearnBatch, reference: torch.nn.Module | None) -> LossOutput:
        params = [p for p in model.parameters() if p.requires_grad]
        forget_nll = batch_nll(model, batch.forget)
        g_f = _grads(-forget_nll, params)
        norm_f = global_norm(g_f)
        direction = [g / (norm_f + self.eps) for g in g_f]
        total, components = -forget_nll.detach(), {"forget_nll": forget_nll.item(), "forget_grad_norm": norm_f.item()}
        if batch.retain is not None:
            retain_nll = batch_nll(model, batch.retain)
            g_r = _grads(retain_nll, params)
            norm_r = global_norm(g_r)
            direction = [d + g / (norm_r + self.eps) for d, g in zip(direction, g_r)]
            total = total + retain_nll.detach()
            components.update(retain_nll=retain_nll.item(), retain_grad_norm=norm_r.item())
        with torch.no_grad():
            for p, d in zip(params, direction):
                d = d.to(p.dtype)
                if p.grad is None:
                    p.grad = d
                else:
                    p.grad.add_(d)
        return LossOutput(total, components)


METHOD = NGDiff
