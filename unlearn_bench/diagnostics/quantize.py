"""Quantization attack: greedy forget answers of the model with its weights quantized.

Zhang et al. 2024, "Catastrophic failure of LLM unlearning via quantization" (arXiv:2410.16454): unlearning
with small learning rates moves weights by less than a quantization step, so rounding maps the unlearned
weights back near the original ones and 4-bit models recover much of the forgotten knowledge.

All three models go through the same quantizer. The default, round-to-nearest (`rtn_quantize_`), runs the
same on CPU and GPU, so a verdict does not depend on the hardware; `eval.diag.quantize.method=bnb` reloads
the models through bitsandbytes (CUDA and the package needed; 4 and 8 bits), as the paper does.
"""
from __future__ import annotations

import copy
import importlib.util
import tempfile

import torch
from transformers import PreTrainedModel

from unlearn_bench.diagnostics.settings import QuantizeConfig
from unlearn_bench.diagnostics.common import Attack, DiagInputs, rouge_attack
from unlearn_bench.models import loading

METHODS = ("rtn", "bnb")


def check(cfg: QuantizeConfig) -> None:
    if cfg.method not in METHODS:
        raise ValueError(f"eval.diag.quantize.method='{cfg.method}': choose from {list(METHODS)}")
    bad = [b for b in cfg.bits if not 2 <= b <= 16]
    if bad:
        raise ValueError(f"eval.diag.quantize.bits: {bad} not in 2..16")
    if cfg.method == "bnb" and set(cfg.bits) - {4, 8}:
        raise ValueError(f"eval.diag.quantize.method=bnb quantizes to 4 or 8 bits, not {sorted(set(cfg.bits) - {4, 8})}")


def check_hardware(cfg: QuantizeConfig, on_cuda: bool) -> None:
    if cfg.method == "bnb" and (not on_cuda or importlib.util.find_spec("bitsandbytes") is None):
        raise ValueError("eval.diag.quantize.method=bnb needs CUDA and the bitsandbytes package; use method=rtn")


@torch.no_grad()
def rtn_quantize_(model: torch.nn.Module, bits: int) -> torch.nn.Module:
    """Round-to-nearest symmetric per-output-channel quantization of every Linear weight, in place (weights
    are stored dequantized, so the model runs unchanged)."""
    if not 2 <= bits <= 16:
        raise ValueError(f"eval.diag.quantize.bits: {bits} is not in 2..16")
    qmax = 2 ** (bits - 1) - 1
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            w = module.weight
            scale = w.abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / qmax
            w.copy_((w / scale).round().clamp(-qmax - 1, qmax) * scale)
    return model


def bnb_quantized(inputs: DiagInputs, model: PreTrainedModel, bits: int) -> PreTrainedModel:
    """`model` reloaded through bitsandbytes (needs CUDA and the package)."""
    from transformers import BitsAndBytesConfig

    with tempfile.TemporaryDirectory() as tmp:
        loading.save(model, inputs.tokenizer, tmp)
        quant = BitsAndBytesConfig(load_in_8bit=bits == 8, load_in_4bit=bits == 4)
        out = type(model).from_pretrained(tmp, quantization_config=quant, device_map={"": inputs.accelerator.device})
    out.generation_config = copy.deepcopy(model.generation_config)  # inference-time settings travel with the model
    return out


def attacks(inputs: DiagInputs, cfg: QuantizeConfig) -> list[Attack]:
    examples = inputs.forget_examples

    def attack(bits: int) -> Attack:
        def quantized(model: PreTrainedModel) -> PreTrainedModel:
            return bnb_quantized(inputs, model, bits) if cfg.method == "bnb" else rtn_quantize_(copy.deepcopy(model), bits)

        return rouge_attack(inputs, f"quantize/int{bits}", list(range(len(examples))), [ex.question for ex in examples],
                            {"bits": bits, "method": cfg.method}, transform=quantized)

    return [attack(bits) for bits in cfg.bits]
