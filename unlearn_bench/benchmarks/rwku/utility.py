"""RWKU's utility set scored on a model: each target's retain_mmlu, retain_bbh, truthful, triviaqa and fluency
files, as RWKU's `train/*/workflow.py` runs them after unlearning (prompts and scores: `metrics.rwku_utility`,
fluency: `metrics.rwku`).

Records are checked before any model call, so a malformed file fails naming file, record and field. In the
batch setting the targets' files are pooled and records that differ only in `subject` are scored once.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from unlearn_bench.benchmarks.base import Metric
from unlearn_bench.benchmarks.rwku.config import FLUENCY
from unlearn_bench.benchmarks.rwku.data import RWKUTarget
from unlearn_bench.data.records import DataError, require_field
from unlearn_bench.evaluation.lm import LM
from unlearn_bench.benchmarks.rwku.metrics import FLUENCY_MAX_NEW_TOKENS, ProbePrompt, fluency_entropy, fluency_prompt, render_prompt
from unlearn_bench.benchmarks.rwku.utility_metrics import (
    BBH,
    BBH_MAX_NEW_TOKENS,
    MMLU,
    MMLU_LETTERS,
    TRIVIAQA,
    TRIVIAQA_MAX_NEW_TOKENS,
    TRUTHFULQA,
    bbh_answer,
    bbh_em_as_published,
    bbh_prompt,
    exact_match,
    mean_of,
    mmlu_accuracy,
    mmlu_prompt,
    token_f1,
    triviaqa_prompt,
    truthfulqa_choices,
    truthfulqa_mc1,
    truthfulqa_mc2,
    truthfulqa_prompt,
    with_answer_cue,
)

# The file (stem) each task reads in a target folder (rwku_data.UTILITY_FILES).
TASK_FILES = {MMLU: "retain_mmlu", BBH: "retain_bbh", TRUTHFULQA: "truthful", TRIVIAQA: "triviaqa", FLUENCY: "fluency"}
_FIELDS: dict[str, tuple[tuple[str, type], ...]] = {
    MMLU: (("task", str), ("question", str), ("choices", list), ("answer", int), ("examples", list)),
    BBH: (("cot", str), ("question", str), ("answer", str)),
    TRUTHFULQA: (("question", str), ("mc1_targets", dict), ("mc2_targets", dict)),
    TRIVIAQA: (("question", str), ("answers", list)),
    FLUENCY: (("instruction", str), ("subject", str)),
}
_MMLU_SHOT_FIELDS = (("question", str), ("choices", list), ("answer", int))


@dataclass(frozen=True)
class UtilityRun:
    """What one model's utility evaluation produced: metric rows and per-record logs (generations.jsonl)."""

    metrics: list[Metric]
    generations: list[dict[str, Any]]


def check_record(task: str, rec: dict[str, Any], path: str, index: int) -> None:
    """The fields `task`'s scorer reads, with their types (DataError naming file, record and field)."""
    for name, kind in _FIELDS[task]:
        require_field(rec, name, kind, path, index)
    if task == MMLU:
        for j, shot in enumerate(rec["examples"], start=1):
            for name, kind in _MMLU_SHOT_FIELDS:
                require_field(shot, name, kind, f"{path}: record {index}: examples", j)
        for where, item in [(f"{path}: record {index}", rec)] + [
            (f"{path}: record {index}: examples: record {j}", s) for j, s in enumerate(rec["examples"], start=1)
        ]:
            if len(item["choices"]) != len(MMLU_LETTERS) or item["answer"] not in range(len(MMLU_LETTERS)):
                raise DataError(f"{where}: expected 4 choices and an answer index 0-3, got "
                                f"{len(item['choices'])} choices and answer {item['answer']!r}")
    elif task == TRUTHFULQA:
        for key in ("mc1_targets", "mc2_targets"):
            targets = rec[key]
            choices = require_field(targets, "choices", list, f"{path}: record {index}: {key}", 1)
            labels = require_field(targets, "labels", list, f"{path}: record {index}: {key}", 1)
            if len(choices) != len(labels) or 1 not in labels or not [x for x in labels if x != 1]:
                raise DataError(f"{path}: record {index}: {key}: needs as many labels as choices and both a true "
                                f"(1) and a false choice, got labels {labels}")
    elif task == TRIVIAQA and not rec["answers"]:
        raise DataError(f"{path}: record {index}: field 'answers' is empty")


def utility_records(targets: Sequence[RWKUTarget], task: str, root: str, cap: Optional[int]) -> list[dict[str, Any]]:
    """The checked records of `task` pooled over targets, without repeats, the first `cap` of them."""
    seen: dict[str, dict[str, Any]] = {}
    for t in targets:
        path = f"{root}/{t.name}/{TASK_FILES[task]}.json"
        for i, rec in enumerate(t.utility.get(TASK_FILES[task], ()), start=1):
            check_record(task, rec, path, i)
            seen.setdefault(json.dumps({k: v for k, v in rec.items() if k != "subject"}, sort_keys=True), rec)
    records = list(seen.values())
    return records if cap is None else records[:cap]


def _rendered(lm: LM, user: str, task: str) -> str:
    return with_answer_cue(render_prompt(ProbePrompt(user, ""), lm.tokenizer), task)


def _mmlu(lm: LM, records: list[dict[str, Any]], _: Optional[int]) -> UtilityRun:
    prompts = [_rendered(lm, mmlu_prompt(r), MMLU) for r in records]
    # eval_mmlu: the last token of " A" .. " D" (a space, as the letter follows "Answer:").
    candidates = [lm.tokenizer.encode(" " + letter, add_special_tokens=False)[-1] for letter in MMLU_LETTERS]
    predicted = lm.next_token_choices(prompts, candidates)
    answers = [r["answer"] for r in records]
    return UtilityRun(
        [Metric("utility", "mmlu_acc", mmlu_accuracy(predicted, answers), True)],
        [{"split": MMLU, "prompt": p, "generation": MMLU_LETTERS[k], "reference": MMLU_LETTERS[a]}
         for p, k, a in zip(prompts, predicted, answers)],
    )


