"""The retain model fine-tuned in a second process while the target trains in this one (CPU, one process).

Why: the tiny model's steps are too small to keep two cores busy. On the 2-core machine one thread trains at
23.5 steps/s and two threads at 33.8 (`scripts/bench_train.py`), so two one-thread trainings side by side
finish sooner than two two-thread trainings in turn. The child trains through the same
`context.finetuned_model` and writes the same cache entry, which the parent then reads as a cache hit. Each side
trains on one thread, and a one-thread sequential run gives the same weights bit for bit
(tests/test_side_process.py); a two-thread run may differ in float rounding on CPUs whose matmul reduction
order follows the thread count.

When the diagnose stage asks for `control:exact` (the retain recipe at another seed, `pipeline.controls`), the
child trains that model too, after the retain model, while this process evaluates, unlearns and builds the
other controls on its own thread (`Alongside.retain_ready` waits for the retain model only, `Alongside.finish`
for the rest): three fine-tunes and the run's other work then share the two cores.

Off (`parallel_finetune=false`) or not worthwhile: on CUDA, under `accelerate launch`, with one thread, for a
fine-tune of fewer than `MIN_STEPS` steps, when either model is already cached, when the retain model is given
(`model.retain_path`), in a daemonic worker (which may not start processes).
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import multiprocessing
import os
from typing import Any, Iterator

import torch
from omegaconf import OmegaConf

from unlearn_bench.store.cache import entry_path

log = logging.getLogger(__name__)

# The child takes about 7 s to import torch and transformers; below 500 steps (15 s of the tiny model at 33.8
# steps/s, two threads) it saves less than that.
MIN_STEPS = 500
# The child's messages: the retain model is in the cache and it goes on with control:exact / it is done.
RETAIN_DONE, DONE = "retain", "ok"
LOG_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - (retain process) %(message)s"


def retain_steps(ctx: Any) -> int:
    """The retain fine-tune's optimizer steps, counting records (a windowed corpus makes more examples)."""
    from unlearn_bench.training.recipes import n_batches, optim_settings
    from unlearn_bench.training.loop import total_steps

    settings = optim_settings(ctx.cfg.model.finetune)
    return total_steps(settings, n_batches(len(ctx.data.retain_train), settings.batch_size))


def worthwhile(ctx: Any) -> bool:
    from unlearn_bench.pipeline.context import finetunes

    cfg, accelerator = ctx.cfg, ctx.accelerator
    if not cfg.parallel_finetune or accelerator.num_processes > 1 or accelerator.device.type != "cpu":
        return False
    if torch.get_num_threads() < 2 or cfg.model.retain_path or not finetunes(cfg.model) or retain_steps(ctx) < MIN_STEPS:
        return False
    if multiprocessing.current_process().daemon:
        return False
    return not any(entry_path(cfg.paths.cache_dir, "finetune", ctx.model_key(role)).is_dir()
                   for role in ("target", "retain"))


class Alongside:
    """The second process, seen from this one: `retain_ready()` waits until the retain model is in the cache (the
    child may go on with control:exact), `finish()` until the child is done, then gives back this process's
    threads; both raise the child's error. Without a child (not worthwhile) both return at once."""

    def __init__(self, child: Any = None, receive: Any = None, threads: int = 0) -> None:
        self.child, self.receive, self.threads = child, receive, threads
        self.retain_done = child is None

    def _message(self) -> str:
        try:
            return self.receive.recv()
        except EOFError:  # the child ended without a word (killed)
            self.child.join()
            return f"exit code {self.child.exitcode}"

    def _failed(self, message: str) -> RuntimeError:
        self.stop()
        return RuntimeError(f"fine-tuning the retain model in a second process failed: {message}")

    def retain_ready(self) -> None:
        if self.retain_done:
            return
        message = self._message()
        self.retain_done = True
        if message == DONE:  # nothing more to train: the threads come back now
            self._ended(message)
        elif message != RETAIN_DONE:
            raise self._failed(message)

    def finish(self) -> None:
        if self.child is None:
            return
        self.retain_ready()
        if self.child is not None:
            self._ended(self._message())

    def _ended(self, message: str) -> None:
        self.child.join()
        if message != DONE or self.child.exitcode != 0:
            raise self._failed(f"{message} (exit code {self.child.exitcode})" if message == DONE else message)
        self.stop()

    def stop(self) -> None:
        """Ends the child (if still running) and gives back the threads; an error in this process calls it."""
        if self.child is None:
            return
        if self.child.is_alive():
            self.child.terminate()
        self.child.join()
        self.child = None
        self.retain_done = True
        torch.set_num_threads(self.threads)


