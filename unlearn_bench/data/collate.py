"""Prompt templates and tokenisation: loss only on answer tokens, EOS appended, padding per batch."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from unlearn_bench.runtime.lazy import torch  # imported on first use: composing a config needs no torch
from unlearn_bench.data.records import QA
from unlearn_bench.methods.base import IGNORE_INDEX, Batch

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

# Question formats of the models TOFU and open-unlearning fine-tune: (prompt, answer prefix). The prompt is what
# generation starts from; the answer prefix is scored with the answer. TOFU config/model_config.yaml: phi has
# question_start_tag "Question: ", question_end_tag "\n", answer_tag "Answer: " (so "Answer: " is a target), and
# evaluate_util.py `run_generation` generates from "Question: {q}\n".
TEMPLATES = {
    "plain": ("Question: {q}\nAnswer:", " "),
    "phi": ("Question: {q}\n", "Answer: "),
    # No space before the answer: TOFU's answer_tag is "", and open-unlearning's Llama-2 template notes " " tokenizes badly.
    "llama2": ("[INST] {q} [/INST]", ""),
    # open-unlearning's base models (configs/model/Llama-2-7b-hf.yaml, -13b-hf: no chat template): "Answer: " ends the
    # prompt. Masked as there (the prompt's own token count), so where SentencePiece merges that space into the
    # answer's first token ("▁In"), that token is masked too, as open-unlearning's preprocess_chat_instance does.
    "base": ("Question: {q}\nAnswer: ", ""),
}


# open-unlearning's chat-template arguments (configs/model/Llama-3.2-1B-Instruct.yaml `template_args`): a fixed
# date keeps Llama-3.1+ headers ("Today Date: ...") from changing with the calendar between training and evaluation.
DATE_STRING = "10 Apr 2025"


@dataclass(frozen=True)
class PromptFormat:
    """How a model sees a question: one of TEMPLATES, or 'chat' for the tokenizer's own chat template, rendered
    with `system_prompt` (None: no system turn), the fixed `date_string` and `enable_thinking=False`: Qwen3's
    template then ends the generation prompt in an empty think block, which it also writes before an assistant
    answer without reasoning, so the prompt is a prefix of the rendered conversation and the model answers without
    thinking (templates without the variable ignore it)."""

    name: str = "plain"
    system_prompt: str | None = None
    date_string: str = DATE_STRING

    def _messages(self, question: str) -> list[dict[str, str]]:
        system = [{"role": "system", "content": self.system_prompt}] if self.system_prompt is not None else []
        return system + [{"role": "user", "content": question}]

    def prompt(self, question: str, tokenizer: PreTrainedTokenizerBase) -> str:
        if self.name == "chat":
            return tokenizer.apply_chat_template(self._messages(question), tokenize=False, add_generation_prompt=True,
                                                 **self._template_args())
        if self.name not in TEMPLATES:
            raise ValueError(f"unknown prompt format '{self.name}'; choose from: chat, {', '.join(TEMPLATES)}")
        return TEMPLATES[self.name][0].format(q=question)

    def _template_args(self) -> dict[str, object]:
        return {"date_string": self.date_string, "enable_thinking": False}

    def answer_prefix(self) -> str:
        return "" if self.name == "chat" else TEMPLATES[self.name][1]

    def turn_end(self, tokenizer: PreTrainedTokenizerBase) -> str | None:
        """What the chat template writes after an assistant answer up to its first special token (Llama-3:
        "<|eot_id|>"), found by rendering a conversation whose answer is a sentinel; None for plain templates, or a
        template that writes no special token there (then EOS ends the answer). open-unlearning's
        `preprocess_chat_instance` scores the answer through the end of turn, and a chat model stops there. The cut
        at the special token drops what some templates add after it (Meta-Llama-3-8B-Instruct's first template
        appends the next assistant header whatever add_generation_prompt says). A tokenizer without a chat template
        (a tiny model standing in for a chat model) has no end of turn either."""
        if self.name != "chat" or not getattr(tokenizer, "chat_template", None):
            return None
        sentinel = "\x00answer\x00"
        prompt = self.prompt("question", tokenizer)
        full = tokenizer.apply_chat_template(self._messages("question") + [{"role": "assistant", "content": sentinel}],
                                             tokenize=False, **self._template_args())
        rest = full[len(prompt) + len(sentinel):] if full.startswith(prompt + sentinel) else ""
        special = {t.content for t in tokenizer.added_tokens_decoder.values() if t.special}
        found = [(rest.find(t), t) for t in special | set(tokenizer.all_special_tokens) if t and t in rest]
        if not found:
            return None
        at, token = min(found)
        return rest[: at + len(token)]

    def stop_ids(self, tokenizer: PreTrainedTokenizerBase) -> list[int]:
        """The token that ends an answer besides EOS: the first token of `turn_end`, if any."""
        end = self.turn_end(tokenizer)
        return tokenizer(end, add_special_tokens=False)["input_ids"][:1] if end else []

    def prompt_ids(self, question: str, tokenizer: PreTrainedTokenizerBase) -> list[int]:
        return self.tokenize([self.prompt(question, tokenizer)], tokenizer)[0]

    def tokenize(self, texts: Sequence[str], tokenizer: PreTrainedTokenizerBase) -> list[list[int]]:
        """Token ids of rendered prompts (and answers): chat templates already contain BOS; plain templates get it
        from the tokenizer."""
        return token_ids(tokenizer, texts, add_special_tokens=self.name != "chat")


def token_ids(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], add_special_tokens: bool = True) -> list[list[int]]:
    """Token ids of each text from one tokenizer call; none for no texts (where the call itself fails)."""
    return tokenizer(list(texts), add_special_tokens=add_special_tokens)["input_ids"] if texts else []


def encode_example(qa: QA, tokenizer: PreTrainedTokenizerBase, fmt: PromptFormat, max_length: int | None,
                   add_eos: bool = True) -> tuple[list[int], list[int]]:
    """input_ids and labels, cut at `max_length` tokens (None: not cut); labels are IGNORE_INDEX on prompt tokens
    (and BOS of raw text). The answer ends in EOS, or in the chat template's end of turn (`PromptFormat.turn_end`)."""
    return encode_examples([qa], tokenizer, fmt, max_length, add_eos)[0]


