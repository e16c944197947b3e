"""The one training loop, for fine-tuning and unlearning alike (nanoGPT-style: everything visible here).

`step` maps a batch to a LossOutput (forward only); the loop does backward, clipping, the optimizer and the
schedule through `accelerate`, so the same code runs on CPU, one GPU in bf16, or several GPUs.
"""
from __future__ import annotations

import itertools
import logging
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

import torch
from accelerate import Accelerator
from tqdm.auto import tqdm
from transformers import get_scheduler

from unlearn_bench.runtime import device
from unlearn_bench.training.settings import OptimSettings, Scheduler
from unlearn_bench.runtime.logs import Progress
from unlearn_bench.methods.base import LossOutput

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    status: str  # "ok" or "diverged"
    steps: int
    history: list[dict[str, float]] = field(default_factory=list)
    message: str = ""


def steps_per_epoch(batches_per_epoch: int, grad_accum: int) -> int:
    """HF Trainer's rounding (`Trainer.set_initial_training_values`): an epoch ends with an optimizer step even
    when its last accumulation group is short, so a forget01 run (40 items) at 8 x 4 makes 2 steps per epoch."""
    return max(1, math.ceil(batches_per_epoch / grad_accum))


def total_steps(settings: OptimSettings, batches_per_epoch: int) -> int:
    if settings.max_steps > 0:
        return settings.max_steps
    return max(1, math.ceil(settings.epochs * steps_per_epoch(batches_per_epoch, settings.grad_accum)))


def local_accumulation(grad_accum: int, processes: int) -> int:
    """Micro-batches each process accumulates per step, so that batch_size x grad_accum stays the effective batch
    whatever the process count."""
    if grad_accum % processes:
        raise ValueError(f"grad_accum={grad_accum} is not a multiple of the {processes} processes: the effective batch "
                         f"(batch_size x grad_accum) would change with the process count; set grad_accum to a multiple of {processes}")
    return grad_accum // processes


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
    on_step: Callable[[int, torch.nn.Module], None] | None = None,
    desc: str = "train",
) -> TrainResult:
    """Run optimizer steps until the step budget is used. `epoch_batches(epoch)` yields that epoch's batches
    (each with a `.to(device)`); `backward`, when given, computes and accumulates gradients itself; `on_step(k,
    model)`, when given, sees the unwrapped model after optimizer step k (in eval mode; training resumes after),
    e.g. to score the checkpoints of a budget ladder from one run.

    Every process walks the same seeded stream of micro-batches; each step's `grad_accum` micro-batches are dealt
    out round-robin to the processes, so a run's batches, step count and gradients do not depend on the process
    count (up to float summation order)."""
    world, rank = accelerator.num_processes, accelerator.process_index
    engine_scale = device.configure_engine(accelerator, settings.batch_size, local_accumulation(settings.grad_accum, world))
    params = [p for p in (parameters if parameters is not None else model.parameters()) if p.requires_grad]
    device.fp32_master(params)  # before the optimizer and the engine see them
    optimizer = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
    n_steps = total_steps(settings, batches_per_epoch)
    warmup = int(settings.warmup_ratio * n_steps)  # optimizer steps (HF rounds up; kept as tuned here)
    scheduler = get_scheduler(Scheduler(settings.scheduler).value, optimizer, warmup, n_steps)
    # The scheduler stays unprepared: accelerate's wrapper steps it once per process.
    model, optimizer = accelerator.prepare(model, optimizer)
    if backward is not None:
        device.check_own_gradients(accelerator)
    log.info("%s: %d optimizer steps, effective batch %d = %d per micro-batch x %d accumulation x %d processes",
             desc, n_steps, settings.batch_size * settings.grad_accum, settings.batch_size,
             settings.grad_accum // world, world)
    model.train()
    history: list[dict[str, float]] = []
    done = 0
    bar = tqdm(total=n_steps, desc=desc, leave=False, disable=None if accelerator.is_local_main_process else True)  # None: off when not a terminal
    progress = Progress(desc, n_steps, enabled=bool(bar.disable) and accelerator.is_local_main_process)  # for log files
    try:
        for group in _step_groups(epoch_batches, settings.grad_accum):
            mine = group[rank::world]
            passes = math.ceil(len(group) / world)  # equal on every process, so the engine's collectives pair up
            totals: dict[str, float] = {}
            for i in range(passes):
                real = i < len(mine)
                # A process with no micro-batch left in a short group repeats one with weight 0 (DDP needs every
                # process in every backward); HF Trainer divides a short group's loss by its length, as here.
                batch = (mine[i] if real else group[0]).to(accelerator.device)
                weight = world / len(group) if real else 0.0
                with device.accumulating(accelerator, model, last=i == passes - 1), accelerator.autocast():
                    if backward is not None:  # the method fills .grad itself (e.g. normalised gradients)
                        out = backward(accelerator.unwrap_model(model), batch) if real else None
                    else:
                        out = step(model, batch)
                        accelerator.backward(out.loss * weight * engine_scale)
                if out is not None:
                    _add(totals, out, real)
            if backward is not None:
                device.sum_gradients(accelerator, params)
            stats = device.sum_across(accelerator, totals)
            if stats["nonfinite"] > 0:  # every process sees the same sums, so all stop together
                msg = f"{desc}: non-finite loss at step {done}"
                log.warning("%s; stopping this run as diverged", msg)
                return TrainResult("diverged", done, history, msg)
            if settings.max_grad_norm > 0:
                accelerator.clip_grad_norm_(params, settings.max_grad_norm)
            optimizer.step()
            lr = scheduler.get_last_lr()[0]  # the rate this step used
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            done += 1
            count = stats.pop("count")
            stats.pop("nonfinite")
            record = {"step": done, "lr": lr, **{k: v / count for k, v in stats.items()}}  # means over the step's micro-batches
            history.append(record)
            bar.update(1)
            bar.set_postfix(loss=f"{record['loss']:.3f}")
            progress.update(done, loss=record["loss"])
            if on_step is not None:
                model.eval()
                on_step(done, accelerator.unwrap_model(model))
                model.train()
            if done >= n_steps:
                break
    finally:
        bar.close()
    model.eval()
    return TrainResult("ok", done, history)


def _add(totals: dict[str, float], out: LossOutput, real: bool) -> None:
    """Running sums of the loss and its components over real micro-batches (keys from padding passes too, so every
    process reduces the same fields)."""
    loss = out.loss.item()
    finite = math.isfinite(loss)
    values = {"loss": loss if finite else 0.0, **out.components, "count": 1.0, "nonfinite": 0.0 if finite else 1.0}
    for k, v in values.items():
        totals[k] = totals.get(k, 0.0) + (float(v) if real else 0.0)


def _step_groups(epoch_batches: Callable[[int], Iterable[Any]], grad_accum: int) -> Iterator[list[Any]]:
    """Each optimizer step's micro-batches: `grad_accum` of them, fewer at the end of an epoch (HF Trainer)."""
    epoch = 0
    while True:
        batches = iter(epoch_batches(epoch))
        empty = True
        while group := list(itertools.islice(batches, grad_accum)):
            empty = False
            yield group
        if empty:
            raise ValueError("no training batches: the dataset is empty")
        epoch += 1
