"""ROUGE recall of generations against reference answers, as the TOFU authors score it.

TOFU (locuslab/tofu, evaluate_util.py, `eval_rouge_recall`) uses
`rouge_scorer.RougeScorer(['rouge1', 'rougeL'], use_stemmer=True)` and `scorer.score(ground_truth, generation)`,
keeping `.recall`: the share of the reference's words the model reproduced, so a long rambling generation that
contains the answer still scores 1.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Sequence

from rouge_score import rouge_scorer

ROUGE_TYPES = ("rouge1", "rougeL")


@lru_cache(maxsize=1)
def _scorer() -> rouge_scorer.RougeScorer:
    return rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)


def rouge_recall(predictions: Sequence[str], references: Sequence[str]) -> dict[str, list[float]]:
    """Per-example ROUGE-1 and ROUGE-L recall: {"rouge1": [...], "rougeL": [...]}."""
    if len(predictions) != len(references):
        raise ValueError(f"rouge_recall: {len(predictions)} predictions but {len(references)} references")
    scorer = _scorer()
    out: dict[str, list[float]] = {t: [] for t in ROUGE_TYPES}
    for prediction, reference in zip(predictions, references):
        # rouge_score's argument order is (target, prediction); recall is relative to the target.
        scores = scorer.score(reference, prediction)
        for t in ROUGE_TYPES:
            out[t].append(scores[t].recall)
    return out