@contextlib.contextmanager
def retain_alongside(ctx: Any, tokenizer: Any) -> Iterator[Alongside]:
    """Fine-tunes the retain model (and control:exact, when asked for) in a spawned process with half the
    threads, this process keeping the other half until the child is done (`Alongside.retain_ready` when it has
    nothing more to train, else `Alongside.finish()`) or the end of the block, which waits for it. A failed retain
    model raises there; a failed control:exact that nothing waited for is logged. An error in the block stops it."""
    if not worthwhile(ctx):
        yield Alongside()
        return
    threads = torch.get_num_threads()
    child_threads = threads // 2
    spawn = multiprocessing.get_context("spawn")  # fork after OpenMP has started is unsafe
    receive, send = spawn.Pipe(duplex=False)
    # The data go through a queue, whose feeder thread waits while the child imports torch: as a Process
    # argument they would block this process until the child has read them (8 s measured).
    payload = spawn.Queue()
    child = spawn.Process(target=finetune_retain, args=(payload, child_threads, send, os.getpid()), daemon=True, name="finetune:retain")
    child.start()
    send.close()
    # resolved, so that the child needs no Hydra state; without the accelerator, which it makes itself
    payload.put((dataclasses.replace(ctx, cfg=OmegaConf.create(OmegaConf.to_container(ctx.cfg, resolve=True)),
                                     accelerator=None), tokenizer))
    payload.cancel_join_thread()  # a child stopped before reading them must not hold this process at exit
    torch.set_num_threads(threads - child_threads)
    log.info("retain model: fine-tuning in a second process (%d thread%s) while the target trains (%d)",
             child_threads, "s" * (child_threads > 1), threads - child_threads)
    side = Alongside(child, receive, threads)
    try:
        yield side
        side.retain_ready()
        try:
            side.finish()
        except RuntimeError as e:  # the second model (control:exact) failed where nothing waited for it
            log.warning("%s; this run did not use that model", e)
    except BaseException:
        side.stop()
        raise


def finetune_retain(payload: Any, threads: int, send: Any, parent: int) -> None:
    """The child: the retain model into the cache, errors sent back as one line (and logged in full). `parent` is
    the pid of the process that started it, which may be gone by the time this child has imported torch."""
    torch.set_num_threads(threads)
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    from unlearn_bench.runtime.device import make_accelerator
    from unlearn_bench.runtime.logs import quiet_noise
    from unlearn_bench.pipeline.context import finetuned_model
    from unlearn_bench.pipeline.controls import exact_context, wants_exact
    from unlearn_bench.runtime.workers import exit_with_parent

    exit_with_parent(parent=parent)  # a main process killed with SIGKILL takes this one down
    quiet_noise()
    try:
        ctx, tokenizer = payload.get()
        ctx = dataclasses.replace(ctx, accelerator=make_accelerator(cpu=True))
        finetuned_model(ctx, "retain", ctx.data.retain_train, tokenizer)
        if wants_exact(ctx):
            send.send(RETAIN_DONE)
            finetuned_model(exact_context(ctx), "retain", ctx.data.retain_train, tokenizer)
    except BaseException as e:
        log.exception("fine-tuning the retain model failed")
        send.send(f"{type(e).__name__}: {e}")
        raise SystemExit(1)
    send.send(DONE)
