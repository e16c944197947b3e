"""Checkpoints that older transformers load too (open-unlearning pins transformers 4.45).

transformers 5 writes a model's RoPE settings only as `rope_parameters` and its dtype as `dtype`, and names a
tokenizer built on the `tokenizers` library `TokenizersBackend`. 4.45 reads `rope_theta`, `rope_scaling` and
`torch_dtype`, and knows that tokenizer as `PreTrainedTokenizerFast` (which 5 still loads): without the legacy
fields it silently uses its default RoPE base (10,000; Llama-3's is 500,000) and cannot build the tokenizer.
Both versions read the files below, each its own fields.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

LEGACY_TOKENIZER_CLASS = {"TokenizersBackend": "PreTrainedTokenizerFast"}


def legacy_config(config: dict[str, Any]) -> dict[str, Any]:
    """`config.json` with the fields transformers 4.45 reads added beside transformers 5's."""
    out = dict(config)
    rope = config.get("rope_parameters")
    if isinstance(rope, dict) and "rope_theta" in rope:
        out.setdefault("rope_theta", rope["rope_theta"])
        scaling = {k: v for k, v in rope.items() if k != "rope_theta"}
        out.setdefault("rope_scaling", scaling if scaling.get("rope_type", "default") != "default" else None)
    if "dtype" in config:
        out.setdefault("torch_dtype", config["dtype"])
    return out


def legacy_tokenizer_config(config: dict[str, Any]) -> dict[str, Any]:
    out = dict(config)
    if out.get("tokenizer_class") in LEGACY_TOKENIZER_CLASS:
        out["tokenizer_class"] = LEGACY_TOKENIZER_CLASS[out["tokenizer_class"]]
    return out


def add_legacy_fields(folder: str | Path) -> None:
    """Rewrite a saved checkpoint's config.json and tokenizer_config.json with the legacy fields (in place)."""
    for name, convert in (("config.json", legacy_config), ("tokenizer_config.json", legacy_tokenizer_config)):
        path = Path(folder) / name
        if path.is_file():
            path.write_text(json.dumps(convert(json.loads(path.read_text())), indent=2, sort_keys=True) + "\n")
