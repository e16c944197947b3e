"""open-unlearning's TOFU_EVAL.json / TOFU_SUMMARY.json layout, and its retain logs as the forget-quality reference."""
from __future__ import annotations

import json

import numpy as np
import pytest

from unlearn_bench.benchmarks.base import Metric
from unlearn_bench.data.records import DataError, EvalQA
from unlearn_bench.benchmarks.open_unlearning import TOFU_NAMES, eval_files, read_retain_truth_ratios, tofu_per_example
from unlearn_bench.benchmarks.tofu.qa_eval import SplitResult
from unlearn_bench.benchmarks.tofu.metrics import SplitScores, forget_quality

UNLEARNED = SplitScores([1.0, 2.0, 0.5], [1.2, 1.8, 0.7], [[2.0, 2.2], [1.0, 1.5], [0.9, 3.0]], [0.5, 0.2, 1.0])
RETAIN = SplitScores([1.5, 1.0, 0.4], [1.1, 2.5, 0.3], [[1.0, 1.2], [3.0, 2.5], [0.2, 0.1]], [0.1, 0.3, 0.2])


def forget_result(scores: SplitScores) -> SplitResult:
    examples = [EvalQA(f"q{i}?", f"a{i}") for i in range(3)]
    return SplitResult(examples, scores, ["g0", "g1", "g2"])


def test_eval_files_use_open_unlearnings_names_and_layout():
    metrics = [Metric("summary", "forget_quality", 0.25, True), Metric("forget", "truth_ratio", 0.6, True),
               Metric("forget", "prob", 0.4, False), Metric("forget_holdout", "auc_min_k", 0.7, None),
               Metric("retain", "rouge", 0.9, True)]  # not an open-unlearning TOFU metric: left out
    memorization = {"extraction_strength": [1.0, 0.5, 0.25], "exact_memorization": [1.0, None, 0.0]}
    files = eval_files("TOFU", metrics, TOFU_NAMES, tofu_per_example(forget_result(UNLEARNED), memorization))
    assert files["TOFU_SUMMARY.json"] == {"forget_quality": 0.25, "forget_truth_ratio": 0.6, "forget_Q_A_Prob": 0.4,
                                          "mia_min_k": 0.7}
    evals = files["TOFU_EVAL.json"]
    assert evals["forget_Q_A_Prob"]["value_by_index"]["1"] == {"prob": pytest.approx(np.exp(-2.0)), "avg_loss": 2.0}
    # open-unlearning's per-example truth ratio is wrong/right = exp(paraphrased - mean perturbed) = 1/R.
    assert evals["forget_truth_ratio"]["value_by_index"]["0"]["score"] == pytest.approx(np.exp(1.2 - 2.1))
    assert "value_by_index" not in evals["forget_quality"]


def test_retain_logs_give_the_same_forget_quality_as_the_retain_scores(tmp_path):
    retain_files = eval_files("TOFU", [Metric("forget", "truth_ratio", 0.5, True)], TOFU_NAMES,
                              tofu_per_example(forget_result(RETAIN), {}))
    path = tmp_path / "TOFU_EVAL.json"
    path.write_text(json.dumps(retain_files["TOFU_EVAL.json"]))
    ratios = read_retain_truth_ratios(path)
    assert forget_quality(UNLEARNED, ratios) == pytest.approx(forget_quality(UNLEARNED, RETAIN))
    assert forget_quality(RETAIN, ratios) == pytest.approx(1.0)


def test_bad_retain_logs_name_the_file_and_field(tmp_path):
    path = tmp_path / "TOFU_EVAL.json"
    with pytest.raises(DataError, match="file not found"):
        read_retain_truth_ratios(path)
    path.write_text(json.dumps({"forget_Q_A_Prob": {"agg_value": 0.5}}))
    with pytest.raises(DataError, match="no 'forget_truth_ratio'"):
        read_retain_truth_ratios(path)
    path.write_text(json.dumps({"forget_truth_ratio": {"value_by_index": {"0": {"score": 0.5}, "1": {"score": "x"}}}}))
    with pytest.raises(DataError, match=r"value_by_index\['1'\]: field 'score'"):
        read_retain_truth_ratios(path)
