"""ROUGE recall of generations against reference answers, as the TOFU authors score it.

TOFU (locuslab/tofu, evaluate_util.py, `eval_rouge_recall`) uses
`rouge_scorer.RougeScorer(['rouge1', 'rougeL'], use_stemmer=True)` and `scorer.score(ground_truth, generation)`,
keeping `.recall`: the share of the reference's words the model reproduced, so a long rambling generation that
contains the answer still scores 1.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Sequence

from rouge_score import rouge_scorer, tokenize, tokenizers

ROUGE_TYPES = ("rouge1", "rougeL")


@dataclass(frozen=True)
class StemmedWords:
    """rouge_score's tokenizer with `use_stemmer=True` (tokenizers.DefaultTokenizer: its `tokenize.tokenize` and
    nltk's Porter stemmer), each distinct word stemmed once: the pure-Python stemmer took most of scoring TOFU's
    1,017 generations, whose words repeat."""

    stem: Callable[[str], str]

    def tokenize(self, text: str) -> list[str]:
        return tokenize.tokenize(text, self)  # calls self.stem(word), as it calls the stemmer's


@lru_cache(maxsize=1)
def _scorer() -> rouge_scorer.RougeScorer:
    stem = lru_cache(maxsize=1 << 16)(tokenizers.porter.PorterStemmer().stem)
    return rouge_scorer.RougeScorer(list(ROUGE_TYPES), tokenizer=StemmedWords(stem))


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
