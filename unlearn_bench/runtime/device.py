"""The one place that knows about devices and processes: accelerator, dtypes, the distributed engine.

Precision: on CUDA the loop computes in bf16 (accelerate's autocast) while the parameters it trains, and so
AdamW's state, are fp32 (`fp32_master`): AdamW on bf16 weights drops every update below half a bf16 ulp (weights
of scale 0.02 at lr 1e-5 barely move), which TOFU (DeepSpeed) and open-unlearning avoid with fp32 master weights.
`model.dtype` is the storage dtype of loaded models: frozen ones (references, evaluated checkpoints) stay in it.

Processes: under `accelerate launch` (conf/accelerate/*.yaml) training is collective (every process trains its
share of each step, see training.train); evaluation, diagnostics and every file write happen on the main process
while the others wait at a barrier (`on_main`, `shared_stage`).
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, TypeVar

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType, broadcast_object_list, gather_object

T = TypeVar("T")


def make_accelerator(cpu: bool = False) -> Accelerator:
    """bf16 autocast on CUDA (where supported), full precision on CPU; several processes via `accelerate launch`
    (whose config's mixed_precision, when set, wins). Gradient accumulation is done by the loop itself."""
    use_bf16 = not cpu and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return Accelerator(mixed_precision="bf16" if use_bf16 else "no", cpu=cpu)


def load_dtype(name: str) -> torch.dtype:
    """Storage dtype for loading hub models: 'auto' = bf16 on CUDA, fp32 on CPU (CPU bf16 matmuls are slow).
    Trained parameters are fp32 whatever this says (`fp32_master`)."""
    if name == "auto":
        return torch.bfloat16 if torch.cuda.is_available() else torch.float32
    dtypes = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if name not in dtypes:
        raise ValueError(f"unknown dtype '{name}'; choose from: auto, {', '.join(dtypes)}")
    return dtypes[name]


def fp32_master(params: Iterable[torch.nn.Parameter]) -> None:
    """Upcast trainable parameters to fp32 in place (before the optimizer and the engine are built), so updates
    accumulate at fp32 resolution; compute stays in bf16 under autocast."""
    for p in params:
        if p.is_floating_point() and p.dtype != torch.float32:
            p.data = p.data.float()


def eval_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def seed_everything(seed: int) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def configure_engine(accelerator: Accelerator, micro_batch: int, accumulation: int) -> float:
    """Tell DeepSpeed the micro-batch and per-process accumulation it cannot infer without a DataLoader (its JSON
    says "auto"); returns the factor the loop's loss needs, as DeepSpeed divides every loss by its accumulation."""
    plugin = getattr(getattr(accelerator, "state", None), "deepspeed_plugin", None)
    if plugin is None:
        return 1.0
    plugin.deepspeed_config.update(train_micro_batch_size_per_gpu=micro_batch, gradient_accumulation_steps=accumulation,
                                   train_batch_size=micro_batch * accumulation * accelerator.num_processes)
    return float(accumulation)


@contextlib.contextmanager
def accumulating(accelerator: Accelerator, model: torch.nn.Module, *, last: bool) -> Iterator[None]:
    """One micro-batch of an accumulation group: gradients sync across processes only on the group's last one
    (DDP's no_sync); the engine is told so too (DeepSpeed steps inside backward at a sync), as HF Trainer does."""
    state = getattr(accelerator, "gradient_state", None)
    if state is not None:
        state._set_sync_gradients(last)
    with contextlib.nullcontext() if last else accelerator.no_sync(model):
        yield


def prepare_frozen(accelerator: Accelerator, model: torch.nn.Module) -> torch.nn.Module:
    """A frozen reference model placed for the engine: sharded under ZeRO-3 (DeepSpeed inference engine) and FSDP,
    on this process's device otherwise (not handed to accelerate, which would keep it alive in its model list);
    never wrapped for gradient sync."""
    model = model.eval().requires_grad_(False)
    if accelerator.distributed_type == DistributedType.DEEPSPEED:
        import deepspeed  # only present where the DeepSpeed config is used

        config = {"train_micro_batch_size_per_gpu": 1, "bf16": {"enabled": accelerator.mixed_precision == "bf16"},
                  "zero_optimization": {"stage": 3, "stage3_param_persistence_threshold": 0}}
        engine, *_ = deepspeed.initialize(model=model, config=config)
        return engine.module.eval()
    if accelerator.distributed_type == DistributedType.FSDP:
        return accelerator.prepare_model(model, evaluation_mode=True)
    return model.to(accelerator.device)


def check_own_gradients(accelerator: Accelerator) -> None:
    """Methods that fill .grad themselves (NGDiff) need whole parameters: DDP or one process."""
    if accelerator.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED):
        raise ValueError("a method that computes its own gradients (NGDiff's backward hook) needs unsharded "
                         "parameters: use conf/accelerate/ddp.yaml or one process")


def sum_gradients(accelerator: Accelerator, params: Iterable[torch.nn.Parameter]) -> None:
    """All-reduce (sum) gradients a method computed itself with torch.autograd.grad, which bypasses DDP's hooks;
    a sum, because such a hook adds one direction per micro-batch (see methods/ngdiff.py)."""
    if accelerator.num_processes == 1:
        return
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        p.grad = accelerator.reduce(p.grad, reduction="sum")


