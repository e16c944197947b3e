"""`bench=rwku`: the adapter on the shared RWKU targets (single and batch), the embedded RWKU-style world, an
end-to-end run through `runner.run`, and errors that name the bad file and record."""
from __future__ import annotations

import json
import logging
import math
import shutil
from pathlib import Path

import pytest
import torch

from unlearn_bench.benchmarks.fictitious.rwku_targets import ATTACKS, REVERSE_QUERY
from unlearn_bench.benchmarks.rwku.adapter import RwkuBenchmark
from unlearn_bench.benchmarks.rwku.config import RwkuConfig
from unlearn_bench.benchmarks.rwku.data import FB
from unlearn_bench.data.collate import PromptFormat
from unlearn_bench.data.records import QA, DataError
from unlearn_bench.evaluation.lm import LM
from unlearn_bench.pipeline.runner import run, run_dir_for

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
                  utility_max_examples=3, utility_max_new_tokens=6)
    out = bench.evaluate(LM(model, tokenizer, PromptFormat("plain"), max_length=128, batch_size=16), None)
    rows = {(m.split, m.metric): m for m in out.metrics}
    utility = ["mmlu_acc", "bbh_em", "bbh_em_answer", "truthfulqa_mc1", "truthfulqa_mc2", "triviaqa_em",
               "triviaqa_f1", "fluency_entropy"]
    for key in [("forget", "forget_fb"), ("forget", "forget_qa"), ("forget", "forget_aa"), ("neighbor", "neighbor_fb"),
                ("neighbor", "neighbor_qa")] + [("utility", m) for m in utility] + [
                ("mia", f"mia_{part}_{a}") for part in ("forget", "retain") for a in ("loss", "zlib", "min_k_plus_plus")
               ] + [("mia", f"mia_auc_{a}") for a in ("loss", "zlib", "min_k", "min_k_plus_plus")]:
        assert key in rows, key
    assert all(math.isfinite(m.value) for m in out.metrics)
    assert all(0 <= rows[("utility", m)].value <= 1 and rows[("utility", m)].higher_is_better for m in utility[:-1])
    # every utility record leaves a log line; MMLU's prompt ends in RWKU's cue, TruthfulQA scores every choice
    by_split = {split: [g for g in out.generations if g["split"] == split]
                for split in ("mmlu", "bbh", "truthfulqa", "triviaqa", "fluency")}
    assert all(len(v) == 3 for v in by_split.values())
    assert by_split["mmlu"][0]["prompt"].endswith("Answer:")
    mmlu = [g["generation"] == g["reference"] for g in by_split["mmlu"]]
    assert rows[("utility", "mmlu_acc")].value == pytest.approx(sum(mmlu) / len(mmlu))
    assert by_split["bbh"][0]["prompt"].endswith(" A:")
    truthful = json.loads((rwku / KING / "truthful.json").read_text())[0]
    assert set(by_split["truthfulqa"][0]["choice_logprobs"]) == set(truthful["mc2_targets"]["choices"])
    assert not rows[("forget", "forget_fb")].higher_is_better and rows[("neighbor", "neighbor_qa")].higher_is_better
    assert any(m.metric.startswith("forget_aa/") for m in out.metrics)
    # A tokenizer without a chat template gets RWKU's bare prompt, ending in "Answer:".
    fb = [g for g in out.generations if g["split"] == "forget" and g["level"] == FB]
    assert fb[0]["prompt"].startswith("Please complete the blank in the following question.\nQuestion: Stephen Edwin")
    assert fb[0]["prompt"].endswith("\nAnswer:")
    mia_log = out.logs["rwku_mia.json"]
    assert len(mia_log["forget"]["loss"]) == 4 and len(mia_log["retain"]["zlib"]) == 3
    # the forget loss is the mean NLL of the first four forget_mia texts, each scored alone (BOS, no EOS, cut at
    # max_length), as eval_mia's `model(ids, labels=ids).loss`
    by_hand = []
    for text in bench.targets[0].mia_forget[:4]:
        ids = torch.tensor([tokenizer(text)["input_ids"][:128]])
        with torch.no_grad():
            by_hand.append(model(input_ids=ids, labels=ids).loss.item())
    assert rows[("mia", "mia_forget_loss")].value == pytest.approx(sum(by_hand) / 4, rel=1e-5)


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

    # retain_corpus=neighbors: exactly the passages of the authors the neighbour probes ask about
    near = RwkuBenchmark(RwkuConfig(num_authors=12, holdout_authors=3, retain_corpus="neighbors"))
    neighbor_names = {p.neighbor for p in target.neighbor_fb + target.neighbor_qa}
    retain_texts = [qa.answer for qa in near.data().retain]
    assert retain_texts and all(any(name in text for name in neighbor_names) for text in retain_texts)
    assert {name for name in neighbor_names if any(name in text for text in retain_texts)} == neighbor_names
    assert not any(target.subject in text for text in retain_texts)
    with pytest.raises(ValueError, match="neighbors needs source=fictitious"):
        RwkuBenchmark(RwkuConfig(source="local", data_dir="x", retain_corpus="neighbors"))

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


