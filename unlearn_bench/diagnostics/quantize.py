"""Quantization attack: the forget metrics of the unlearned model with its weights quantized.

Zhang et al. 2024, "Catastrophic failure of LLM unlearning via quantization" (arXiv:2410.16454): unlearning
with small learning rates moves weights by less than a quantization step, so rounding maps the unlearned
weights back near the original ones and 4-bit models recover much of the forgotten knowledge.

On CPU: int8 with `torch.ao.quantization.quantize_dynamic`, 4-bit with `rtn_quantize_` below. On CUDA:
bitsandbytes (`load_in_8bit` / `load_in_4bit`, as the paper loads models) where installed, else `rtn_quantize_`
for both widths.
"""
from __future__ import annotations

import copy
import importlib.util
import logging
import tempfile
from dataclasses import dataclass, field

import torch
from transformers import PreTrainedModel

from unlearn_bench.diagnostics.common import DiagInputs, DiagResult, compare, forget_metrics
from unlearn_bench.models import loading

log = logging.getLogger(__name__)


@dataclass
class QuantizeConfig:
    bits: list[int] = field(default_factory=lambda: [8, 4])


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


def int8_dynamic(model: torch.nn.Module) -> torch.nn.Module:
    """CPU int8 weights (per-tensor affine) with dynamically quantized activations, on a float32 copy."""
    return torch.ao.quantization.quantize_dynamic(copy.deepcopy(model).float().cpu(), {torch.nn.Linear}, dtype=torch.qint8)


def bnb_quantized(inputs: DiagInputs, bits: int) -> PreTrainedModel:
    """The unlearned model reloaded through bitsandbytes (needs CUDA and the package)."""
    from transformers import BitsAndBytesConfig

    with tempfile.TemporaryDirectory() as tmp:
        loading.save(inputs.model, inputs.tokenizer, tmp)
        quant = BitsAndBytesConfig(load_in_8bit=bits == 8, load_in_4bit=bits == 4)
        return type(inputs.model).from_pretrained(tmp, quantization_config=quant, device_map={"": inputs.accelerator.device})


def quantized(inputs: DiagInputs, bits: int) -> torch.nn.Module:
    on_cuda = inputs.accelerator.device.type == "cuda"
    if on_cuda and bits in (4, 8) and importlib.util.find_spec("bitsandbytes") is not None:
        return bnb_quantized(inputs, bits)
    if not on_cuda and bits == 8:
        return int8_dynamic(inputs.model)
    return rtn_quantize_(copy.deepcopy(inputs.model), bits)


def run(inputs: DiagInputs, cfg: QuantizeConfig) -> DiagResult:
    out = DiagResult()
    for bits in cfg.bits:
        model = quantized(inputs, bits)
        after = forget_metrics(inputs.lm(model), inputs.forget_examples, inputs.max_new_tokens)
        del model
        out.add(compare(f"quantize/int{bits}", after, inputs.references(), None, inputs.min_gap))
    return out
