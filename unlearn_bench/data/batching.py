"""Epochs of batches for fine-tuning and unlearning, seeded so runs repeat exactly."""
from __future__ import annotations

import random
from typing import Callable, Iterator, Sequence

from transformers import PreTrainedTokenizerBase

from unlearn_bench.data.collate import PromptFormat, collate
from unlearn_bench.data.records import QA, iter_chunks
from unlearn_bench.methods.base import UnlearnBatch


def finetune_epochs(examples: Sequence[QA], tokenizer: PreTrainedTokenizerBase, fmt: PromptFormat, max_length: int,
                    batch_size: int, seed: int) -> Callable[[int], Iterator[UnlearnBatch]]:
    """Shuffled batches of `examples`; fine-tuning reuses the unlearning batch type (forget = the data)."""

    def epoch(e: int) -> Iterator[UnlearnBatch]:
        order = list(range(len(examples)))
        random.Random(seed * 100_003 + e).shuffle(order)
        for idx in iter_chunks(order, batch_size):
            yield UnlearnBatch(collate([examples[i] for i in idx], tokenizer, fmt, max_length))

    return epoch


def unlearn_epochs(
    forget: Sequence[QA],
    retain: Sequence[QA],
    tokenizer: PreTrainedTokenizerBase,
    fmt: PromptFormat,
    max_length: int,
    batch_size: int,
    seed: int,
    *,
    alternates: Sequence[Sequence[str]] | None = None,
) -> Callable[[int], Iterator[UnlearnBatch]]:
    """Each epoch walks the forget set once; every forget batch gets a random retain batch of the same size
    and, when `alternates` is given, the same forget questions paired with one of their alternative answers
    (a refusal or a wrong answer) drawn at random."""

    def epoch(e: int) -> Iterator[UnlearnBatch]:
        rng = random.Random(seed * 100_003 + e)
        order = list(range(len(forget)))
        rng.shuffle(order)
        for idx in iter_chunks(order, batch_size):
            f = [forget[i] for i in idx]
            r = rng.sample(list(retain), min(len(idx), len(retain))) if retain else None
            alt = [QA(forget[i].question, rng.choice(list(alternates[i]))) for i in idx] if alternates else None
            yield UnlearnBatch(
                collate(f, tokenizer, fmt, max_length),
                collate(r, tokenizer, fmt, max_length) if r else None,
                collate(alt, tokenizer, fmt, max_length) if alt else None,
            )

    return epoch
