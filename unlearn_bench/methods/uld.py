"""Unlearning from logit difference: an assistant model trained to remember the forget set and to forget the
retain set; at inference the target's logits minus `alpha` times the assistant's.

Ji, Liu, Zhang, Zhang, Chang et al. 2024, "Reversing the forget-retain objectives: an efficient LLM unlearning
framework from logit difference" (NeurIPS 2024, arXiv:2406.08607; UCSB-NLP-Chang/ULD). The assistant's loss is
NLL on forget answers (remember) plus `retain_weight` times cross-entropy to the uniform distribution on retain
answers (ULD's `remember+uniform` objective, retain weight 5): where the assistant is uniform, subtracting it
shifts every logit alike and leaves the target's distribution unchanged. With `top_logit_filter` > 0 the
assistant's logits count only on tokens the target itself finds plausible (probability at least
`top_logit_filter` times its most likely token's), over the target's log-probabilities, as ULD's
`ContrastLLM` does (its `top_logit_filter: 0.1`); 0 gives `logits_target - alpha * logits_assistant` exactly.

The assistant starts as a copy of the target (the embedded tiny model) or from `assistant_path`: a smaller model
sharing the target's tokenizer (ULD builds its assistant from the target's first layers plus LoRA). It is trained
with the one training loop (`training.train`) under the method's optimisation fields; the target's weights are
never changed. Each sequential request trains the assistant further on that request's forget set. During
generation the assistant re-reads the whole sequence at every step (no KV cache, see `GenerationHook`), so the
measured `cost/inference_overhead` is an upper bound on ULD's second forward pass.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Mapping, Optional

from unlearn_bench.runtime.lazy import F, torch  # imported on first use: composing a config needs no torch
from unlearn_bench.benchmarks.base import BenchData
from unlearn_bench.methods.base import IGNORE_INDEX, LossOutput, UnlearnBatch, batch_nll, forward_logits

if TYPE_CHECKING:
    from unlearn_bench.evaluation.wrapper import InferenceWrapper


def uniform_cross_entropy(model: torch.nn.Module, batch: Any) -> torch.Tensor:
    """Mean over answer tokens of the cross-entropy between the uniform distribution and the model's
    next-token distribution: -mean_v log p(v)."""
    logits = forward_logits(model, batch)[:, :-1].float()
    mask = batch.labels[:, 1:] != IGNORE_INDEX
    per_token = -F.log_softmax(logits, -1).mean(-1)
    return (per_token * mask).sum() / mask.sum().clamp(min=1)


def logit_difference(target: torch.Tensor, assistant: torch.Tensor, alpha: float, top_logit_filter: float) -> torch.Tensor:
    """target - alpha * assistant, or with the plausibility filter (see the module docstring)."""
    if assistant.shape != target.shape:
        raise ValueError(f"uld: assistant logits {tuple(assistant.shape)} do not match the target's "
                         f"{tuple(target.shape)}: the assistant must share the target's tokenizer")
    if top_logit_filter <= 0:
        return target - alpha * assistant.to(target.dtype)
    logp = F.log_softmax(target.float(), -1)
    implausible = logp < logp.max(-1, keepdim=True).values + torch.log(torch.tensor(top_logit_filter))
    return logp - alpha * assistant.float().masked_fill(implausible, 0.0)


@dataclass
class ULD:
    intent: ClassVar[str] = "suppression"
    inference_time: ClassVar[bool] = True
    needs_reference: ClassVar[bool] = False
    alternate: ClassVar[str | None] = None

    alpha: float = 1.0                  # weight of the assistant's logits (ULD's `weight: -1`)
    retain_weight: float = 5.0          # uniform cross-entropy on retain answers (ULD's remember+uniform)
    top_logit_filter: float = 0.1       # 0: plain logit difference
    assistant_path: Optional[str] = None  # hub id / directory of a smaller model sharing the tokenizer; None: a copy

    def __post_init__(self) -> None:
        if not 0 <= self.top_logit_filter < 1:
            raise ValueError(f"uld: top_logit_filter={self.top_logit_filter} must be in [0, 1)")
        self.assistant: torch.nn.Module | None = None

    def loss(self, model: torch.nn.Module, batch: UnlearnBatch) -> LossOutput:
        """The assistant's objective: remember forget answers, be uniform on retain answers."""
        forget_nll = batch_nll(model, batch.forget)
        components = {"forget_nll": forget_nll.item()}
        total = forget_nll
        if batch.retain is not None and self.retain_weight:
            uniform = uniform_cross_entropy(model, batch.retain)
            total = total + self.retain_weight * uniform
            components["retain_uniform_ce"] = uniform.item()
        return LossOutput(total, components)

    def new_assistant(self, model: torch.nn.Module) -> torch.nn.Module:
        if self.assistant_path is None:
            return copy.deepcopy(model)
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM.from_pretrained(self.assistant_path, dtype=model.dtype)

    def fit(self, model: Any, tokenizer: Any, data: BenchData, *, fmt: Any, max_length: int, seed: int,
            accelerator: Any, settings: Any) -> None:
        from unlearn_bench.data.batching import unlearn_epochs
        from unlearn_bench.training.recipes import n_batches, unlearn_sets
        from unlearn_bench.training.loop import train

        if self.assistant is None:
            self.assistant = self.new_assistant(model)
        assistant = self.assistant.to(accelerator.device).requires_grad_(True)
        forget, retain = unlearn_sets(data, tokenizer)
        result = train(assistant, self.loss,
                       unlearn_epochs(forget, retain, tokenizer, fmt, max_length, settings.batch_size, seed),
                       n_batches(len(forget), settings.batch_size), settings, accelerator, desc="uld:assistant")
        if result.status != "ok":
            raise RuntimeError(f"uld: training the assistant diverged: {result.message}")
        self.assistant = accelerator.unwrap_model(assistant).eval().requires_grad_(False)

    def wrapper(self, model: Any, tokenizer: Any) -> InferenceWrapper:
        if self.assistant is None:
            raise RuntimeError("uld: wrapper() before fit(): no assistant has been trained")
        assistant = self.assistant

        @torch.inference_mode()
        def logits(inputs: Mapping[str, Any], target: torch.Tensor) -> torch.Tensor:
            return logit_difference(target, assistant(**inputs).logits, self.alpha, self.top_logit_filter)

        from unlearn_bench.evaluation.wrapper import InferenceWrapper

        return InferenceWrapper(logits=logits)


METHOD = ULD
