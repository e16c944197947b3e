"""In-context unlearning: forget examples shown with wrong answers, then correctly answered examples, then the
question; the weights are never touched.

Pawelczyk, Neel & Lakkaraju 2024, "In-context unlearning: language models as few-shot unlearners" (ICML 2024,
arXiv:2310.07579): the context holds the forget points with flipped labels followed by correctly labelled points.
For generative QA, as the follow-ups adapt it, a "flipped label" is a wrong answer: the forget item's first
perturbed answer where the bench has one, else the answer of another forget item. The forget pool grows with
every unlearning request; each question is shown the `n_forget` pool items most similar to it (TF-IDF cosine,
`methods.lexical_index`) and `n_correct` retain items (a fixed seeded sample), as many as fit: examples are
dropped, least similar first, until the prompt leaves `answer_tokens` of the model's context window for the
answer. Examples are written `question answer` and joined by spaces, as the rephrase diagnostic's mixed probe
writes them.
"""
from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from unlearn_bench.benchmarks.base import BenchData
from unlearn_bench.methods.lexical_index import LexicalIndex

if TYPE_CHECKING:
    from unlearn_bench.evaluation.wrapper import InferenceWrapper


@dataclass
class ICUL:
    intent: ClassVar[str] = "suppression"
    inference_time: ClassVar[bool] = True
    needs_reference: ClassVar[bool] = False
    alternate: ClassVar[str | None] = None

    n_forget: int = 2       # forget examples (wrong answers) before each question
    n_correct: int = 2      # retain examples (right answers) after them
    answer_tokens: int = 40  # room left in the context window for the question's answer

    def __post_init__(self) -> None:
        if self.n_forget < 1 or self.n_correct < 0 or self.answer_tokens < 1:
            raise ValueError(f"icul: n_forget={self.n_forget} must be >= 1, n_correct={self.n_correct} >= 0, "
                             f"answer_tokens={self.answer_tokens} >= 1")
        self.pool = LexicalIndex()            # forget questions, request after request
        self.wrong: list[str] = []            # their wrong answers, index-aligned with the pool
        self.correct: list[tuple[str, str]] = []
        self.window = 0

    def fit(self, model: Any, tokenizer: Any, data: BenchData, *, max_length: int, seed: int, **_: Any) -> None:
        questions = [qa.question if qa.question is not None else qa.answer for qa in data.forget]
        for i, qa in enumerate(data.forget):
            perturbed = data.forget_perturbed[i] if data.forget_perturbed else []
            self.wrong.append(perturbed[0] if perturbed else data.forget[(i + 1) % len(data.forget)].answer)
        self.pool.add(questions, background=[qa.question for qa in data.retain if qa.question is not None])
        if not self.correct and data.retain:
            sample = random.Random(seed).sample(list(data.retain), min(self.n_correct, len(data.retain)))
            self.correct = [(qa.question or "", qa.answer) for qa in sample]
        from unlearn_bench.evaluation.lm import context_length

        self.window = context_length(model) or max_length

    def demonstrations(self, question: str) -> list[str]:
        """The context examples for `question`, most similar forget example first."""
        indices, _ = self.pool.search([question], self.n_forget)
        forget = [f"{self.pool.texts[i]} {self.wrong[i]}" for i in indices[0]]
        return forget + [f"{q} {a}" for q, a in self.correct]

    def wrapper(self, model: Any, tokenizer: Any) -> InferenceWrapper:
        def prompt(question: str) -> str:
            budget = self.window - self.answer_tokens
            shown = self.demonstrations(question)
            n_forget = len(shown) - len(self.correct)
            while shown:
                text = " ".join(shown + [question])
                if len(tokenizer(text)["input_ids"]) <= budget:
                    return text
                # drop the least similar forget example while any is left, then retain examples from the end
                shown.pop(n_forget - 1 if n_forget > 0 else -1)
                n_forget = max(0, n_forget - 1)
            return question

        # cached: a bench scores each question with several answers; a later request builds a new wrapper
        from unlearn_bench.evaluation.wrapper import InferenceWrapper

        return InferenceWrapper(prompt=functools.lru_cache(maxsize=None)(prompt))


METHOD = ICUL
