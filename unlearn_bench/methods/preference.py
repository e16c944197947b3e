"""Shared log-ratio and logsigmoid code for the preference-style losses (NPO, SimNPO, DPO).

Follows open-unlearning's `compute_batch_nll` / `compute_dpo_loss` (src/trainer/utils.py): a sequence's
log-probability is minus its summed answer-token NLL, and every loss has the form -(2/beta) * logsigmoid(beta * z).
"""
from __future__ import annotations

from unlearn_bench.runtime.lazy import F, torch  # imported on first use: composing a config needs no torch
from unlearn_bench.methods.base import Batch, LossOutput, UnlearnBatch, require_alternate, sequence_nll, with_retain


def sequence_logprob(model: torch.nn.Module, batch: Batch) -> torch.Tensor:
    """log p(answer | prompt) per sequence, [B]: minus the summed answer-token NLL."""
    return -sequence_nll(model, batch)


def log_ratio(model: torch.nn.Module, reference: torch.nn.Module, batch: Batch) -> torch.Tensor:
    """log p_model(y|x) - log p_reference(y|x) per sequence, [B]; no gradient through the reference."""
    if reference is None:
        raise ValueError("a log-ratio loss needs a reference model")
    with torch.no_grad():
        ref = sequence_logprob(reference, batch)
    return sequence_logprob(model, batch) - ref


def scaled_logsigmoid_loss(beta: float, z: torch.Tensor) -> torch.Tensor:
    """-(2/beta) * mean(logsigmoid(beta * z)): DPO with z = win - lose log-ratio, NPO with z = -log-ratio,
    SimNPO with z = mean NLL - delta. Tends to 0 as z grows; ~ -2z for very negative z."""
    if beta <= 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    return -(2.0 / beta) * F.logsigmoid(beta * z).mean()


def alternate_preference_loss(method: object, model: torch.nn.Module, batch: UnlearnBatch,
                              reference: torch.nn.Module | None, *, alternate_name: str) -> LossOutput:
    """open-unlearning's DPO (src/trainer/unlearn/dpo.py) with the alternate answer preferred over the forget answer:
    gamma * -(2/beta) mean logsigmoid(beta * (logratio(alternate) - logratio(original))) + alpha * retain, from the
    method's beta, forget_weight (gamma), retain_weight (alpha) and retain_loss; the alternate log-ratio is logged
    as `<alternate_name>_log_ratio`."""
    win = log_ratio(model, reference, require_alternate(method, batch))
    lose = log_ratio(model, reference, batch.forget)
    forget = scaled_logsigmoid_loss(method.beta, win - lose)
    components = {"dpo": forget.item(), f"{alternate_name}_log_ratio": win.mean().item(),
                  "forget_log_ratio": lose.mean().item()}
    return with_retain(
        forget, components, model=model, reference=reference, batch=batch,
        kind=method.retain_loss, retain_weight=method.retain_weight, forget_weight=method.forget_weight,
    )
