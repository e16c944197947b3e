"""MUSE loaders: real knowmem records, schema-faithful fixtures for the rest (metrics: test_metrics_muse.py)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from unlearn_bench.benchmarks.muse import data as muse_data
from unlearn_bench.benchmarks.muse.data import (
    load_icl,
    load_knowmem,
    load_privleak,
    load_raw,
    load_texts,
    load_verbmem,
)
from unlearn_bench.data.records import QA, DataError, EvalQA


def _write(root: Path, corpus: str, config: str, split: str, records: list[dict], jsonl: bool = False) -> Path:
    path = root / corpus / config / f"{split}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r) + "\n" for r in records) if jsonl else json.dumps(records, indent=1)
    path.write_text(text, encoding="utf-8")
    return path


# --- loaders on the real knowmem records -------------------------------------------------------------------


@pytest.mark.parametrize("corpus", ["news", "books"])
def test_real_knowmem_counts(shared_data, corpus):
    root = shared_data / "muse"
    for split in ("forget_qa", "retain_qa"):
        qa = load_knowmem(corpus, split, data_dir=root)
        assert len(qa) == 100 and all(isinstance(r, EvalQA) for r in qa)
        shots = load_icl(corpus, split, data_dir=root)
        assert len(shots) == 10 and all(isinstance(r, QA) for r in shots)


def test_real_knowmem_first_records(shared_data):
    root = shared_data / "muse"
    assert load_knowmem("news", "forget_qa", data_dir=root)[0].as_qa() == QA(
        "What year did the Orkney Islands become part of Scotland?", "1472")
    assert load_knowmem("books", "forget_qa", data_dir=root)[0].answer == "the Golden Snitch"
    assert load_icl("books", "retain_qa", data_dir=root)[0] == QA("Who did Draco Malfoy eventually marry?",
                                                                 "Astoria Greengrass.")


# --- loaders on fixtures in the hub schema ------------------------------------------------------------------


def test_verbmem_fixture(tmp_path):
    _write(tmp_path, "news", "verbmem", "forget", [{"prompt": "The council said", "gt": " on Monday that"}])
    assert load_verbmem("news", data_dir=tmp_path) == [{"prompt": "The council said", "gt": " on Monday that"}]


def test_privleak_and_raw_fixtures(tmp_path):
    for split in ("forget", "retain", "holdout"):
        _write(tmp_path, "books", "privleak", split, [{"text": f"{split} a"}, {"text": f"{split} b"}], jsonl=True)
    _write(tmp_path, "books", "raw", "retain2", [{"text": "kept text"}])
    _write(tmp_path, "books", "scal", "forget_3", [{"text": "fold three"}])
    assert load_privleak("books", data_dir=tmp_path) == {
        "forget": ["forget a", "forget b"], "retain": ["retain a", "retain b"], "holdout": ["holdout a", "holdout b"]}
    assert load_raw("books", "retain2", data_dir=tmp_path) == ["kept text"]
    assert load_texts("books", "scal", "forget_3", data_dir=tmp_path) == ["fold three"]


def test_malformed_record_names_file_record_field(tmp_path):
    path = _write(tmp_path, "news", "verbmem", "forget", [{"prompt": "p", "gt": "g"}, {"prompt": "p2"}])
    with pytest.raises(DataError) as err:
        load_verbmem("news", data_dir=tmp_path)
    assert str(path) in str(err.value) and "record 2" in str(err.value) and "'gt'" in str(err.value)


def test_empty_text_is_rejected(tmp_path):
    _write(tmp_path, "news", "raw", "forget", [{"text": "fine"}, {"text": "  "}])
    with pytest.raises(DataError, match="record 2: field 'text' is empty"):
        load_raw("news", "forget", data_dir=tmp_path)


def test_missing_file_and_unknown_names(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        load_raw("news", "holdout", data_dir=tmp_path)
    with pytest.raises(ValueError, match="no split 'retain'"):
        load_raw("news", "retain", data_dir=tmp_path)  # raw has retain1/retain2; privleak has retain
    with pytest.raises(ValueError, match="unknown MUSE corpus"):
        load_knowmem("bbc", data_dir=tmp_path)
    with pytest.raises(ValueError, match="knowmem QA split"):
        load_knowmem("news", "forget_qa_icl", data_dir=tmp_path)


def test_hub_path_uses_config_and_split(monkeypatch):
    calls = []

    def fake_load_dataset(hub_id, config, split):
        calls.append((hub_id, config, split))
        return [{"question": "q1", "answer": "a1"}, {"question": "q2", "answer": 3}]

    monkeypatch.setattr("datasets.load_dataset", fake_load_dataset)
    with pytest.raises(DataError, match=r"muse-bench/MUSE-Books knowmem/retain_qa_icl: record 2: field 'answer'"):
        load_icl("books", "retain_qa")
    assert calls == [("muse-bench/MUSE-Books", "knowmem", "retain_qa_icl")]
    assert muse_data.HUB_IDS["news"] == "muse-bench/MUSE-News"
