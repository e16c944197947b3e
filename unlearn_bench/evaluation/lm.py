"""The model interface every evaluator uses (lm-eval style: small and batched).

`answer_losses` scores (question, answer) pairs: per-token mean NLL of the answer tokens (EOS included, as
TOFU's `convert_raw_data_to_model_format` labels it). `completion_logprobs` and `next_token_choices` score raw
prompts the way open-instruct-style harnesses do (RWKU's utility files). `generate` is left-padded batched
greedy decoding with the KV cache. All sort by length so batches pad little, and hold one batch of logits at
a time.
Speed (scripts/bench_eval_vs_ou.py measures it against open-unlearning): answers that share a prompt (TOFU's
true, paraphrased and five perturbed answers of one question) run the prompt through the model once, its KV
cache reused for each (`scored_batches`); one pass yields every per-token statistic a metric needs
(`token_stats`: loss, probability, greedy match, Min-K%++'s moments), so a set scored for several metrics is
scored once, and only scored positions reach the output layer, a block at a time (HEAD_ROWS); greedy decoding
runs `generation_batch_size` rows at once, writes into a KV cache allocated once per batch
(evaluation/kv_cache.py) and drops finished rows from the batch (`_greedy`). An inference-time wrapper sees
whole sequences as before (`forward_batches`, transformers' `generate`).
An inference-time method's `wrapper` (evaluation/wrapper.py) rewrites every prompt and every logits tensor
here, so wrapped and fine-tuned models go through the same scoring code.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from unlearn_bench.data.collate import PromptFormat, encode_examples, pad_batch, pad_token_id, token_ids
from unlearn_bench.data.records import QA
from unlearn_bench.runtime.device import eval_device
from unlearn_bench.evaluation.kv_cache import cache_argument, preallocated, returned_cache, rows_of
from unlearn_bench.evaluation.wrapper import InferenceWrapper, model_call
from unlearn_bench.methods.base import IGNORE_INDEX, Batch
from unlearn_bench.metrics.mia import min_k_plus_plus_stats

log = logging.getLogger(__name__)
# Greedy decoding compacts its batch (drops the rows that have stopped) once this share of them has stopped: each
# compaction copies the KV cache, each step without it computes the stopped rows for nothing.
COMPACT_SHARE = 0.25
# Prefixes run this many batches at once, so that the suffixes sharing their cache sort by length over that many
# more rows: on TOFU, suffix padding falls from 16% to 5% of the tokens scored (scripts/bench_eval_vs_ou.py).
PREFIX_BATCHES = 4
# Scored positions (padding never) reach the output layer this many at a time, so one [HEAD_ROWS, V] block of
# logits is held, not [B, L, V]: on one CPU thread a 32k-vocabulary head and its logsumexp also run 1.4x and 2x
# faster on 256 rows than on 1,024 (whose logits leave the cache). TOFU forget10's 2,800 answers on a tiny
# Llama with Llama-2's vocabulary: 32 s instead of 56 s, peak memory 0.87 GB instead of 1.85 GB.
HEAD_ROWS = 256
# Families whose causal-LM logits are the output layer's of the base model's final hidden state, nothing after
# (transformers' modeling_<type>.py; gemma2/3's soft-capping, cohere's and granite's scaling are not).
HEAD_ONLY_MODEL_TYPES = frozenset({"llama", "mistral", "qwen2", "qwen3", "gemma", "phi", "phi3"})


@dataclass
class TokenStats:
    """One example's scored (labelled) tokens: their ids, log-probabilities and whether the argmax prediction
    equals each, and, where asked (`LM.token_stats(vocab_stats=...)`), Min-K%++'s mean and standard deviation of
    log p under each position's next-token distribution (metrics/mia.py `min_k_plus_plus_stats`)."""

    targets: torch.Tensor
    logprobs: torch.Tensor
    greedy: torch.Tensor
    mu: torch.Tensor | None = None
    sigma: torch.Tensor | None = None

    @property
    def mean_nll(self) -> float:
        """Per-token mean NLL (TOFU's avg_gt_loss); 0 where nothing is scored, as a masked mean with clamp(1)."""
        return -float(self.logprobs.sum()) / max(1, self.logprobs.numel())


