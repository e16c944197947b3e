"""TOFU's privleak as open-unlearning computes it (configs/eval/tofu_metrics/privleak.yaml: MUSE's PrivLeak of the
forget-vs-holdout Min-K% AUC, `mia_min_k`, relative to the retain model's), against hand-computed values and
open-unlearning's formula (src/evals/metrics/privacy.py `privleak`, written out below)."""
from __future__ import annotations

import json
import logging

import pytest

from unlearn_bench.benchmarks.base import SELF_REFERENCE, Metric
from unlearn_bench.benchmarks.open_unlearning import read_retain_agg
from unlearn_bench.benchmarks.tofu.qa_eval import privleak_rows
from unlearn_bench.data.records import DataError
from unlearn_bench.metrics.mia import mia_auc


def ou_privleak(score: float, ref: float) -> float:
    """open-unlearning d3d7cf9 src/evals/metrics/privacy.py `privleak`, verbatim but for the kwargs."""
    score = 1 - score
    ref = 1 - ref
    return (score - ref) / (ref + 1e-10) * 100


def aucs(min_k: float) -> list[Metric]:
    return [Metric("forget_holdout", "auc_loss", 0.9, None), Metric("forget_holdout", "auc_min_k", min_k, None)]


def rows_of(*args) -> dict[tuple[str, str], float]:
    rows, _ = privleak_rows(*args)
    return {(m.split, m.metric): m.value for m in rows}


def test_privleak_is_the_relative_change_of_muses_auc_against_the_retain_models():
    # Min-K% scores (loss-like) of 3 forget and 2 holdout answers: 4 of the 6 pairs have holdout > forget.
    own = mia_auc([1.0, 2.0, 3.5], [2.5, 3.0])
    assert own == pytest.approx(4 / 6)
    got = rows_of(aucs(own), {"forget_holdout_auc_min_k": 0.6})
    # by hand: MUSE's orientation 1/3 vs 0.4 -> (1/3 - 0.4) / 0.4 * 100 = -16.67 (the forget set leaks a little more)
    assert got[("forget", "privleak")] == pytest.approx((1 / 3 - 0.4) / 0.4 * 100)
    assert got[("forget_holdout", "auc_min_k_retain_model")] == 0.6
    for score, ref in [(own, 0.6), (0.95, 0.5), (0.3, 0.55), (0.5, 0.5), (1.0, 0.2)]:
        assert rows_of(aucs(score), {"forget_holdout_auc_min_k": ref})[("forget", "privleak")] == \
            pytest.approx(ou_privleak(score, ref), rel=1e-8)


def test_the_retain_reference_comes_from_logs_the_run_or_open_unlearnings_default(tmp_path, caplog):
    assert rows_of(aucs(0.7), SELF_REFERENCE) == {("forget_holdout", "auc_min_k_retain_model"): 0.7,
                                                  ("forget", "privleak"): 0.0}
    # a retain TOFU_EVAL.json (retain_logs_path) wins over the run's own retain model, as open-unlearning reads it
    assert rows_of(aucs(0.7), {"forget_holdout_auc_min_k": 0.6}, 0.55)[("forget", "privleak")] == \
        pytest.approx(ou_privleak(0.7, 0.55))
    # no retain model at all: privleak.yaml's ref_value 0.5
    assert rows_of(aucs(0.7), None) == {("forget_holdout", "auc_min_k_retain_default"): 0.5,
                                        ("forget", "privleak"): pytest.approx(ou_privleak(0.7, 0.5))}
    # a retain evaluation cached before privleak: not reported rather than compared with 0.5
    with caplog.at_level(logging.WARNING):
        assert rows_of(aucs(0.7), {"forget_scores": {}}) == {}
    assert "privleak not reported" in caplog.text
    assert ("forget", "privleak") not in rows_of(aucs(0.7), {"forget_holdout_auc_min_k": 1.0})  # divides by 0
    _, reference = privleak_rows(aucs(0.7), None)
    assert reference == {"forget_holdout_auc_min_k": 0.7}  # what later runs compare against


def test_retain_logs_agg_value(tmp_path):
    path = tmp_path / "TOFU_EVAL.json"
    path.write_text(json.dumps({"mia_min_k": {"agg_value": 0.61}, "forget_quality": {"agg_value": None}}))
    assert read_retain_agg(path, "mia_min_k") == 0.61
    assert read_retain_agg(path, "mia_loss") is None  # absent: the next reference is used
    with pytest.raises(DataError, match="forget_quality: field 'agg_value' should be a number, got None"):
        read_retain_agg(path, "forget_quality")
