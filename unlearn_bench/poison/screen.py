"""The detector a service could run on a forget request before unlearning it: the yardstick a defence must beat.

Two signals per request item, each a robust z-score against the request itself (median and MAD, so that a
minority of poisoned items cannot shift the reference much):
- easier than the rest: the log of the target model's answer loss (per-token NLL) far *below* the request's
  (the loss is heavy-tailed, its log is not); general knowledge the model holds firmly (world facts, famous
  authors) stands out so;
- closer to the retain set than the rest: the highest TF-IDF cosine of the item's question and answer to any
  retain-set record (the service holds its retain data); a retain record slipped into the request matches itself.
An item is flagged when either z-score passes `bench.poison.screen_z`. Precision and recall are over the injected
items; a run with `bench.poison.screen=true` unlearns the request without the flagged items.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from unlearn_bench.benchmarks.base import Metric
from unlearn_bench.data.records import QA

SPLIT = "poison_request"
MAD_TO_SD = 1.4826  # MAD of a normal sample times this estimates its standard deviation
LOSS_FLOOR = 1e-6   # a loss of 0 (a memorised answer) has no log


def robust_z(values: Sequence[float]) -> np.ndarray:
    """(x - median) / (1.4826 MAD); a MAD of 0 (most items equal) makes every other value infinitely far."""
    x = np.asarray(values, dtype=float)
    centre = np.median(x)
    spread = MAD_TO_SD * np.median(np.abs(x - centre))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (x - centre) / spread
    return np.nan_to_num(z, nan=0.0)  # 0/0: the item is the median itself


def text(qa: QA) -> str:
    return f"{qa.question or ''} {qa.answer}"


def retain_similarity(request: Sequence[QA], retain: Sequence[QA]) -> np.ndarray:
    """Per request item, the highest TF-IDF cosine of its text to any retain record's."""
    from sklearn.feature_extraction.text import TfidfVectorizer  # lazy: only poisoned runs screen

    if not retain:
        return np.zeros(len(request))
    vectorizer = TfidfVectorizer().fit([text(qa) for qa in [*request, *retain]])
    similarity = vectorizer.transform([text(qa) for qa in request]) @ vectorizer.transform([text(qa) for qa in retain]).T
    return np.asarray(similarity.max(axis=1).todense()).ravel()


def screen_flags(losses: Sequence[float], similarity: Sequence[float], z: float) -> list[bool]:
    """Flag items much easier than the request (log-loss z < -z) or much closer to the retain set (similarity z > z)."""
    easier = robust_z(np.log(np.maximum(np.asarray(losses, dtype=float), LOSS_FLOOR))) < -z
    closer = robust_z(similarity) > z
    return [bool(a or b) for a, b in zip(easier, closer)]


def screen_metrics(flags: Sequence[bool], injected: Sequence[bool], dropped: bool) -> list[Metric]:
    """How the detector did on the injected items: counts, precision (NaN when nothing is flagged) and recall."""
    if len(flags) != len(injected):
        raise ValueError(f"screen_metrics: {len(flags)} flags for {len(injected)} request items")
    hits = sum(f and i for f, i in zip(flags, injected))
    n_flagged, n_injected = sum(flags), sum(injected)
    return [Metric(SPLIT, "injected", float(n_injected), None),
            Metric(SPLIT, "flagged", float(n_flagged), None),
            Metric(SPLIT, "precision", hits / n_flagged if n_flagged else math.nan, True),
            Metric(SPLIT, "recall", hits / n_injected if n_injected else math.nan, True),
            Metric(SPLIT, "dropped", float(n_flagged if dropped else 0), None)]
