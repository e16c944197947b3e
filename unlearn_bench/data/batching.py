"""Epochs of batches for fine-tuning and unlearning, seeded so runs repeat exactly."""
from __future__ import annotations

import random
from typing import Callable, Iterator, Sequence

import torch
from transformers import PreTrainedTokenizerBase
from transformers.trainer_pt_utils import get_length_grouped_indices

from unlearn_bench.data.collate import Collator, Encoded, PromptFormat
from unlearn_bench.data.records import QA, iter_chunks
from unlearn_bench.methods.base import UnlearnBatch


def finetune_epochs(examples: Sequence[QA | Encoded], tokenizer: PreTrainedTokenizerBase, fmt: PromptFormat, max_length: int,
                    batch_size: int, seed: int, *, group_by_length: bool = False) -> Callable[[int], Iterator[UnlearnBatch]]:
    """Shuffled batches of `examples`; fine-tuning reuses the unlearning batch type (forget = the data).
    `group_by_length`: batches of similar token lengths (transformers' `get_length_grouped_indices`, as HF Trainer's
    `group_by_length`), visited in random order, so less of each batch is padding."""
    collate = Collator(tokenizer, fmt, max_length)
    lengths = [collate.length(qa) for qa in examples] if group_by_length and examples else None

    def epoch(e: int) -> Iterator[UnlearnBatch]:
        rng = random.Random(seed * 100_003 + e)
        if lengths is None:
            order = list(range(len(examples)))
            rng.shuffle(order)
            batches = list(iter_chunks(order, batch_size))
        else:
            grouped = get_length_grouped_indices(lengths, batch_size, generator=torch.Generator().manual_seed(rng.getrandbits(63)))
            batches = list(iter_chunks(grouped, batch_size))
            rng.shuffle(batches)
        for idx in batches:
            yield UnlearnBatch(collate([examples[i] for i in idx]))

    return epoch


def unlearn_epochs(
    forget: Sequence[QA | Encoded],
    retain: Sequence[QA | Encoded],
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
    collate = Collator(tokenizer, fmt, max_length)

    def epoch(e: int) -> Iterator[UnlearnBatch]:
        rng = random.Random(seed * 100_003 + e)
        order = list(range(len(forget)))
        rng.shuffle(order)
        for idx in iter_chunks(order, batch_size):
            f = [forget[i] for i in idx]
            r = rng.sample(list(retain), min(len(idx), len(retain))) if retain else None
            alt = [QA(forget[i].question, rng.choice(list(alternates[i]))) for i in idx] if alternates else None
            yield UnlearnBatch(
                collate(f),
                collate(r) if r else None,
                collate(alt) if alt else None,
                e,
            )

    return epoch
