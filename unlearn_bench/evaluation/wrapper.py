"""What an inference-time method puts between the evaluators and the unchanged weights.

`InferenceWrapper` has two optional parts:
  prompt(text) -> text                input space: rewrites every question or raw prompt before it is tokenized
                                      (in-context examples, a guard's confidentiality instruction)
  logits(inputs, logits) -> logits    output space: rewrites the model's logits; `inputs` are the keyword
                                      arguments the model was called with (input_ids, attention_mask and, where
                                      used, position_ids, logits_to_keep), so a second model can be run on exactly
                                      the same tokens (logit difference)

`LM` (evaluation/lm.py) applies both on every scoring and generation call, and `evaluation.lm_eval` on every
lm-eval request, so a wrapped model is scored by the same code as a fine-tuned one. Raw texts scored without a
question (MUSE's verbatim/PrivLeak texts, `QA.question is None`) have no prompt to rewrite: only `logits` acts
on them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import torch
from transformers import LogitsProcessor

PromptTransform = Callable[[str], str]
LogitsHook = Callable[[Mapping[str, Any], torch.Tensor], torch.Tensor]


@dataclass
class InferenceWrapper:
    prompt: PromptTransform | None = None
    logits: LogitsHook | None = None

    def rewrite(self, text: str) -> str:
        return self.prompt(text) if self.prompt is not None else text

    def call(self, model: torch.nn.Module, **inputs: Any) -> torch.Tensor:
        """The model's logits for `inputs`, passed through the logits hook."""
        logits = model(**inputs).logits
        return self.logits(inputs, logits) if self.logits is not None else logits

    def processors(self, attention_mask: torch.Tensor | None) -> list[LogitsProcessor]:
        """What `model.generate(logits_processor=...)` needs to apply the hook at every decoding step."""
        return [GenerationHook(self.logits, attention_mask)] if self.logits is not None else []


def model_call(model: torch.nn.Module, wrapper: InferenceWrapper | None, **inputs: Any) -> torch.Tensor:
    return wrapper.call(model, **inputs) if wrapper is not None else model(**inputs).logits


class GenerationHook(LogitsProcessor):
    """The logits hook inside `generate`: each step it sees the whole sequence so far (prompt + generated), with
    the prompt's attention mask extended by ones and left-padding-aware positions, as `generate` itself feeds
    the model; a second model inside the hook therefore runs without a KV cache (quadratic in the generated
    length: simple, exact, and counted in the cost rows). Transformers runs custom processors before its sampling warpers (temperature, top-k, top-p), so
    sampling draws from the rewritten distribution."""

    def __init__(self, hook: LogitsHook, attention_mask: torch.Tensor | None):
        self.hook, self.prompt_mask = hook, attention_mask

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        inputs: dict[str, Any] = {"input_ids": input_ids, "logits_to_keep": 1}
        if self.prompt_mask is not None:
            new = input_ids.shape[1] - self.prompt_mask.shape[1]
            mask = torch.cat([self.prompt_mask, self.prompt_mask.new_ones((input_ids.shape[0], new))], dim=1)
            inputs["attention_mask"] = mask
            inputs["position_ids"] = (mask.cumsum(-1) - 1).clamp(min=0)
        return self.hook(inputs, scores[:, None, :])[:, -1]
