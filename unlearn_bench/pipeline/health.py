"""Is the unlearned model still a model? A blow-up on the last step can leave a finite loss history but
non-finite weights, or weights whose every output is the uniform distribution (probability 1/vocab): scoring
such a model yields numbers (forget ROUGE 0, "perfect forgetting") that mean nothing. The runner records it
`diverged` with the reason instead."""
from __future__ import annotations

import math
from typing import Sequence

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from unlearn_bench.data.collate import PromptFormat, collate
from unlearn_bench.data.records import QA
from unlearn_bench.methods.base import IGNORE_INDEX, forward_logits

# Collapsed = near-uniform AND input-independent: mean next-token entropy at or above this share of log(vocab)
# (a randomly initialised model is near-uniform too, ~0.998 for the tiny one) and every scored position's
# distribution within this total-variation distance of their mean (a random model's positions differ).
UNIFORM_ENTROPY_SHARE = 0.99
SAME_DISTRIBUTION_TV = 1e-3
PROBE_EXAMPLES = 8


@torch.inference_mode()
def collapse_reason(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, fmt: PromptFormat,
                    max_length: int, probes: Sequence[QA]) -> str | None:
    """Why `model` is unusable (non-finite weights or logits, the same uniform output at every position of
    `probes`), or None if it is not."""
    for name, param in model.named_parameters():
        if not torch.isfinite(param).all():
            return f"non-finite weights in {name}"
    if not probes:
        return None
    batch = collate(list(probes)[:PROBE_EXAMPLES], tokenizer, fmt, max_length).to(next(model.parameters()).device)
    logits = forward_logits(model, batch).float()
    answer = batch.labels != IGNORE_INDEX  # the positions scoring uses
    if not torch.isfinite(logits[answer]).all():
        return "non-finite logits on the probe examples"
    logp = torch.log_softmax(logits[answer], dim=-1)
    probs = logp.exp()
    entropy = float(-(probs * logp).sum(-1).mean())
    uniform = math.log(logits.shape[-1])
    spread = float(0.5 * (probs - probs.mean(0)).abs().sum(-1).max())
    if entropy >= UNIFORM_ENTROPY_SHARE * uniform and spread < SAME_DISTRIBUTION_TV:
        return (f"collapsed output distribution: mean next-token entropy {entropy:.3f} nats of the uniform "
                f"{uniform:.3f} (every token about 1/{logits.shape[-1]})")
    return None
