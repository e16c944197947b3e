"""LoRA through peft: adapters train, merge back into the same model object, compose with RMU's hook."""
from __future__ import annotations

import copy

import pytest
import torch
from omegaconf import OmegaConf

from unlearn_bench.data.collate import PromptFormat
from unlearn_bench.data.records import QA

DATA = [QA(f"what is item {i}?", f"item {i} is a {w}") for i, w in enumerate(["cat", "dog", "tree", "river"] * 2)]


def _settings(**kw):
    base = {"lr": 1e-2, "epochs": 1, "max_steps": 3, "batch_size": 4, "grad_accum": 1, "warmup_ratio": 0.0,
            "weight_decay": 0.0, "max_grad_norm": 1.0, "scheduler": "constant"}
    return OmegaConf.create({**base, **kw})


def _lora(**kw):
    from unlearn_bench.models.lora import LoraSettings

    return OmegaConf.structured(LoraSettings(**{"r": 4, **kw}))


def _weights(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def test_lora_finetuning_merges_into_the_model(tiny_lm):
    from unlearn_bench.runtime.device import make_accelerator
    from unlearn_bench.training.recipes import finetune

    model, tok = copy.deepcopy(tiny_lm[0]), tiny_lm[1]
    before = _weights(model)
    result = finetune(model, tok, DATA, PromptFormat(), _settings(), 64, 0, make_accelerator(cpu=True), "t",
                      lora_cfg=_lora(target_modules=["q_proj", "v_proj"]))
    assert result.status == "ok" and result.steps == 3
    after = _weights(model)
    assert after.keys() == before.keys()  # merged and unloaded: the plain model's parameters, no adapters left
    moved = {n for n in after if not torch.equal(after[n], before[n])}
    assert moved and all(n.endswith(("q_proj.weight", "v_proj.weight")) for n in moved)
    assert type(model).__name__ == "LlamaForCausalLM"


def test_lora_composes_with_rmu_trainable_layers(tiny_lm):
    """RMU's hook names layer 1's down_proj; with LoRA only that module's adapter trains and merges."""
    from unlearn_bench.benchmarks.base import BenchData
    from unlearn_bench.runtime.device import make_accelerator
    from unlearn_bench.methods.rmu import RMU
    from unlearn_bench.training.recipes import unlearn

    model, tok = copy.deepcopy(tiny_lm[0]), tiny_lm[1]
    before = _weights(model)
    data = BenchData(target_train=[], retain_train=[], forget=DATA[:4], retain=DATA[4:])
    method = RMU(layer=1, trainable_layers=[1], alpha=1.0)
    result = unlearn(model, tok, method, _settings(name="rmu"), data, PromptFormat(), 64, 0, make_accelerator(cpu=True),
                     lora_cfg=_lora())
    assert result.status == "ok"
    moved = {n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])}
    assert moved == {"model.layers.1.mlp.down_proj.weight"}
    assert all(p.requires_grad for p in model.parameters())  # RMU's finalize unfroze the rest


def test_lora_targets_missing_the_hooked_module_fail_clearly(tiny_lm):
    from unlearn_bench.benchmarks.base import BenchData
    from unlearn_bench.runtime.device import make_accelerator
    from unlearn_bench.methods.rmu import RMU
    from unlearn_bench.training.recipes import unlearn

    model, tok = copy.deepcopy(tiny_lm[0]), tiny_lm[1]
    with pytest.raises(ValueError, match="model.lora.target_modules"):
        unlearn(model, tok, RMU(layer=1), _settings(name="rmu"), BenchData(target_train=[], retain_train=[], forget=DATA[:4], retain=DATA[4:]),
                PromptFormat(), 64, 0, make_accelerator(cpu=True), lora_cfg=_lora(target_modules=["q_proj"]))


def test_lora_is_in_the_cache_key_and_rwku_composes(compose_cfg):
    from unlearn_bench.pipeline.runner import run_id_for

    plain = compose_cfg(["experiment=rwku_llama3"])
    with_lora = compose_cfg(["experiment=rwku_llama3", "model.lora.r=8"])
    assert with_lora.model.lora.r == 8 and plain.model.lora.r == 0
    assert run_id_for(plain) != run_id_for(with_lora)
    with pytest.raises(Exception, match="rank"):
        compose_cfg(["model.lora.rank=8"])
