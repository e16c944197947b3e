"""`custom_dataset` loaders of the offline tasks.

lm-eval calls a task's `custom_dataset` with the TaskManager's metadata (where `data_dir` travels) plus the
task's `dataset_kwargs` (`domain` or `subject`), so one shared template serves every domain and subject.
The records go through `unlearn_bench.benchmarks.wmdp.data`, which validates them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import datasets

from unlearn_bench.benchmarks.wmdp import data as wmdp_data


def _data_dir(data_dir: str | None) -> Path:
    if data_dir is None:
        raise ValueError(
            "offline tasks need the data directory in the task metadata: "
            "TaskManager(metadata={'data_dir': ...}) or lm_eval --metadata '{\"data_dir\": ...}'"
        )
    return Path(data_dir)


def load_wmdp(domain: str, data_dir: str | None = None, **_metadata: Any) -> datasets.DatasetDict:
    """The `test` split of `wmdp-<domain>`, as `cais/wmdp` has it (the only split on the hub)."""
    records = wmdp_data.load_wmdp(_data_dir(data_dir), domain)
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(records)})


def load_mmlu(subject: str, data_dir: str | None = None, **_metadata: Any) -> datasets.DatasetDict:
    """`test` and `dev` (the few-shot pool lm-eval's MMLU draws from) of one subject."""
    root = _data_dir(data_dir)
    return datasets.DatasetDict(
        {split: datasets.Dataset.from_list(wmdp_data.load_mmlu(root, subject, split)) for split in wmdp_data.MMLU_SPLITS}
    )
