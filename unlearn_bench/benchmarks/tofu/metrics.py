"""TOFU's summary metrics (forget quality, model utility and their components) from per-example scores.

Definitions follow the authors' aggregation, locuslab/tofu `aggregate_eval_stat.py` (`get_model_utility`,
`get_forget_quality`), which is also what open-unlearning (locuslab/open-unlearning,
src/evals/metrics/memorization.py, `truth_ratio`, `probability_w_options`) reimplements.
All losses are per-token mean negative log-likelihoods of the answer given the question.

Note: the older `utils.py` copy of `get_model_utility` in the TOFU repo averages the perturbed answers'
*probabilities* (arithmetic mean) instead of their losses (geometric mean of probabilities). We follow
`aggregate_eval_stat.py`, whose form `get_forget_quality` in both files uses and open-unlearning keeps.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
from scipy.stats import hmean, ks_2samp

FORGET = "forget"
RETAIN = "retain"
REAL_AUTHORS = "real_authors"
WORLD_FACTS = "world_facts"
SPLITS = (FORGET, RETAIN, REAL_AUTHORS, WORLD_FACTS)
# Splits whose probability is normalised against the perturbed (wrong) answers: TOFU's `get_model_utility`
# takes this branch for every eval file whose name lacks 'eval_log' (the real-author and world-fact sets).
NORMALISED_PROB_SPLITS = frozenset({REAL_AUTHORS, WORLD_FACTS})
UTILITY_SPLITS = (RETAIN, REAL_AUTHORS, WORLD_FACTS)


@dataclass(frozen=True)
class SplitScores:
    """Per-example scores of one model on one TOFU split.

    gt_loss, paraphrased_loss: [n]; perturbed_loss: [n][k]; rouge_l_recall: [n].
    paraphrased_loss=None means the ground-truth answer stands in for the paraphrase, as TOFU's
    eval_everything.yaml sets `base_answer_key: answer` for real_authors and world_facts.
    """

    gt_loss: Sequence[float]
    paraphrased_loss: Sequence[float] | None
    perturbed_loss: Sequence[Sequence[float]]
    rouge_l_recall: Sequence[float]

    def __post_init__(self) -> None:
        n = len(self.gt_loss)
        if n == 0:
            raise ValueError("SplitScores: no examples")
        lengths = {"paraphrased_loss": None if self.paraphrased_loss is None else len(self.paraphrased_loss),
                   "perturbed_loss": len(self.perturbed_loss), "rouge_l_recall": len(self.rouge_l_recall)}
        for name, length in lengths.items():
            if length is not None and length != n:
                raise ValueError(f"SplitScores: {name} has {length} examples, gt_loss has {n}")
        widths = {len(row) for row in self.perturbed_loss}
        if len(widths) != 1 or 0 in widths:
            raise ValueError("SplitScores: perturbed_loss needs the same number (>0) of answers per example, "
                             f"got {sorted(widths)}")

    def base_loss(self) -> np.ndarray:
        """Loss of the answer the truth ratio compares against: the paraphrase, else the ground truth."""
        return np.asarray(self.gt_loss if self.paraphrased_loss is None else self.paraphrased_loss, dtype=float)


def truth_ratio(scores: SplitScores) -> np.ndarray:
    """R per example: exp(mean_j perturbed_loss_j - paraphrased_loss), the correct answer's (geometric)
    probability over the wrong answers'. >1 means the model prefers the right answer."""
    perturbed = np.asarray(scores.perturbed_loss, dtype=float).mean(axis=-1)
    return np.exp(perturbed - scores.base_loss())


def forget_truth_ratio_stat(ratios: np.ndarray) -> float:
    """Forget split: mean(min(R, 1/R)); 1 when the model cannot tell right from wrong answers."""
    return float(np.mean(np.minimum(ratios, 1.0 / ratios)))


def utility_truth_ratio_stat(ratios: np.ndarray) -> float:
    """Retain/real_authors/world_facts: mean(max(0, 1 - 1/R)); rewards preferring the right answer."""
    return float(np.mean(np.maximum(0.0, 1.0 - 1.0 / ratios)))


def gt_probability(scores: SplitScores) -> float:
    """Mean over examples of exp(-avg_gt_loss)."""
    return float(np.mean(np.exp(-np.asarray(scores.gt_loss, dtype=float))))


def normalised_probability(scores: SplitScores) -> float:
    """Mean over examples of p_true / (p_true + sum_j p_false_j), p = exp(-avg loss)."""
    p_true = np.exp(-np.asarray(scores.gt_loss, dtype=float))
    p_false = np.exp(-np.asarray(scores.perturbed_loss, dtype=float)).sum(axis=-1)
    return float(np.mean(p_true / (p_true + p_false)))


