"""TOFU-style evaluation of QA splits: answer losses (true, paraphrased, perturbed), greedy generations,
ROUGE-L recall, then TOFU's summary. Shared by `bench=tofu` and the embedded `bench=fictitious`."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from unlearn_bench.benchmarks.base import SELF_REFERENCE, EvalOutput, Metric
from unlearn_bench.data.records import QA, EvalQA
from unlearn_bench.evaluation.cost import PhaseClock
from unlearn_bench.evaluation.lm import LM, TokenStats
from unlearn_bench.metrics.mia import privleak
from unlearn_bench.metrics.rouge import rouge_recall
from unlearn_bench.benchmarks.tofu.metrics import SplitScores, tofu_eval_log, tofu_summary

log = logging.getLogger(__name__)

LOWER_IS_BETTER_ON_FORGET = ("prob", "rouge")  # forget-split knowledge: less is better after unlearning
TRUNCATION_LOG = "scoring_truncation.json"
# open-unlearning's TOFU privleak (configs/eval/tofu_metrics/privleak.yaml): its `ref_value`, the retain AUC used when
# no retain model's logs are given
PRIVLEAK_DEFAULT_RETAIN_AUC = 0.5


@dataclass
class SplitResult:
    examples: list[EvalQA]
    scores: SplitScores
    generations: list[str]
    scored: int = 0     # answers scored (true, paraphrased, perturbed)
    truncated: int = 0  # of those, longer than the model's context: scored on their first tokens only
    answer_stats: list[TokenStats] | None = None  # the true answers' token stats, for `score_splits(vocab_stats=)`


def score_splits(lm: LM, splits: Mapping[str, Sequence[EvalQA]], max_new_tokens: int,
                 cut_prompts: bool = False, clock: PhaseClock | None = None,
                 vocab_stats: Sequence[str] = ()) -> dict[str, SplitResult]:
    """One batched scoring pass over every answer of every split, one batched generation pass (from the whole
    prompt, as open-unlearning generates, unless `cut_prompts`: `LM.generate`), each timed on `clock`. Answers
    longer than the model's context are counted per split and logged: their loss covers the first tokens only.
    The splits named in `vocab_stats` keep their true answers' `TokenStats` with Min-K%++'s moments
    (`SplitResult.answer_stats`), so the MIA and memorization metrics of those answers need no pass of their own."""
    clock = clock if clock is not None else PhaseClock()
    encoded: list[tuple[list[int], list[int]]] = []
    wanted: list[bool] = []
    counts: dict[str, tuple[int, int]] = {}
    with clock.phase("scoring", "every answer of every split"):
        for name, examples in splits.items():
            split_pairs = [(QA(ex.question, a), j == 0) for ex in examples  # j == 0: the true answer
                           for j, a in enumerate((ex.answer, ex.paraphrased_answer, *ex.perturbed_answers)) if a is not None]
            whole = lm.encode_all([qa for qa, _ in split_pairs], truncate=False)
            counts[name] = (len(whole), sum(len(ids) > lm.max_length for ids, _ in whole))
            if counts[name][1]:
                log.warning("%s: %d of %d answers are longer than the model's context (%d tokens) and are scored on "
                            "their first %d tokens only", name, counts[name][1], counts[name][0], lm.max_length, lm.max_length)
            encoded += [(ids[: lm.max_length], labels[: lm.max_length]) for ids, labels in whole]
            wanted += [true and name in vocab_stats for _, true in split_pairs]
        stats = iter(lm.token_stats(encoded, vocab_stats=wanted))
    questions = [ex.question for examples in splits.values() for ex in examples]
    with clock.phase("generation", f"{len(questions)} questions"):
        generations = iter(lm.generate(questions, max_new_tokens=max_new_tokens, cut_prompts=cut_prompts))

    results: dict[str, SplitResult] = {}
    for name, examples in splits.items():
        gt, para, pert, gens, true_stats = [], [], [], [], []
        for ex in examples:
            true_stats.append(next(stats))
            gt.append(true_stats[-1].mean_nll)
            if ex.paraphrased_answer is not None:
                para.append(next(stats).mean_nll)
            pert.append([next(stats).mean_nll for _ in ex.perturbed_answers])
            gens.append(next(generations))
        rouge = rouge_recall(gens, [ex.answer for ex in examples])["rougeL"]
        has_para = all(ex.paraphrased_answer is not None for ex in examples)
        results[name] = SplitResult(list(examples), SplitScores(gt, para if has_para else None, pert, rouge), gens,
                                    *counts[name], true_stats if name in vocab_stats else None)
    return results


def tofu_family_output(results: Mapping[str, SplitResult], retain_forget: SplitScores | np.ndarray | None) -> EvalOutput:
    """TOFU's metric rows, generations, eval logs and the forget scores other runs compare against."""
    summary = tofu_summary({k: v.scores for k, v in results.items()}, retain_forget)
    metrics = []
    for key, value in summary.items():
        if key in ("forget_quality", "model_utility"):
            metrics.append(Metric("summary", key, value, True))
            continue
        split, metric = key.rsplit("_", 1) if not key.endswith("truth_ratio") else (key[: -len("_truth_ratio")], "truth_ratio")
        higher = not (split == "forget" and metric in LOWER_IS_BETTER_ON_FORGET)
        if split == "forget" and metric == "truth_ratio":
            higher = True  # min(R, 1/R) -> 1 when the model no longer prefers the true answer
        metrics.append(Metric(split, metric, value, higher))
    generations = [
        {"split": name, "prompt": ex.question, "generation": gen, "reference": ex.answer}
        for name, res in results.items()
        for ex, gen in zip(res.examples, res.generations)
    ]
    logs = {
        f"eval_log_{name}.json": tofu_eval_log(
            res.scores, res.generations, [ex.question for ex in res.examples], [ex.answer for ex in res.examples]
        )
        for name, res in results.items()
    }
    logs[TRUNCATION_LOG] = {name: {"scored": res.scored, "truncated": res.truncated} for name, res in results.items()}
    reference: dict[str, Any] = {}
    if "forget" in results:
        s = results["forget"].scores
        reference["forget_scores"] = {
            "gt_loss": list(s.gt_loss),
            "paraphrased_loss": None if s.paraphrased_loss is None else list(s.paraphrased_loss),
            "perturbed_loss": [list(r) for r in s.perturbed_loss],
            "rouge_l_recall": list(s.rouge_l_recall),
        }
    return EvalOutput(metrics, generations, logs, reference)


