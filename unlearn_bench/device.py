"""The one place that knows about devices: accelerator, dtype, and moving models."""
from __future__ import annotations

import torch
from accelerate import Accelerator


def make_accelerator(cpu: bool = False) -> Accelerator:
    """bf16 autocast on CUDA (where supported), full precision on CPU; multi-GPU via `accelerate launch`.
    Gradient accumulation is done by the loop itself, so one accelerator serves every stage."""
    use_bf16 = not cpu and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return Accelerator(mixed_precision="bf16" if use_bf16 else "no", cpu=cpu)


def load_dtype(name: str) -> torch.dtype:
    """Weights dtype for loading hub models: 'auto' = bf16 on CUDA, fp32 on CPU (CPU bf16 matmuls are slow)."""
    if name == "auto":
        return torch.bfloat16 if torch.cuda.is_available() else torch.float32
    dtypes = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if name not in dtypes:
        raise ValueError(f"unknown dtype '{name}'; choose from: auto, {', '.join(dtypes)}")
    return dtypes[name]


def eval_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def seed_everything(seed: int) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
