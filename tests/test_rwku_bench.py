"""`bench=rwku`: the adapter on the shared RWKU targets (single and batch), the embedded RWKU-style world, an
end-to-end run through `runner.run`, and errors that name the bad file and record."""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from unlearn_bench.benchmarks.fictitious.rwku_targets import ATTACKS, REVERSE_QUERY
from unlearn_bench.benchmarks.rwku import RwkuBenchmark, RwkuConfig
from unlearn_bench.benchmarks.rwku_data import FB
from unlearn_bench.data.collate import PromptFormat
from unlearn_bench.data.records import DataError
from unlearn_bench.evaluation.lm import LM
from unlearn_bench.runner import run, run_dir_for

KING = "1_Stephen_King"


@pytest.fixture(scope="module")
def rwku(shared_data: Path) -> Path:
    return shared_data / "rwku"


def local(rwku: Path, **kw) -> RwkuBenchmark:
    return RwkuBenchmark(RwkuConfig(source="local", data_dir=str(rwku), **kw))


def test_single_target_data(rwku: Path) -> None:
    bench = local(rwku, targets=[KING])
    data = bench.data()
    # passage.json holds 128 passages; they are the forget corpus, as raw text.
    assert len(data.forget) == 128 and all(qa.question is None for qa in data.forget)
    assert data.retain == [] and data.forget_perturbed == []  # RWKU's main setting: no retain corpus
    assert data.target_train == data.retain_train  # no retain-only reference in RWKU
    assert data.refusals and all(isinstance(r, str) for r in data.refusals)  # reject.json outputs
    probes = bench.probes()
    assert len(probes["forget"]) == 8 + 10 + 29 and len(probes["neighbor"]) == 30 + 30
    assert bench.data_key("target") == bench.data_key("retain")


def test_default_is_the_first_target_and_caps_apply(rwku: Path) -> None:
    bench = local(rwku, eval_max_examples=3, retain_eval_examples=2)
    assert bench.target_names == [KING]
    assert [p.level for p in bench.probes()["forget"]] == [1] * 3 + [2] * 3 + [3] * 3
    assert len(bench.probes()["neighbor"]) == 4


def test_batch_setting_pools_three_targets(rwku: Path) -> None:
    bench = local(rwku, num_targets=3, retain_corpus="other_targets")
    assert bench.target_names == ["1_Stephen_King", "2_Confucius", "3_Bruce_Lee"]
    data = bench.data()
    singles = [local(rwku, targets=[name]) for name in bench.target_names]
    assert len(data.forget) == sum(len(s.data().forget) for s in singles)
    assert len(bench.probes()["forget"]) == sum(len(s.probes()["forget"]) for s in singles)
    # retain corpus: the passages of the two targets not selected, minus those also about a target (one
    # "== External links ==" stub is shared by Stephen King and Warren Buffett)
    others = [qa for name in ("4_Warren_Buffett", "5_Christina_Aguilera")
              for qa in local(rwku, targets=[name]).data().forget]
    assert data.retain == [qa for qa in others if qa not in set(data.forget)]
    assert len(data.retain) == len(others) - 1


def test_evaluate_rows_on_real_probes(rwku: Path, tiny_lm) -> None:
    model, tokenizer = tiny_lm
    bench = local(rwku, targets=[KING], eval_max_examples=4, retain_eval_examples=3, max_new_tokens=3,
                  fluency_max_examples=3, fluency_max_new_tokens=6)
    out = bench.evaluate(LM(model, tokenizer, PromptFormat("plain"), max_length=128, batch_size=16), None)
    rows = {(m.split, m.metric): m for m in out.metrics}
    for key in [("forget", "forget_fb"), ("forget", "forget_qa"), ("forget", "forget_aa"), ("neighbor", "neighbor_fb"),
                ("neighbor", "neighbor_qa"), ("mia", "mia_forget_loss"), ("mia", "mia_retain_loss"),
                ("mia", "mia_auc_loss"), ("utility", "fluency_entropy")]:
        assert key in rows, key
    assert all(math.isfinite(m.value) for m in out.metrics)
    assert not rows[("forget", "forget_fb")].higher_is_better and rows[("neighbor", "neighbor_qa")].higher_is_better
    assert any(m.metric.startswith("forget_aa/") for m in out.metrics)
    # A tokenizer without a chat template gets RWKU's bare prompt, ending in "Answer:".
    fb = [g for g in out.generations if g["split"] == "forget" and g["level"] == FB]
    assert fb[0]["prompt"].startswith("Please complete the blank in the following question.\nQuestion: Stephen Edwin")
    assert fb[0]["prompt"].endswith("\nAnswer:")
    assert len(out.logs["rwku_mia.json"]["forget_losses"]) == 4