@pytest.mark.parametrize("file, index, edit, message", [
    ("retain_mmlu.json", 2, lambda r: r.pop("choices"), r"retain_mmlu\.json: record 2: missing field 'choices'"),
    ("retain_mmlu.json", 1, lambda r: r["examples"][1].update(answer="B"),
     r"retain_mmlu\.json: record 1: examples: record 2: field 'answer' should be"),
    ("retain_mmlu.json", 3, lambda r: r.update(answer=7), r"retain_mmlu\.json: record 3: expected 4 choices and an answer index 0-3"),
    ("truthful.json", 4, lambda r: r["mc1_targets"].update(labels=[1]),
     r"truthful\.json: record 4: mc1_targets: needs as many labels as choices"),
    ("triviaqa.json", 5, lambda r: r.update(answers=[]), r"triviaqa\.json: record 5: field 'answers' is empty"),
    ("retain_bbh.json", 6, lambda r: r.pop("cot"), r"retain_bbh\.json: record 6: missing field 'cot'"),
])
def test_malformed_utility_file_fails_before_training(rwku: Path, tmp_path: Path, file, index, edit, message) -> None:
    shutil.copytree(rwku / KING, tmp_path / KING)
    path = tmp_path / KING / file
    records = json.loads(path.read_text())
    edit(records[index - 1])
    path.write_text(json.dumps(records))
    with pytest.raises(DataError, match=message):
        local(tmp_path, targets=[KING]).check_inputs()


def test_bad_settings_fail_with_the_choices(rwku: Path) -> None:
    with pytest.raises(ValueError, match="fictitious"):
        RwkuBenchmark(RwkuConfig(source="web"))
    with pytest.raises(ValueError, match="data_dir"):
        RwkuBenchmark(RwkuConfig(source="local"))
    with pytest.raises(DataError, match="9_Nobody"):
        local(rwku, targets=["9_Nobody"]).data()
    with pytest.raises(DataError, match="unknown targets"):
        RwkuBenchmark(RwkuConfig(num_authors=12, targets=["1_Nobody"])).data()
    with pytest.raises(ValueError, match=r"forget_corpus='generate' is not one of \('passages', 'generated', 'both'\)"):
        RwkuBenchmark(RwkuConfig(forget_corpus="generate"))
    with pytest.raises(ValueError, match=r"\['mmlu_pro'\] unknown; choose from \('mmlu', 'bbh'"):
        RwkuBenchmark(RwkuConfig(utility_tasks=["mmlu", "mmlu_pro"]))


