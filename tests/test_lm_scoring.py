"""LM's raw-prompt scorers (completion log-probabilities, next-token choices) against a manual forward pass."""
from __future__ import annotations

import pytest
import torch

from unlearn_bench.data.collate import PromptFormat
from unlearn_bench.evaluation.lm import LM


def manual_logprobs(model, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0]
    return torch.log_softmax(logits.float(), dim=-1)


def test_completion_logprobs_match_a_manual_sum(tiny_lm) -> None:
    model, tok = tiny_lm
    lm = LM(model, tok, PromptFormat(), max_length=64, batch_size=2)
    pairs = [("Question: what is item 3?", "item 3 is a cat."), ("Answer:\n", "dog"), ("item", "7 is a tree.")]
    got = lm.completion_logprobs(pairs)
    for (prompt, completion), value in zip(pairs, got):
        # a space joins prompt and completion unless the prompt ends in whitespace (open-instruct's rule)
        text = (prompt if prompt[-1] in "\n " else prompt + " ") + completion
        ids = tok(text)["input_ids"]
        n_prompt = len(tok(prompt)["input_ids"])
        lp = manual_logprobs(model, ids)
        expected = sum(lp[t - 1, ids[t]].item() for t in range(n_prompt, len(ids)))
        assert abs(value - expected) < 1e-4
    # batching and order do not change the scores
    assert lm.completion_logprobs(pairs[::-1]) == pytest.approx(got[::-1], abs=1e-5)


def test_next_token_choices_are_the_argmax_over_candidates(tiny_lm) -> None:
    model, tok = tiny_lm
    lm = LM(model, tok, PromptFormat(), max_length=64, batch_size=2)
    prompts = ["Question: what is item 1? Answer:", "item 2 is a", "Question:"]
    candidates = [tok.encode(" " + w, add_special_tokens=False)[-1] for w in ("cat", "dog", "tree", "river")]
    got = lm.next_token_choices(prompts, candidates)
    for prompt, choice in zip(prompts, got):
        lp = manual_logprobs(model, tok(prompt)["input_ids"])[-1]
        assert choice == int(lp[candidates].argmax())
    # the answer is an index into the candidates: reversing them mirrors it
    assert lm.next_token_choices(prompts, candidates[::-1]) == [len(candidates) - 1 - c for c in got]
