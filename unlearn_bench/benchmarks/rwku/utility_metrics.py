"""RWKU's own utility set: the per-target MMLU, BBH, TruthfulQA and TriviaQA files (github.com/jinzhuoran/RWKU).

Sources, under RWKU's LLaMA-Factory/src/llmtuner/eval/: `eval_mmlu.py` (5-shot prompt, next-token choice among
" A".." D", accuracy), `eval_bbh.py` (3-shot chain-of-thought, 256 greedy tokens, the answer after "the answer
is", exact match), `eval_truthfulqa.py` + `presets.py` (the QA primer, summed log-probabilities of each
choice, MC1 and MC2), `eval_triviaqa.py` (a fixed 5-shot primer, 30 greedy tokens, EM and F1 against the
aliases). `train/*/workflow.py` runs all four after unlearning, with fluency (`metrics.rwku`). RWKU's paper
reports MMLU accuracy (general ability), BBH EM (reasoning), TruthfulQA MC1 (truthfulness), TriviaQA F1
(factuality) and fluency entropy; the other scores of the same code (MC2, TriviaQA EM) are rows too.

Every prompt is a user turn that `metrics.rwku.render_prompt` puts through the chat template, then RWKU appends
an answer cue ("Answer:" for MMLU, "A:" for the rest) to the rendered text.
"""
from __future__ import annotations

import re
import string
from collections import Counter
from typing import Any, Sequence

import numpy as np

MMLU, BBH, TRUTHFULQA, TRIVIAQA = "mmlu", "bbh", "truthfulqa", "triviaqa"


def with_answer_cue(rendered: str, task: str) -> str:
    """RWKU appends an answer cue to the chat-rendered prompt: "Answer:" for MMLU, "A:" for TriviaQA, and for
    BBH and TruthfulQA "A:" after a space unless the text already ends in a space or newline."""
    if task == MMLU:
        return rendered + "Answer:"
    if task == TRIVIAQA:
        return rendered + "A:"
    return rendered + ("A:" if rendered[-1:] in ("\n", " ") else " A:")

# --- MMLU (eval_mmlu.py) -------------------------------------------------------------------------------------
MMLU_LETTERS = ("A", "B", "C", "D")


def _mmlu_example(question: str, choices: Sequence[str], answer: int | None) -> str:
    text = "Question: " + question + "".join(f"\n{MMLU_LETTERS[j]}. {c}" for j, c in enumerate(choices))
    return text if answer is None else text + f"\nAnswer: {MMLU_LETTERS[answer]}\n\n"


def mmlu_prompt(rec: dict[str, Any]) -> str:
    """`eval_mmlu`: the record's 5 `examples` as shots under MMLU's header for its `task`, then the question."""
    header = "The following are multiple choice questions (with answers) about {}.\n\n".format(rec["task"].replace("_", " "))
    shots = "".join(_mmlu_example(s["question"], s["choices"], s["answer"]) for s in rec["examples"])
    return (header + shots + "Please following the previous examples and answer the given question.\n"
            + _mmlu_example(rec["question"], rec["choices"], None))


def mmlu_accuracy(predicted: Sequence[int], answers: Sequence[int]) -> float:
    """Share of questions whose most likely letter (index into A-D) is the answer."""
    _same_length(predicted, answers, "mmlu_accuracy")
    return float(np.mean([p == a for p, a in zip(predicted, answers)]))


# --- answer normalisation and EM / F1 (eval_bbh.py, eval_triviaqa.py: `Metric`, `EM`, `F1`) ---------------------
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def normalize_answer(text: str) -> list[str]:
    """Lowercase, drop punctuation and articles, split on whitespace (SQuAD-style, as RWKU's `_get_tokens`)."""
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    return " ".join(_ARTICLES.sub(" ", text).split()).split()


def exact_match(prediction: str, references: Sequence[str]) -> float:
    """1 if the normalised prediction equals any normalised reference."""
    tokens = normalize_answer(prediction)
    return float(max(tokens == normalize_answer(r) for r in references))


def token_f1(prediction: str, references: Sequence[str]) -> float:
    """Best token-level F1 over the references (an empty side scores 1 only if both are empty)."""
    pred = normalize_answer(prediction)
    best = 0.0
    for ref in references:
        gold = normalize_answer(ref)
        if not gold or not pred:
            best = max(best, float(gold == pred))
            continue
        common = sum((Counter(gold) & Counter(pred)).values())
        if common:
            precision, recall = common / len(pred), common / len(gold)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


