"""The model interface every evaluator uses (lm-eval style: small and batched).

`answer_losses` scores (question, answer) pairs: per-token mean NLL of the answer tokens (EOS included, as
TOFU's `convert_raw_data_to_model_format` labels it). `completion_logprobs` and `next_token_choices` score raw
prompts the way open-instruct-style harnesses do (RWKU's utility files). `generate` is left-padded batched
greedy decoding with the KV cache. All sort by length so batches pad little, and hold one batch of logits at
a time.
An inference-time method's `wrapper` (evaluation/wrapper.py) rewrites every prompt and every logits tensor
here, so wrapped and fine-tuned models go through the same scoring code.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from unlearn_bench.data.collate import PromptFormat, encode_example, pad_batch, pad_token_id
from unlearn_bench.data.records import QA
from unlearn_bench.runtime.device import eval_device
from unlearn_bench.evaluation.wrapper import InferenceWrapper, model_call
from unlearn_bench.methods.base import IGNORE_INDEX, Batch, shifted_token_nll

log = logging.getLogger(__name__)


@dataclass
class LM:
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    fmt: PromptFormat
    max_length: int = 512
    batch_size: int = 32
    wrapper: InferenceWrapper | None = None  # an inference-time method's prompt / logits rewriting

    def rewrite(self, text: str) -> str:
        return self.wrapper.rewrite(text) if self.wrapper is not None else text

    def encode(self, qa: QA, add_eos: bool = True, truncate: bool = True) -> tuple[list[int], list[int]]:
        """input_ids and labels of a (question, answer) pair, the question rewritten by the wrapper; cut to
        `max_length` tokens unless `truncate=False`."""
        if qa.question is not None and self.wrapper is not None:
            qa = dataclasses.replace(qa, question=self.rewrite(qa.question))
        return encode_example(qa, self.tokenizer, self.fmt, self.max_length if truncate else None, add_eos=add_eos)

    @property
    def pad_id(self) -> int:
        return pad_token_id(self.tokenizer)

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
            prompt = self.rewrite(prompt)
            joined = prompt if prompt[-1:] in ("\n", " ") else prompt + " "
            ids = self.tokenizer(joined + completion)["input_ids"]
            n_prompt = len(self.tokenizer(prompt)["input_ids"])
            labels = [IGNORE_INDEX] * n_prompt + ids[n_prompt:]
            encoded.append((ids[-self.max_length:], labels[-self.max_length:]))
        return [-float(x) for x in self._label_stats(encoded, reduce="sum")]

    @torch.inference_mode()
    def next_token_choices(self, prompts: Sequence[str], candidate_ids: Sequence[int]) -> list[int]:
        """Index into `candidate_ids` of the most likely next token after each raw prompt (open-instruct's
        `get_next_word_predictions` with candidates, as RWKU's MMLU scores letters). Only the last position's
        logits are computed (`logits_to_keep=1` on left-padded batches): few-shot prompts are long and a
        vocabulary of 128k makes full logits large. Over-long prompts keep their last `max_length` tokens."""
        encoded = [self.tokenizer(self.rewrite(prompt))["input_ids"][-self.max_length:] for prompt in prompts]
        candidates = torch.tensor(list(candidate_ids))
        out = [0] * len(encoded)
        for idx, input_ids, mask in self._left_padded(encoded):
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            last = model_call(self.model, self.wrapper, input_ids=input_ids, attention_mask=mask, position_ids=positions,
                              logits_to_keep=1)[:, -1]
            choice = last[:, candidates.to(last.device)].argmax(-1).tolist()
            for row, i in enumerate(idx):
                out[i] = choice[row]
        return out

    def _left_padded(self, encoded: Sequence[list[int]]) -> Iterator[tuple[list[int], torch.Tensor, torch.Tensor]]:
        """(indices, input ids, attention mask) in length-sorted, left-padded batches on the model's device:
        left padding keeps every prompt's last token in the last column."""
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        device = eval_device(self.model)
        self.model.eval()
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            width = max(len(encoded[i]) for i in idx)
            input_ids = torch.full((len(idx), width), self.pad_id, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for row, i in enumerate(idx):
                input_ids[row, width - len(encoded[i]) :] = torch.tensor(encoded[i])
                mask[row, width - len(encoded[i]) :] = 1
            yield idx, input_ids.to(device), mask.to(device)

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
            yield idx, batch, model_call(self.model, self.wrapper, input_ids=batch.input_ids, attention_mask=batch.attention_mask)

    def _token_stats(self, pairs: Sequence[QA], reduce: str) -> list:
        return self._label_stats([self.encode(qa) for qa in pairs], reduce)

    @torch.inference_mode()
    def greedy_matches(self, pairs: Sequence[QA], raw: bool = False) -> list[list[bool]]:
        """Per pair: whether the argmax next-token prediction equals each answer token, teacher-forced, the last
        labelled token left out as open-unlearning's `tokenwise_vocab_logprobs` does (for QA pairs it is the EOS).
        `raw=True` reads question + " " + answer as plain text without EOS, as open-unlearning's
        `preprocess_pretraining_instance` (insert_space=True) encodes MUSE's verbmem prompt and continuation."""
        encoded = [self._raw_completion(qa) if raw else self.encode(qa) for qa in pairs]
        out: list[list[bool]] = [[] for _ in pairs]
        for idx, batch, logits in self.forward_batches(encoded):
            predicted, targets = logits[:, :-1].argmax(-1), batch.labels[:, 1:]
            del logits
            for row, i in enumerate(idx):
                scored = targets[row] != IGNORE_INDEX
                out[i] = (predicted[row][scored] == targets[row][scored]).tolist()[:-1]
        return out

    def _raw_completion(self, qa: QA) -> tuple[list[int], list[int]]:
        prompt = self.rewrite(qa.question)  # as generate(raw=True) rewrites the same prompt
        ids = self.tokenizer(f"{prompt} {qa.answer}")["input_ids"][: self.max_length]
        n_prompt = max(1, len(self.tokenizer(prompt)["input_ids"]))
        return ids, ([IGNORE_INDEX] * n_prompt + ids[n_prompt:])[: len(ids)]  # a prompt past the cut scores nothing

    def truncated(self, pairs: Sequence[QA]) -> int:
        """How many of `pairs` are longer than `max_length` tokens, and so are scored on their first `max_length`
        tokens only (losing the answer's end and EOS)."""
        return sum(len(self.encode(qa, truncate=False)[0]) > self.max_length for qa in pairs)

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

    @property
    def stop_ids(self) -> list[int]:
        """EOS of the tokenizer, of the chat template's end of turn and of the model's generation config: chat models
        end a turn with their own token (Llama-3's <|eot_id|>, which RWKU adds to its terminators) that older
        tokenizer configs do not call EOS."""
        ids = [self.tokenizer.eos_token_id, *self.fmt.stop_ids(self.tokenizer)]
        configured = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        ids += configured if isinstance(configured, list) else [configured]
        return list(dict.fromkeys(i for i in ids if i is not None))

    @torch.inference_mode()
    def generate(self, questions: Sequence[str], max_new_tokens: int = 200, raw: bool = False,
                 sample: bool = False, top_p: float = 1.0, top_k: int = 0, cut_prompts: bool = True) -> list[str]:
        """Greedy continuation of each prompt (only the new text), stopping at `stop_ids`; `sample=True` draws
        at temperature 1 instead, from the full distribution or its `top_k` / `top_p` truncation (0 / 1.0: off;
        seed torch first). `cut_prompts` keeps only a prompt's last (context - max_new_tokens) tokens, so that
        prompt and generation fit the model's context; off, the whole prompt is used, as open-unlearning's
        `eval_text_similarity` (src/evals/metrics/utils.py) does. Either way one line says how many prompts
        were cut or may run past the context."""
        questions = [self.rewrite(q) for q in questions]
        prompts = [
            self.tokenizer(q)["input_ids"] if raw else self.fmt.prompt_ids(q, self.tokenizer) for q in questions
        ]
        prompts = self._fit_prompts(prompts, max_new_tokens, cut_prompts)
        out: list[str] = [""] * len(prompts)
        for idx, input_ids, mask in self._left_padded(prompts):
            generated = self.model.generate(
                input_ids=input_ids,
                attention_mask=mask,
                max_new_tokens=max_new_tokens,
                do_sample=sample,
                **({"temperature": 1.0, "top_k": top_k, "top_p": top_p} if sample else {}),
                num_beams=1,
                pad_token_id=self.pad_id,
                eos_token_id=self.stop_ids,
                use_cache=True,
                logits_processor=self.wrapper.processors(mask) if self.wrapper is not None else None,
            )
            width = input_ids.shape[1]
            for row, i in enumerate(idx):
                out[i] = self.tokenizer.decode(generated[row, width:], skip_special_tokens=True).strip()
        return out


    def _fit_prompts(self, prompts: list[list[int]], max_new_tokens: int, cut: bool) -> list[list[int]]:
        """`prompts`, cut to their last (context - max_new_tokens) tokens when `cut` is on (and the context
        exceeds max_new_tokens); one log line counts the prompts it cut, or, off, those that may run past the
        context (RoPE models run on with positions they never trained at; learned absolute positions fail)."""
        keep = self.max_length - max_new_tokens
        long = sum(len(p) > keep for p in prompts)
        if keep <= 0 or not long:
            return prompts
        if cut:
            log.info("generation: cut %d of %d prompts to their last %d tokens, so that they and max_new_tokens=%d "
                     "fit the model's context (%d tokens)", long, len(prompts), keep, max_new_tokens, self.max_length)
            return [p[-keep:] for p in prompts]
        log.info("generation: %d of %d prompts are longer than %d tokens, so they and max_new_tokens=%d may run past "
                 "the model's context (%d tokens); each is generated from the whole prompt", long, len(prompts), keep,
                 max_new_tokens, self.max_length)
        return prompts


def context_length(model: PreTrainedModel) -> int | None:
    """The model's context window (its text config's max_position_embeddings); None where the config has none."""
    return getattr(model.config.get_text_config(), "max_position_embeddings", None)


def eval_lm(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, fmt: PromptFormat, max_length: int,
            batch_size: int, wrapper: InferenceWrapper | None = None) -> LM:
    """The LM evaluations use. Prompts may fill the model's whole context, as the benchmarks' own harnesses and
    lm-eval let them (RWKU's 5-shot MMLU and 3-shot BBH prompts run to thousands of tokens); `model.max_length`
    cuts training examples only, and is the fallback for a config without a context size."""
    return LM(model, tokenizer, fmt, context_length(model) or max_length, batch_size, wrapper)
