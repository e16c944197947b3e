"""Models and tokenizers: the tiny model from scratch, hub ids, local `save_pretrained` directories."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from unlearn_bench.models.compat import add_legacy_fields
from unlearn_bench.runtime.device import load_dtype
from unlearn_bench.models.tiny import build_tiny_model, train_tokenizer


def base_tokenizer(cfg: Any, corpus: Sequence[str]) -> PreTrainedTokenizerBase:
    if cfg.path is None:
        return train_tokenizer(corpus, cfg.vocab_size)
    return load_tokenizer(cfg.path, cfg)


def base_model(cfg: Any, tokenizer: PreTrainedTokenizerBase, seed: int) -> PreTrainedModel:
    if cfg.path is None:
        return build_tiny_model(
            tokenizer,
            hidden_size=cfg.hidden_size,
            num_layers=cfg.num_layers,
            num_heads=cfg.num_heads,
            intermediate_size=cfg.intermediate_size,
            max_position_embeddings=max(cfg.max_length, 64),
            seed=seed,
        )
    return load_saved(cfg.path, cfg)


def load_saved(path: str | Path, cfg: Any) -> PreTrainedModel:
    model = AutoModelForCausalLM.from_pretrained(
        str(path), dtype=load_dtype(cfg.dtype), trust_remote_code=cfg.trust_remote_code
    )
    if cfg.gradient_checkpointing and torch.cuda.is_available():
        model.gradient_checkpointing_enable()
    return model


def load_tokenizer(path: str | Path, cfg: Any) -> PreTrainedTokenizerBase:
    """The tokenizer saved beside a model; `model.tokenizer_path` stands in for checkpoints shipped without one."""
    source = cfg.tokenizer_path if cfg.tokenizer_path and str(path) in (cfg.path, cfg.retain_path) else str(path)
    tok = AutoTokenizer.from_pretrained(source, trust_remote_code=cfg.trust_remote_code)
    if tok.pad_token is None:  # Llama-2 and others ship without one; padding is masked anyway
        tok.pad_token = tok.eos_token
    return tok


def save(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, out: Path) -> None:
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    add_legacy_fields(out)  # loadable by transformers 4.45 (open-unlearning's) too