@dataclass
class LM:
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    fmt: PromptFormat
    max_length: int = 512
    batch_size: int = 32
    wrapper: InferenceWrapper | None = None  # an inference-time method's prompt / logits rewriting
    generation_batch_size: int | None = None  # rows greedy decoding runs at once (`_greedy`); None: batch_size

    def rewrite(self, text: str) -> str:
        return self.wrapper.rewrite(text) if self.wrapper is not None else text

    def encode(self, qa: QA, add_eos: bool = True, truncate: bool = True) -> tuple[list[int], list[int]]:
        """input_ids and labels of a (question, answer) pair, the question rewritten by the wrapper; cut to
        `max_length` tokens unless `truncate=False`."""
        return self.encode_all([qa], add_eos, truncate)[0]

    def encode_all(self, pairs: Sequence[QA], add_eos: bool = True, truncate: bool = True
                   ) -> list[tuple[list[int], list[int]]]:
        """`encode` of each pair, each distinct question rewritten and its prompt tokenized once (`encode_examples`)."""
        if self.wrapper is not None:
            rewritten = {q: self.rewrite(q) for q in dict.fromkeys(qa.question for qa in pairs) if q is not None}
            pairs = [qa if qa.question is None else dataclasses.replace(qa, question=rewritten[qa.question]) for qa in pairs]
        return encode_examples(pairs, self.tokenizer, self.fmt, self.max_length if truncate else None, add_eos=add_eos)

    @property
    def pad_id(self) -> int:
        return pad_token_id(self.tokenizer)

    def answer_losses(self, pairs: Sequence[QA]) -> list[float]:
        """Per-token mean NLL of each answer given its question (raw text when question is None)."""
        return [s.mean_nll for s in self.token_stats(self.encode_all(pairs))]

    def token_logprobs(self, pairs: Sequence[QA]) -> list[torch.Tensor]:
        """Log-probability of every answer token, one 1-D tensor per pair (for MIA scores)."""
        return [s.logprobs for s in self.token_stats(self.encode_all(pairs))]

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
        return [float(s.logprobs.sum()) for s in self.token_stats(encoded)]

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

    def _left_padded(self, encoded: Sequence[list[int]], batch_size: int | None = None
                     ) -> Iterator[tuple[list[int], torch.Tensor, torch.Tensor]]:
        """(indices, input ids, attention mask) in length-sorted, left-padded batches (of `batch_size`, default the
        LM's) on the model's device: left padding keeps every prompt's last token in the last column."""
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        device = eval_device(self.model)
        self.model.eval()
        size = batch_size or self.batch_size
        for start in range(0, len(order), size):
            idx = order[start : start + size]
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

    @torch.inference_mode()
    def token_stats(self, encoded: Sequence[tuple[list[int], list[int]]],
                    vocab_stats: bool | Sequence[bool] = False) -> list[TokenStats]:
        """`TokenStats` of each (input ids, labels) example from one pass over them; `vocab_stats` (all, or per
        example) adds Min-K%++'s moments, which cost a full log-softmax. Only scored positions reach the output
        layer, HEAD_ROWS at a time."""
        wanted = [vocab_stats] * len(encoded) if isinstance(vocab_stats, bool) else list(vocab_stats)
        out: list[TokenStats | None] = [None] * len(encoded)
        for idx, features, targets, head in self.scored_batches(encoded):
            scored = targets != IGNORE_INDEX
            rows, cols = scored.nonzero(as_tuple=True)  # row-major: each example's positions in order
            flat, flat_targets = features[rows, cols], targets[rows, cols]
            vocab = torch.tensor([wanted[i] for i in idx], dtype=torch.bool, device=rows.device)[rows]
            logprobs = torch.empty(len(flat))
            greedy = torch.empty(len(flat), dtype=torch.bool)
            mu, sigma = torch.full((len(flat),), float("nan")), torch.full((len(flat),), float("nan"))
            for at in range(0, len(flat), HEAD_ROWS):
                part = slice(at, at + HEAD_ROWS)
                logits, t = head(flat[part]).float(), flat_targets[part]
                target = logits.gather(-1, t[:, None]).squeeze(-1)
                # log p(target) = logit - logsumexp: no log-softmax buffer for the rows that need none
                logprobs[part] = (target - torch.logsumexp(logits, -1)).cpu()
                greedy[part] = argmax_hits(logits, t, target).cpu()
                need = vocab[part]
                if bool(need.any()):
                    m, s = min_k_plus_plus_stats(logits[need])
                    where = need.nonzero().squeeze(-1).cpu() + at
                    mu[where], sigma[where] = torch.from_numpy(m), torch.from_numpy(s)
            flat_targets, ends = flat_targets.cpu(), scored.sum(1).cumsum(0).tolist()
            for row, i in enumerate(idx):
                span = slice(ends[row - 1] if row else 0, ends[row])
                stats = TokenStats(flat_targets[span], logprobs[span], greedy[span])
                if wanted[i]:
                    stats.mu, stats.sigma = mu[span], sigma[span]
                out[i] = stats
            del features
        return out  # type: ignore[return-value]

    def scored_batches(self, encoded: Sequence[tuple[list[int], list[int]]]
                       ) -> Iterator[tuple[list[int], torch.Tensor, torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]]:
        """(indices, features [B, L, F], targets [B, L], head) in batches over `encoded`: head(features[r, j])
        are the logits that score targets[r, j] (IGNORE_INDEX: not scored). Features are the final hidden states
        where the model's logits are its output layer's of them (`_split_head`), else the logits themselves (head:
        identity). Without a wrapper, examples that share their unlabelled prefix (the prompt) run it once
        (`_prefix_shared`); a wrapper, or a model that takes no KV cache, sees whole sequences."""
        if not self._runs_own_cache():
            for idx, batch, logits in self.forward_batches(encoded):
                yield idx, logits[:, :-1], batch.labels[:, 1:], _identity
            return
        yield from self._prefix_shared(encoded)

    def _runs_own_cache(self) -> bool:
        """Whether scoring and greedy decoding may drive the KV cache themselves (`_prefix_shared`, `_greedy`):
        not through a wrapper, which sees whole sequences, nor for a module that takes no cache."""
        return self.wrapper is None and cache_argument(self.model) is not None

    def _split_head(self) -> tuple[torch.nn.Module, Callable[[Any], torch.Tensor], Callable[[torch.Tensor], torch.Tensor]]:
        """(module to call, its output's features, head): the base model, its last hidden state and the output
        layer for the families whose logits are that layer's of the final hidden state and nothing more
        (HEAD_ONLY_MODEL_TYPES), so that padding never reaches the output layer; else the model, its logits and
        the identity."""
        head = self.model.get_output_embeddings() if isinstance(self.model, PreTrainedModel) else None
        if head is not None and self.model.config.model_type in HEAD_ONLY_MODEL_TYPES:
            return self.model.base_model, lambda out: out.last_hidden_state, head
        return self.model, lambda out: out.logits, _identity

    def _prefix_shared(self, encoded: Sequence[tuple[list[int], list[int]]]
                       ) -> Iterator[tuple[list[int], torch.Tensor, torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]]:
        """`scored_batches` with each distinct prefix (the tokens before the first label; at least the first
        token, which nothing scores) run once: prefixes in length-sorted, left-padded batches, whose KV cache and
        last-position features then serve every suffix sharing them, in batches sorted by suffix length. The
        result equals one forward over the whole sequence up to float rounding (tests/test_lm_scoring.py)."""
        starts = [max(1, next((j for j, lab in enumerate(labels) if lab != IGNORE_INDEX), len(labels)))
                  for _, labels in encoded]
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, ((ids, _), start) in enumerate(zip(encoded, starts)):
            groups.setdefault(tuple(ids[:start]), []).append(i)
        prefixes = sorted(groups, key=len)
        device = eval_device(self.model)
        self.model.eval()
        module, features, head = self._split_head()
        chunk_size, cache_name = PREFIX_BATCHES * self.batch_size, cache_argument(module)
        for first in range(0, len(prefixes), chunk_size):
            chunk = prefixes[first : first + chunk_size]
            _, input_ids, mask = next(self._left_padded([list(p) for p in chunk], batch_size=len(chunk)))
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            keep = {"logits_to_keep": 1} if module is self.model else {}
            out = module(input_ids=input_ids, attention_mask=mask, position_ids=positions, use_cache=True, **keep)
            cache, last = returned_cache(out), features(out)[:, -1]
            rows = sorted(((r, i) for r, p in enumerate(chunk) for i in groups[p]),
                          key=lambda ri: len(encoded[ri[1]][0]) - starts[ri[1]])
            for at in range(0, len(rows), self.batch_size):
                part = rows[at : at + self.batch_size]
                which = torch.tensor([r for r, _ in part], device=device)
                width = max(len(encoded[i][0]) - starts[i] for _, i in part)
                targets = torch.full((len(part), max(width, 1)), IGNORE_INDEX, dtype=torch.long)
                suffix = torch.full((len(part), max(width, 1)), self.pad_id, dtype=torch.long)
                suffix_mask = torch.zeros((len(part), max(width, 1)), dtype=torch.long)
                for row, (_, i) in enumerate(part):
                    ids, labels = encoded[i]
                    n = len(ids) - starts[i]
                    suffix[row, :n], targets[row, :n] = torch.tensor(ids[starts[i]:]), torch.tensor(labels[starts[i]:])
                    suffix_mask[row, :n] = 1
                targets = targets.to(device)
                if width <= 1:  # the prefix's last position scores the only suffix token (or nothing)
                    yield [i for _, i in part], last[which, None], targets, head
                    continue
                past = rows_of(cache, which)
                rest = features(module(input_ids=suffix[:, :-1].to(device),
                                       attention_mask=torch.cat([mask[which], suffix_mask[:, :-1].to(device)], 1),
                                       position_ids=(positions[which, -1:] + 1 + torch.arange(width - 1, device=device)),
                                       **{cache_name: past}, use_cache=True))
                yield [i for _, i in part], torch.cat([last[which, None], rest], 1), targets, head
                del rest, past

    def greedy_matches(self, pairs: Sequence[QA], raw: bool = False) -> list[list[bool]]:
        """Per pair: whether the argmax next-token prediction equals each answer token, teacher-forced, the last
        labelled token left out as open-unlearning's `tokenwise_vocab_logprobs` does (for QA pairs it is the EOS).
        `raw=True` reads question + " " + answer as plain text without EOS, as open-unlearning's
        `preprocess_pretraining_instance` (insert_space=True) encodes MUSE's verbmem prompt and continuation."""
        encoded = [self._raw_completion(qa) for qa in pairs] if raw else self.encode_all(pairs)
        return [s.greedy.tolist()[:-1] for s in self.token_stats(encoded)]

    def _raw_completion(self, qa: QA) -> tuple[list[int], list[int]]:
        prompt = self.rewrite(qa.question)  # as generate(raw=True) rewrites the same prompt
        ids = self.tokenizer(f"{prompt} {qa.answer}")["input_ids"][: self.max_length]
        n_prompt = max(1, len(self.tokenizer(prompt)["input_ids"]))
        return ids, ([IGNORE_INDEX] * n_prompt + ids[n_prompt:])[: len(ids)]  # a prompt past the cut scores nothing

    def truncated(self, pairs: Sequence[QA]) -> int:
        """How many of `pairs` are longer than `max_length` tokens, and so are scored on their first `max_length`
        tokens only (losing the answer's end and EOS)."""
        return sum(len(ids) > self.max_length for ids, _ in self.encode_all(pairs, truncate=False))

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
        prompts = (token_ids(self.tokenizer, questions) if raw
                   else self.fmt.tokenize([self.fmt.prompt(q, self.tokenizer) for q in questions], self.tokenizer))
        prompts = self._fit_prompts(prompts, max_new_tokens, cut_prompts)
        out: list[str] = [""] * len(prompts)
        own = not sample and self._runs_own_cache()  # else transformers' sampling warpers; the wrapper's logits hook
        for idx, input_ids, mask in self._left_padded(prompts, self.generation_batch_size if own else None):
            if not own:
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
                )[:, input_ids.shape[1]:].tolist()
            else:
                generated = self._greedy(input_ids, mask, max_new_tokens)
            for row, i in enumerate(idx):
                out[i] = self.tokenizer.decode(generated[row], skip_special_tokens=True).strip()
        return out

    def _greedy(self, input_ids: torch.Tensor, mask: torch.Tensor, max_new_tokens: int) -> list[list[int]]:
        """Greedy continuation of a left-padded batch, each row up to and including its first stop token, as
        transformers' `generate(do_sample=False)` decodes it (the same tokens: tests/test_lm_scoring.py), but
        rows that have stopped leave the batch (their cache rows with them) once COMPACT_SHARE of it has, where
        `generate` runs every row until the last one stops."""
        stop, cache_name = torch.tensor(self.stop_ids, device=input_ids.device), cache_argument(self.model)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        out = self.model(input_ids=input_ids, attention_mask=mask, position_ids=positions, use_cache=True,
                         logits_to_keep=1)
        cache = preallocated(returned_cache(out), input_ids.shape[1] + max_new_tokens)
        token, position = out.logits[:, -1].argmax(-1), positions[:, -1]
        rows = torch.arange(len(input_ids), device=input_ids.device)  # batch row -> input row
        generated: list[list[int]] = [[] for _ in range(len(input_ids))]
        stopped = torch.zeros_like(token, dtype=torch.bool)
        for step in range(max_new_tokens):
            for row, t, done in zip(rows.tolist(), token.tolist(), stopped.tolist()):
                if not done:
                    generated[row].append(t)
            stopped = stopped | torch.isin(token, stop)
            if step == max_new_tokens - 1 or bool(stopped.all()):
                break
            if int(stopped.sum()) >= COMPACT_SHARE * len(rows):
                keep = (~stopped).nonzero().squeeze(-1)
                rows, token, mask, position, stopped = rows[keep], token[keep], mask[keep], position[keep], stopped[keep]
                cache.batch_select_indices(keep)
            mask = torch.cat([mask, (~stopped).long()[:, None]], 1)
            position = position + 1
            logits = self.model(input_ids=token[:, None], attention_mask=mask, position_ids=position[:, None],
                                **{cache_name: cache}, use_cache=True).logits[:, -1]
            token = torch.where(stopped, token, logits.argmax(-1))
        return generated

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


