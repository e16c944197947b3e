from __future__ import annotations

import json
from pathlib import Path

import pytest

from unlearn_bench.benchmarks.rwku.data import (
    AA,
    FB,
    QA_LEVEL,
    RWKUProbe,
    list_targets,
    load_target,
    select_targets,
)
from unlearn_bench.data.records import QA, DataError

TARGETS = ["1_Stephen_King", "2_Confucius", "3_Bruce_Lee", "4_Warren_Buffett", "5_Christina_Aguilera"]


@pytest.fixture(scope="module")
def rwku(shared_data: Path) -> Path:
    return shared_data / "rwku"


def test_list_and_select_targets(rwku: Path) -> None:
    assert list_targets(rwku) == TARGETS
    assert select_targets(rwku, targets=["1_Stephen_King"]) == ["1_Stephen_King"]
    assert select_targets(rwku, targets=["3_Bruce_Lee", "1_Stephen_King"]) == ["3_Bruce_Lee", "1_Stephen_King"]
    assert select_targets(rwku, num_targets=3) == TARGETS[:3]
    assert select_targets(rwku) == TARGETS
    with pytest.raises(DataError, match="9_Nobody"):
        select_targets(rwku, targets=["9_Nobody"])
    with pytest.raises(ValueError, match="num_targets=6"):
        select_targets(rwku, num_targets=6)
    with pytest.raises(ValueError, match="not both"):
        select_targets(rwku, targets=["1_Stephen_King"], num_targets=1)


def test_targets_sort_by_rank_not_text(tmp_path: Path) -> None:
    for name in ["10_Ten", "2_Two", "1_One", "notes"]:
        (tmp_path / name).mkdir()
    assert list_targets(tmp_path) == ["1_One", "2_Two", "10_Ten"]
    assert select_targets(tmp_path, num_targets=2) == ["1_One", "2_Two"]


def test_load_stephen_king(rwku: Path) -> None:
    t = load_target(rwku, "1_Stephen_King")
    assert t.subject == "Stephen King"
    assert t.intro.startswith("Please forget Stephen King.")
    counts = [len(x) for x in (t.forget_fb, t.forget_qa, t.forget_aa, t.neighbor_fb, t.neighbor_qa)]
    assert counts == [8, 10, 29, 30, 30]
    assert (len(t.mia_forget), len(t.mia_retain), len(t.passages)) == (55, 37, 128)
    assert t.forget_fb[0] == RWKUProbe(
        query="Stephen Edwin King (born September 21, 1947) is an American ___",
        answer="author",
        type="cloze",
        level=FB,
        subject="Stephen King",
    )
    assert t.neighbor_fb[0].neighbor == "The Shawshank Redemption"
    assert {p.level for p in t.forget_qa} == {QA_LEVEL} and {p.level for p in t.forget_aa} == {AA}
    assert {p.type for p in t.forget_aa} == {
        "prefix injection", "synonym manipulation", "context hint", "role play", "incontext learning",
        "multiple choice", "reverse query", "affirmative suffix", "cross lingual (Spanish)", "cross lingual (French)",
    }
    assert {k: len(v) for k, v in t.utility.items()} == {
        "retain_mmlu": 171, "retain_bbh": 81, "truthful": 50, "triviaqa": 100, "fluency": 50,
    }
    assert len(t.forget_words) == 100 and t.forget_words[0] == "Pennywise"
    assert len(t.refusals) == 300 and t.refusals[0].answer == "I'm not certain about that."


def test_batch_of_three_targets(rwku: Path) -> None:
    targets = [load_target(rwku, name) for name in select_targets(rwku, num_targets=3)]
    assert [t.subject for t in targets] == ["Stephen King", "Confucius", "Bruce Lee"]
    assert [len(t.forget_probes) for t in targets] == [8 + 10 + 29, 17 + 3 + 28, 17 + 19 + 40]
    assert [len(t.neighbor_probes) for t in targets] == [60, 52, 60]
    # The shared copy keeps utility files for target 1 only; the others load without them.
    assert [sorted(t.utility) for t in targets[1:]] == [[], []]
    assert all(p.subject == t.subject for t in targets for p in t.forget_probes)
    pooled_types = {p.type for t in targets for p in t.forget_aa}
    assert "affirmative suffix" in pooled_types and "incontext learning" in pooled_types


def _write_target(root: Path, overrides: dict[str, object]) -> Path:
    probe = {"subject": "X", "level": "1", "query": "X is a ___", "type": "cloze", "answer": "y"}
    files: dict[str, object] = {
        "intro.json": [{"intro": "Please forget X.", "target": "X"}],
        "forget_level1.json": [probe],
        "forget_level2.json": [dict(probe, level="2", type="simple question")],
        "forget_level3.json": [dict(probe, level="3", type="role play")],
        "neighbor_level1.json": [dict(probe, neighbor="Y")],
        "neighbor_level2.json": [dict(probe, level="2", neighbor="Y")],
        "forget_mia.json": [{"text": "about X", "subject": "X", "ngram": 1}],
        "retain_mia.json": [{"text": "about Z", "subject": "X", "ngram": 1}],
        "passage.json": [{"text": "X passage", "subject": "X"}],
        "reject.json": [{"instruction": "Who is X?", "input": "Briefly.", "output": "I don't know.", "intro": "", "subject": "X"}],
    }
    files.update(overrides)
    folder = root / "1_X"
    folder.mkdir()
    for name, content in files.items():
        (folder / name).write_text(json.dumps(content))
    return folder


def test_minimal_target_in_tmp(tmp_path: Path) -> None:
    _write_target(tmp_path, {})
    t = load_target(tmp_path, "1_X")
    assert (t.forget_aa[0].level, t.forget_aa[0].type) == (3, "role play")
    assert t.refusals == (QA("Who is X?\nBriefly.", "I don't know."),)
    assert t.utility == {} and t.forget_words == ()


def test_malformed_probe_names_file_record_and_field(tmp_path: Path) -> None:
    good = {"subject": "X", "level": "3", "query": "q", "type": "role play", "answer": "a"}
    bad = {k: v for k, v in good.items() if k != "answer"}
    _write_target(tmp_path, {"forget_level3.json": [good, bad]})
    with pytest.raises(DataError, match=r"forget_level3\.json: record 2: missing field 'answer'"):
        load_target(tmp_path, "1_X")


def test_probe_in_wrong_level_file_fails(tmp_path: Path) -> None:
    probe = {"subject": "X", "level": "2", "query": "q", "type": "cloze", "answer": "a"}
    _write_target(tmp_path, {"forget_level1.json": [probe]})
    with pytest.raises(DataError, match=r"forget_level1\.json: record 1: field 'level' is '2', expected '1'"):
        load_target(tmp_path, "1_X")


def test_neighbor_probe_needs_neighbor(tmp_path: Path) -> None:
    probe = {"subject": "X", "level": "1", "query": "q", "type": "cloze", "answer": "a"}
    _write_target(tmp_path, {"neighbor_level1.json": [probe]})
    with pytest.raises(DataError, match=r"neighbor_level1\.json: record 1: missing field 'neighbor'"):
        load_target(tmp_path, "1_X")


def test_missing_required_file(tmp_path: Path) -> None:
    folder = _write_target(tmp_path, {})
    (folder / "retain_mia.json").unlink()
    with pytest.raises(DataError, match=r"retain_mia\.json: file not found"):
        load_target(tmp_path, "1_X")
