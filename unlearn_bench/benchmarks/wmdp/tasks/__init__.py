"""Offline lm-eval task configs (`offline_wmdp_*`, `offline_mmlu_*`) that read WMDP and MMLU from local files.

Use with `TaskManager(include_path=TASKS_DIR, metadata={"data_dir": ...})`, or from lm-eval's CLI:
`lm_eval --include_path <this folder> --tasks offline_wmdp_bio --metadata '{"data_dir": "/path/to/data"}'`.
"""
from pathlib import Path

TASKS_DIR = Path(__file__).resolve().parent