def forget_quality(unlearned_forget: SplitScores, retain_forget: SplitScores | np.ndarray) -> float:
    """KS-test p-value between the truth ratios R of the unlearned and the retain model on the forget set.

    TOFU's `get_forget_quality` compares the raw R = exp(mean perturbed - paraphrased), not min(R, 1/R)
    and not the `truth_ratio` value written in its eval logs (which is 1/R; the KS test gives the same p-value on
    1/R, a monotone map of both samples). `retain_forget` is the retain model's scores, or its ratios R directly
    (read from an open-unlearning retain log).
    """
    retain = retain_forget if isinstance(retain_forget, np.ndarray) else truth_ratio(retain_forget)
    return float(ks_2samp(truth_ratio(unlearned_forget), retain).pvalue)


def split_metrics(split: str, scores: SplitScores) -> dict[str, float]:
    """{split}_prob, {split}_rouge, {split}_truth_ratio for one split."""
    if split not in SPLITS:
        raise ValueError(f"unknown TOFU split '{split}'; expected one of {SPLITS}")
    prob = normalised_probability(scores) if split in NORMALISED_PROB_SPLITS else gt_probability(scores)
    ratios = truth_ratio(scores)
    # TOFU: `if 'forget' in k` picks min(R, 1/R); every other file gets max(0, 1 - 1/R).
    stat = forget_truth_ratio_stat(ratios) if split == FORGET else utility_truth_ratio_stat(ratios)
    return {f"{split}_prob": prob,
            f"{split}_rouge": float(np.mean(np.asarray(scores.rouge_l_recall, dtype=float))),
            f"{split}_truth_ratio": stat}


def tofu_summary(splits: Mapping[str, SplitScores], retain_forget: SplitScores | np.ndarray | None) -> dict[str, float]:
    """forget_quality, model_utility and the per-split components of the splits given.

    `retain_forget`: the retain model's (trained without the forget set) scores on the forget split, or its truth
    ratios R.
    Missing inputs give NaN with a warning rather than a silently absent number.
    """
    unknown = set(splits) - set(SPLITS)
    if unknown:
        raise ValueError(f"unknown TOFU split(s) {sorted(unknown)}; expected some of {SPLITS}")
    per_split: dict[str, float] = {}
    for split in SPLITS:
        if split in splits:
            per_split.update(split_metrics(split, splits[split]))

    if retain_forget is None:
        warnings.warn("forget_quality is NaN: no retain-model scores on the forget split (retain_forget=None)",
                      stacklevel=2)
        fq = math.nan
    elif FORGET not in splits:
        warnings.warn("forget_quality is NaN: no 'forget' split scores for the unlearned model", stacklevel=2)
        fq = math.nan
    else:
        fq = forget_quality(splits[FORGET], retain_forget)

    missing = [s for s in UTILITY_SPLITS if s not in splits]
    if missing:
        warnings.warn(f"model_utility is NaN: missing split(s) {missing}; it needs {list(UTILITY_SPLITS)}",
                      stacklevel=2)
        mu = math.nan
    else:
        # Harmonic mean of the nine {prob, rouge, truth_ratio} x {retain, real_authors, world_facts} values;
        # hmean is 0 if any is 0, so one collapsed ability sinks utility (TOFU `get_model_utility`).
        mu = float(hmean([per_split[f"{s}_{m}"] for s in UTILITY_SPLITS for m in ("prob", "rouge", "truth_ratio")]))

    return {"forget_quality": fq, "model_utility": mu, **per_split}


def tofu_eval_log(scores: SplitScores, generations: Sequence[str], questions: Sequence[str],
                  answers: Sequence[str]) -> dict[str, dict[str, object]]:
    """Per-example log in the layout of TOFU's eval_log*.json (evaluate_util.py, `get_all_evals` and
    `eval_perturbation_ratio`): each metric maps the example index, as a string, to its value.

    `truth_ratio` here is TOFU's logged value exp(paraphrased - mean perturbed) = 1/R (wrong over right);
    `generated_text` is [question, generation, ground truth] as TOFU's `run_generation` returns them.
    The log holds what TOFU's aggregation reads (avg_gt_loss, avg_paraphrased_loss, average_perturb_loss,
    rougeL_recall), so its formulas apply to it unchanged.
    """
    n = len(scores.gt_loss)
    for name, seq in (("generations", generations), ("questions", questions), ("answers", answers)):
        if len(seq) != n:
            raise ValueError(f"tofu_eval_log: {len(seq)} {name} for {n} scored examples")
    keys = [str(i) for i in range(n)]
    base = scores.base_loss().tolist()
    inverse_ratios = (1.0 / truth_ratio(scores)).tolist()
    return {
        "avg_gt_loss": dict(zip(keys, map(float, scores.gt_loss))),
        "generated_text": {k: [q, g, a] for k, q, g, a in zip(keys, questions, generations, answers)},
        "rougeL_recall": dict(zip(keys, map(float, scores.rouge_l_recall))),
        "average_perturb_loss": {k: [float(x) for x in row] for k, row in zip(keys, scores.perturbed_loss)},
        "avg_paraphrased_loss": dict(zip(keys, base)),
        "truth_ratio": dict(zip(keys, inverse_ratios)),
    }
