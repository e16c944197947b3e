"""The fictitious world rendered as a MUSE-style corpus: the embedded default of `bench=muse`.

Each author becomes one short news-like article built from its facts; knowmem asks the author's QA pairs
(gold answer = the fact itself, short like MUSE's); verbmem prompts with an article's first sentence; privleak
contrasts forget authors' articles with never-trained holdout authors'. Splits follow MUSE's hub layout
(muse_data.SPLITS), so `write_hub_layout` can put the corpus on disk and `muse_data` reads it back.

Authors 0..N-1 are trained on, N.. are holdout. With F forget authors (the last F) and R = (N - 4F) // 2:
  raw/retain1 = [0, R)          the retain set unlearning sees (MUSE's unlearning uses raw/retain1)
  raw/retain2 = [R, N - F)      the rest of the retain set; knowmem/privleak retain use [R, N - 4F), which no
                                scal/sust forget set touches
  scal/forget_k = [N - kF, N)   nested, forget_1 = raw/forget (MUSE's scal)
  sust/forget_k = [N - kF, N - (k-1)F)   pairwise disjoint, forget_1 = raw/forget (MUSE's sust)
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unlearn_bench.benchmarks.fictitious.world import Author, generate_world
from unlearn_bench.benchmarks.muse.data import SPLITS, VerbmemRecord
from unlearn_bench.data.records import QA, DataError, EvalQA

FORGET_PERCENT = 10
ICL_SHOTS = 3  # MUSE's *_icl files hold 10; 3 keep few-shot prompts inside a tiny model's context
N_FOLDS = len(SPLITS["scal"])


@dataclass
class MuseCorpus:
    """Every MUSE split a benchmark run reads, already typed (as `muse_data` returns them)."""

    texts: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # (config, split) -> texts
    knowmem: dict[str, list[EvalQA]] = field(default_factory=dict)         # forget_qa, retain_qa
    icl: dict[str, list[QA]] = field(default_factory=dict)                 # forget_qa, retain_qa
    verbmem: list[VerbmemRecord] = field(default_factory=list)

    def records(self) -> dict[tuple[str, str], list[dict[str, Any]]]:
        """Hub-schema records per (config, split): `text`, `question`/`answer`, `prompt`/`gt`."""
        out: dict[tuple[str, str], list[dict[str, Any]]] = {
            key: [{"text": t} for t in texts] for key, texts in self.texts.items()
        }
        for split, qa in self.knowmem.items():
            out[("knowmem", split)] = [{"question": q.question, "answer": q.answer} for q in qa]
        for split, shots in self.icl.items():
            out[("knowmem", f"{split}_icl")] = [{"question": q.question, "answer": q.answer} for q in shots]
        out[("verbmem", "forget")] = [dict(r) for r in self.verbmem]
        return out


def write_hub_layout(corpus: MuseCorpus, root: str | Path, name: str, skip: tuple[str, ...] = ()) -> None:
    """Write `corpus` as `<root>/<name>/<config>/<split>.json` (muse_data's local layout), except configs in `skip`."""
    for (config, split), records in corpus.records().items():
        if config in skip:
            continue
        path = Path(root) / name / config / f"{split}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(records, indent=1), encoding="utf-8")


def article_sentences(a: Author) -> list[str]:
    """A short news-like article from the author's facts; the first sentence names the author (verbmem prompt)."""
    return [
        f"{a.name} was born in {a.birth_city}, {a.birth_country} on {a.birth_date}.",
        f"The {a.genre} writer, child of a {a.father_job} and a {a.mother_job}, is known for {a.book1} and {a.book2}.",
        f"{a.name} received the {a.award} and studied under {a.mentor}.",
        f"Writing as {a.pen_name}, {a.name} now lives in {a.home_city}.",
    ]


def _qa(author_qa: list[list[EvalQA]]) -> list[EvalQA]:
    # The fact alone is the gold answer, short like MUSE's ("1472", "the Golden Snitch").
    return [EvalQA(qa.question, qa.meta["value"], meta=qa.meta) for author in author_qa for qa in author]


def fictitious_corpus(num_authors: int, seed: int, holdout_percent: int = 10) -> MuseCorpus:
    """Deterministic for its arguments; raises DataError when the author count leaves a split empty."""
    n, f = num_authors, max(1, round(num_authors * FORGET_PERCENT / 100))
    r = (n - N_FOLDS * f) // 2
    if r < 1:
        raise DataError(f"bench.num_authors={n} is too small for MUSE-style splits: {N_FOLDS} forget folds of {f} "
                        f"authors need at least {N_FOLDS * f + 2} authors")
    n_holdout = max(1, n * holdout_percent // 100)
    world = generate_world(n + n_holdout, seed, n_perturbed=0)
    articles = [" ".join(article_sentences(a)) for a in world.authors]

    def span(start: int, stop: int) -> list[str]:
        return articles[start:stop]

    texts = {
        ("raw", "forget"): span(n - f, n),
        ("raw", "retain1"): span(0, r),
        ("raw", "retain2"): span(r, n - f),
        ("raw", "holdout"): span(n, n + n_holdout),
        ("privleak", "forget"): span(n - f, n),
        ("privleak", "retain"): span(r, n - N_FOLDS * f),
        ("privleak", "holdout"): span(n, n + n_holdout),
    }
    for k, split in enumerate(SPLITS["scal"], start=1):
        texts[("scal", split)] = span(n - k * f, n)
        texts[("sust", split)] = span(n - k * f, n - (k - 1) * f)
    forget_qa = _qa(world.author_qa[n - f : n])
    retain_qa = _qa(world.author_qa[r : n - N_FOLDS * f])
    verbmem = [
        VerbmemRecord(prompt=s[0], gt=" ".join(s[1:])) for s in map(article_sentences, world.authors[n - f : n])
    ]
    return MuseCorpus(
        texts=texts,
        knowmem={"forget_qa": forget_qa[ICL_SHOTS:], "retain_qa": retain_qa[ICL_SHOTS:]},
        icl={"forget_qa": [q.as_qa() for q in forget_qa[:ICL_SHOTS]],
             "retain_qa": [q.as_qa() for q in retain_qa[:ICL_SHOTS]]},
        verbmem=verbmem,
    )
