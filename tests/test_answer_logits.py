"""Training losses project only the positions that predict answer tokens (`logits_to_keep`): the same losses as
scoring every position, for HF models, wrappers that return every position, models without the argument, and the
soft-prompt attack's wrapper (which shifts the kept positions past its prompt)."""
from __future__ import annotations

import pytest
import torch
from transformers.modeling_outputs import CausalLMOutput

from unlearn_bench.data.batching import finetune_epochs
from unlearn_bench.data.collate import PromptFormat, collate
from unlearn_bench.data.records import QA
from unlearn_bench.diagnostics.soft_prompt import SoftPrompted
from unlearn_bench.methods.base import answer_token_nll, forward_logits, sequence_nll, shifted_token_nll


class EveryPosition(torch.nn.Module):
    """Takes logits_to_keep and ignores it (as a prompt-prepending wrapper may)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, **_):
        return CausalLMOutput(logits=self.model(input_ids=input_ids, attention_mask=attention_mask).logits)


class NoKeepArgument(EveryPosition):
    def forward(self, input_ids, attention_mask):
        return super().forward(input_ids, attention_mask)


@pytest.fixture
def batch(tiny_lm):
    _, tokenizer = tiny_lm
    # answers of different lengths after prompts of different lengths: the kept columns differ per row
    pairs = [QA("what is item 3?", "item 3 is a tree."), QA("what is item 12 of the list?", "a cat."),
             QA("item?", "item 7 is a river, not a dog.")]
    return collate(pairs, tokenizer, PromptFormat("plain"), 64)


def soft_prompted(model):
    return SoftPrompted(model, n_tokens=3, seed=0)


@pytest.mark.parametrize("wrap", [lambda m: m, EveryPosition, NoKeepArgument, soft_prompted])
def test_answer_positions_only_give_every_positions_losses(tiny_lm, batch, wrap):
    model = wrap(tiny_lm[0])
    full, full_mask = shifted_token_nll(forward_logits(model, batch), batch.labels)
    kept, kept_mask = answer_token_nll(model, batch)
    assert kept_mask.sum() == full_mask.sum() > 0
    assert kept.shape[1] < full.shape[1] or wrap is NoKeepArgument  # fewer positions projected
    torch.testing.assert_close(kept.sum(dim=1), full.sum(dim=1), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(sequence_nll(model, batch, mean=True),
                               full.sum(dim=1) / full_mask.sum(dim=1), rtol=1e-5, atol=1e-5)


def test_grouped_batches_of_nothing_are_no_batches(tiny_lm):
    assert list(finetune_epochs([], tiny_lm[1], PromptFormat("plain"), 64, 4, seed=0, group_by_length=True)(0)) == []


def test_answer_positions_carry_the_gradient(tiny_lm, batch):
    model = tiny_lm[0]
    grads = []
    for loss_of in (lambda: answer_token_nll(model, batch)[0].sum(),
                    lambda: shifted_token_nll(forward_logits(model, batch), batch.labels)[0].sum()):
        model.zero_grad()
        loss_of().backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    model.zero_grad()
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-6)