def argmax_hits(logits: torch.Tensor, targets: torch.Tensor, target_logits: torch.Tensor) -> torch.Tensor:
    """`logits.argmax(-1) == targets` (argmax: the first index on ties) from two max-reductions, which on one CPU
    thread run 3x faster than argmax over a 1,024-token vocabulary: a target is the argmax where its logit is its
    row's max and no other reaches it. Rows where another logit ties the target's at the max, or holding a NaN
    (which argmax takes for the max), take argmax itself."""
    top = logits.amax(-1)
    others = logits.scatter(-1, targets[:, None], float("-inf")).amax(-1)
    hit = (target_logits == top) & (others < top)
    unsure = ((target_logits == top) & (others == top)) | top.isnan()
    if bool(unsure.any()):
        hit[unsure] = logits[unsure].argmax(-1) == targets[unsure]
    return hit


def context_length(model: PreTrainedModel) -> int | None:
    """The model's context window (its text config's max_position_embeddings); None where the config has none."""
    return getattr(model.config.get_text_config(), "max_position_embeddings", None)


def eval_lm(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, fmt: PromptFormat, max_length: int,
            batch_size: int, wrapper: InferenceWrapper | None = None, generation_batch_size: int | None = None) -> LM:
    """The LM evaluations use. Prompts may fill the model's whole context, as the benchmarks' own harnesses and
    lm-eval let them (RWKU's 5-shot MMLU and 3-shot BBH prompts run to thousands of tokens); `model.max_length`
    cuts training examples only, and is the fallback for a config without a context size."""
    return LM(model, tokenizer, fmt, context_length(model) or max_length, batch_size, wrapper, generation_batch_size)


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x
