"""Known-answer controls of the diagnose stage (`eval.diag.controls`).

  retain      the retain model passed through the whole stage as if it were the unlearned model: it never saw
              the forget data, so the correct verdict is `removed`
  suppressed  the fine-tuned target, weights untouched, behind an inference-time suppression: its decoder may
              never emit a token of the forget answers (`generation_filter`). Greedy answers lose the facts,
              the weights keep them, so the correct verdict is `suppressed`: attacks that read the weights past
              the decoder (answer likelihoods in multiple choice, the soft prompt, the probe) must show them.

A control with the wrong verdict means the stage cannot tell the two apart on this run: every verdict of the
run is then marked `uncalibrated`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from unlearn_bench.data.collate import PromptFormat, encode_example
from unlearn_bench.data.records import EvalQA
from unlearn_bench.methods.base import IGNORE_INDEX

EXPECTED = {"retain": "removed", "suppressed": "suppressed"}
PREFIX = "control:"


def check(controls: Sequence[str]) -> None:
    unknown = sorted(set(controls) - set(EXPECTED))
    if unknown:
        raise ValueError(f"eval.diag.controls: unknown {unknown}; choose from {list(EXPECTED)}")


@dataclass(frozen=True)
class GenerationFilter:
    """An inference-time suppression: generation never emits one of `banned` (HF's `suppress_tokens`, set on
    the model's generation config, so every generate call of the model and of copies of it obeys it); scoring
    of given answers is untouched."""

    banned: tuple[int, ...]

    def apply(self, model: PreTrainedModel) -> PreTrainedModel:
        model.generation_config.suppress_tokens = list(self.banned)
        return model


def generation_filter(examples: Sequence[EvalQA], tokenizer: PreTrainedTokenizerBase, fmt: PromptFormat,
                      max_length: int) -> GenerationFilter:
    """The filter banning every token of the forget answers as the model sees them after their prompts
    (special tokens such as EOS stay allowed, so answers still end)."""
    special = set(tokenizer.all_special_ids)
    banned = set()
    for ex in examples:
        ids, labels = encode_example(ex.as_qa(), tokenizer, fmt, max_length)
        banned |= {t for t, label in zip(ids, labels) if label != IGNORE_INDEX and t not in special}
    return GenerationFilter(tuple(sorted(banned)))
