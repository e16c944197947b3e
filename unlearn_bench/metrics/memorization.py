"""Exact memorization and extraction strength, as open-unlearning defines them
(locuslab/open-unlearning, src/evals/metrics/memorization.py, `exact_memorization`, `extraction_strength`).

Both read one boolean per answer token: does the model's greedy (argmax) next-token prediction equal the token?
open-unlearning's `tokenwise_vocab_logprobs` drops the last labelled token (the EOS), so callers pass the
matches of the answer tokens before it.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def exact_memorization(matches: Sequence[bool]) -> float | None:
    """Fraction of answer tokens the model predicts exactly under teacher forcing; None for an empty answer
    (open-unlearning marks it None and leaves it out of the mean)."""
    m = np.asarray(matches, dtype=bool)
    return float(m.mean()) if m.size else None


def extraction_strength(matches: Sequence[bool]) -> float:
    """1 - k/n, k the first position from which every later token is predicted exactly (Carlini et al.'s
    extraction strength: how short a prefix the model needs to reproduce the rest). As open-unlearning's loop,
    k stops at n-1 when no suffix is all correct, so a fully wrong answer scores 1/n, not 0; an empty one 0."""
    m = np.asarray(matches, dtype=bool)
    n = m.size
    if n == 0:
        return 0.0
    k = next((k for k in range(n) if m[k:].all()), n - 1)
    return 1.0 - k / n
