"""Shared log-ratio and logsigmoid code for the preference-style losses (NPO, SimNPO, DPO).

Follows open-unlearning's `compute_batch_nll` / `compute_dpo_loss` (src/trainer/utils.py): a sequence's
log-probability is minus its summed answer-token NLL, and every loss has the form -(2/beta) * logsigmoid(beta * z).
"""
from __future__ import annotations

from unlearn_bench.runtime.lazy import F, torch  # imported on first use: composing a config needs no torch
from unlearn_bench.methods.base import Batch, sequence_nll


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
