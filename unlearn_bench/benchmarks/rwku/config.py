"""The `bench=rwku` config schema (RWKU): read when a config is composed, so it imports nothing heavy."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from unlearn_bench.benchmarks.rwku.utility_metrics import BBH, MMLU, TRIVIAQA, TRUTHFULQA

# The synthetic forget corpus's sampling (RWKU's generate.py): nucleus sampling, 512 new tokens.
MAX_NEW_TOKENS = 512
TOP_P = 0.9
TOP_K = 50
DEFAULT_OPENINGS = ("{subject}",)
# FB/QA/AA probe answers: greedy, 30 new tokens (metrics.py says why there is no newline stop).
PROBE_MAX_NEW_TOKENS = 30
FLUENCY = "fluency"
UTILITY_TASKS = (MMLU, BBH, TRUTHFULQA, TRIVIAQA, FLUENCY)

@dataclass
class RwkuConfig:
    name: str = "rwku"
    source: str = "fictitious"               # fictitious | local | hub
    data_dir: Optional[str] = None           # local: folder of target folders; hub: download cache (None = HF's)
    hub_revision: Optional[str] = None
    targets: Optional[list[str]] = None      # single-target setting, e.g. [1_Stephen_King]
    num_targets: Optional[int] = None        # batch setting: the first N targets
    retain_corpus: str = "none"              # none (RWKU's main setting) | other_targets | neighbors (fictitious)
    forget_corpus: str = "passages"          # passages | generated (by the target model, RWKU's main setting) | both
    generated_per_target: int = 32           # biographies sampled per target (forget_corpus=generated/both)
    generated_openings: list[str] = field(default_factory=lambda: list(DEFAULT_OPENINGS))  # "{subject}" templates
    generated_max_new_tokens: int = MAX_NEW_TOKENS
    generated_top_p: float = TOP_P
    generated_top_k: int = TOP_K
    max_new_tokens: int = PROBE_MAX_NEW_TOKENS   # RWKU's probe answers
    eval_max_examples: Optional[int] = None  # cap per forget level and on forget_mia texts (None = all)
    retain_eval_examples: Optional[int] = None  # cap per neighbour level and on retain_mia texts
    utility_tasks: list[str] = field(default_factory=lambda: list(UTILITY_TASKS))  # RWKU's utility files scored
    utility_max_examples: Optional[int] = None   # cap per utility file (None = all, as RWKU)
    utility_max_new_tokens: Optional[int] = None  # cap on BBH / TriviaQA / fluency answers (None = RWKU's 256/30/256)
    # source=fictitious only: the generated world.
    num_authors: int = 100
    holdout_authors: int = 10
    world_seed: int = 0
