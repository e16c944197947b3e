"""The `bench=fictitious` config schema (the embedded fictitious world): read when a config is composed, so it imports nothing heavy."""
from __future__ import annotations

from dataclasses import dataclass, field

from unlearn_bench.poison.config import PoisonConfig


@dataclass
class FictitiousConfig:
    name: str = "fictitious"
    num_authors: int = 200
    world_seed: int = 0
    forget_split: str = "forget10"
    holdout_percent: int = 10
    n_perturbed: int = 5
    eval_max_examples: int = 300
    retain_eval_examples: int = 200
    max_new_tokens: int = 32
    poison: PoisonConfig = field(default_factory=PoisonConfig)  # poisoned forget requests (poison/request.py)
