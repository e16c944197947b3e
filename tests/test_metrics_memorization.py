"""Exact memorization and extraction strength (open-unlearning src/evals/metrics/memorization.py) on hand-computed
token matches, and the teacher-forced greedy matches they read."""
from __future__ import annotations

import copy
import dataclasses

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


def memorised(model, encoded, max_epochs=300):
    """A copy of `model` trained on `encoded` until one whole-sequence forward's argmax predicts every labelled
    token: a model that has really memorised these texts, checked without `LM`'s shared-prompt path."""
    model = copy.deepcopy(model).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    examples = [(torch.tensor([ids]), torch.tensor([labels])) for ids, labels in encoded]
    for _ in range(max_epochs):
        for ids, labels in examples:
            model(input_ids=ids, labels=labels).loss.backward()
            opt.step()
            opt.zero_grad()
        with torch.no_grad():
            if all(bool((model(input_ids=ids).logits[0, :-1].argmax(-1) == labels[0, 1:])[labels[0, 1:] != IGNORE_INDEX].all())
                   for ids, labels in examples):
                return model.eval()
    raise RuntimeError(f"the tiny model did not memorise {len(encoded)} texts in {max_epochs} epochs")


def test_greedy_matches_cover_the_answer_without_its_eos(tiny_lm):
    model, tok = tiny_lm
    lm = LM(model, tok, PromptFormat("plain"), max_length=64, batch_size=2)
    pairs = [QA("what is item 3?", "item 3 is a dog."), QA("what is item 1 of the list?", "a cat")]
    n_scored = [sum(t != IGNORE_INDEX for t in encode_example(qa, tok, lm.fmt, 64)[1]) for qa in pairs]
    raw_pair = QA("item 3 is", "a dog.")
    copier = dataclasses.replace(lm, model=memorised(model, [*(lm.encode(qa) for qa in pairs), lm._raw_completion(raw_pair)]))
    matches, raw = copier.greedy_matches(pairs), copier.greedy_matches([raw_pair], raw=True)
    assert [len(m) for m in matches] == [n - 1 for n in n_scored]  # EOS left out
    assert all(all(m) for m in matches) and all(raw[0]) and raw[0]
    assert [extraction_strength(m) for m in matches] == [1.0, 1.0]
    unforced = lm.greedy_matches(pairs)  # a random model reproduces (almost) nothing
    assert exact_memorization(unforced[0]) < 0.5