def encode_examples(pairs: Sequence[QA], tokenizer: PreTrainedTokenizerBase, fmt: PromptFormat,
                    max_length: int | None, add_eos: bool = True) -> list[tuple[list[int], list[int]]]:
    """`encode_example` of each pair, each distinct question's prompt rendered and tokenized once (TOFU scores
    seven answers per question) and the chat template's end of turn found once."""
    eos = [tokenizer.eos_token_id] if add_eos else []
    out: list[tuple[list[int], list[int]]] = [([], [])] * len(pairs)
    raw = [i for i, qa in enumerate(pairs) if qa.question is None]  # raw text: every token after BOS is a target
    for i, ids in zip(raw, token_ids(tokenizer, [pairs[i].answer for i in raw])):
        ids = (ids if max_length is None else ids[: max_length - len(eos)]) + eos
        labels = list(ids)
        if ids and ids[0] == tokenizer.bos_token_id:
            labels[0] = IGNORE_INDEX
        out[i] = (ids, labels)
    asked = [i for i, qa in enumerate(pairs) if qa.question is not None]
    if not asked:
        return out
    # As TOFU's `convert_raw_data_to_model_format`: tokenize prompt and answer as one text and mask as many
    # leading tokens as the prompt alone has. Tokenizing the answer on its own would change its first token
    # for SentencePiece models (Llama-2: "▁The" instead of TOFU's "The") and so every answer loss.
    prompts = {q: fmt.prompt(q, tokenizer) for q in dict.fromkeys(pairs[i].question for i in asked)}
    n_prompt = dict(zip(prompts, map(len, fmt.tokenize(list(prompts.values()), tokenizer))))
    end = fmt.turn_end(tokenizer) if add_eos else None
    tail, eos = (end, []) if end is not None else ("", eos)
    fulls = fmt.tokenize([prompts[pairs[i].question] + fmt.answer_prefix() + pairs[i].answer + tail for i in asked],
                         tokenizer)
    for i, ids in zip(asked, fulls):
        ids, n = ids + eos, n_prompt[pairs[i].question]
        out[i] = (ids[:max_length], ([IGNORE_INDEX] * n + ids[n:])[:max_length])
    return out


