"""Cache keys hold what determines an entry and nothing else: a fine-tune's key the texts it trains on, an
evaluation's the contents of the files it reads and its reference model's identity, neither a location."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from unlearn_bench.benchmarks.registry import build_benchmark
from unlearn_bench.data.collate import PromptFormat
from unlearn_bench.data.records import DataError
from unlearn_bench.methods.registry import method_class
from unlearn_bench.pipeline import validation
from unlearn_bench.pipeline.context import Context


def context(cfg) -> Context:
    bench = build_benchmark(cfg.bench)
    return Context(cfg, bench, bench.data(), PromptFormat(cfg.model.prompt_format), accelerator=None)


@pytest.fixture
def tofu_copy(shared_data: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(shared_data / "tofu", tmp_path / "tofu"))


def tofu(compose_cfg, data_dir: Path, cache: Path, *extra: str) -> Context:
    return context(compose_cfg(["bench=tofu", f"bench.data_dir={data_dir}", "bench.forget_split=forget01",
                                f"paths.cache_dir={cache}", *extra]))


def dump(key: dict) -> str:
    return json.dumps(key, sort_keys=True, default=str)  # as store.cache.config_hash hashes it


def keys(ctx: Context) -> tuple[str, str, str | None]:
    return dump(ctx.model_key("target")), dump(ctx.model_key("retain")), ctx.evaluation_digest


def edit(path: Path) -> None:
    path.write_text(path.read_text().replace("?", " ?", 1))


def test_finetune_keys_hold_only_the_training_texts(compose_cfg, tofu_copy: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    hub_model = f"model.path={tmp_path / 'pretrained'}"  # a pretrained tokenizer: the corpus trains nothing
    tiny, pretrained = keys(tofu(compose_cfg, tofu_copy, cache)), keys(tofu(compose_cfg, tofu_copy, cache, hub_model))
    assert str(tofu_copy) not in "".join(tiny[:2])

    # world_facts.json is read by no stage: nothing is retrained or re-evaluated
    edit(tofu_copy / "world_facts.json")
    assert keys(tofu(compose_cfg, tofu_copy, cache)) == tiny

    # A moved data folder keeps its models and evaluations.
    moved = Path(shutil.copytree(tofu_copy, tmp_path / "elsewhere" / "tofu_data"))
    assert keys(tofu(compose_cfg, moved, cache)) == tiny

    # world_facts_perturbed.json is scored by evaluation and in the tiny tokenizer's corpus, not in a pretrained
    # model's training: that one keeps its fine-tunes and is re-evaluated.
    edit(tofu_copy / "world_facts_perturbed.json")
    tiny_after, pretrained_after = keys(tofu(compose_cfg, tofu_copy, cache)), keys(tofu(compose_cfg, tofu_copy, cache, hub_model))
    assert pretrained_after[:2] == pretrained[:2] and pretrained_after[2] != pretrained[2]
    assert tiny_after[0] != tiny[0] and tiny_after[2] != tiny[2]


def test_corrupt_refusal_file_stops_only_refusal_methods(tofu_copy: Path, compose_cfg, tmp_path: Path) -> None:
    (tofu_copy / "idontknow.jsonl").write_bytes(b"I don't know.\n\xff\n")
    data = tofu(compose_cfg, tofu_copy, tmp_path / "cache").data  # read without the refusals
    validation.check_method_fits(method_class("ga")(), "ga", data)
    with pytest.raises(DataError, match=r"idontknow.jsonl: line 2: not UTF-8"):
        validation.check_method_fits(method_class("idk")(), "idk", data)


def test_evaluation_key_names_the_reference_by_identity(compose_cfg, smoke_overrides, tmp_path: Path) -> None:
    from unlearn_bench.pipeline.context import eval_key

    def key(cache: Path) -> str:
        ctx = context(compose_cfg(smoke_overrides + [f"paths.cache_dir={cache}"]))
        return dump(eval_key(ctx, "target", str(cache / "finetune" / "aaaa"), str(cache / "finetune" / "bbbb")))

    assert key(tmp_path / "cache") == key(tmp_path / "copied" / "cache")
    assert str(tmp_path) not in key(tmp_path / "cache")
