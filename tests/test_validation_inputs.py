"""Evaluation-only files of every benchmark (and of `eval.utility`) are read by the start check: a missing or
malformed one fails the run before any fine-tuning, naming the file (and the record and field)."""
from __future__ import annotations

import csv
import io
import json
import re
import shutil
from pathlib import Path
from typing import Callable

import pytest

from unlearn_bench.benchmarks.fictitious.muse_corpus import fictitious_corpus, write_hub_layout
from unlearn_bench.data.records import DataError
from unlearn_bench.pipeline.runner import run

KING = "1_Stephen_King"


def _edit_records(path: Path, edit: Callable[[list[dict]], None]) -> None:
    records = json.loads(path.read_text(encoding="utf-8"))
    edit(records)
    path.write_text(json.dumps(records), encoding="utf-8")


def _fails_before_training(compose_cfg, overrides: list[str], tmp_path: Path, message: str) -> None:
    with pytest.raises(DataError, match=message):
        run(compose_cfg(overrides))
    assert not (tmp_path / "cache" / "finetune").exists()


@pytest.fixture
def muse_dir(shared_data: Path, tmp_path: Path) -> Path:
    """news in the hub layout: MUSE's real knowmem files, the rest (not shipped: copyrighted) in its schema."""
    root = tmp_path / "muse"
    shutil.copytree(shared_data / "muse" / "news" / "knowmem", root / "news" / "knowmem")
    write_hub_layout(fictitious_corpus(num_authors=20, seed=0), root, "news", skip=("knowmem",))
    return root


@pytest.mark.parametrize("file, edit, message", [
    ("verbmem/forget.json", None, r"verbmem/forget\.json: file not found"),
    ("knowmem/retain_qa_icl.json", None, r"knowmem/retain_qa_icl\.json: file not found"),
    ("privleak/holdout.json", lambda rs: rs[1].pop("text"), r"privleak/holdout\.json: record 2: missing field 'text'"),
    ("knowmem/forget_qa.json", lambda rs: rs[2].update(answer=" "), r"knowmem/forget_qa\.json: record 3: field 'answer' is empty"),
])
def test_muse_evaluation_file(compose_cfg, smoke_overrides, muse_dir, tmp_path, file, edit, message) -> None:
    path = muse_dir / "news" / file
    path.unlink() if edit is None else _edit_records(path, edit)
    _fails_before_training(compose_cfg, smoke_overrides + ["bench=muse", "bench.corpus=news", f"bench.data_dir={muse_dir}"],
                           tmp_path, message)


@pytest.mark.parametrize("file, edit, message", [
    ("neighbor_level2.json", None, r"neighbor_level2\.json: file not found"),
    ("retain_mia.json", lambda rs: rs[0].update(text=3), r"retain_mia\.json: record 1: field 'text' should be"),
    ("forget_level3.json", lambda rs: rs[4].update(level="1"), r"forget_level3\.json: record 5: field 'level' is '1'"),
    ("triviaqa.json", lambda rs: rs[4].update(answers=[]), r"triviaqa\.json: record 5: field 'answers' is empty"),
])
def test_rwku_evaluation_file(compose_cfg, smoke_overrides, shared_data, tmp_path, file, edit, message) -> None:
    root = tmp_path / "rwku"
    shutil.copytree(shared_data / "rwku" / KING, root / KING)
    path = root / KING / file
    path.unlink() if edit is None else _edit_records(path, edit)
    _fails_before_training(compose_cfg, smoke_overrides + ["bench=rwku", "bench.source=local", f"bench.data_dir={root}",
                                                           f"bench.targets=[{KING}]"], tmp_path, message)


def _wmdp_corpora(tmp_path: Path) -> list[str]:
    """Local forget/retain corpora, so the run reads no hub dataset before its evaluation files are checked."""
    forget, retain = tmp_path / "forget.jsonl", tmp_path / "retain.txt"
    forget.write_text("".join(json.dumps({"text": f"Exploit {i} leaks the heap of service {i}."}) + "\n" for i in range(4)))
    retain.write_text("".join(f"The river {i} flows past the old town.\n" for i in range(4)))
    return [f"bench.forget_corpora=[{forget}]", f"bench.retain_corpora=[{retain}]"]


@pytest.mark.parametrize("remove, edit, message", [
    ("wmdp/wmdp-chem.sample40.json", None, r"wmdp: expected one wmdp-chem\*\.json or \.jsonl file, found no file"),
    ("mmlu/dev/college_biology_dev.csv", None, r"college_biology_dev\.csv: file not found"),
    (None, lambda rs: rs[6].update(answer=4), r"wmdp-bio\.sample40\.json: record 7: field 'answer' should be an index"),
])
def test_wmdp_question_file(compose_cfg, smoke_overrides, shared_data, tmp_path, remove, edit, message) -> None:
    root = tmp_path / "data"
    for folder in ("wmdp", "mmlu"):
        shutil.copytree(shared_data / folder, root / folder)
    if remove is not None:
        (root / remove).unlink()
    if edit is not None:
        _edit_records(root / "wmdp" / "wmdp-bio.sample40.json", edit)
    overrides = smoke_overrides + ["bench=wmdp", f"bench.data_dir={root}", "bench.eval_tasks=[wmdp]",
                                   "bench.utility_tasks=[mmlu_college_biology]", *_wmdp_corpora(tmp_path)]
    _fails_before_training(compose_cfg, overrides, tmp_path, message)


def test_wmdp_unknown_offline_task_fails_at_start(compose_cfg, smoke_overrides, shared_data, tmp_path) -> None:
    overrides = smoke_overrides + ["bench=wmdp", f"bench.data_dir={shared_data}", "bench.utility_tasks=[hellaswag]",
                                   *_wmdp_corpora(tmp_path)]
    with pytest.raises(ValueError, match="no offline version of task 'hellaswag'"):
        run(compose_cfg(overrides))
    assert not (tmp_path / "cache" / "finetune").exists()


def test_utility_records_fail_at_start_on_any_benchmark(compose_cfg, smoke_overrides, shared_data, tmp_path) -> None:
    root = tmp_path / "data"
    shutil.copytree(shared_data / "mmlu", root / "mmlu")
    path = root / "mmlu" / "test" / "computer_security_test.csv"
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))[:3] + [["a question", "1", "2", "3"]]
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(rows)
    _fails_before_training(compose_cfg, smoke_overrides + ["eval.utility.tasks=[mmlu]", f"eval.utility.data_dir={root}"],
                           tmp_path, re.escape(f"{path}: record 4: expected 6 columns"))


def test_bare_wmdp_domain_is_not_an_offline_task(shared_data) -> None:
    from unlearn_bench.benchmarks.wmdp.data import check_offline_tasks

    with pytest.raises(ValueError, match="no offline version of task 'bio'"):
        check_offline_tasks(["bio"], shared_data)
