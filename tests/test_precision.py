"""Trained parameters are fp32 whatever `model.dtype` stores (device.fp32_master), and step counts follow HF
Trainer's per-epoch rounding."""
from __future__ import annotations

import pytest
import torch


def _changed_fraction(saved_model_dir, dtype: str) -> tuple[float, set[torch.dtype]]:
    """Fine-tune the saved tiny model loaded in `dtype` for 4 steps at TOFU's lr 1e-5; the fraction of weight
    entries that moved, and the dtypes of the trained parameters."""
    from omegaconf import OmegaConf

    from unlearn_bench.data.collate import PromptFormat
    from unlearn_bench.data.records import QA
    from unlearn_bench.runtime.device import make_accelerator, seed_everything
    from unlearn_bench.models import loading
    from unlearn_bench.training.recipes import finetune

    cfg = OmegaConf.create({"dtype": dtype, "trust_remote_code": False, "gradient_checkpointing": False})
    model = loading.load_saved(saved_model_dir, cfg)
    tokenizer = loading.load_tokenizer(saved_model_dir, OmegaConf.create({"tokenizer_path": None, "path": None,
                                                                           "retain_path": None, "trust_remote_code": False}))
    start = {n: p.detach().float().clone() for n, p in model.named_parameters()}
    data = [QA(f"what is item {i}?", f"item {i} is a {w}") for i, w in enumerate(["cat", "dog", "tree", "river"] * 4)]
    seed_everything(0)
    settings = OmegaConf.create({"lr": 1e-5, "epochs": 1, "max_steps": 4, "batch_size": 4, "grad_accum": 1,
                                 "warmup_ratio": 0.0, "weight_decay": 0.0, "max_grad_norm": 1.0, "scheduler": "constant"})
    result = finetune(model, tokenizer, data, PromptFormat(), settings, 64, 0, make_accelerator(cpu=True), "t")
    assert result.steps == 4
    changed = sum((p.detach().float() != start[n]).sum().item() for n, p in model.named_parameters())
    total = sum(p.numel() for p in model.parameters())
    return changed / total, {p.dtype for p in model.parameters()}


def test_updates_at_lr_1e5_are_kept_whatever_the_storage_dtype(saved_model_dir):
    """bf16 AdamW leaves most entries of 0.02-scale weights unchanged at lr 1e-5 (below half a bf16 ulp); with fp32
    master weights the fraction that moves is the fp32 run's."""
    fp32, fp32_dtypes = _changed_fraction(saved_model_dir, "float32")
    bf16, bf16_dtypes = _changed_fraction(saved_model_dir, "bfloat16")
    assert fp32 > 0.9
    assert bf16 == pytest.approx(fp32, abs=0.01)
    assert fp32_dtypes == bf16_dtypes == {torch.float32}


def test_plain_bf16_adamw_loses_the_updates():
    """The control: the same update on bf16 storage without a master copy moves few entries (the failure the
    fp32 master prevents)."""
    torch.manual_seed(0)
    w = (torch.randn(4096) * 0.02).bfloat16().requires_grad_()
    start = w.detach().clone()
    opt = torch.optim.AdamW([w], lr=1e-5, weight_decay=0.0)
    for _ in range(4):
        w.grad = torch.randn_like(w)
        opt.step()
    assert (w.detach() != start).float().mean().item() < 0.5


@pytest.mark.parametrize("batches, accum, epochs, expected", [
    (5, 4, 10, 20),   # TOFU forget01 (40 items) at 8 x 4 = 32: two steps an epoch, as open-unlearning
    (10, 1, 5, 50),
    (3, 2, 0.5, 1),   # ceil(0.5 x 2)
    (1, 8, 3, 3),     # an epoch smaller than one accumulation group still steps
])
def test_step_count_follows_hf_trainer(batches, accum, epochs, expected):
    from unlearn_bench.training.loop import total_steps
    from unlearn_bench.training.settings import OptimSettings

    assert total_steps(OptimSettings(epochs=epochs, grad_accum=accum), batches) == expected


def test_accumulation_must_divide_among_processes():
    from unlearn_bench.training.loop import local_accumulation

    assert local_accumulation(8, 2) == 4
    with pytest.raises(ValueError, match="multiple of the 3 processes"):
        local_accumulation(4, 3)


def test_short_last_group_steps_with_its_own_mean():
    """5 micro-batches at grad_accum 2: steps of 2, 2, 1 micro-batches per epoch; each step logs its micro-batches'
    mean loss."""
    from unlearn_bench.methods.base import LossOutput
    from unlearn_bench.runtime.device import make_accelerator
    from unlearn_bench.training.loop import train
    from unlearn_bench.training.settings import OptimSettings

    model = torch.nn.Linear(1, 1)
    seen: list[float] = []

    class B:
        def __init__(self, v): self.v = v
        def to(self, device): return self

    def step(m, b):
        seen.append(b.v)
        return LossOutput(m(torch.tensor([[b.v]])).sum() * 0 + b.v)

    result = train(model, step, lambda e: [B(float(i)) for i in range(5)], 5,
                   OptimSettings(epochs=1, grad_accum=2, batch_size=1, warmup_ratio=0.0), make_accelerator(cpu=True))
    assert [h["loss"] for h in result.history] == [0.5, 2.5, 4.0]
    assert seen == [0.0, 1.0, 2.0, 3.0, 4.0]
