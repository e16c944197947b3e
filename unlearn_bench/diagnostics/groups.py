"""Forget groups: the units the bootstrap resamples and the relearning split keeps on one side.

A group is what makes forget questions dependent: one author (`meta["author"]` in the embedded world), one
RWKU target (`meta["target"]`), or on TOFU, whose records carry no author field, the block of 20 consecutive
questions each author has (locuslab/TOFU lists its forget splits author by author, 20 QA each). A question's
paraphrase is part of the question's own example and so of its group.
"""
from __future__ import annotations

from typing import Hashable, Sequence

from unlearn_bench.data.records import EvalQA

GROUP_FIELDS = ("author", "target")
BLOCK_SIZE = {"tofu": 20}  # bench name -> questions per author where records name no author


def forget_groups(examples: Sequence[EvalQA], bench_name: str) -> list[Hashable]:
    """One group label per example."""
    for name in GROUP_FIELDS:
        if examples and all(name in ex.meta for ex in examples):
            return [ex.meta[name] for ex in examples]
    if bench_name in BLOCK_SIZE:
        return [i // BLOCK_SIZE[bench_name] for i in range(len(examples))]
    raise ValueError(f"bench '{bench_name}': forget examples name no group ({' or '.join(GROUP_FIELDS)} in their meta) "
                     f"and the bench has no known block size ({sorted(BLOCK_SIZE)}): the bootstrap cannot resample")


def disjoint_split(groups: Sequence[Hashable], train_fraction: float) -> tuple[list[int], list[int]]:
    """Indices (train, held out) such that no group has examples on both sides: the first
    round(`train_fraction` x groups) groups in order of appearance train, the rest are held out."""
    if not 0 < train_fraction < 1:
        raise ValueError(f"eval.diag.relearn.train_fraction={train_fraction} must be in (0, 1)")
    order = list(dict.fromkeys(groups))
    if len(order) < 2:
        raise ValueError(f"the relearning split needs >= 2 forget groups, got {len(order)}")
    trained = set(order[: min(len(order) - 1, max(1, round(len(order) * train_fraction)))])
    return [i for i, g in enumerate(groups) if g in trained], [i for i, g in enumerate(groups) if g not in trained]