@dataclass(frozen=True)
class Encoded:
    """A training example tokenized before batching (a MUSE token window); `Collator` passes it through as is."""

    input_ids: tuple[int, ...]
    labels: tuple[int, ...]


# swj0419/muse_bench load_data.py writes each raw split as its documents joined by a blank line (raw/<split>.txt).
DOCUMENT_SEPARATOR = "\n\n"


def token_windows(texts: Sequence[str], tokenizer: PreTrainedTokenizerBase, length: int) -> list[Encoded]:
    """MUSE's training examples (swj0419/muse_bench baselines/baselines/dataset.py `DefaultDataset`, .txt path):
    `texts` joined by a blank line, tokenized whole without special tokens, cut into windows of `length - 1`
    tokens each led by BOS; a short last window is filled with the first window's tokens
    (`torch.concat([last, first])[:max_len]`, BOS included). Labels are the ids: every token is a target
    (BOS never is, being first)."""
    if length < 2:
        raise ValueError(f"token windows need a length of at least 2 (BOS + a token), got {length}")
    if tokenizer.bos_token_id is None:
        raise ValueError("token windows start with BOS, as MUSE's do, but this tokenizer has no BOS token: "
                         "use bench.train_layout=chunks")
    tokens = tokenizer(DOCUMENT_SEPARATOR.join(texts), add_special_tokens=False)["input_ids"]
    if not tokens:
        raise ValueError("no tokens to cut into windows: the training texts are empty")
    windows = [[tokenizer.bos_token_id] + tokens[i : i + length - 1] for i in range(0, len(tokens), length - 1)]
    windows[-1] = (windows[-1] + windows[0])[:length]
    return [Encoded(tuple(w), tuple(w)) for w in windows]


def training_examples(examples: Sequence[QA], tokenizer: PreTrainedTokenizerBase, window: int | None
                      ) -> list[QA] | list[Encoded]:
    """What a training set is batched as: its records (`window` None), or its raw texts as `token_windows`
    of `window` tokens (`BenchData.train_window`)."""
    if window is None or not examples:
        return list(examples)
    if any(qa.question is not None for qa in examples):
        raise ValueError("token windows are cut from raw text only; this training set has questions")
    return token_windows([qa.answer for qa in examples], tokenizer, window)


def pad_token_id(tokenizer: PreTrainedTokenizerBase) -> int:
    """The id batches are padded with: the tokenizer's pad token, or EOS where it has none (Llama's)."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


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
    return Collator(tokenizer, fmt, max_length)(examples)


class Collator:
    """`collate` that tokenizes each distinct example once: training walks the same examples every epoch, and
    re-tokenizing them was ~15% of a fine-tuning step on the embedded default."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, fmt: PromptFormat, max_length: int) -> None:
        self.tokenizer, self.fmt, self.max_length = tokenizer, fmt, max_length
        self.pad_id = pad_token_id(tokenizer)
        self._encoded: dict[QA, tuple[list[int], list[int]]] = {}

    def __call__(self, examples: Sequence[QA | Encoded]) -> Batch:
        return pad_batch([self._encode(qa) for qa in examples], self.pad_id)

    def length(self, qa: QA | Encoded) -> int:
        return len(self._encode(qa)[0])

    def _encode(self, qa: QA | Encoded) -> tuple[list[int], list[int]]:
        if isinstance(qa, Encoded):
            return list(qa.input_ids), list(qa.labels)
        if qa not in self._encoded:
            self._encoded[qa] = encode_example(qa, self.tokenizer, self.fmt, self.max_length)
        return self._encoded[qa]
