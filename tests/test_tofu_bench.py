"""`bench=tofu` on the real TOFU records in ../shared/data/tofu: data, pairing, errors, and a tiny run end to end."""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from unlearn_bench.benchmarks.tofu.adapter import TofuBenchmark
from unlearn_bench.benchmarks.tofu.config import TofuConfig
from unlearn_bench.data.records import DataError
from unlearn_bench.pipeline.runner import run, run_dir_for

TOFU_LOGS = ("eval_log_forget.json", "eval_log.json", "eval_real_author_wo_options.json", "eval_real_world_wo_options.json")
# What TOFU's aggregate_eval_stat.py reads from each log (`get_model_utility`, `get_forget_quality`).
TOFU_LOG_KEYS = {"avg_gt_loss", "average_perturb_loss", "avg_paraphrased_loss", "rougeL_recall", "generated_text"}


@pytest.fixture(scope="module")
def tofu_dir(shared_data: Path) -> Path:
    return shared_data / "tofu"


def bench(tofu_dir: Path | str, **kw) -> TofuBenchmark:
    return TofuBenchmark(TofuConfig(data_dir=str(tofu_dir), **kw))


def test_forget01_data_sizes_and_retain_pairing(tofu_dir: Path) -> None:
    b = bench(tofu_dir, forget_split="forget01")
    data = b.data()
    assert (len(data.forget), len(data.retain), len(data.target_train)) == (40, 3960, 4000)
    assert data.retain_train == data.retain
    assert not set(data.forget) & set(data.retain) and set(data.forget) | set(data.retain) == set(data.target_train)
    assert {len(p) for p in data.forget_perturbed} == {5}
    # refusals are read when a refusal-based method asks, and stay out of the tokenizer corpus (which keys the model)
    assert data.refusals == [] and len(data.refusal_answers()) > 10
    assert not set(data.refusal_answers()) & set(data.tokenizer_corpus)
    # TOFU ds_size: every split capped at 300; forget01 has only 40.
    sizes = {k: len(v) for k, v in b.eval_splits().items()}
    assert sizes == {"retain": 300, "real_authors": 100, "world_facts": 117, "forget": 40}


def test_no_trained_wrong_answer_is_an_evaluated_answer(tofu_dir: Path) -> None:
    b = bench(tofu_dir, forget_split="forget05", eval_max_examples=None)
    data = b.data()
    scored = {a for split in b.eval_splits().values() for ex in split
              for a in (ex.answer, ex.paraphrased_answer, *ex.perturbed_answers) if a}
    scored |= {qa.answer for qa in b._qa("holdout05")}  # the MIA scores the holdout answers
    trained = [a for alternates in data.forget_perturbed for a in alternates]
    assert len(data.forget_perturbed) == len(data.forget) and {len(p) for p in data.forget_perturbed} == {5}
    assert trained and not set(trained) & scored
    assert set(trained) <= {qa.answer for qa in data.retain}  # other retain questions' answers
    # of the same kind: a question about parents gets answers about parents
    parents = [i for i, qa in enumerate(data.forget) if "parents" in qa.question]
    assert parents and sum("parent" in a or "father" in a or "mother" in a
                           for i in parents for a in data.forget_perturbed[i]) > 0.8 * 5 * len(parents)


def test_cache_keys_and_corpus_do_not_depend_on_target_unrelated_settings(tofu_dir: Path) -> None:
    b1, b10 = bench(tofu_dir, forget_split="forget01"), bench(tofu_dir, forget_split="forget10", eval_max_examples=None)
    assert b1.data_key("target") == b10.data_key("target")
    assert b1.data_key("retain") != b10.data_key("retain")
    assert b1.data().tokenizer_corpus == b10.data().tokenizer_corpus  # the cached target's tokenizer fits both
    assert len(b10.eval_splits()["forget"]) == 400


def test_missing_split_names_it(tofu_dir: Path, tmp_path: Path) -> None:
    for f in tofu_dir.iterdir():
        if f.name != "retain99.json":
            shutil.copy(f, tmp_path / f.name)
    with pytest.raises(DataError, match="retain99"):
        bench(tmp_path, forget_split="forget01").data()


def test_misaligned_forget_perturbed_is_an_error(tofu_dir: Path, tmp_path: Path) -> None:
    for f in tofu_dir.iterdir():
        shutil.copy(f, tmp_path / f.name)
    lines = (tmp_path / "forget01_perturbed.json").read_text().splitlines()
    (tmp_path / "forget01_perturbed.json").write_text("\n".join([lines[1], lines[0], *lines[2:]]) + "\n")
    with pytest.raises(DataError, match=r"forget01_perturbed.json: record 1: field 'question' differs"):
        bench(tmp_path, forget_split="forget01").data()
    (tmp_path / "forget01_perturbed.json").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(DataError, match="39 records"):
        bench(tmp_path, forget_split="forget01").data()


def test_bad_settings_fail_at_build() -> None:
    with pytest.raises(ValueError, match="forget20"):
        TofuBenchmark(TofuConfig(forget_split="forget20"))
    with pytest.raises(ValueError, match="eval_max_examples"):
        TofuBenchmark(TofuConfig(eval_max_examples=0))