def _bbh(lm: LM, records: list[dict[str, Any]], max_new: Optional[int]) -> UtilityRun:
    prompts = [_rendered(lm, bbh_prompt(r), BBH) for r in records]
    outputs = lm.generate(prompts, _capped(BBH_MAX_NEW_TOKENS, max_new), raw=True)
    answers = [bbh_answer(o) for o in outputs]
    golds = [r["answer"] for r in records]
    return UtilityRun(
        [
            # bbh_em reproduces RWKU's published numbers (see bbh_em_as_published); bbh_em_answer matches the
            # whole answer, as EM is meant to.
            Metric("utility", "bbh_em", mean_of("bbh_em", [bbh_em_as_published(a, g) for a, g in zip(answers, golds)]), True),
            Metric("utility", "bbh_em_answer", mean_of("bbh_em_answer", [exact_match(a, [g]) for a, g in zip(answers, golds)]), True),
        ],
        [{"split": BBH, "prompt": p, "generation": o, "prediction": a, "reference": g}
         for p, o, a, g in zip(prompts, outputs, answers, golds)],
    )


def _truthfulqa(lm: LM, records: list[dict[str, Any]], _: Optional[int]) -> UtilityRun:
    prompts = [_rendered(lm, truthfulqa_prompt(r), TRUTHFULQA) for r in records]
    # RWKU scores the mc2 choices and looks the mc1 ones up among them; scoring their union is the same.
    choices = [list(dict.fromkeys(r["mc2_targets"]["choices"] + r["mc1_targets"]["choices"])) for r in records]
    flat = lm.completion_logprobs([(p, c) for p, cs in zip(prompts, choices) for c in cs])
    mc1, mc2, logs, start = [], [], [], 0
    for rec, prompt, cs in zip(records, prompts, choices):
        score = dict(zip(cs, flat[start: start + len(cs)]))
        start += len(cs)
        (t1, f1), (t2, f2) = truthfulqa_choices(rec, "mc1_targets"), truthfulqa_choices(rec, "mc2_targets")
        mc1.append(truthfulqa_mc1([score[c] for c in t1], [score[c] for c in f1]))
        mc2.append(truthfulqa_mc2([score[c] for c in t2], [score[c] for c in f2]))
        logs.append({"split": TRUTHFULQA, "prompt": prompt, "choice_logprobs": score, "mc1": mc1[-1], "mc2": mc2[-1]})
    return UtilityRun(
        [Metric("utility", "truthfulqa_mc1", mean_of("truthfulqa_mc1", mc1), True),
         Metric("utility", "truthfulqa_mc2", mean_of("truthfulqa_mc2", mc2), True)],
        logs,
    )


def _triviaqa(lm: LM, records: list[dict[str, Any]], max_new: Optional[int]) -> UtilityRun:
    prompts = [_rendered(lm, triviaqa_prompt(r), TRIVIAQA) for r in records]
    # eval_triviaqa stops only at EOS / <|eot_id|> and scores the whole output.
    outputs = lm.generate(prompts, _capped(TRIVIAQA_MAX_NEW_TOKENS, max_new), raw=True)
    em = [exact_match(o, r["answers"]) for o, r in zip(outputs, records)]
    f1 = [token_f1(o, r["answers"]) for o, r in zip(outputs, records)]
    return UtilityRun(
        [Metric("utility", "triviaqa_em", mean_of("triviaqa_em", em), True),
         Metric("utility", "triviaqa_f1", mean_of("triviaqa_f1", f1), True)],
        [{"split": TRIVIAQA, "prompt": p, "generation": o, "reference": r["answers"], "em": e, "f1": f}
         for p, o, r, e, f in zip(prompts, outputs, records, em, f1)],
    )


def _fluency(lm: LM, records: list[dict[str, Any]], max_new: Optional[int]) -> UtilityRun:
    """eval_fluency: n-gram entropy of answers to the instructions (no answer cue)."""
    prompts = [render_prompt(fluency_prompt(r["instruction"], r["subject"]), lm.tokenizer) for r in records]
    outputs = lm.generate(prompts, _capped(FLUENCY_MAX_NEW_TOKENS, max_new), raw=True)
    return UtilityRun([Metric("utility", "fluency_entropy", fluency_entropy(outputs), True)],
                      [{"split": FLUENCY, "prompt": p, "generation": g} for p, g in zip(prompts, outputs)])


def _capped(rwku_length: int, cap: Optional[int]) -> int:
    return rwku_length if cap is None else min(rwku_length, cap)


_SCORERS: dict[str, Callable[[LM, list[dict[str, Any]], Optional[int]], UtilityRun]] = {
    MMLU: _mmlu, BBH: _bbh, TRUTHFULQA: _truthfulqa, TRIVIAQA: _triviaqa, FLUENCY: _fluency,
}


def evaluate_utility(lm: LM, targets: Sequence[RWKUTarget], tasks: Sequence[str], root: str,
                     max_examples: Optional[int], max_new_tokens: Optional[int]) -> UtilityRun:
    """Rows for each of `tasks` that some target has a file for (checked, all of them, before any scoring)."""
    chosen = {task: utility_records(targets, task, root, max_examples) for task in tasks}
    runs = [_SCORERS[task](lm, records, max_new_tokens) for task, records in chosen.items() if records]
    return UtilityRun([m for r in runs for m in r.metrics], [g for r in runs for g in r.generations])
