"""Benchmark adapters by name: each folder has a config schema (`config.py`, read when a config is composed, so
it imports nothing heavy) and an adapter module with `build(cfg) -> Benchmark`."""
from __future__ import annotations

import dataclasses
import importlib
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

if TYPE_CHECKING:
    from unlearn_bench.benchmarks.base import Benchmark

# name -> (adapter module, config class name); the class lives in the adapter's folder's config.py
BENCHMARKS: dict[str, tuple[str, str]] = {
    "fictitious": ("unlearn_bench.benchmarks.fictitious.adapter", "FictitiousConfig"),
    "rwku": ("unlearn_bench.benchmarks.rwku.adapter", "RwkuConfig"),
    "muse": ("unlearn_bench.benchmarks.muse.adapter", "MuseConfig"),
    "tofu": ("unlearn_bench.benchmarks.tofu.adapter", "TofuConfig"),
    "wmdp": ("unlearn_bench.benchmarks.wmdp.adapter", "WmdpConfig"),
}


def bench_config_class(name: str) -> type:
    if name not in BENCHMARKS:
        raise KeyError(f"unknown benchmark '{name}'; available: {', '.join(BENCHMARKS)}")
    module, cls = BENCHMARKS[name]
    return getattr(importlib.import_module(module.rsplit(".", 1)[0] + ".config"), cls)


def build_benchmark(cfg: DictConfig | Any) -> Benchmark:
    config_cls = bench_config_class(cfg.name)
    # resolved where it sits, so that interpolations into the rest of the run's config (muse's
    # chunk_tokens: ${model.max_length}) still find their root
    data = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dataclasses.asdict(cfg)
    # through the schema, so that nested settings (bench.poison) arrive as their dataclasses too
    config = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(config_cls), data))
    return importlib.import_module(BENCHMARKS[cfg.name][0]).build(config)
