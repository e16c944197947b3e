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

# Mean next-token entropy at or above this share of log(vocab) is a collapsed (uniform) output distribution;
# a trained model, even after heavy gradient ascent, is far below it.
UNIFORM_ENTROPY_SHARE = 0.99
PROBE_EXAMPLES = 8


@torch.inference_mode()
def collapse_reason(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, fmt: PromptFormat,
                    max_length: int, probes: Sequence[QA]) -> str | None:
    """Why `model` is unusable (non-finite weights or logits, uniform outputs on `probes`), or None if it is not."""
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
    entropy = float(-(logp.exp() * logp).sum(-1).mean())
    uniform = math.log(logits.shape[-1])
    if entropy >= UNIFORM_ENTROPY_SHARE * uniform:
        return (f"collapsed output distribution: mean next-token entropy {entropy:.3f} nats of the uniform "
                f"{uniform:.3f} (every token about 1/{logits.shape[-1]})")
    return None
