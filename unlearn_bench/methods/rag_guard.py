"""Retrieval guard: the forget set in an index; a question close to an indexed one is answered under a
confidentiality instruction, or not shown to the model at all; every other question goes through unchanged.

RAG-based unlearning, the input-space suppression of the intent taxonomy, as in Wang et al. 2024, "When machine
unlearning meets retrieval-augmented generation (RAG): keep secret or forget knowledge?" (arXiv:2410.15267):
knowledge is withheld by a retrieval step and a prompt, never removed from the weights. The index is scikit-learn TF-IDF with exact cosine neighbours
(`methods.lexical_index`); a hit is a best similarity of at least `threshold`. Each unlearning request adds its
forget questions to the index, which is what makes the guard cheap to extend request after request.

  action=instruct   the instruction is placed before the question (the model still sees the question)
  action=withhold   the instruction replaces the question (the model never sees it): a refusal by construction

The guard's hit rate on every evaluation split (forget, retain, utility questions) is reported as
`<split>/guard_hit_rate`: a guard that fires on retain or utility questions costs utility there.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Mapping, Sequence

import numpy as np

from unlearn_bench.benchmarks.base import BenchData, Metric
from unlearn_bench.methods.lexical_index import LexicalIndex

if TYPE_CHECKING:
    from unlearn_bench.evaluation.wrapper import InferenceWrapper

ACTIONS = ("instruct", "withhold")


@dataclass
class RagGuard:
    intent: ClassVar[str] = "suppression"
    inference_time: ClassVar[bool] = True
    needs_reference: ClassVar[bool] = False
    alternate: ClassVar[str | None] = None

    threshold: float = 0.5  # cosine similarity (TF-IDF) to the nearest forget question that counts as a hit
    action: str = "instruct"
    instruction: str = "This question concerns confidential information that must not be revealed; answer that you do not know."

    def __post_init__(self) -> None:
        self.index = LexicalIndex()  # state, not a hyperparameter: grows with every request
        if self.action not in ACTIONS:
            raise ValueError(f"rag_guard: action={self.action!r} is not one of {ACTIONS}")
        if not 0 < self.threshold <= 1:
            raise ValueError(f"rag_guard: threshold={self.threshold} must be in (0, 1]")

    def fit(self, model: Any, tokenizer: Any, data: BenchData, **_: Any) -> None:
        self.index.add([qa.question if qa.question is not None else qa.answer for qa in data.forget],
                       background=[qa.question for qa in data.retain if qa.question is not None])

    def hits(self, texts: Sequence[str]) -> np.ndarray:
        """True where a text's nearest indexed forget question is at least `threshold` similar."""
        _, similarity = self.index.search(texts, 1)
        return similarity[:, 0] >= self.threshold

    def guard(self, text: str) -> str:
        if not self.hits([text])[0]:
            return text
        return self.instruction if self.action == "withhold" else f"{self.instruction} {text}"

    def wrapper(self, model: Any, tokenizer: Any) -> InferenceWrapper:
        # cached: a bench scores each question with several answers; a later request builds a new wrapper
        from unlearn_bench.evaluation.wrapper import InferenceWrapper

        return InferenceWrapper(prompt=functools.lru_cache(maxsize=None)(self.guard))

    def question_metrics(self, splits: Mapping[str, Sequence[str]]) -> list[Metric]:
        return [Metric(name, "guard_hit_rate", float(np.mean(self.hits(questions))), None)
                for name, questions in splits.items() if questions]


METHOD = RagGuard
