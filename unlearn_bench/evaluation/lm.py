"""The model interface every evaluator uses (lm-eval style: small and batched).

`answer_losses` scores (question, answer) pairs: per-token mean NLL of the answer tokens (EOS included, as
TOFU's `convert_raw_data_to_model_format` labels it). `completion_logprobs` and `next_token_choices` score raw
prompts the way open-instruct-style harnesses do (RWKU's utility files). `generate` is left-padded batched
greedy decoding with the KV cache. All sort by length so batches pad little, and hold one batch of logits at
a time.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from unlearn_bench.data.collate import PromptFormat, encode_example, pad_batch
from unlearn_bench.data.records import QA
from unlearn_bench.device import eval_device
from unlearn_bench.methods.base import IGNORE_INDEX, Batch, shifted_token_nll


@dataclass
class LM:
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    fmt: PromptFormat
    max_length: int = 512
    batch_size: int = 32

    @property
    def pad_id(self) -> int:
        tok = self.tokenizer
        return tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id

    @torch.inference_mode()
    def answer_losses(self, pairs: Sequence[QA]) -> list[float]:
        """Per-token mean NLL of each answer given its question (raw text when question is None)."""
        return [float(x) for x in self._token_stats(pairs, reduce="mean")]

    @torch.inference_mode()
    def token_logprobs(self, pairs: Sequence[QA]) -> list[torch.Tensor]:
        """Log-probability of every answer token, one 1-D tensor per pair (for MIA scores)."""
        return self._token_stats(pairs, reduce="none")

    @torch.inference_mode()
    def completion_logprobs(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """Summed log-probability of each completion after its raw prompt, as open-instruct's `score_completions`
        (which RWKU's TruthfulQA uses) computes it: a space joins them unless the prompt ends in a space or
        newline, the joined text is tokenized once, and the completion is every token past the prompt's own
        token count. Over-long texts lose their oldest prompt tokens."""
        encoded = []
        for prompt, completion in pairs:
            joined = prompt if prompt[-1:] in ("\n", " ") else prompt + " "
            ids = self.tokenizer(joined + completion)["input_ids"]
            n_prompt = len(self.tokenizer(prompt)["input_ids"])
            labels = [IGNORE_INDEX] * n_prompt + ids[n_prompt:]
            encoded.append((ids[-self.max_length:], labels[-self.max_length:]))
        return [-float(x) for x in self._label_stats(encoded, reduce="sum")]

    @torch.inference_mode()
    def next_token_choices(self, prompts: Sequence[str], candidate_ids: Sequence[int]) -> list[int]:
        """Index into `candidate_ids` of the most likely next token after each raw prompt (open-instruct's
        `get_next_word_predictions` with candidates, as RWKU's MMLU scores letters). Over-long prompts keep
        their last `max_length` tokens."""
        encoded = []
        for prompt in prompts:
            ids = self.tokenizer(prompt)["input_ids"][-self.max_length:]
            encoded.append((ids, ids))
        candidates = torch.tensor(list(candidate_ids))
        out = [0] * len(encoded)
        for idx, batch, logits in self.forward_batches(encoded):
            for row, i in enumerate(idx):
                last = logits[row, len(encoded[i][0]) - 1]
                out[i] = int(last[candidates.to(last.device)].argmax())
        return out

    def forward_batches(
        self, encoded: Sequence[tuple[list[int], list[int]]]
    ) -> Iterator[tuple[list[int], Batch, torch.Tensor]]:
        """(indices, padded batch, logits) over `encoded` (input ids, labels) in length-sorted batches, so that
        batches pad little; row r of a batch is encoded[indices[r]]. Call it under torch.inference_mode and drop
        each batch's logits before the next, so that one batch of logits is held at a time."""
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][0]))
        device = eval_device(self.model)
        self.model.eval()
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            batch = pad_batch([encoded[i] for i in idx], self.pad_id).to(device)
            yield idx, batch, self.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits

    def _token_stats(self, pairs: Sequence[QA], reduce: str) -> list:
        return self._label_stats([encode_example(qa, self.tokenizer, self.fmt, self.max_length) for qa in pairs], reduce)

    def _label_stats(self, encoded: Sequence[tuple[list[int], list[int]]], reduce: str) -> list:
        """Per example: mean or summed NLL of the labelled tokens, or (reduce='none') their log-probabilities."""
        out: list = [None] * len(encoded)
        for idx, batch, logits in self.forward_batches(encoded):
            nll, mask = shifted_token_nll(logits, batch.labels)
            del logits
            for row, i in enumerate(idx):
                if reduce == "mean":
                    out[i] = (nll[row].sum() / mask[row].sum().clamp(min=1)).item()
                elif reduce == "sum":
                    out[i] = nll[row].sum().item()
                else:
                    out[i] = (-nll[row][mask[row]]).float().cpu()
        return out

    @torch.inference_mode()
    def generate(self, questions: Sequence[str], max_new_tokens: int = 200, raw: bool = False,
                 sample: bool = False, top_p: float = 1.0) -> list[str]:
        """Greedy continuation of each prompt (only the new text), stopping at EOS; `sample=True` draws at
        temperature 1 instead, from the full distribution or its `top_p` nucleus (seed torch first)."""
        prompts = [
            self.tokenizer(q)["input_ids"] if raw else self.fmt.prompt_ids(q, self.tokenizer) for q in questions
        ]
        prompts = [p[-(self.max_length - max_new_tokens) :] if self.max_length > max_new_tokens else p for p in prompts]
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        out: list[str] = [""] * len(prompts)
        device = eval_device(self.model)
        self.model.eval()
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            width = max(len(prompts[i]) for i in idx)
            input_ids = torch.full((len(idx), width), self.pad_id, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for row, i in enumerate(idx):  # left padding keeps every prompt's last token at the same column
                input_ids[row, width - len(prompts[i]) :] = torch.tensor(prompts[i])
                mask[row, width - len(prompts[i]) :] = 1
            generated = self.model.generate(
                input_ids=input_ids.to(device),
                attention_mask=mask.to(device),
                max_new_tokens=max_new_tokens,
                do_sample=sample,
                **({"temperature": 1.0, "top_k": 0, "top_p": top_p} if sample else {}),
                num_beams=1,
                pad_token_id=self.pad_id,
                eos_token_id=self.tokenizer.eos_token_id,
                use_cache=True,
            )
            for row, i in enumerate(idx):
                out[i] = self.tokenizer.decode(generated[row, width:], skip_special_tokens=True).strip()
        return out
