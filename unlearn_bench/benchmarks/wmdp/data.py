"""WMDP and MMLU multiple-choice records, read from local files and validated.

Both are returned in one shape, `MCQuestion` (`question`, `choices`, `answer` index), which is the hub schema
of `cais/wmdp` and the part of `cais/mmlu` that lm-eval's prompts use, so the offline lm-eval tasks
(`unlearn_bench/benchmarks/wmdp/tasks`) can render them with lm-eval's own templates.

Layouts under a data directory:
- WMDP: `wmdp/wmdp-<domain>*.json` or `.jsonl` (JSON Lines or one JSON list), records as on the hub.
- MMLU: the 2020 CSV release (`question,A,B,C,D,answer` letter, no header) in
  `mmlu/test/<subject>_test.csv` and `mmlu/dev/<subject>_dev.csv`.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, TypedDict

from unlearn_bench.data.records import DataError, read_json_records, read_text, require_field
from unlearn_bench.benchmarks.wmdp.tasks import TASKS_DIR

WMDP_DOMAINS = ("bio", "chem", "cyber")
LETTERS = ("A", "B", "C", "D")
MMLU_SPLITS = ("test", "dev")  # dev: the few-shot pool lm-eval's MMLU draws from
OFFLINE_TASK_NAMES = "wmdp, wmdp_bio, wmdp_chem, wmdp_cyber, mmlu or mmlu_<subject>"


class MCQuestion(TypedDict):
    question: str
    choices: list[str]
    answer: int


def validate_wmdp_record(rec: dict[str, Any], path: Path | str, index: int) -> MCQuestion:
    """One hub-schema WMDP record checked field by field; `index` is the 1-based record number."""
    question = require_field(rec, "question", str, path, index)
    choices = require_field(rec, "choices", list, path, index)
    if len(choices) != len(LETTERS) or not all(isinstance(c, str) for c in choices):
        raise DataError(f"{path}: record {index}: field 'choices' should be a list of 4 strings, got {choices!r}")
    answer = require_field(rec, "answer", int, path, index)
    # bool is an int subclass; `true` in a file is a schema error, not answer 1.
    if isinstance(answer, bool) or not 0 <= answer < len(choices):
        raise DataError(f"{path}: record {index}: field 'answer' should be an index in 0-3, got {answer!r}")
    return MCQuestion(question=question, choices=list(choices), answer=answer)


def load_wmdp_file(path: Path) -> list[MCQuestion]:
    return [validate_wmdp_record(rec, path, i) for i, rec in enumerate(read_json_records(path), start=1)]


def find_wmdp_file(data_dir: Path, domain: str) -> Path:
    """The one file of `domain` under `<data_dir>/wmdp/`; none or several is an error, never a guess."""
    if domain not in WMDP_DOMAINS:
        raise ValueError(f"unknown WMDP domain {domain!r}; expected one of {WMDP_DOMAINS}")
    folder = data_dir / "wmdp"
    found = sorted(p for p in folder.glob(f"wmdp-{domain}*") if p.suffix in (".json", ".jsonl"))
    if len(found) != 1:
        what = "no file" if not found else f"{len(found)} files ({', '.join(p.name for p in found)})"
        raise DataError(f"{folder}: expected one wmdp-{domain}*.json or .jsonl file, found {what}")
    return found[0]


def load_wmdp(data_dir: Path, domain: str) -> list[MCQuestion]:
    return load_wmdp_file(find_wmdp_file(data_dir, domain))


def load_mmlu_csv(path: Path) -> list[MCQuestion]:
    """Rows of a 2020-layout MMLU CSV; errors name the file, record (row) and field."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    records: list[MCQuestion] = []
    with io.StringIO(read_text(path), newline="") as f:
        # csv, not line splitting: questions may hold quoted newlines (college_biology does).
        for index, row in enumerate(csv.reader(f), start=1):
            if len(row) != 6:
                raise DataError(f"{path}: record {index}: expected 6 columns (question,A,B,C,D,answer), got {len(row)}")
            question, *choices, letter = row
            if letter.strip() not in LETTERS:
                raise DataError(f"{path}: record {index}: field 'answer' should be one of A-D, got {letter!r}")
            records.append(MCQuestion(question=question, choices=choices, answer=LETTERS.index(letter.strip())))
    return records


def mmlu_path(data_dir: Path, subject: str, split: str) -> Path:
    return data_dir / "mmlu" / split / f"{subject}_{split}.csv"


def load_mmlu(data_dir: Path, subject: str, split: str) -> list[MCQuestion]:
    return load_mmlu_csv(mmlu_path(data_dir, subject, split))


def mmlu_subjects(data_dir: Path) -> list[str]:
    """Subjects with a test CSV under `<data_dir>/mmlu/test`, sorted; a DataError when there is none."""
    subjects = sorted(p.name.removesuffix("_test.csv") for p in (data_dir / "mmlu" / "test").glob("*_test.csv"))
    if not subjects:
        raise DataError(f"{data_dir / 'mmlu' / 'test'}: no <subject>_test.csv files")
    return subjects


def no_offline_task(name: str) -> ValueError:
    return ValueError(f"no offline version of task {name!r}: with data_dir, use {OFFLINE_TASK_NAMES}")


def check_offline_tasks(tasks: list[str], data_dir: Path) -> None:
    """Read and validate every local file the offline lm-eval tasks `tasks` will read (the mapping of
    `unlearn_bench.evaluation.lm_eval.offline_tasks`), so a missing or malformed one fails before any training,
    naming the file (and record and field)."""
    for name in tasks:
        if name == "wmdp" or (name.startswith("wmdp_") and name[len("wmdp_"):] in WMDP_DOMAINS):
            for domain in WMDP_DOMAINS if name == "wmdp" else (name.removeprefix("wmdp_"),):
                load_wmdp(data_dir, domain)
            continue
        if name == "mmlu":
            subjects = mmlu_subjects(data_dir)
        elif name.startswith("mmlu_") and (TASKS_DIR / "mmlu" / f"offline_{name}.yaml").is_file():
            subjects = [name.removeprefix("mmlu_")]
        else:
            raise no_offline_task(name)
        for subject in subjects:
            for split in MMLU_SPLITS:
                load_mmlu(data_dir, subject, split)
