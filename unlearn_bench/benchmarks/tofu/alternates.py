"""Wrong answers to train on for real TOFU, kept apart from every answer the evaluation scores.

TOFU's `perturbed_answer`s are what its truth ratio and forget quality score, so a method trained toward them
(wrong_answers) would be graded on its own training targets. Instead each forget question is paired with the
answers TOFU gives to the most similar questions (TF-IDF cosine over the question text) about retain authors that
no evaluation split holds: a wrong answer of the same kind ("mismatched answers", Yao, Xu & Liu 2023), while the
evaluation keeps all of TOFU's perturbed answers and stays comparable to the authors' logs.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from unlearn_bench.data.records import QA, DataError


def similar_question_answers(questions: Sequence[str], pool: Sequence[QA], scored: set[str], k: int) -> list[list[str]]:
    """For each question, the answers of the `k` most similar pool questions, none of them in `scored`."""
    from sklearn.feature_extraction.text import TfidfVectorizer  # lazy: only runs that train on alternates need it

    seen: set[str] = set()
    candidates = [qa for qa in pool if qa.answer not in scored and not (qa.answer in seen or seen.add(qa.answer))]
    if len(candidates) < k:
        raise DataError(f"only {len(candidates)} unscored answers to draw {k} wrong answers per forget question from")
    vectorizer = TfidfVectorizer(stop_words="english").fit([qa.question for qa in candidates] + list(questions))
    similarity = (vectorizer.transform(questions) @ vectorizer.transform([qa.question for qa in candidates]).T).toarray()
    nearest = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    return [[candidates[j].answer for j in row] for row in nearest]
