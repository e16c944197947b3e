"""The utility gate: a model that lost its general ability has not "removed" anything, it is `collapsed`.

Forgetting by destruction passes every "no knowledge shown" test: ga at lr 1e-3 for 5 epochs answers every
prompt with "cccc..." and its shares are strongly negative, below any threshold. So before any attack is read,
the unlearned model's utility is compared with the target's on three measures, each read off its own evaluation:

  model_utility    the bench's aggregate (TOFU's harmonic mean over retain, real authors and world facts)
  retain_rougeL    greedy ROUGE-L recall on the retain questions
  distinct_tokens  mean share of distinct tokens in each greedy retain answer (1: no token repeats; "cccc..."
                   is one token 32 times, 1/32): output degeneration that ROUGE against short answers can miss

A model below `eval.diag.min_utility` x the target's on any of them is `collapsed` (the default, 0.5, is
argued in the README: tuned methods keep >= 0.9 of the target's utility, wrecked ones ~0).
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

from transformers import PreTrainedTokenizerBase

from unlearn_bench.benchmarks.base import EvalOutput

MEASURES = {"model_utility": ("summary", "model_utility"), "retain_rougeL": ("retain", "rouge")}
DISTINCT = "distinct_tokens"


def distinct_token_share(texts: Sequence[str], tokenizer: PreTrainedTokenizerBase) -> float:
    """Mean over `texts` of distinct tokens / tokens (an empty answer counts 0)."""
    shares = []
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        shares.append(len(set(ids)) / len(ids) if ids else 0.0)
    return sum(shares) / len(shares) if shares else math.nan


def utility(evaluation: EvalOutput, tokenizer: PreTrainedTokenizerBase) -> dict[str, float]:
    """The gate's measures of one evaluated model (NaN where the bench has no such row)."""
    found = {(m.split, m.metric): m.value for m in evaluation.metrics}
    out = {name: float(found.get(key, math.nan)) for name, key in MEASURES.items()}
    out[DISTINCT] = distinct_token_share([g["generation"] for g in evaluation.generations if g.get("split") == "retain"],
                                         tokenizer)
    return out


def gate(unlearned: Mapping[str, float], target: Mapping[str, float], min_utility: float) -> str:
    """Why the model is collapsed ("" if it is not): each measure below `min_utility` x the target's."""
    failing = [f"{name} {unlearned[name]:.2f} < {min_utility:g} x {target[name]:.2f}" for name in target
               if math.isfinite(target[name]) and math.isfinite(unlearned[name]) and unlearned[name] < min_utility * target[name]]
    return "; ".join(failing)