def sum_across(accelerator: Accelerator, values: dict[str, float]) -> dict[str, float]:
    """Per-key sums of every process's numbers (the same result on each)."""
    if accelerator.num_processes == 1:
        return dict(values)
    total: dict[str, float] = {}
    for part in gather_object([values]):
        for k, v in part.items():
            total[k] = total.get(k, 0.0) + v
    return total


def on_main(accelerator: Accelerator, work: Callable[[], T]) -> T | None:
    """Run `work` on the main process only (evaluation, diagnostics, writing results); the others wait at a
    barrier, which the main process reaches even when `work` raises, so a failure never leaves them hanging."""
    if accelerator.num_processes == 1:
        return work()
    try:
        return work() if accelerator.is_main_process else None
    finally:
        accelerator.wait_for_everyone()


def shared_stage(accelerator: Accelerator, cache_dir: str | Path, stage: str, key: Any,
                 build: Callable[[Path], None], *, collective: bool = False) -> tuple[Path, bool]:
    """`cache.cached_stage` for several processes: one copy of the entry, written by the main process. A
    `collective` build (training) runs on every process; the others get a path they cannot write to (os.devnull
    below), so a stray write fails loudly. A non-collective build (evaluation) runs on the main process alone."""
    from unlearn_bench.store.cache import building, cached_stage, entry_path

    if accelerator.num_processes == 1:
        return cached_stage(cache_dir, stage, key, build)
    entry = entry_path(cache_dir, stage, key)
    # The main process holds the entry's lock from the decision to the rename, so that another run building the
    # same entry is waited for before all processes decide (the others wait at the broadcast, within the process
    # group's timeout).
    with building(entry) if accelerator.is_main_process else contextlib.nullcontext():
        hit = [entry.is_dir() if accelerator.is_main_process else None]
        broadcast_object_list(hit)  # the main process's view decides, so all build or none
        if collective and not hit[0] and not accelerator.is_main_process:
            build(Path(os.devnull) / "not-written")
        on_main(accelerator, lambda: cached_stage(cache_dir, stage, key, build))
    if not entry.is_dir():
        raise RuntimeError(f"{stage}: the main process did not write {entry} (see its log)")
    return entry, bool(hit[0])


def save_pretrained(accelerator: Accelerator, model: Any, tokenizer: Any, out: Path) -> None:
    """Save a trained model from every process (the engine gathers sharded weights), written by the main one."""
    state = accelerator.get_state_dict(model)
    if accelerator.is_main_process:
        from unlearn_bench.models.compat import add_legacy_fields

        accelerator.unwrap_model(model).save_pretrained(out, state_dict=state, safe_serialization=True)
        tokenizer.save_pretrained(out)
        add_legacy_fields(out)  # loadable by transformers 4.45 (open-unlearning's) too


def whole_model(accelerator: Accelerator, model: torch.nn.Module) -> torch.nn.Module | None:
    """The trained model, whole, for the main process's evaluation (None on the others). Under FSDP / ZeRO-3 its
    weights are sharded, so every process must call this: the gathered state dict fills a fresh copy on the main
    process. Unsharded engines return the model itself."""
    if accelerator.distributed_type not in (DistributedType.FSDP, DistributedType.DEEPSPEED):
        return accelerator.unwrap_model(model)
    from transformers import AutoModelForCausalLM

    state = accelerator.get_state_dict(model)  # collective
    if not accelerator.is_main_process:
        return None
    copy = AutoModelForCausalLM.from_config(accelerator.unwrap_model(model).config)
    copy.load_state_dict(state)
    return copy.to(accelerator.device).eval()


class SingleProcess:
    """This process's accelerator seen as a one-process one, for training done on the main process alone (the
    relearning and sequential diagnostics, the known-answer controls): same device and precision, no sharding,
    no gradient sync."""

    num_processes = 1
    process_index = 0
    is_main_process = True
    is_local_main_process = True
    distributed_type = DistributedType.NO

    def __init__(self, accelerator: Accelerator) -> None:
        self._accelerator = accelerator
        self.device = accelerator.device
        self.mixed_precision = accelerator.mixed_precision

    def prepare(self, *objects: Any) -> Any:
        for obj in objects:
            if isinstance(obj, torch.nn.Module):
                obj.to(self.device)
        return objects if len(objects) > 1 else objects[0]

    def prepare_model(self, model: torch.nn.Module, evaluation_mode: bool = False) -> torch.nn.Module:
        return model.to(self.device)

    def autocast(self) -> Any:
        return self._accelerator.autocast()

    def no_sync(self, model: torch.nn.Module) -> Any:
        return contextlib.nullcontext()

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()

    def clip_grad_norm_(self, params: Iterable[torch.nn.Parameter], max_norm: float) -> torch.Tensor:
        return torch.nn.utils.clip_grad_norm_(params, max_norm)

    def unwrap_model(self, model: torch.nn.Module) -> torch.nn.Module:
        return self._accelerator.unwrap_model(model)

    def get_state_dict(self, model: torch.nn.Module) -> dict[str, torch.Tensor]:
        return self.unwrap_model(model).state_dict()

    def wait_for_everyone(self) -> None:
        pass
