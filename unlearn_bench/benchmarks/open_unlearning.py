"""open-unlearning's result files beside ours, and its retain logs as the forget-quality reference.

open-unlearning (locuslab/open-unlearning, src/evals/base.py `Evaluator`) writes `<BENCH>_EVAL.json` (per metric:
`agg_value` and, where per-example, `value_by_index` keyed by the example index as a string) and
`<BENCH>_SUMMARY.json` (metric -> agg_value). Metric names are its config names (configs/eval/tofu_metrics,
configs/eval/muse_metrics); the values here are this harness's, computed as those metrics define them.
A retain model's TOFU_EVAL.json is what its `retain_logs_path` reads: forget quality compares against the
`forget_truth_ratio` scores (wrong/right = 1/R) in it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from unlearn_bench.benchmarks.base import Metric
from unlearn_bench.data.records import DataError, parse_json
from unlearn_bench.benchmarks.tofu.metrics import truth_ratio

# Our (split, metric) row -> open-unlearning's TOFU metric name (configs/eval/tofu.yaml and its tofu_metrics).
TOFU_NAMES = {
    ("summary", "forget_quality"): "forget_quality",
    ("summary", "model_utility"): "model_utility",
    ("forget", "truth_ratio"): "forget_truth_ratio",
    ("forget", "prob"): "forget_Q_A_Prob",
    ("forget", "rouge"): "forget_Q_A_ROUGE",
    ("forget", "extraction_strength"): "extraction_strength",
    ("forget", "exact_memorization"): "exact_memorization",
    ("forget_holdout", "auc_loss"): "mia_loss",
    ("forget_holdout", "auc_zlib"): "mia_zlib",
    ("forget_holdout", "auc_min_k"): "mia_min_k",
    ("forget_holdout", "auc_min_k_plus_plus"): "mia_min_k_plus_plus",
    ("forget", "privleak"): "privleak",
}
# The same for MUSE (configs/eval/muse.yaml and its muse_metrics).
MUSE_NAMES = {
    ("forget", "verbmem"): "forget_verbmem_ROUGE",
    ("forget", "knowmem"): "forget_knowmem_ROUGE",
    ("retain", "knowmem"): "retain_knowmem_ROUGE",
    ("forget", "privleak"): "privleak",
    ("forget", "verbmem_extraction_strength"): "extraction_strength",
    ("forget", "verbmem_exact_memorization"): "exact_memorization",
    ("forget_holdout", "auc_min_k"): "mia_min_k",
}


def eval_files(bench: str, metrics: Sequence[Metric], names: Mapping[tuple[str, str], str],
               per_example: Mapping[str, Sequence[dict[str, Any]]],
               mia: Mapping[str, tuple[Sequence[float], Sequence[float]]] | None = None) -> dict[str, dict[str, Any]]:
    """`{BENCH}_EVAL.json` and `{BENCH}_SUMMARY.json` from our metric rows (renamed by `names`), the
    per-example entries of the metrics that have them, and each MIA's per-example scores (`mia`: open-unlearning
    name -> forget scores, holdout scores) as its `mia_auc` writes them (src/evals/metrics/mia/utils.py): `forget`
    and `holdout`, each the mean score and `value_by_index` of {"score"}, beside `auc` = `agg_value`."""
    evals: dict[str, dict[str, Any]] = {}
    for m in metrics:
        name = names.get((m.split, m.metric))
        if name is not None:
            evals[name] = {"agg_value": m.value}
            if name in per_example:
                evals[name]["value_by_index"] = by_index(per_example[name])
            if mia and name in mia:
                for group, scores in zip(("forget", "holdout"), mia[name]):
                    evals[name][group] = {"agg_value": float(np.mean(scores)), "value_by_index": by_index([{"score": s} for s in scores])}
                evals[name]["auc"] = m.value
    return {f"{bench}_EVAL.json": evals, f"{bench}_SUMMARY.json": {k: v["agg_value"] for k, v in evals.items()}}


def by_index(values: Sequence[Any]) -> dict[str, Any]:
    return {str(i): v for i, v in enumerate(values)}


def tofu_per_example(forget: Any, memorization: Mapping[str, Sequence[float | None]]) -> dict[str, list[dict[str, Any]]]:
    """value_by_index entries of the forget split (a qa_eval.SplitResult) as open-unlearning writes them."""
    losses = np.asarray(forget.scores.gt_loss, dtype=float)
    return {
        "forget_Q_A_Prob": [{"prob": float(np.exp(-x)), "avg_loss": float(x)} for x in losses],
        "forget_Q_A_ROUGE": [{"rougeL_recall": float(r), "input": ex.question, "ground_truth": ex.answer,
                              "generation": g}
                             for r, ex, g in zip(forget.scores.rouge_l_recall, forget.examples, forget.generations)],
        "forget_truth_ratio": [{"score": float(x)} for x in 1.0 / truth_ratio(forget.scores)],
        **{name: [{"score": x} for x in values] for name, values in memorization.items()},
    }


def _read_logs(path: str | Path) -> tuple[Path, Any]:
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"{path}: file not found (retain logs: an open-unlearning TOFU_EVAL.json)")
    return path, parse_json(path.read_text(encoding="utf-8"), path)


def read_retain_agg(path: str | Path, metric: str) -> float | None:
    """A metric's `agg_value` in an open-unlearning TOFU_EVAL.json (privleak reads `mia_min_k`); None if absent."""
    path, logs = _read_logs(path)
    entry = logs.get(metric) if isinstance(logs, dict) else None
    if entry is None:
        return None
    value = entry.get("agg_value") if isinstance(entry, dict) else None
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise DataError(f"{path}: {metric}: field 'agg_value' should be a number, got {value!r}")
    return float(value)


def read_retain_truth_ratios(path: str | Path) -> np.ndarray:
    """The retain model's truth ratios R on the forget split, from an open-unlearning TOFU_EVAL.json (the file
    `retain_logs_path` names): its `forget_truth_ratio.value_by_index[i].score` is 1/R."""
    path, logs = _read_logs(path)
    by_index = logs.get("forget_truth_ratio", {}).get("value_by_index") if isinstance(logs, dict) else None
    if not isinstance(by_index, dict) or not by_index:
        raise DataError(f"{path}: no 'forget_truth_ratio' with a 'value_by_index' (is it a TOFU_EVAL.json?)")
    scores = []
    for index, entry in by_index.items():
        score = entry.get("score") if isinstance(entry, dict) else None
        if not isinstance(score, (int, float)) or score <= 0:
            raise DataError(f"{path}: forget_truth_ratio.value_by_index['{index}']: field 'score' should be a "
                            f"positive number, got {score!r}")
        scores.append(float(score))
    return 1.0 / np.asarray(scores)

