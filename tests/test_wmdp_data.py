from __future__ import annotations

import json
from pathlib import Path

import pytest

from unlearn_bench.benchmarks.wmdp.data import (
    WMDP_DOMAINS,
    find_wmdp_file,
    load_mmlu,
    load_mmlu_csv,
    load_wmdp,
    load_wmdp_file,
    mmlu_subjects,
)
from unlearn_bench.data.records import DataError

GOOD = {"question": "Which?", "choices": ["a", "b", "c", "d"], "answer": 2}


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_shared_wmdp_samples_load_40_per_domain(shared_data: Path) -> None:
    per_domain = {d: load_wmdp(shared_data, d) for d in WMDP_DOMAINS}
    assert {d: len(r) for d, r in per_domain.items()} == {"bio": 40, "chem": 40, "cyber": 40}
    first = per_domain["bio"][0]
    assert first["question"].startswith("Which of the following herpesvirus proteins")
    assert first["choices"][3] == "DNA polymerase" and first["answer"] == 3


def test_shared_mmlu_csvs_parse_quoted_newlines(shared_data: Path) -> None:
    assert mmlu_subjects(shared_data) == ["college_biology", "computer_security", "high_school_geography"]
    # college_biology's test CSV has 147 lines but 144 rows: some questions span lines inside quotes.
    counts = {s: len(load_mmlu(shared_data, s, "test")) for s in mmlu_subjects(shared_data)}
    assert counts == {"college_biology": 144, "computer_security": 100, "high_school_geography": 202}
    assert all(len(load_mmlu(shared_data, s, "dev")) == 5 for s in counts)
    geo = load_mmlu(shared_data, "high_school_geography", "test")[0]
    assert geo["choices"][1] == "a well-connected transportation infrastructure." and geo["answer"] == 1


def test_wmdp_json_lines_and_json_list_give_the_same_records(tmp_path: Path) -> None:
    jsonl = write_jsonl(tmp_path / "a.jsonl", [GOOD, GOOD])
    listed = tmp_path / "b.json"
    listed.write_text(json.dumps([GOOD, GOOD]), encoding="utf-8")
    assert load_wmdp_file(jsonl) == load_wmdp_file(listed) == [GOOD, GOOD]


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({**GOOD, "choices": ["a", "b", "c"]}, "choices"),
        ({**GOOD, "choices": ["a", "b", "c", 4]}, "choices"),
        ({**GOOD, "answer": 4}, "answer"),
        ({**GOOD, "answer": -1}, "answer"),
        ({**GOOD, "answer": True}, "answer"),
        ({**GOOD, "answer": "C"}, "answer"),
        ({"choices": GOOD["choices"], "answer": 0}, "question"),
    ],
)
def test_bad_wmdp_record_names_file_record_and_field(tmp_path: Path, bad: dict, field: str) -> None:
    path = write_jsonl(tmp_path / "wmdp" / "wmdp-bio.jsonl", [GOOD, bad])
    with pytest.raises(DataError, match=rf"wmdp-bio\.jsonl: record 2: .*'{field}'"):
        load_wmdp(tmp_path, "bio")


def test_wmdp_file_must_be_unique(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="found no file"):
        find_wmdp_file(tmp_path, "chem")
    write_jsonl(tmp_path / "wmdp" / "wmdp-chem.jsonl", [GOOD])
    write_jsonl(tmp_path / "wmdp" / "wmdp-chem.sample.json", [GOOD])
    with pytest.raises(DataError, match="found 2 files"):
        find_wmdp_file(tmp_path, "chem")
    with pytest.raises(ValueError, match="unknown WMDP domain"):
        find_wmdp_file(tmp_path, "physics")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ('"Q?",a,b,c,d,E', r"record 2: field 'answer' should be one of A-D, got 'E'"),
        ('"Q?",a,b,c,A', r"record 2: expected 6 columns"),
    ],
)
def test_bad_mmlu_row_names_file_and_row(tmp_path: Path, row: str, message: str) -> None:
    path = tmp_path / "x_test.csv"
    path.write_text(f'"Q, with comma?",a,b,c,d,B\n{row}\n', encoding="utf-8")
    with pytest.raises(DataError, match=rf"x_test\.csv: {message}"):
        load_mmlu_csv(path)


def test_mmlu_csv_row_becomes_hub_schema(tmp_path: Path) -> None:
    path = tmp_path / "x_test.csv"
    path.write_text('"Q, with comma?",a,b,c,d,B\n', encoding="utf-8")
    assert load_mmlu_csv(path) == [{"question": "Q, with comma?", "choices": ["a", "b", "c", "d"], "answer": 1}]
