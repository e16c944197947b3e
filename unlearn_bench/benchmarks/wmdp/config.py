"""The `bench=wmdp` config schema (WMDP): read when a config is composed, so it imports nothing heavy."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional


@dataclass
class WmdpConfig:
    name: str = "wmdp"
    source: str = "wmdp"   # wmdp (corpora + lm-eval tasks) | fictitious (the generated world, offline)
    forget_corpora: list[str] = field(default_factory=lambda: ["cais/wmdp-corpora:cyber-forget-corpus"])
    retain_corpora: list[str] = field(default_factory=lambda: ["wikitext:wikitext-2-raw-v1:test"])
    corpus_min_chars: int = 0        # rmu/unlearn.py --min_len: keep documents longer than this
    data_dir: Optional[str] = None   # offline WMDP JSON / MMLU CSV records; None = lm-eval fetches the hub's
    eval_tasks: list[str] = field(default_factory=lambda: ["wmdp_bio", "wmdp_chem", "wmdp_cyber"])
    utility_tasks: list[str] = field(default_factory=lambda: ["mmlu_college_biology", "mmlu_computer_security"])
    eval_limit: Optional[int] = None  # questions per task; None = all
    # source=fictitious only
    num_authors: int = 100
    hazard_percent: int = 20
    world_seed: int = 0
