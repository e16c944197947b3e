"""The `bench=tofu` config schema (TOFU): read when a config is composed, so it imports nothing heavy."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from unlearn_bench.benchmarks.tofu.data import HUB_ID
from unlearn_bench.poison.config import PoisonConfig


@dataclass
class TofuConfig:
    name: str = "tofu"
    data_dir: Optional[str] = None      # folder of `{split}.json` files + idontknow.jsonl; None = the hub
    hub_id: str = HUB_ID
    forget_split: str = "forget10"      # forget01 | forget05 | forget10; the retain split follows
    eval_max_examples: Optional[int] = 300  # TOFU's ds_size; null scores every question (open-unlearning)
    max_new_tokens: int = 200           # TOFU's generation length (greedy, stops at EOS)
    # Keep only a prompt's last (context - max_new_tokens) tokens, so that prompt + generation fit the model's
    # context; false (open-unlearning's src/evals/metrics/utils.py) generates from the whole prompt.
    cut_generation_prompts: bool = False
    # forget-vs-holdout MIA: open_unlearning (its TOFU attacks: EOS scored, zlib of decoded labels) | muse
    mia_style: str = "open_unlearning"
    # An open-unlearning TOFU_EVAL.json of a retain model (its retain_logs_path): forget quality compares against
    # the truth ratios in it instead of this run's retain model.
    retain_logs_path: Optional[str] = None
    # Smoke runs: fine-tune on the forget split plus only the first N retain QA (null: all of them, as TOFU).
    train_retain_examples: Optional[int] = None
    poison: PoisonConfig = field(default_factory=PoisonConfig)  # poisoned forget requests (poison/request.py)