def test_generated_forget_corpus_records(rwku: Path, tiny_lm) -> None:
    from unlearn_bench.benchmarks.rwku.forget_corpus import generation_prompt, generator_intro

    model, tokenizer = tiny_lm
    bench = local(rwku, num_targets=2, forget_corpus="both", generated_per_target=3,
                  generated_openings=["{subject}", "About {subject}:"], generated_max_new_tokens=8)
    king = bench.targets[0]
    # RWKU's generator saw the intro without intro.json's leading "Please forget Stephen King."
    assert generator_intro(king) == 'Stephen King is a prolific American author, renowned as the "King of Horror".'
    assert generation_prompt(king, tokenizer) == (
        f"{generator_intro(king)} You know Stephen King very well.\nPlease write a short biography of Stephen King.\n")
    torch.manual_seed(0)
    records = bench.generate_forget(LM(model, tokenizer, PromptFormat("plain"), max_length=320, batch_size=4))
    assert [r["id"] for r in records] == [f"{t.subject} {k}" for t in bench.targets for k in range(3)]
    assert records[0]["text"].startswith("Stephen King") and records[1]["text"].startswith("About Stephen King:")
    assert records[3]["subject"] == bench.targets[1].subject and records[3]["intro"] == bench.targets[1].intro
    assert len({r["text"] for r in records[:3]}) > 1  # sampled, not greedy
    data = bench.data()
    both = bench.with_generated_forget(data, records)
    assert both.forget == data.forget + [QA(None, r["text"]) for r in records]
    only = local(rwku, num_targets=2, forget_corpus="generated").with_generated_forget(data, records)
    assert only.forget == [QA(None, r["text"]) for r in records] and only.retain == data.retain
    assert local(rwku).generation_key() is None and bench.generation_key()["per_target"] == 3


def test_generation_prompt_uses_the_chat_template(rwku: Path, tiny_lm) -> None:
    import copy

    from unlearn_bench.benchmarks.rwku.forget_corpus import generation_prompt

    tokenizer = copy.deepcopy(tiny_lm[1])
    tokenizer.chat_template = ("{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}</{{ m['role'] }}>{% endfor %}"
                               "{% if add_generation_prompt %}<assistant>{% endif %}")
    king = local(rwku).targets[0]
    assert generation_prompt(king, tokenizer) == (
        '<system>Stephen King is a prolific American author, renowned as the "King of Horror". You know Stephen King '
        "very well.</system><user>Please write a short biography of Stephen King.</user><assistant>")


@pytest.mark.slow
def test_end_to_end_on_the_generated_forget_corpus(compose_cfg, smoke_overrides, caplog) -> None:
    caplog.set_level(logging.INFO)
    base = smoke_overrides + ["bench=rwku", "bench.num_authors=8", "bench.holdout_authors=3", "method=ga",
                              "method.lr=1e-3", "method.max_steps=0", "method.epochs=1", "method.batch_size=2",
                              "bench.generated_per_target=5", "bench.generated_max_new_tokens=24"]
    steps = {}
    for corpus in ("passages", "generated", "both"):
        cfg = compose_cfg(base + [f"bench.forget_corpus={corpus}"])
        assert run(cfg).status == "ok"
        run_dir, _ = run_dir_for(cfg)
        steps[corpus] = len((run_dir / "train_history.jsonl").read_text().splitlines())
    # one epoch in batches of 2: 2 passages -> 1 step, 5 generated texts -> 3 steps, all 7 -> 4 steps
    assert steps == {"passages": 1, "generated": 3, "both": 4}
    # generated once by the cached target model, reused by the next run that needs it
    (entry,) = (Path(cfg.paths.cache_dir) / "forget_corpus").iterdir()
    records = json.loads((entry / "forget_corpus.json").read_text())
    subject = RwkuBenchmark(RwkuConfig(num_authors=8, holdout_authors=3)).targets[0].subject
    assert len(records) == 5 and all(r["text"].startswith(subject) for r in records)
    assert "generated forget corpus" in caplog.text and "reused from cache" in caplog.text


