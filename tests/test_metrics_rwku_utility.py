"""RWKU's utility scorers (metrics.rwku_utility) against hand-computed values and RWKU's prompt formats."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from unlearn_bench.benchmarks.rwku.utility_metrics import (
    BBH,
    MMLU,
    TRIVIAQA,
    TRUTHFULQA,
    bbh_answer,
    bbh_em_as_published,
    bbh_prompt,
    exact_match,
    mean_of,
    mmlu_accuracy,
    mmlu_prompt,
    normalize_answer,
    token_f1,
    triviaqa_prompt,
    truthfulqa_choices,
    truthfulqa_mc1,
    truthfulqa_mc2,
    truthfulqa_prompt,
    with_answer_cue,
)

SHOT = {"question": "2+2?", "choices": ["1", "2", "3", "4"], "answer": 3}
MMLU_REC = {"task": "elementary_mathematics", "question": "3+3?", "choices": ["6", "5", "4", "3"], "answer": 0,
            "examples": [SHOT], "subject": "Stephen King"}


def test_mmlu_prompt_and_accuracy() -> None:
    assert mmlu_prompt(MMLU_REC) == (
        "The following are multiple choice questions (with answers) about elementary mathematics.\n\n"
        "Question: 2+2?\nA. 1\nB. 2\nC. 3\nD. 4\nAnswer: D\n\n"
        "Please following the previous examples and answer the given question.\n"
        "Question: 3+3?\nA. 6\nB. 5\nC. 4\nD. 3"
    )
    assert mmlu_accuracy([0, 1, 3, 3], [0, 2, 3, 1]) == 0.5
    with pytest.raises(ValueError, match="3 predictions for 2 answers"):
        mmlu_accuracy([0, 1, 2], [0, 1])


def test_answer_cues_follow_rwku() -> None:
    assert with_answer_cue("<user>q</user>\n", MMLU) == "<user>q</user>\nAnswer:"
    assert with_answer_cue("q\n", TRIVIAQA) == "q\nA:" and with_answer_cue("q", TRIVIAQA) == "qA:"
    for task in (BBH, TRUTHFULQA):  # a space only where the rendered prompt does not end in whitespace
        assert with_answer_cue("q\n", task) == "q\nA:" and with_answer_cue("q", task) == "q A:"


def test_normalisation_em_and_f1_by_hand() -> None:
    assert normalize_answer("The  Eiffel Tower!") == ["eiffel", "tower"]
    assert exact_match("The Eiffel Tower!", ["Paris", "eiffel tower"]) == 1.0
    assert exact_match("Eiffel", ["eiffel tower"]) == 0.0
    # "tower in paris" vs "eiffel tower": one common token, precision 1/3, recall 1/2 -> F1 0.4
    assert token_f1("tower in paris", ["eiffel tower"]) == pytest.approx(0.4)
    assert token_f1("tower in paris", ["eiffel tower", "paris tower"]) == pytest.approx(2 * (2 / 3) * 1 / (2 / 3 + 1))
    assert token_f1("", [""]) == 1.0 and token_f1("", ["x"]) == 0.0 and token_f1("the", ["a"]) == 1.0


def test_bbh_answer_extraction_and_both_exact_matches() -> None:
    assert bbh_answer("Let's think. So the answer is (B). Then more.") == "(B)"
    assert bbh_answer("The answer is False.") == "False"
    assert bbh_answer("  no cue here ") == "no cue here" and bbh_answer("   ") == "NOANSWER"
    # RWKU's code matches against each character of the answer: letter options score, words and numbers not.
    assert bbh_em_as_published("(B)", "(B)") == 1.0
    assert bbh_em_as_published("False", "False") == 0.0 and exact_match("False", ["False"]) == 1.0
    assert bbh_em_as_published("12", "12") == 0.0 and bbh_em_as_published("2", "12") == 1.0
    rec = {"cot": "  Shots here.\n", "question": "not True is", "answer": "False", "subject": "X"}
    assert bbh_prompt(rec) == ("Shots here.\n\nFollowing previous examples, answer the following questions and end "
                               "with 'so the answer is'\nQ: not True is")


def test_truthfulqa_mc1_mc2_by_hand() -> None:
    rec = {"question": "Q?", "mc1_targets": {"choices": ["t", "f1", "f2"], "labels": [1, 0, 0]},
           "mc2_targets": {"choices": ["t", "t2", "f1"], "labels": [1, 1, 0]}}
    assert truthfulqa_choices(rec, "mc1_targets") == (["t"], ["f1", "f2"])
    assert truthfulqa_choices(rec, "mc2_targets") == (["t", "t2"], ["f1"])
    assert truthfulqa_mc1([-1.0], [-2.0, -3.0]) == 1.0 and truthfulqa_mc1([-2.0], [-2.0, -3.0]) == 0.0
    e = math.exp
    assert truthfulqa_mc2([-1.0, -2.0], [-3.0]) == pytest.approx((e(-1) + e(-2)) / (e(-1) + e(-2) + e(-3)))
    prompt = truthfulqa_prompt(rec)
    assert prompt.startswith("Q: What is human life expectancy in the United States?\n") and prompt.endswith(
        "A: The 1992 Olympics were held in Barcelona, Spain.\n\nQ: Q?")


def test_triviaqa_prompt_and_mean() -> None:
    prompt = triviaqa_prompt({"question": "Who?", "answers": ["Me"]})
    assert prompt.startswith("\nQ: When did men's figure skating") and prompt.endswith(
        "Please briefly answer the following question:\nQ: Who?\n")
    assert mean_of("x", [1.0, 0.0, 0.5]) == 0.5
    with pytest.raises(ValueError, match="x: no records"):
        mean_of("x", [])


def test_prompts_on_rwku_records(shared_data: Path) -> None:
    folder = shared_data / "rwku" / "1_Stephen_King"
    mmlu = json.loads((folder / "retain_mmlu.json").read_text())[0]
    prompt = mmlu_prompt(mmlu)
    assert prompt.count("Question: ") == len(mmlu["examples"]) + 1 == 6
    assert prompt.startswith("The following are multiple choice questions (with answers) about abstract algebra.")
    bbh = json.loads((folder / "retain_bbh.json").read_text())[0]
    assert bbh_prompt(bbh).endswith("\nQ: " + bbh["question"])