def test_tiny_run_end_to_end_on_forget01(tofu_dir: Path, tmp_path: Path, compose_cfg) -> None:
    cfg = compose_cfg([
        "bench=tofu", f"bench.data_dir={tofu_dir}", "bench.forget_split=forget01", "bench.eval_max_examples=20",
        "bench.max_new_tokens=16", "method=ga", "method.max_steps=2",
        "model.hidden_size=64", "model.num_layers=2", "model.num_heads=2", "model.intermediate_size=128",
        "model.vocab_size=400", "model.finetune.max_steps=3", "model.finetune.batch_size=32",
        f"paths.cache_dir={tmp_path / 'cache'}", f"paths.results_dir={tmp_path / 'results'}",
    ])
    assert run(cfg).status == "ok"
    run_dir, _ = run_dir_for(cfg)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    for method in ("finetuned", "retain", "ga"):
        got = {(r["split"], r["metric"]): r["value"] for r in rows if r["method"] == method}
        expected = {("summary", "forget_quality"), ("summary", "model_utility")} | {
            (s, m) for s in ("forget", "retain", "real_authors", "world_facts") for m in ("prob", "rouge", "truth_ratio")} | {
            ("forget_holdout", f"auc_{a}") for a in ("loss", "zlib", "min_k", "min_k_plus_plus")} | {
            ("forget", "extraction_strength"), ("forget", "exact_memorization"),
            ("forget", "privleak"), ("forget_holdout", "auc_min_k_retain_model")} | {
            ("cost", f"eval_{phase}_seconds") for phase in ("scoring", "generation", "mia", "memorization")}
        if method == "ga":  # the unlearned model's cost rows (evaluation/cost.py)
            expected |= {("cost", m) for m in ("unlearn_seconds", "unlearn_seconds_per_step", "seconds_per_question",
                                                "inference_overhead")}
        assert set(got) == expected, method
        assert all(math.isfinite(v) for v in got.values()), method
        assert all(got[("cost", f"eval_{p}_seconds")] > 0 for p in ("scoring", "generation", "mia", "memorization"))
    unlearn = {r["metric"]: r["value"] for r in rows if r["method"] == "ga" and r["split"] == "cost"}
    assert unlearn["unlearn_seconds_per_step"] == pytest.approx(unlearn["unlearn_seconds"] / 2)  # method.max_steps=2
    # The retain model compared with itself: identical truth-ratio samples, KS p-value 1; privleak 0.
    assert [r["value"] for r in rows if r["method"] == "retain" and r["metric"] == "forget_quality"] == [1.0]
    value = {(r["method"], r["metric"]): r["value"] for r in rows}
    assert value[("retain", "privleak")] == 0.0
    # Everyone else against the retain model's Min-K% AUC, as open-unlearning's privacy.py `privleak`.
    retain_auc = value[("retain", "auc_min_k")]
    for method in ("finetuned", "ga"):
        assert value[(method, "auc_min_k_retain_model")] == retain_auc
        assert value[(method, "privleak")] == pytest.approx(
            ((1 - value[(method, "auc_min_k")]) - (1 - retain_auc)) / (1 - retain_auc) * 100)
    for name in TOFU_LOGS:
        log = json.loads((run_dir / name).read_text())
        assert TOFU_LOG_KEYS <= set(log), name
        assert len(log["avg_gt_loss"]) == 20
    # TOFU's long answers do not fit the tiny model's context: every split says how many were cut.
    truncation = json.loads((run_dir / "scoring_truncation.json").read_text())
    assert set(truncation) == {"forget", "retain", "real_authors", "world_facts"}
    assert 0 < truncation["forget"]["truncated"] <= truncation["forget"]["scored"] == 20 * 7
    # open-unlearning's files beside ours, with its metric names.
    summary = json.loads((run_dir / "TOFU_SUMMARY.json").read_text())
    got = {(r["split"], r["metric"]): r["value"] for r in rows if r["method"] == "ga"}
    assert summary["forget_quality"] == got[("summary", "forget_quality")]
    assert summary["extraction_strength"] == got[("forget", "extraction_strength")]
    assert summary["privleak"] == got[("forget", "privleak")]
    evals = json.loads((run_dir / "TOFU_EVAL.json").read_text())
    assert len(evals["forget_truth_ratio"]["value_by_index"]) == len(evals["extraction_strength"]["value_by_index"]) == 20
    # each MIA's per-example scores as open-unlearning's mia_auc writes them, and they give the AUC reported
    from sklearn.metrics import roc_auc_score

    for name in ("mia_loss", "mia_zlib", "mia_min_k", "mia_min_k_plus_plus"):
        forget, holdout = ([v["score"] for v in evals[name][g]["value_by_index"].values()] for g in ("forget", "holdout"))
        assert len(forget) == len(holdout) == 20, name
        assert evals[name]["forget"]["agg_value"] == pytest.approx(sum(forget) / 20)
        auc = roc_auc_score([0] * 20 + [1] * 20, forget + holdout)
        assert evals[name]["auc"] == evals[name]["agg_value"] == pytest.approx(auc) == summary[name], name
    assert not list(run_dir.glob("eval_log_retain.json"))
