"""Hub datasets that fail fast when the hub is out of reach, naming the offline way.

Without a network, `datasets.load_dataset` retries each request for about 25 s before it says it "couldn't reach"
the dataset, and never says that a local copy (`bench.data_dir`) would do. Here one quick request to the hub
decides first (once per process), and every failure to load names the config field that reads local files. With
`HF_HUB_OFFLINE` / `HF_DATASETS_OFFLINE` set no request is made: the datasets library reads its local cache.
"""
from __future__ import annotations

import functools
import os
from typing import Any, Callable, TypeVar

from unlearn_bench.data.records import DataError

T = TypeVar("T")

PROBE_TIMEOUT_S = 5.0
OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")


def offline() -> bool:
    return any(os.environ.get(v, "").strip().upper() in ("1", "ON", "YES", "TRUE") for v in OFFLINE_VARIABLES)


@functools.lru_cache(maxsize=None)
def unreachable(endpoint: str) -> str | None:
    """Why `endpoint` cannot be reached (one HEAD request through the hub client's session), None if it can."""
    from huggingface_hub.utils import get_session

    try:
        get_session().head(endpoint, timeout=PROBE_TIMEOUT_S)
    except Exception as e:  # DNS, refused, timeout, proxy: each library version names them differently
        return f"{type(e).__name__}: {e}"
    return None


def from_hub(what: str, local_field: str, load: Callable[[], T]) -> T:
    """`load()` (a hub download of `what`), or a DataError within seconds naming `local_field` as the offline way
    when the hub cannot be reached or the download fails."""
    from huggingface_hub import constants

    hint = (f"set {local_field} to a local copy (see the README's data section)"
            + ("" if offline() else ", or HF_DATASETS_OFFLINE=1 to read the Hugging Face cache"))
    if not offline() and (problem := unreachable(constants.ENDPOINT)):
        raise DataError(f"{what}: the Hugging Face hub ({constants.ENDPOINT}) cannot be reached ({problem}); {hint}")
    try:
        return load()
    except (ConnectionError, OSError) as e:  # offline and not cached, or the network went away meanwhile
        raise DataError(f"{what}: cannot be loaded from the hub ({type(e).__name__}: {e}); {hint}") from e


def load_hub_dataset(hub_id: str, config: str, split: str, local_field: str = "bench.data_dir", **kwargs: Any) -> Any:
    """`datasets.load_dataset(hub_id, config, split=split, **kwargs)` through `from_hub`."""
    from datasets import load_dataset  # heavy import, only for the network path

    return from_hub(f"{hub_id} ({config}/{split})", local_field, lambda: load_dataset(hub_id, config, split=split, **kwargs))
