"""An exact nearest-neighbour index over texts that grows request by request (the retrieval guard's forget index,
in-context unlearning's pool): scikit-learn TF-IDF vectors (word unigrams and bigrams, sublinear tf, English stop words
dropped so that "what is" does not match every question) and brute-force
cosine neighbours. At benchmark sizes (hundreds to thousands of forget items) exact search is cheap; the
vectoriser is refitted on every `add`, so IDF weights always reflect everything indexed so far. Background
texts (the retain questions) count for IDF but are never returned: words every question shares (a benchmark's
question templates) then weigh little against what singles a question out (the names in it). TF-IDF vectors are
l2-normalised, so their cosine is a sparse dot product, done in one matrix product per batch of queries."""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:
    from scipy.sparse import csr_matrix
    from sklearn.feature_extraction.text import TfidfVectorizer


class LexicalIndex:
    def __init__(self) -> None:
        self.texts: list[str] = []
        self.background: list[str] = []
        self._vectorizer: TfidfVectorizer | None = None
        self._vectors: csr_matrix | None = None

    def __len__(self) -> int:
        return len(self.texts)

    def add(self, texts: Sequence[str], background: Sequence[str] = ()) -> None:
        self.texts += list(texts)
        known = set(self.background)  # every request brings the same retain set: count it once
        self.background += [t for t in dict.fromkeys(background) if t not in known]
        from sklearn.feature_extraction.text import TfidfVectorizer

        self._vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, stop_words="english")
        self._vectorizer.fit(self.texts + self.background)
        self._vectors = self._vectorizer.transform(self.texts)

    def search(self, queries: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """(indices, cosine similarities), each [len(queries), min(k, len(self))], most similar first."""
        if self._vectors is None or self._vectorizer is None:
            raise ValueError("the index is empty: add texts before searching it")
        similarity = (self._vectorizer.transform(list(queries)) @ self._vectors.T).toarray()
        indices = np.argsort(-similarity, axis=1, kind="stable")[:, : min(k, len(self))]
        return indices, np.take_along_axis(similarity, indices, axis=1)
