"""Prompt templates and tokenisation: loss only on answer tokens, EOS appended, padding per batch."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from transformers import PreTrainedTokenizerBase

from unlearn_bench.data.records import QA
from unlearn_bench.methods.base import IGNORE_INDEX, Batch

# Question formats of the models TOFU and open-unlearning fine-tune (TOFU config/model_config.yaml).
TEMPLATES = {
    "plain": ("Question: {q}\nAnswer:", " "),
    "phi": ("Question: {q}\nAnswer:", " "),
    # No space before the answer: TOFU's answer_tag is "", and open-unlearning's Llama-2 template notes " " tokenizes badly.
    "llama2": ("[INST] {q} [/INST]", ""),
}


@dataclass(frozen=True)
class PromptFormat:
    """How a model sees a question: one of TEMPLATES, or 'chat' for the tokenizer's own chat template."""

    name: str = "plain"

    def prompt(self, question: str, tokenizer: PreTrainedTokenizerBase) -> str:
        if self.name == "chat":
            return tokenizer.apply_chat_template(
                [{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True
            )
        if self.name not in TEMPLATES:
            raise ValueError(f"unknown prompt format '{self.name}'; choose from: chat, {', '.join(TEMPLATES)}")
        return TEMPLATES[self.name][0].format(q=question)

    def answer_prefix(self) -> str:
        return "" if self.name == "chat" else TEMPLATES[self.name][1]

    def prompt_ids(self, question: str, tokenizer: PreTrainedTokenizerBase) -> list[int]:
        # Chat templates already contain BOS; plain templates get it from the tokenizer.
        return tokenizer(self.prompt(question, tokenizer), add_special_tokens=self.name != "chat")["input_ids"]


def encode_example(qa: QA, tokenizer: PreTrainedTokenizerBase, fmt: PromptFormat, max_length: int, add_eos: bool = True) -> tuple[list[int], list[int]]:
    """input_ids and labels; labels are IGNORE_INDEX on prompt tokens (and BOS of raw text)."""
    eos = [tokenizer.eos_token_id] if add_eos else []
    if qa.question is None:  # raw text: every token after BOS is a target
        ids = tokenizer(qa.answer)["input_ids"][: max_length - len(eos)] + eos
        labels = list(ids)
        if ids and ids[0] == tokenizer.bos_token_id:
            labels[0] = IGNORE_INDEX
        return ids, labels
    # As TOFU's `convert_raw_data_to_model_format`: tokenize prompt and answer as one text and mask as many
    # leading tokens as the prompt alone has. Tokenizing the answer on its own would change its first token
    # for SentencePiece models (Llama-2: "▁The" instead of TOFU's "The") and so every answer loss.
    n_prompt = len(fmt.prompt_ids(qa.question, tokenizer))
    full = fmt.prompt(qa.question, tokenizer) + fmt.answer_prefix() + qa.answer
    ids = tokenizer(full, add_special_tokens=fmt.name != "chat")["input_ids"] + eos
    labels = [IGNORE_INDEX] * n_prompt + ids[n_prompt:]
    return ids[:max_length], labels[:max_length]


def pad_batch(encoded: Sequence[tuple[list[int], list[int]]], pad_id: int) -> Batch:
    """Right-padded batch (training and scoring; causal attention makes right padding exact)."""
    width = max(len(ids) for ids, _ in encoded)
    input_ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)
    labels = torch.full((len(encoded), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(encoded), width), dtype=torch.long)
    for row, (ids, lab) in enumerate(encoded):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        labels[row, : len(lab)] = torch.tensor(lab)
        mask[row, : len(ids)] = 1
    return Batch(input_ids, mask, labels)


def collate(examples: Sequence[QA], tokenizer: PreTrainedTokenizerBase, fmt: PromptFormat, max_length: int) -> Batch:
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return pad_batch([encode_example(qa, tokenizer, fmt, max_length) for qa in examples], pad_id)
