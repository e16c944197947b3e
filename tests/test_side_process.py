"""The retain model fine-tuned in a second process (pipeline/side_process.py) is the one a sequential run trains."""
from __future__ import annotations

import dataclasses

import pytest
import torch
from safetensors.torch import load_file

from unlearn_bench.benchmarks.registry import build_benchmark
from unlearn_bench.store.cache import entry_path
from unlearn_bench.data.collate import PromptFormat
from unlearn_bench.data.records import QA
from unlearn_bench.runtime.device import make_accelerator
from unlearn_bench.models import loading
from unlearn_bench.pipeline.context import Context, finetuned_model
from unlearn_bench.pipeline import side_process
from unlearn_bench.pipeline.side_process import retain_alongside, worthwhile


@pytest.fixture
def two_threads(monkeypatch):
    """Two threads, and the 20-step fine-tunes below counted as long enough for a second process."""
    monkeypatch.setattr(side_process, "MIN_STEPS", 20)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def context(compose_cfg, tmp_path, name: str, parallel: bool, extra: tuple[str, ...] = ()) -> tuple[Context, object]:
    cfg = compose_cfg(["experiment=smoke", f"paths.cache_dir={tmp_path / name}", f"parallel_finetune={parallel}",
                       "model.finetune.max_steps=20", *extra])
    bench = build_benchmark(cfg.bench)
    data = bench.data()
    ctx = Context(cfg, bench, data, PromptFormat(cfg.model.prompt_format), make_accelerator(cpu=True))
    return ctx, loading.base_tokenizer(cfg.model, data.tokenizer_corpus)


def train_both(ctx: Context, tokenizer) -> dict[str, str]:
    with retain_alongside(ctx, tokenizer):
        target = finetuned_model(ctx, "target", ctx.data.target_train, tokenizer)
        # the child wrote the retain entry by the end of the block, not the parent after it
        child_wrote = entry_path(ctx.cfg.paths.cache_dir, "finetune", ctx.model_key("retain")).is_dir()
    retain_cached = entry_path(ctx.cfg.paths.cache_dir, "finetune", ctx.model_key("retain")).is_dir()
    return {"target": target, "retain": finetuned_model(ctx, "retain", ctx.data.retain_train, tokenizer),
            "retain_cached_after_block": retain_cached, "child_wrote_during_target": child_wrote}


def test_side_by_side_models_are_the_sequential_ones_bit_for_bit(compose_cfg, tmp_path, two_threads) -> None:
    """Side by side, each model trains on one of the two threads; one after the other on one thread each, the
    same weights come out bit for bit. On two threads they may differ in float rounding: on some CPUs (this
    one among them) a matmul's reduction order depends on the thread count."""
    parallel_ctx, tok = context(compose_cfg, tmp_path, "parallel", True)
    sequential_ctx, _ = context(compose_cfg, tmp_path, "sequential", False)
    two_thread_ctx, _ = context(compose_cfg, tmp_path, "two_threads", False)
    assert worthwhile(parallel_ctx) and not worthwhile(sequential_ctx)
    side = train_both(parallel_ctx, tok)
    assert torch.get_num_threads() == 2  # the parent's threads are given back
    assert side["retain_cached_after_block"]
    torch.set_num_threads(1)
    one_after_other = train_both(sequential_ctx, tok)
    torch.set_num_threads(2)
    two_threads = train_both(two_thread_ctx, tok)
    assert not one_after_other["retain_cached_after_block"]
    for role in ("target", "retain"):
        a, b, c = (load_file(f"{run[role]}/model.safetensors") for run in (side, one_after_other, two_threads))
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a), role
        assert max((a[k] - c[k]).abs().max().item() for k in a) < 1e-4, role  # rounding, not another model
    # with both models cached there is nothing left to run side by side
    assert not worthwhile(parallel_ctx)


def test_the_exact_control_trains_there_after_retain_ready(compose_cfg, tmp_path, two_threads) -> None:
    """With control:exact asked for, the block can go on once the retain model is cached: the child trains the
    exact control's model (the retain recipe at the next seed) while this process keeps one thread, until
    `finish`, which gives the threads back."""
    from unlearn_bench.pipeline.controls import exact_context

    ctx, tok = context(compose_cfg, tmp_path, "exact", True, ("eval.diagnostics=[relearn]", "eval.diag.controls=[exact]"))
    exact_entry = entry_path(ctx.cfg.paths.cache_dir, "finetune", exact_context(ctx).model_key("retain"))
    with retain_alongside(ctx, tok) as side:
        finetuned_model(ctx, "target", ctx.data.target_train, tok)
        side.retain_ready()
        assert entry_path(ctx.cfg.paths.cache_dir, "finetune", ctx.model_key("retain")).is_dir()
        assert torch.get_num_threads() == 1  # the child may still be training: the other thread is its
        side.finish()
        assert exact_entry.is_dir() and torch.get_num_threads() == 2
        side.finish()  # once more: nothing left to wait for


def test_without_the_exact_control_the_threads_come_back_with_the_retain_model(compose_cfg, tmp_path, two_threads) -> None:
    ctx, tok = context(compose_cfg, tmp_path, "no_exact", True, ("eval.diagnostics=[]",))
    with retain_alongside(ctx, tok) as side:
        finetuned_model(ctx, "target", ctx.data.target_train, tok)
        side.retain_ready()
        assert torch.get_num_threads() == 2  # the child had nothing more to train: unlearning gets both threads


def test_a_failed_retain_process_raises_with_its_error(compose_cfg, tmp_path, two_threads) -> None:
    ctx, tok = context(compose_cfg, tmp_path, "failing", True)
    ctx.data = dataclasses.replace(ctx.data, retain_train=[QA("who?", None)])  # no answer to train on
    with pytest.raises(RuntimeError, match="retain model in a second process failed: .+"):
        with retain_alongside(ctx, tok):
            pass
    assert torch.get_num_threads() == 2


def test_one_thread_or_a_short_fine_tune_means_one_process(compose_cfg, tmp_path) -> None:
    ctx, _ = context(compose_cfg, tmp_path, "one", True)
    ctx.cfg.model.finetune.max_steps = 0  # the smoke run's own 3 epochs: a few seconds
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert side_process.retain_steps(ctx) < side_process.MIN_STEPS
        assert not worthwhile(ctx)
        ctx.cfg.model.finetune.max_steps = side_process.MIN_STEPS
        assert worthwhile(ctx)
        torch.set_num_threads(1)
        assert not worthwhile(ctx)
    finally:
        torch.set_num_threads(before)