def reference_forget_scores(results: Mapping[str, SplitResult], reference: Mapping[str, Any] | None) -> SplitScores | None:
    """The retain model's forget scores: from `reference`, or these results when evaluating the retain model."""
    if reference is SELF_REFERENCE:
        return results["forget"].scores if "forget" in results else None
    if not reference or "forget_scores" not in reference:
        return None
    return SplitScores(**reference["forget_scores"])


def privleak_rows(auc_rows: Sequence[Metric], reference: Mapping[str, Any] | None,
                  logged_retain_auc: float | None = None) -> tuple[list[Metric], dict[str, float]]:
    """open-unlearning's TOFU `privleak` (configs/eval/tofu_metrics/privleak.yaml, src/evals/metrics/privacy.py):
    MUSE's PrivLeak of the forget-vs-holdout Min-K% (k = 0.4) AUC (`mia_min_k`, the `auc_min_k` row of `auc_rows`)
    against the retain model's: a retain TOFU_EVAL.json's `mia_min_k` (`logged_retain_auc`, its retain_logs_path),
    else the retain model evaluated in this run (`reference`, or this model when it is the retain model), else
    (no retain model at all) privleak.yaml's ref_value 0.5. Returns the rows (the reference AUC and its source, privleak) and the
    reference data later runs compare against."""
    own = next(m.value for m in auc_rows if m.metric == "auc_min_k")
    if logged_retain_auc is not None:
        retain, source = logged_retain_auc, "logs"
    elif reference is SELF_REFERENCE:
        retain, source = own, "model"
    elif reference and "forget_holdout_auc_min_k" in reference:
        retain, source = reference["forget_holdout_auc_min_k"], "model"
    elif reference:  # a retain evaluation cached before privleak existed: 0.5 would pass for its AUC unnoticed
        log.warning("the retain model's evaluation (cached) has no forget-vs-holdout AUC: privleak not reported; "
                    "remove its entry under <cache>/eval to recompute it")
        return [], {"forget_holdout_auc_min_k": own}
    else:
        log.warning("no retain model AUC for privleak: using open-unlearning's default %s", PRIVLEAK_DEFAULT_RETAIN_AUC)
        retain, source = PRIVLEAK_DEFAULT_RETAIN_AUC, "default"
    rows = [Metric("forget_holdout", f"auc_min_k_retain_{source}", retain, None)]
    if retain == 1.0:  # MUSE's orientation 0: PrivLeak divides by it (open-unlearning's 1e-10 makes it ~1e12)
        log.warning("the retain model's forget-vs-holdout AUC is 1.0: privleak is undefined and not reported")
    else:  # 0 = as the retain model; -100 = forget set fully exposed; > 0 = over-unlearned
        rows.append(Metric("forget", "privleak", privleak(own, retain), None))
    return rows, {"forget_holdout_auc_min_k": own}
