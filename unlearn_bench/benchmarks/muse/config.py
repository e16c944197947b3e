"""The `bench=muse` config schema (MUSE): read when a config is composed, so it imports nothing heavy."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

# eval.py `eval_model` defaults: verbmem generates 128 new tokens and knowmem 32, both greedy.
VERBMEM_MAX_NEW_TOKENS = 128
KNOWMEM_MAX_NEW_TOKENS = 32


@dataclass
class MuseConfig:
    name: str = "muse"
    corpus: str = "fictitious"               # news | books | fictitious (generated, offline)
    data_dir: Optional[str] = None           # hub-layout copy: <dir>/<corpus>/<config>/<split>.json; None = hub
    forget_source: str = "raw"               # raw | scal (C5) | sust (C6)
    forget_split: str = "forget"             # forget for raw; forget_1..forget_4 for scal/sust; all (sust): C6
    chunk_tokens: int = 2048                 # training chunks of about this many tokens, or windows of exactly it
    train_layout: str = "chunks"             # chunks | windows (MUSE's baselines), see TRAIN_LAYOUTS
    num_authors: int = 200                   # fictitious corpus: trained authors (+ holdout_percent% never trained)
    world_seed: int = 0
    holdout_percent: int = 10
    eval_max_examples: int = 100             # cap per evaluation set (MUSE's have 100 each)
    retain_eval_examples: int = 100          # cap on knowmem retain_qa
    max_new_tokens: int = KNOWMEM_MAX_NEW_TOKENS          # knowmem answers (eval.py knowmem_max_new_tokens)
    verbmem_max_new_tokens: int = VERBMEM_MAX_NEW_TOKENS  # verbmem continuations (eval.py verbmem_max_new_tokens)
    privleak_reference: str = "retrain"      # retrain: the retain reference model's AUC | published: MUSE's constants
