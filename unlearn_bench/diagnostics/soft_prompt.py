"""Soft-prompt attack: a few trainable input embeddings, prepended to every prompt, optimised on the forget
groups of the relearning half (the model's weights frozen), scored on the held-out groups.

Score: the answer's probability exp(-mean token NLL) given the soft prompt and the question. Soft prompts can
reveal knowledge a model keeps (Schwinn et al. 2024, "Soft prompt threats: attacking safety alignment and
unlearning in open-source LLMs through the embedding space", arXiv:2402.09063), but an optimised input can
also make a model say things it never knew: the retain model gets the same optimisation, so its score is what
the attack injects, and the knowledge share shows which of the two the attack did.
"""
from __future__ import annotations

import dataclasses
from contextlib import contextmanager
from typing import Iterator

import numpy as np
import torch
from transformers import PreTrainedModel
from transformers.modeling_outputs import CausalLMOutput

from unlearn_bench.diagnostics.settings import SoftPromptConfig
from unlearn_bench.training import recipes
from unlearn_bench.data.records import QA
from unlearn_bench.diagnostics.common import Attack, DiagInputs
from unlearn_bench.evaluation.lm import LM


def check(cfg: SoftPromptConfig) -> None:
    if cfg.n_tokens < 1 or cfg.max_steps < 1:
        raise ValueError(f"eval.diag.soft_prompt: n_tokens={cfg.n_tokens} and max_steps={cfg.max_steps} must be >= 1")


class SoftPrompted(torch.nn.Module):
    """`model` behind `n_tokens` trainable input embeddings (initialised from random vocabulary embeddings,
    seeded); logits are returned for the real tokens only, so scoring code sees the usual shapes."""

    def __init__(self, model: PreTrainedModel, n_tokens: int, seed: int) -> None:
        super().__init__()
        self.model = model
        table = model.get_input_embeddings().weight
        rows = torch.randint(table.shape[0], (n_tokens,), generator=torch.Generator().manual_seed(seed))
        self.prompt = torch.nn.Parameter(table.detach()[rows.to(table.device)].float().clone())

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                logits_to_keep: torch.Tensor | None = None) -> CausalLMOutput:
        embeds = self.model.get_input_embeddings()(input_ids)
        n, batch = self.prompt.shape[0], input_ids.shape[0]
        prefix = self.prompt.to(embeds.dtype).unsqueeze(0).expand(batch, -1, -1)
        mask = torch.cat([attention_mask.new_ones(batch, n), attention_mask], dim=1)
        inputs = {"inputs_embeds": torch.cat([prefix, embeds], dim=1), "attention_mask": mask}
        if logits_to_keep is not None:  # positions of the real tokens, shifted past the prompt
            return CausalLMOutput(logits=self.model(**inputs, logits_to_keep=logits_to_keep + n).logits)
        return CausalLMOutput(logits=self.model(**inputs).logits[:, n:])


@contextmanager
def frozen(model: torch.nn.Module) -> Iterator[None]:
    """The model's parameters out of the graph for a while (the soft prompt trains alone), then as they were."""
    flags = [p.requires_grad for p in model.parameters()]
    model.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(model.parameters(), flags):
            p.requires_grad_(flag)


def attacks(inputs: DiagInputs, cfg: SoftPromptConfig) -> list[Attack]:
    examples = inputs.forget_examples
    train_idx, held_out = inputs.split
    finetune = inputs.cfg.model.finetune
    settings = dataclasses.replace(cfg, batch_size=cfg.batch_size if cfg.batch_size is not None else finetune.batch_size)

    def score(model: PreTrainedModel, _: object) -> np.ndarray:  # white-box: the embeddings of the bare weights
        attacked = SoftPrompted(model, cfg.n_tokens, inputs.seed)
        with frozen(model):
            result = recipes.finetune(attacked, inputs.tokenizer, [examples[i].as_qa() for i in train_idx], inputs.fmt,
                                     settings, inputs.cfg.model.max_length, inputs.seed, inputs.accelerator,
                                     desc="diag:soft_prompt", parameters=[attacked.prompt])
        if result.status != "ok":
            return np.full(len(held_out), np.nan)
        lm = LM(inputs.accelerator.unwrap_model(attacked), inputs.tokenizer, inputs.fmt, inputs.lm(model).max_length,
                inputs.cfg.eval.batch_size)
        losses = lm.answer_losses([QA(examples[i].question, examples[i].answer) for i in held_out])
        return np.exp(-np.asarray(losses, dtype=float))

    return [Attack("soft_prompt", "answer_prob", held_out, score, dataclasses.asdict(settings), white_box=True,
                   weight_access=True)]