def test_fictitious_targets_single_and_batch() -> None:
    single = RwkuBenchmark(RwkuConfig(num_authors=12, holdout_authors=3))
    (target,) = single.targets
    data = single.data()
    assert single.target_names == [target.name] and target.name.startswith("1_")
    assert all("___" in p.query for p in target.forget_fb)
    assert {p.type for p in target.forget_aa} == set(ATTACKS) | {REVERSE_QUERY}
    assert {p.neighbor for p in target.neighbor_qa} and target.subject not in {p.neighbor for p in target.neighbor_qa}
    trained = {qa.answer for qa in data.target_train}
    never = {qa.answer for qa in data.retain_train}
    # MIA members are trained on, non-members (holdout authors) never; the retain model never sees the target.
    assert set(target.mia_forget) <= trained and not set(target.mia_retain) & trained
    assert not set(target.passages) & never and set(target.passages) <= {qa.answer for qa in data.forget}
    assert any(target.forget_qa[0].query in text and target.forget_qa[0].answer in text for text in trained)

    batch = RwkuBenchmark(RwkuConfig(num_authors=12, holdout_authors=3, num_targets=3))
    assert len(batch.targets) == 3 and len(batch.data().forget) == 3 * len(target.passages)
    subjects = {t.subject for t in batch.targets}
    assert not subjects & {p.neighbor for t in batch.targets for p in t.neighbor_fb}  # neighbours are non-targets
    # the tokenizer corpus, and so the cached target model, do not depend on the targets
    assert batch.data().tokenizer_corpus == data.tokenizer_corpus
    assert batch.data_key("target") == single.data_key("target") != batch.data_key("retain")


@pytest.mark.slow
def test_end_to_end_fictitious(compose_cfg, smoke_overrides) -> None:
    cfg = compose_cfg(smoke_overrides + ["bench=rwku", "bench.num_authors=8", "bench.holdout_authors=3",
                                         "method=ga", "method.lr=1e-3", "method.max_steps=3"])
    assert run(cfg).status == "ok"
    run_dir, _ = run_dir_for(cfg)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert {r["method"] for r in rows} == {"finetuned", "retain", "ga"}
    ga = {(r["split"], r["metric"]): r["value"] for r in rows if r["method"] == "ga"}
    for key in [("forget", "forget_fb"), ("forget", "forget_qa"), ("forget", "forget_aa"),
                ("forget", "forget_aa/reverse query"), ("neighbor", "neighbor_fb"), ("neighbor", "neighbor_qa"),
                ("mia", "mia_forget_loss"), ("mia", "mia_retain_loss"), ("mia", "mia_auc_loss")]:
        assert key in ga and math.isfinite(ga[key]), key
    finetuned = {(r["split"], r["metric"]): r["value"] for r in rows if r["method"] == "finetuned"}
    # Gradient ascent on the target's passages raises their loss.
    assert ga[("mia", "mia_forget_loss")] > finetuned[("mia", "mia_forget_loss")]


def test_malformed_probe_file_names_file_and_record(rwku: Path, tmp_path: Path) -> None:
    shutil.copytree(rwku / KING, tmp_path / KING)
    path = tmp_path / KING / "forget_level2.json"
    records = json.loads(path.read_text())
    del records[2]["answer"]
    path.write_text(json.dumps(records))
    with pytest.raises(DataError, match=r"forget_level2\.json: record 3: missing field 'answer'"):
        local(tmp_path, targets=[KING]).data()


def test_bad_settings_fail_with_the_choices(rwku: Path) -> None:
    with pytest.raises(ValueError, match="fictitious"):
        RwkuBenchmark(RwkuConfig(source="web"))
    with pytest.raises(ValueError, match="data_dir"):
        RwkuBenchmark(RwkuConfig(source="local"))
    with pytest.raises(DataError, match="9_Nobody"):
        local(rwku, targets=["9_Nobody"]).data()
    with pytest.raises(DataError, match="unknown targets"):
        RwkuBenchmark(RwkuConfig(num_authors=12, targets=["1_Nobody"])).data()
