"""TOFU metrics against hand-computed values, scipy and rouge_score."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from rouge_score import rouge_scorer
from scipy.stats import ks_2samp

from unlearn_bench.metrics.rouge import rouge_recall
from unlearn_bench.benchmarks.tofu.metrics import SplitScores, forget_quality, tofu_eval_log, tofu_summary, truth_ratio

L = math.log

# R = exp(mean perturbed - paraphrased): example 0: (ln4+ln16)/2 - ln2 = ln4 -> 4; example 1: (ln2+ln8)/2 - ln2 -> 2.
QA_SCORES = SplitScores(
    gt_loss=[L(2), L(4)],                      # probabilities 1/2, 1/4 -> mean 3/8
    paraphrased_loss=[L(2), L(2)],
    perturbed_loss=[[L(4), L(16)], [L(2), L(8)]],
    rouge_l_recall=[1.0, 0.5],
)
# No paraphrase: the ground-truth loss stands in. p_true = 1/2, 1; p_false = (1/4,1/4,1/2), (1/2,1/4,1/4), each sum 1.
FACT_SCORES = SplitScores(
    gt_loss=[L(2), 0.0],
    paraphrased_loss=None,
    perturbed_loss=[[L(4), L(4), L(2)], [L(2), L(4), L(4)]],
    rouge_l_recall=[0.5, 0.25],
)
# R = 1/4 and 1/2: mirror images of QA_SCORES' R around 1, so min(R, 1/R) is identical but R is not.
MIRROR_SCORES = SplitScores(
    gt_loss=[L(2), L(2)],
    paraphrased_loss=[L(4), L(4)],
    perturbed_loss=[[L(1), L(1)], [L(4), L(1)]],
    rouge_l_recall=[0.0, 0.0],
)


def test_truth_ratio_uses_paraphrase_else_ground_truth() -> None:
    np.testing.assert_allclose(truth_ratio(QA_SCORES), [4.0, 2.0])
    # mean perturbed loss = (5/3) ln2 for both; minus ln2 and minus 0.
    np.testing.assert_allclose(truth_ratio(FACT_SCORES), [2 ** (2 / 3), 2 ** (5 / 3)])
    np.testing.assert_allclose(truth_ratio(MIRROR_SCORES), [0.25, 0.5])


def test_forget_and_retain_use_plain_probability_and_split_truth_ratio_stats() -> None:
    with pytest.warns(UserWarning):
        out = tofu_summary({"forget": QA_SCORES, "retain": QA_SCORES}, None)
    assert out["forget_prob"] == pytest.approx(3 / 8)
    assert out["retain_prob"] == pytest.approx(3 / 8)
    assert out["forget_rouge"] == pytest.approx(0.75)
    assert out["forget_truth_ratio"] == pytest.approx((1 / 4 + 1 / 2) / 2)       # mean min(R, 1/R)
    assert out["retain_truth_ratio"] == pytest.approx(((1 - 1 / 4) + (1 - 1 / 2)) / 2)  # mean max(0, 1 - 1/R)


def test_retain_truth_ratio_clips_at_zero() -> None:
    with pytest.warns(UserWarning):
        out = tofu_summary({"retain": MIRROR_SCORES}, None)
    assert out["retain_truth_ratio"] == 0.0  # 1 - 1/R = -3 and -1, both clipped


def test_real_authors_and_world_facts_use_normalised_probability() -> None:
    with pytest.warns(UserWarning):
        out = tofu_summary({"real_authors": FACT_SCORES, "world_facts": FACT_SCORES}, None)
    for split in ("real_authors", "world_facts"):
        assert out[f"{split}_prob"] == pytest.approx((0.5 / 1.5 + 1 / 2) / 2)  # 5/12
        assert out[f"{split}_rouge"] == pytest.approx(0.375)
        assert out[f"{split}_truth_ratio"] == pytest.approx(((1 - 2 ** (-2 / 3)) + (1 - 2 ** (-5 / 3))) / 2)


def test_model_utility_is_harmonic_mean_of_nine_values_and_ignores_forget() -> None:
    retain = [3 / 8, 0.75, 0.625]
    fact = [5 / 12, 0.375, ((1 - 2 ** (-2 / 3)) + (1 - 2 ** (-5 / 3))) / 2]
    nine = retain + fact + fact
    expected = 9 / sum(1 / v for v in nine)
    splits = {"forget": MIRROR_SCORES, "retain": QA_SCORES, "real_authors": FACT_SCORES, "world_facts": FACT_SCORES}
    out = tofu_summary(splits, retain_forget=QA_SCORES)
    assert out["model_utility"] == pytest.approx(expected)
    assert set(out) == {"forget_quality", "model_utility"} | {
        f"{s}_{m}" for s in splits for m in ("prob", "rouge", "truth_ratio")}


def test_forget_quality_is_ks_pvalue_on_raw_truth_ratios() -> None:
    # R = [4, 2] vs [1/4, 1/2]: fully separated samples of 2 and 2; exact two-sided p = 2 / C(4, 2) = 1/3.
    fq = forget_quality(QA_SCORES, MIRROR_SCORES)
    assert fq == pytest.approx(1 / 3)
    assert fq == pytest.approx(ks_2samp([4.0, 2.0], [0.25, 0.5]).pvalue)
    # On min(R, 1/R) both would be [1/4, 1/2] and the p-value 1: TOFU compares R itself.
    assert ks_2samp([0.25, 0.5], [0.25, 0.5]).pvalue == pytest.approx(1.0)


def test_forget_quality_matches_scipy_on_larger_samples() -> None:
    rng = np.random.default_rng(0)
    def scores(n: int, shift: float) -> SplitScores:
        return SplitScores(rng.uniform(0, 3, n).tolist(), rng.uniform(shift, 3 + shift, n).tolist(),
                           rng.uniform(0, 3, (n, 5)).tolist(), [0.0] * n)

    a, b = scores(30, 0.0), scores(40, 1.0)
    ra = np.exp(np.mean(a.perturbed_loss, axis=1) - np.asarray(a.paraphrased_loss))
    rb = np.exp(np.mean(b.perturbed_loss, axis=1) - np.asarray(b.paraphrased_loss))
    assert forget_quality(a, b) == pytest.approx(ks_2samp(ra, rb).pvalue)


def test_missing_retain_model_gives_nan_forget_quality_with_warning() -> None:
    splits = {"forget": QA_SCORES, "retain": QA_SCORES, "real_authors": FACT_SCORES, "world_facts": FACT_SCORES}
    with pytest.warns(UserWarning, match="retain_forget=None"):
        out = tofu_summary(splits, retain_forget=None)
    assert math.isnan(out["forget_quality"])
    assert math.isfinite(out["model_utility"])


def test_missing_utility_split_gives_nan_model_utility_with_warning_and_omits_split() -> None:
    with pytest.warns(UserWarning, match=r"model_utility is NaN.*world_facts"):
        out = tofu_summary({"forget": QA_SCORES, "retain": QA_SCORES, "real_authors": FACT_SCORES}, QA_SCORES)
    assert math.isnan(out["model_utility"])
    assert not any(k.startswith("world_facts") for k in out)
    assert out["forget_quality"] == pytest.approx(1.0)  # identical samples


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match="unknown TOFU split"):
        tofu_summary({"holdout": QA_SCORES}, None)
    with pytest.raises(ValueError, match="perturbed_loss"):
        SplitScores([1.0, 1.0], None, [[1.0, 2.0], [1.0]], [0.0, 0.0])
    with pytest.raises(ValueError, match="rouge_l_recall"):
        SplitScores([1.0, 1.0], None, [[1.0], [1.0]], [0.0])


def test_eval_log_has_tofu_layout_and_tofu_aggregation_reproduces_summary() -> None:
    log = tofu_eval_log(FACT_SCORES, ["George Orwell wrote it", "no idea"], ["Q0?", "Q1?"], ["George Orwell", "A1"])
    log = json.loads(json.dumps(log))  # survives JSON as TOFU's files do
    assert list(log["avg_gt_loss"]) == ["0", "1"]
    assert log["generated_text"]["0"] == ["Q0?", "George Orwell wrote it", "George Orwell"]
    assert log["avg_paraphrased_loss"] == log["avg_gt_loss"]  # ground truth stands in for the paraphrase
    np.testing.assert_allclose(list(log["truth_ratio"].values()), [2 ** (-2 / 3), 2 ** (-5 / 3)])  # TOFU logs 1/R
    # TOFU aggregate_eval_stat.get_model_utility's formulas for a non-'eval_log' file, applied to our log.
    p_true = np.exp(-np.array(list(log["avg_gt_loss"].values())))
    p_false = np.exp(-np.array(list(log["average_perturb_loss"].values())))
    prob = np.mean(p_true / np.concatenate([p_true[:, None], p_false], axis=1).sum(-1))
    perturbed = np.array(list(log["average_perturb_loss"].values())).mean(-1)
    r = np.exp(perturbed - np.array(list(log["avg_paraphrased_loss"].values())))
    with pytest.warns(UserWarning):
        out = tofu_summary({"real_authors": FACT_SCORES}, None)
    assert out["real_authors_prob"] == pytest.approx(prob)
    assert out["real_authors_truth_ratio"] == pytest.approx(np.mean(np.maximum(0, 1 - 1 / r)))
    assert out["real_authors_rouge"] == pytest.approx(np.mean(list(log["rougeL_recall"].values())))


def test_eval_log_rejects_length_mismatch() -> None:
    with pytest.raises(ValueError, match="generations"):
        tofu_eval_log(FACT_SCORES, ["only one"], ["Q0?", "Q1?"], ["A0", "A1"])


def test_rouge_recall_hand_values_and_stemming() -> None:
    out = rouge_recall(["the cat", "cats running", "sat cat the"], ["the cat sat", "cat run", "the cat sat"])
    assert out["rouge1"] == pytest.approx([2 / 3, 1.0, 1.0])
    assert out["rougeL"] == pytest.approx([2 / 3, 1.0, 1 / 3])  # LCS of reversed order is one word


def test_rouge_recall_is_relative_to_reference_and_matches_rouge_score() -> None:
    preds = ["the cat sat on the mat today", "a dog", ""]
    refs = ["the cat", "the quick brown dog", "anything"]
    out = rouge_recall(preds, refs)
    assert out["rouge1"][0] == 1.0  # every reference word generated; precision would be 2/7
    scorer = rouge_scorer.RougeScorer(["rouge1", "rougeL"], use_stemmer=True)
    for i, (p, r) in enumerate(zip(preds, refs)):
        direct = scorer.score(r, p)
        assert out["rouge1"][i] == direct["rouge1"].recall
        assert out["rougeL"][i] == direct["rougeL"].recall
    with pytest.raises(ValueError):
        rouge_recall(["a"], [])


def test_rouge_recall_with_its_stem_memo_equals_rouge_score_on_tofu_answers(shared_data) -> None:
    """The scorer that stems each distinct word once gives rouge_score's own (use_stemmer=True) recall on every
    pair of TOFU forget10 answers and their perturbed versions, whose words inflect ("wrote", "writing")."""
    from unlearn_bench.benchmarks.tofu.data import load_tofu_split

    records = load_tofu_split("forget10_perturbed", shared_data / "tofu")
    refs = [r["answer"] for r in records for _ in r["perturbed_answer"]]
    preds = [p for r in records for p in r["perturbed_answer"]]
    out = rouge_recall(preds, refs)
    scorer = rouge_scorer.RougeScorer(["rouge1", "rougeL"], use_stemmer=True)
    direct = [scorer.score(r, p) for p, r in zip(preds, refs)]
    assert out["rouge1"] == [d["rouge1"].recall for d in direct]
    assert out["rougeL"] == [d["rougeL"].recall for d in direct]
    assert 0 < sum(out["rougeL"]) < len(refs)
