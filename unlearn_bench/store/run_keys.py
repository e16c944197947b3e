"""Identities of a run: the run id (everything that determines its results), the configuration id (the run id
without the seed: the report's row key, so seeds pool and nothing else does) and the baseline id (the
configuration without the method: the fine-tuned and retain models every method of a sweep shares)."""
from __future__ import annotations

from typing import Any

from unlearn_bench.store.cache import config_hash

# Where results go and how the run is executed: no bearing on the results.
VOLATILE = ("paths", "force", "cpu", "parallel_finetune")


def _determining(resolved: dict[str, Any], data_digest: str | None, drop: tuple[str, ...]) -> dict[str, Any]:
    key = {k: v for k, v in resolved.items() if k not in VOLATILE + drop}
    if data_digest is not None:  # absent without local data files, so hub-data run ids stay as they were
        key["data_fingerprint"] = data_digest
    return key


def run_id(resolved: dict[str, Any], data_digest: str | None) -> str:
    return config_hash(_determining(resolved, data_digest, ()))[:12]


def config_id(resolved: dict[str, Any], data_digest: str | None) -> str:
    return config_hash(_determining(resolved, data_digest, ("seed",)))[:12]


def baseline_id(resolved: dict[str, Any], data_digest: str | None) -> str:
    return config_hash(_determining(resolved, data_digest, ("seed", "method")))[:12]


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """{'method.lr': 1e-5, ...}: nested dicts as dotted keys; lists stay values."""
    if not isinstance(tree, dict):
        return {prefix.rstrip("."): tree}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        flat.update(flatten(value, f"{prefix}{key}."))
    return flat


def varying_fields(configs: dict[str, dict[str, Any]]) -> list[str]:
    """The dotted fields (seed and volatile ones excluded) whose values differ among the flattened `configs`."""
    keys = sorted({k for flat in configs.values() for k in flat})
    skip = ("seed",) + VOLATILE
    varying = []
    for key in keys:
        if key.split(".")[0] in skip:
            continue
        values = {repr(flat.get(key)) for flat in configs.values()}
        if len(values) > 1:
            varying.append(key)
    return varying