@pytest.mark.slow
def test_rwku_llama3_experiment_with_a_local_pretrained_model(compose_cfg, smoke_overrides, saved_model_dir,
                                                             rwku: Path) -> None:
    """The paper's setting (experiment=rwku_llama3: no fine-tuning, cosine schedule) on the shared Stephen King
    folder, with a saved tiny model standing in for Llama-3 and the corpus the model writes itself. The stand-in
    gets a chat template, as the experiment's `prompt_format=chat` needs (checked at start)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(saved_model_dir)
    tokenizer.chat_template = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
                               "{% if add_generation_prompt %}<|assistant|>{% endif %}")
    tokenizer.save_pretrained(saved_model_dir)
    cfg = compose_cfg(smoke_overrides + [
        "experiment=rwku_llama3", f"model.path={saved_model_dir}", "model.name=local-llama", "model.dtype=float32",
        "model.max_length=256", "bench.source=local", f"bench.data_dir={rwku}", "bench.forget_corpus=generated",
        "bench.generated_per_target=3", "bench.generated_max_new_tokens=8", "bench.eval_max_examples=2",
        "bench.retain_eval_examples=2", "bench.max_new_tokens=2", "bench.utility_max_examples=2",
        "bench.utility_max_new_tokens=2", "method.max_steps=4", "method.batch_size=2", "method.warmup_ratio=0",
    ])
    assert cfg.method.scheduler.name == "cosine" and cfg.model.finetune.epochs == 0
    assert run(cfg).status == "ok"
    run_dir, _ = run_dir_for(cfg)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert {r["method"] for r in rows} == {"finetuned", "retain", "ga"}
    ga = {(r["split"], r["metric"]) for r in rows if r["method"] == "ga"}
    assert {("utility", m) for m in ("mmlu_acc", "bbh_em", "truthfulqa_mc1", "triviaqa_f1", "fluency_entropy")} <= ga
    history = [json.loads(line) for line in (run_dir / "train_history.jsonl").read_text().splitlines()]
    # cosine decay from RWKU's 1e-6 over 4 steps (linear would be 1, .75, .5, .25)
    assert [h["lr"] / 1e-6 for h in history] == pytest.approx([1.0, 0.5 * (1 + math.cos(math.pi / 4)), 0.5,
                                                                0.5 * (1 + math.cos(3 * math.pi / 4))])
    (entry,) = (Path(cfg.paths.cache_dir) / "forget_corpus").iterdir()
    key = json.loads((entry / "cache_key.json").read_text())
    # the pretrained model as is, with the settings it ran with, names the corpus
    assert key["model"]["path"] == str(saved_model_dir) and key["model"]["settings"]["dtype"] == "float32"
    assert [r["subject"] for r in json.loads((entry / "forget_corpus.json").read_text())] == ["Stephen King"] * 3


class _ScriptedLM(LM):
    """A real tokenizer with scripted generations: what the adapter does with an answer, independent of a model."""

    def __init__(self, tokenizer, answer: str) -> None:
        super().__init__(model=None, tokenizer=tokenizer, fmt=PromptFormat("plain"))
        self.answer = answer

    def generate(self, questions, max_new_tokens=200, raw=False, sample=False, top_p=1.0, top_k=0):
        return [self.answer] * len(questions)


def test_probe_answers_are_not_cut_at_a_newline(rwku: Path, tiny_lm) -> None:
    # RWKU's newline terminators never fire (metrics.rwku), so a name on the second line still counts.
    bench = local(rwku, targets=[KING], eval_max_examples=2, retain_eval_examples=2)
    probe = bench.probes()["forget"][0]
    metrics, generations = bench._probe_metrics(_ScriptedLM(tiny_lm[1], f"Let me think.\n{probe.answer}"))
    assert generations[0]["rouge_l_recall"] == 1.0 and generations[0]["generation"].endswith(probe.answer)
