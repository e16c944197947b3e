"""TOFU loader on the real records in ../shared/data/tofu, and on bad input."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from unlearn_bench.benchmarks.tofu.data import (
    holdout_split_for,
    load_refusals,
    load_tofu_split,
    retain_split_for,
    split_path,
    to_eval_qa,
    to_qa,
)
from unlearn_bench.data.records import DataError


@pytest.fixture(scope="module")
def tofu_dir(shared_data: Path) -> Path:
    return shared_data / "tofu"


@pytest.mark.parametrize("name, count", [
    ("full", 4000), ("forget01", 40), ("forget05", 200), ("forget10", 400),
    ("retain90", 3600), ("retain95", 3800), ("retain99", 3960),
    ("holdout10", 400), ("real_authors", 100), ("world_facts", 117),
])
def test_qa_split_counts(tofu_dir: Path, name: str, count: int) -> None:
    qa = to_qa(load_tofu_split(name, tofu_dir), split_path(name, tofu_dir))
    assert len(qa) == count
    assert all(q.question and q.answer for q in qa)


@pytest.mark.parametrize("name, count, width, paraphrased", [
    ("forget10_perturbed", 400, 5, True),
    ("forget01_perturbed", 40, 5, True),
    ("retain_perturbed", 400, 5, True),
    ("real_authors_perturbed", 100, 3, False),
    ("world_facts_perturbed", 117, 3, False),
])
def test_perturbed_splits(tofu_dir: Path, name: str, count: int, width: int, paraphrased: bool) -> None:
    items = to_eval_qa(load_tofu_split(name, tofu_dir), split_path(name, tofu_dir), expect_perturbed=width)
    assert len(items) == count
    assert {len(e.perturbed_answers) for e in items} == {width}
    assert all((e.paraphrased_answer is not None) == paraphrased for e in items)
    assert all((e.paraphrased_question is not None) == paraphrased for e in items)


def test_forget_perturbed_matches_forget_questions(tofu_dir: Path) -> None:
    forget = to_qa(load_tofu_split("forget10", tofu_dir), "forget10")
    perturbed = to_eval_qa(load_tofu_split("forget10_perturbed", tofu_dir), "forget10_perturbed", expect_perturbed=None)
    assert [e.as_qa() for e in perturbed] == forget


def test_retain_pairing_partitions_full(tofu_dir: Path) -> None:
    full = {q.question for q in to_qa(load_tofu_split("full", tofu_dir), "full")}
    for forget in ("forget01", "forget05", "forget10"):
        f = {q.question for q in to_qa(load_tofu_split(forget, tofu_dir), forget)}
        retain = retain_split_for(forget)
        r = {q.question for q in to_qa(load_tofu_split(retain, tofu_dir), retain)}
        assert not f & r and f | r == full


def test_split_name_mapping() -> None:
    assert [retain_split_for(f) for f in ("forget01", "forget05", "forget10")] == ["retain99", "retain95", "retain90"]
    assert holdout_split_for("forget10") == "holdout10"
    assert holdout_split_for("forget01") == "holdout01"
    for bad in ("forget20", "retain90", "forget10_perturbed"):
        with pytest.raises(ValueError, match=bad):
            retain_split_for(bad)
        with pytest.raises(ValueError, match=bad):
            holdout_split_for(bad)


def test_refusals(tofu_dir: Path) -> None:
    refusals = load_refusals(tofu_dir)
    assert len(refusals) > 10
    assert all(r == r.strip() and r for r in refusals)


def _write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _rec(n: int) -> dict:
    return {"question": "q?", "answer": "a", "paraphrased_answer": "pa", "perturbed_answer": ["w"] * n,
            "paraphrased_question": "pq?"}


def test_missing_split_file_names_directory_and_split(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        load_tofu_split("forget10", tmp_path)
    assert str(tmp_path) in str(err.value) and "forget10" in str(err.value)
    with pytest.raises(ValueError, match="unknown TOFU split"):
        load_tofu_split("forget11", tmp_path)


def test_jsonl_suffix_accepted(tmp_path: Path) -> None:
    _write_jsonl(tmp_path / "forget01_perturbed.jsonl", [_rec(5)])
    assert split_path("forget01_perturbed", tmp_path).name == "forget01_perturbed.jsonl"
    assert len(load_tofu_split("forget01_perturbed", tmp_path)) == 1


def test_record_missing_perturbed_answer(tmp_path: Path) -> None:
    bad = _rec(5)
    del bad["perturbed_answer"]
    path = _write_jsonl(tmp_path / "forget10_perturbed.json", [_rec(5), _rec(5), bad])
    with pytest.raises(DataError) as err:
        to_eval_qa(load_tofu_split("forget10_perturbed", tmp_path), path, expect_perturbed=None)
    msg = str(err.value)
    assert "forget10_perturbed.json" in msg and "record 3" in msg and "perturbed_answer" in msg


def test_unequal_perturbed_lengths(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "retain_perturbed.json", [_rec(5), _rec(4)])
    with pytest.raises(DataError) as err:
        to_eval_qa(load_tofu_split("retain_perturbed", tmp_path), path, expect_perturbed=None)
    msg = str(err.value)
    assert "retain_perturbed.json" in msg and "record 2" in msg and "perturbed_answer" in msg
    with pytest.raises(DataError, match="record 1.*perturbed_answer"):
        to_eval_qa([_rec(5)], path, expect_perturbed=3)


def test_wrong_types_rejected(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="record 1.*'paraphrased_answer'"):
        to_eval_qa([{**_rec(3), "paraphrased_answer": 7}], "x.json", expect_perturbed=3)
    with pytest.raises(DataError, match="record 2.*'answer'"):
        to_qa([{"question": "q", "answer": "a"}, {"question": "q"}], "x.json")
    with pytest.raises(DataError, match="perturbed_answer"):
        to_eval_qa([{**_rec(1), "perturbed_answer": [1]}], "x.json", expect_perturbed=None)
