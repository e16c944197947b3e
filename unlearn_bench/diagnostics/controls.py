"""Known-answer controls of the diagnose stage (`eval.diag.controls`).

  retain      the retain model passed through the whole stage as if it were the unlearned model: it never saw
              the forget data, so the correct verdict is `removed`
  suppressed  the fine-tuned target, weights untouched, behind an inference-time suppression (`suppression`:
              a logits filter that never lets the model emit a token of the forget answers). Answers lose the
              facts, the weights keep them, so the correct verdict is `suppressed`: the black-box attacks go
              through the filter, the white-box ones (relearning, quantization, the probe, the soft prompt)
              hold the weights and must show the knowledge.

A control with the wrong verdict means the stage cannot tell the two apart on this run: every verdict of the
run is then marked `uncalibrated`.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from transformers import PreTrainedTokenizerBase

from unlearn_bench.data.collate import PromptFormat, encode_example
from unlearn_bench.data.records import EvalQA
from unlearn_bench.evaluation.wrapper import InferenceWrapper
from unlearn_bench.methods.base import IGNORE_INDEX

EXPECTED = {"retain": "removed", "suppressed": "suppressed"}
PREFIX = "control:"


def check(controls: Sequence[str]) -> None:
    unknown = sorted(set(controls) - set(EXPECTED))
    if unknown:
        raise ValueError(f"eval.diag.controls: unknown {unknown}; choose from {list(EXPECTED)}")


def banned_tokens(examples: Sequence[EvalQA], tokenizer: PreTrainedTokenizerBase, fmt: PromptFormat,
                  max_length: int) -> list[int]:
    """Every token of the forget answers as the model sees them after their prompts (special tokens such as EOS
    excluded, so answers still end)."""
    special = set(tokenizer.all_special_ids)
    banned: set[int] = set()
    for ex in examples:
        ids, labels = encode_example(ex.as_qa(), tokenizer, fmt, max_length)
        banned |= {t for t, label in zip(ids, labels) if label != IGNORE_INDEX and t not in special}
    return sorted(banned)


def suppression(banned: Sequence[int]) -> InferenceWrapper:
    """The inference-time suppression of the `suppressed` control: a logits filter that gives `banned` tokens
    probability 0 in every scoring and generation call."""
    index = torch.tensor(list(banned), dtype=torch.long)

    def block(inputs: Mapping[str, Any], logits: torch.Tensor) -> torch.Tensor:
        logits = logits.clone()
        logits[..., index.to(logits.device)] = float("-inf")
        return logits

    return InferenceWrapper(logits=block)
