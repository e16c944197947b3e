"""The one training loop, for fine-tuning and unlearning alike (nanoGPT-style: everything visible here).

`step` maps a batch to a LossOutput (forward only); the loop does backward, clipping, the optimizer and the
schedule through `accelerate`, so the same code runs on CPU, one GPU in bf16, or several GPUs.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable, Iterable, Iterator

import torch
from accelerate import Accelerator
from tqdm.auto import tqdm
from transformers import get_scheduler

from unlearn_bench.logs import Progress
from unlearn_bench.methods.base import LossOutput

log = logging.getLogger(__name__)


class Scheduler(Enum):
    """Learning-rate schedules (transformers' `get_scheduler` names); an unknown name fails at config time."""

    linear = "linear"
    cosine = "cosine"
    constant = "constant"
    constant_with_warmup = "constant_with_warmup"


@dataclass
class OptimFields:
    """The optimisation fields every training config shares (model.finetune, method, eval.diag.relearn); each
    config extends it and redeclares only the defaults it changes."""

    lr: float = 1e-5
    epochs: float = 5
    max_steps: int = 0  # 0: derived from epochs
    batch_size: int = 8
    grad_accum: int = 1
    warmup_ratio: float = 0.0
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    scheduler: Scheduler = Scheduler.linear  # warmup (warmup_ratio) then this schedule


@dataclass
class OptimSettings(OptimFields):
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01


@dataclass
class TrainResult:
    status: str  # "ok" or "diverged"
    steps: int
    history: list[dict[str, float]] = field(default_factory=list)
    message: str = ""


def total_steps(settings: OptimSettings, batches_per_epoch: int) -> int:
    if settings.max_steps > 0:
        return settings.max_steps
    return max(1, math.ceil(settings.epochs * batches_per_epoch / settings.grad_accum))


def train(
    model: torch.nn.Module,
    step: Callable[[torch.nn.Module, Any], LossOutput],
    epoch_batches: Callable[[int], Iterable[Any]],
    batches_per_epoch: int,
    settings: OptimSettings,
    accelerator: Accelerator,
    *,
    parameters: Iterable[torch.nn.Parameter] | None = None,
    backward: Callable[[torch.nn.Module, Any], LossOutput] | None = None,
    desc: str = "train",
) -> TrainResult:
    """Run optimizer steps until the step budget is used. `epoch_batches(epoch)` yields that epoch's batches
    (each with a `.to(device)`); `backward`, when given, computes and accumulates gradients itself."""
    params = [p for p in (parameters if parameters is not None else model.parameters()) if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
    n_steps = total_steps(settings, batches_per_epoch)
    scheduler = get_scheduler(Scheduler(settings.scheduler).value, optimizer, int(settings.warmup_ratio * n_steps), n_steps)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    model.train()
    history: list[dict[str, float]] = []
    done, micro = 0, 0
    bar = tqdm(total=n_steps, desc=desc, leave=False, disable=None if accelerator.is_local_main_process else True)  # None: off when not a terminal
    progress = Progress(desc, n_steps, enabled=bool(bar.disable) and accelerator.is_local_main_process)  # for log files
    try:
        for batch in _batches(epoch_batches):
            batch = batch.to(accelerator.device)
            with accelerator.autocast():
                if backward is not None:  # the method accumulates its own gradients (e.g. normalised ones)
                    out = backward(model, batch)
                else:
                    out = step(model, batch)
                    if torch.isfinite(out.loss):
                        # Accumulation by hand (nanoGPT-style): scale, and step every grad_accum micro-batches.
                        accelerator.backward(out.loss / settings.grad_accum)
            if not torch.isfinite(out.loss):
                msg = f"{desc}: non-finite loss {out.loss.item()} at step {done}"
                log.warning("%s; stopping this run as diverged", msg)
                return TrainResult("diverged", done, history, msg)
            micro += 1
            if micro % settings.grad_accum:
                continue
            if settings.max_grad_norm > 0:
                accelerator.clip_grad_norm_(params, settings.max_grad_norm)
            optimizer.step()
            lr = scheduler.get_last_lr()[0]  # the rate this step used
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            done += 1
            record = {"step": done, "loss": out.loss.item(), "lr": lr, **out.components}
            history.append(record)
            bar.update(1)
            bar.set_postfix(loss=f"{record['loss']:.3f}")
            progress.update(done, loss=record["loss"])
            if done >= n_steps:
                break
    finally:
        bar.close()
    model.eval()
    return TrainResult("ok", done, history)


def _batches(epoch_batches: Callable[[int], Iterable[Any]]) -> Iterator[Any]:
    epoch = 0
    while True:
        empty = True
        for batch in epoch_batches(epoch):
            empty = False
            yield batch
        if empty:
            raise ValueError("no training batches: the dataset is empty")
        epoch += 1
