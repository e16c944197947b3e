"""LoRA adapters through peft for fine-tuning and unlearning (`model.lora.r > 0`), merged back after training so
evaluation and diagnostics see one plain model.

RWKU reports LoRA rows for every method (LLaMA-Factory `--finetuning_type lora`); `experiment=rwku_llama3
model.lora.r=8` is that setting. A method's `trainable_parameters` hook (RMU) still chooses what trains: the
adapters of the modules that own the parameters it names.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

if TYPE_CHECKING:
    import torch

LLAMA_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass
class LoraSettings:
    r: int = 0            # adapter rank; 0 trains the full model
    alpha: float = 16.0   # scaling alpha / r (peft's lora_alpha)
    dropout: float = 0.0
    target_modules: list[str] = field(default_factory=lambda: list(LLAMA_LINEAR))  # every linear layer of a Llama block


def enabled(settings: Any) -> bool:
    return settings is not None and settings.r > 0


def wrap(model: torch.nn.Module, settings: Any) -> torch.nn.Module:
    """The model with fresh adapters (base weights frozen); the adapters are injected into `model` in place."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                        target_modules=list(settings.target_modules), task_type="CAUSAL_LM")
    flags = [(p, p.requires_grad) for p in model.parameters()]  # peft freezes the base; merge restores this
    try:
        wrapped = get_peft_model(model, config)
    except ValueError as e:  # peft names no module when target_modules match nothing
        raise ValueError(f"model.lora.target_modules={list(settings.target_modules)}: {e}") from e
    wrapped.base_requires_grad = flags
    return wrapped


def adapter_parameters(peft_model: torch.nn.Module, weights: Iterable[torch.nn.Parameter]) -> list[torch.nn.Parameter]:
    """The adapter parameters of the modules whose base weight is one of `weights` (a method's own choice), the
    only ones left trainable; an error when none of those modules has an adapter."""
    ids = {id(w) for w in weights}
    chosen: list[torch.nn.Parameter] = []
    for module in peft_model.modules():
        base = getattr(module, "base_layer", None)
        if base is not None:
            adapters = [p for name, p in module.named_parameters() if "lora_" in name]
            keep = id(getattr(base, "weight", None)) in ids
            chosen += adapters if keep else []
            for p in adapters:
                p.requires_grad_(keep)
    if not chosen:
        raise ValueError("none of the parameters the method trains lies in model.lora.target_modules: add their "
                         "modules (e.g. down_proj for RMU) or set model.lora.r=0")
    return chosen


def merge(peft_model: torch.nn.Module) -> torch.nn.Module:
    """Fold the adapters into the base weights and remove them; returns the original model object. Base weights
    of adapted modules are upcast to fp32 first, so deltas below half a bf16 ulp survive (as device.fp32_master)."""
    for module in peft_model.modules():
        base = getattr(module, "base_layer", None)
        if base is not None and base.weight.is_floating_point():
            base.weight.data = base.weight.data.float()
    model = peft_model.merge_and_unload()
    for p, flag in peft_model.base_requires_grad:
        p.requires_grad_(flag)
    return model
