"""Exact memorization and extraction strength (open-unlearning src/evals/metrics/memorization.py) on hand-computed
token matches, and the teacher-forced greedy matches they read."""
from __future__ import annotations

import pytest
import torch

from unlearn_bench.data.collate import PromptFormat, encode_example
from unlearn_bench.data.records import QA
from unlearn_bench.evaluation.lm import LM
from unlearn_bench.methods.base import IGNORE_INDEX
from unlearn_bench.metrics.memorization import exact_memorization, extraction_strength


def test_exact_memorization_is_the_fraction_predicted():
    assert exact_memorization([True, True, False, True]) == 0.75
    assert exact_memorization([]) is None


@pytest.mark.parametrize("matches,expected", [
    ([True, True, True], 1.0),            # k = 0
    ([False, True, True], 1 - 1 / 3),     # the last two reproduce from position 1
    ([True, False, True, True], 1 - 2 / 4),
    ([True, False], 1 - 1 / 2),           # no correct suffix: open-unlearning's loop leaves k = n-1, so 1/n
    ([False, False, False, False], 1 / 4),
    ([], 0.0),
])
def test_extraction_strength_hand_computed(matches, expected):
    assert extraction_strength(matches) == pytest.approx(expected)


def copying_model(model, encoded):
    """Force the argmax that scores each labelled token of `encoded` to be that token: a model that has memorised
    these texts. Keyed by (position, token at that position), which both a whole-sequence forward and a KV-cached
    continuation (`LM`'s shared prompts) pass it."""
    follows = {(j - 1, ids[j - 1]): ids[j] for ids, labels in encoded for j in range(1, len(ids)) if labels[j] != IGNORE_INDEX}
    keys = [(j - 1, ids[j - 1]) for ids, labels in encoded for j in range(1, len(ids)) if labels[j] != IGNORE_INDEX]
    if len(keys) != len(follows):
        raise ValueError("two texts need different tokens after the same (position, token): choose other texts")

    def hook(module, args, kwargs, output):
        ids, positions = kwargs["input_ids"], kwargs["position_ids"]
        logits = output.logits.clone()
        offset = ids.shape[1] - logits.shape[1]  # logits_to_keep=1: the last position only
        for b in range(ids.shape[0]):
            for t in range(logits.shape[1]):
                nxt = follows.get((int(positions[b, t + offset]), int(ids[b, t + offset])))
                if nxt is not None:
                    logits[b, t, nxt] += 1e4
        output.logits = logits
        return output
    return model.register_forward_hook(hook, with_kwargs=True)


def test_greedy_matches_cover_the_answer_without_its_eos(tiny_lm):
    model, tok = tiny_lm
    lm = LM(model, tok, PromptFormat("plain"), max_length=64, batch_size=2)
    pairs = [QA("what is item 3?", "item 3 is a dog."), QA("what is item 1 of the list?", "a cat")]
    n_scored = [sum(t != IGNORE_INDEX for t in encode_example(qa, tok, lm.fmt, 64)[1]) for qa in pairs]
    handle = copying_model(model, [lm.encode(qa) for qa in pairs])
    try:
        matches = lm.greedy_matches(pairs)
    finally:
        handle.remove()
    handle = copying_model(model, [lm._raw_completion(QA("item 3 is", "a dog."))])
    try:
        raw = lm.greedy_matches([QA("item 3 is", "a dog.")], raw=True)
    finally:
        handle.remove()
    assert [len(m) for m in matches] == [n - 1 for n in n_scored]  # EOS left out
    assert all(all(m) for m in matches) and all(raw[0]) and raw[0]
    assert [extraction_strength(m) for m in matches] == [1.0, 1.0]
    unforced = lm.greedy_matches(pairs)  # a random model reproduces (almost) nothing
    assert exact_memorization(unforced[0]) < 0.5