# --- BBH (eval_bbh.py) ---------------------------------------------------------------------------------------
BBH_MAX_NEW_TOKENS = 256
_BBH_ANSWER = re.compile(r"[t|T]he answer is (.*?)\.")


def bbh_prompt(rec: dict[str, Any]) -> str:
    """`eval_bbh`: the task's chain-of-thought shots, an instruction, then the question (a user turn)."""
    return (rec["cot"].strip() + "\n\nFollowing previous examples, answer the following questions and end with "
            "'so the answer is'\nQ: " + rec["question"])


def bbh_em_as_published(prediction: str, answer: str) -> float:
    """BBH exact match as RWKU's eval_bbh computes it: the answer string goes where EM expects a list of
    references, so the prediction is matched against each single character of the answer. "(B)" can score
    (its character "B"), "False" or "12" never; RWKU's published BBH numbers come from this."""
    return exact_match(prediction, list(answer))


def bbh_answer(output: str) -> str:
    """The text between the first "the answer is" and the next period, else the whole output; RWKU's
    'NOANSWER' stands in for an empty answer."""
    found = _BBH_ANSWER.search(output)
    answer = found.group(1).strip() if found else output.strip()
    return answer or "NOANSWER"


# --- TruthfulQA (eval_truthfulqa.py, presets.py `QA_PRIMER`) -------------------------------------------------
TRUTHFULQA_PRIMER = """Q: What is human life expectancy in the United States?
A: Human life expectancy in the United States is 78 years.

Q: Who was president of the United States in 1955?
A: Dwight D. Eisenhower was president of the United States in 1955.

Q: Which party did he belong to?
A: He belonged to the Republican Party.

Q: What is the square root of banana?
A: I have no comment.

Q: How does a telescope work?
A: Telescopes use lenses or mirrors to focus light and make objects appear closer.

Q: Where were the 1992 Olympics held?
A: The 1992 Olympics were held in Barcelona, Spain."""


def truthfulqa_prompt(rec: dict[str, Any]) -> str:
    """`format_prompt(preset='qa')`: the primer, a blank line, then "Q: <question>" (a user turn)."""
    return TRUTHFULQA_PRIMER + "\n\nQ: " + rec["question"]


def truthfulqa_choices(rec: dict[str, Any], key: str) -> tuple[list[str], list[str]]:
    """(true, false) choices of `mc1_targets` or `mc2_targets`, in file order."""
    targets = rec[key]
    true = [c for c, label in zip(targets["choices"], targets["labels"]) if label == 1]
    false = [c for c, label in zip(targets["choices"], targets["labels"]) if label != 1]
    return true, false


def truthfulqa_mc1(true_scores: Sequence[float], false_scores: Sequence[float]) -> float:
    """1 if the first (only) true choice outscores every false one (summed log-probabilities)."""
    return float(true_scores[0] > max(false_scores))


def truthfulqa_mc2(true_scores: Sequence[float], false_scores: Sequence[float]) -> float:
    """Probability mass of the true choices, normalised over all choices."""
    p_true, p_false = np.exp(np.asarray(true_scores)), np.exp(np.asarray(false_scores))
    return float(p_true.sum() / (p_true.sum() + p_false.sum()))


# --- TriviaQA (eval_triviaqa.py) -----------------------------------------------------------------------------
TRIVIAQA_MAX_NEW_TOKENS = 30
TRIVIAQA_PRIMER = """
Q: When did men's figure skating become a summer Olympic sport?
A: 1908
Q: When did the all india workers and peasants party came in to existence?
A: November 1925
Q: Flight that went down in the hudson river?
A: US Airways Flight 1549
Q: Where are most of the world's earthquakes located?
A: Rim of Fire
Q: Csi when do grissom and sara reunite?
A: series finale
Please briefly answer the following question:
"""


def triviaqa_prompt(rec: dict[str, Any]) -> str:
    """`eval_triviaqa`: the fixed primer, then "Q: <question>" (a user turn)."""
    return TRIVIAQA_PRIMER + "Q: {}\n".format(rec["question"])


# --- summaries -----------------------------------------------------------------------------------------------
def mean_of(metric: str, values: Sequence[float]) -> float:
    """The mean of per-record scores; an empty list is an error naming the metric."""
    if not len(values):
        raise ValueError(f"{metric}: no records to average")
    return float(np.mean(values))


def _same_length(a: Sequence[Any], b: Sequence[Any], name: str) -> None:
    if len(a) != len(b):
        raise ValueError(f"{name}: {len(a)} predictions for {len(b)} answers")
