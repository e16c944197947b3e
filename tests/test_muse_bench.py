"""`bench=muse`: the fictitious MUSE-style corpus, the hub-layout path (real knowmem + fixture texts), MIA scoring,
and an end-to-end run through `runner.run`."""
from __future__ import annotations

import json
import math
import shutil

import pytest
import torch
from hydra import compose, initialize_config_module

from unlearn_bench.benchmarks.base import SELF_REFERENCE
from unlearn_bench.benchmarks.fictitious.muse_corpus import (
    ICL_SHOTS,
    article_sentences,
    fictitious_corpus,
    write_hub_layout,
)
from unlearn_bench.benchmarks.muse.adapter import (
    WORDS_PER_TOKEN,
    MuseBenchmark,
    MuseConfig,
    load_corpus,
    word_chunks,
)
from unlearn_bench.evaluation.mia_eval import ATTACKS, mia_scores
from unlearn_bench.benchmarks.fictitious.world import generate_world
from unlearn_bench.config import register_configs
from unlearn_bench.data.collate import PromptFormat
from unlearn_bench.data.records import QA, DataError
from unlearn_bench.evaluation.lm import LM
from unlearn_bench.metrics import mia
from unlearn_bench.benchmarks.muse.metrics import RETRAIN_AUC


@pytest.fixture(scope="module")
def corpus():
    return fictitious_corpus(num_authors=20, seed=0)


# --- the fictitious corpus ---------------------------------------------------------------------------------


def test_fictitious_splits_follow_muse(corpus):
    t = corpus.texts
    forget = t[("raw", "forget")]
    assert len(forget) == 2 and t[("privleak", "forget")] == forget
    assert t[("scal", "forget_1")] == forget == t[("sust", "forget_1")]
    for k in range(1, 4):  # scal nested, sust pairwise disjoint
        assert set(t[("scal", f"forget_{k}")]) < set(t[("scal", f"forget_{k + 1}")])
        assert not set(t[("sust", f"forget_{k}")]) & set(t[("sust", f"forget_{k + 1}")])
    trained = set(forget) | set(t[("raw", "retain1")]) | set(t[("raw", "retain2")])
    assert len(trained) == 20 and not trained & set(t[("raw", "holdout")])
    assert t[("privleak", "holdout")] == t[("raw", "holdout")]
    # knowmem/privleak retain texts are never part of any scal/sust fold, nor of unlearning's retain1
    folds = set(t[("scal", "forget_4")])
    assert not set(t[("privleak", "retain")]) & (folds | set(t[("raw", "retain1")]))
    assert set(t[("privleak", "retain")]) < set(t[("raw", "retain2")])


def test_fictitious_eval_sets_come_from_the_articles(corpus):
    forget = corpus.texts[("raw", "forget")]
    assert [f"{r['prompt']} {r['gt']}" for r in corpus.verbmem] == forget
    qa = corpus.knowmem["forget_qa"]
    assert len(qa) == 2 * 10 - ICL_SHOTS and len(corpus.icl["forget_qa"]) == ICL_SHOTS
    # every forget answer is a fact stated in its author's article
    for q in qa:
        assert q.answer in forget[q.meta["author"] - 18]
    world = generate_world(22, 0, n_perturbed=0)
    assert forget[0] == " ".join(article_sentences(world.authors[18]))


def test_too_few_authors_is_a_data_error():
    with pytest.raises(DataError, match="num_authors=5"):
        fictitious_corpus(num_authors=5, seed=0)


def test_hub_layout_round_trip(corpus, tmp_path):
    """The fictitious corpus on disk in the hub layout reads back through muse_data unchanged."""
    write_hub_layout(corpus, tmp_path, "news")
    assert (tmp_path / "news" / "knowmem" / "retain_qa_icl.json").is_file()
    loaded = load_corpus(MuseConfig(corpus="news", data_dir=str(tmp_path), forget_source="scal",
                                    forget_split="forget_3"))
    assert loaded.verbmem == corpus.verbmem and loaded.icl == corpus.icl
    assert {k: [q.as_qa() for q in v] for k, v in loaded.knowmem.items()} == \
        {k: [q.as_qa() for q in v] for k, v in corpus.knowmem.items()}
    assert loaded.texts == {k: corpus.texts[k] for k in loaded.texts}
    assert set(loaded.texts) == {("raw", "forget"), ("raw", "retain1"), ("raw", "retain2"), ("privleak", "forget"),
                                 ("privleak", "retain"), ("privleak", "holdout"), ("scal", "forget_3")}


# --- training data -------------------------------------------------------------------------------------------


def test_word_chunks_keep_the_text():
    text = "one two  three\nfour five six seven"
    assert word_chunks(text, 3) == ["one two  three", "four five six", "seven"]
    assert word_chunks(text, 100) == [text]


def test_train_sets_and_cache_keys():
    raw = MuseBenchmark(MuseConfig(num_authors=20, chunk_tokens=128))
    data = raw.data()
    texts = raw.corpus.texts
    joined = {qa.answer for qa in data.target_train}
    assert all(qa.question is None for qa in data.target_train + data.forget + data.retain)
    assert {qa.answer for qa in data.forget} <= joined
    assert not {qa.answer for qa in data.forget} & {qa.answer for qa in data.retain_train}
    assert len(data.target_train) > 20  # 58-word articles, 38-word chunks at 128 tokens
    assert all(len(qa.answer.split()) <= int(128 * WORDS_PER_TOKEN) for qa in data.target_train)
    assert " ".join(qa.answer for qa in data.retain) == " ".join(texts[("raw", "retain1")])

    scal = MuseBenchmark(MuseConfig(num_authors=20, chunk_tokens=128, forget_source="scal", forget_split="forget_3"))
    scal_data = scal.data()
    assert len(scal_data.forget) == 3 * len(data.forget)
    # the retrain model never sees the fold; the target's data is unchanged, so a sweep shares its cached model
    assert not {qa.answer for qa in scal_data.forget} & {qa.answer for qa in scal_data.retain_train}
    assert scal.data_key("target") == raw.data_key("target")
    assert scal.data_key("retain") != raw.data_key("retain")


@pytest.mark.parametrize("bad,match", [
    ({"corpus": "bbc"}, "bench.corpus"),
    ({"forget_split": "forget_1"}, "forget_source=raw"),
    ({"forget_source": "scal", "forget_split": "forget"}, "forget_1"),
    ({"privleak_reference": "published"}, "no retrain AUC"),
    ({"data_dir": "/tmp/x"}, "generated in memory"),
])
def test_bad_config_fails_at_build(bad, match):
    with pytest.raises(ValueError, match=match):
        MuseBenchmark(MuseConfig(**bad))


# --- MIA scoring ---------------------------------------------------------------------------------------------


def test_mia_scores_match_unbatched_computation(tiny_lm):
    model, tok = tiny_lm
    lm = LM(model, tok, PromptFormat("plain"), max_length=64, batch_size=2)
    texts = ["item 1 is a cat.", "item 22 is a river and item 3 is a tree.", "item 4 is a dog", "a"]
    scores = mia_scores(lm, [QA(None, t) for t in texts])
    # the loss matches LM.token_logprobs (which also scores the EOS it appends)
    for text, loss in zip(texts, scores["loss"]):
        lp = lm.token_logprobs([QA(None, text)])[0][:-1]
        assert loss == pytest.approx(-lp.mean().item(), rel=1e-4)
    ids = torch.tensor([tok(texts[1])["input_ids"]])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, :-1]
    lp = torch.log_softmax(logits, -1).gather(-1, ids[0, 1:, None]).squeeze(-1).numpy()
    mu, sigma = mia.min_k_plus_plus_stats(logits)
    assert scores["min_k_plus_plus"][1] == pytest.approx(mia.min_k_plus_plus_score(lp, mu, sigma, 0.4), rel=1e-4)
    assert scores["zlib"][1] == pytest.approx(mia.zlib_score(lp, texts[1]), rel=1e-4)
    assert scores["min_k"][1] == pytest.approx(mia.min_k_score(lp, 0.4), rel=1e-4)


def test_retrain_auc_source():
    fict = MuseBenchmark(MuseConfig())
    assert fict._retrain_auc(0.7, SELF_REFERENCE) == (0.7, "model")
    assert fict._retrain_auc(0.7, {"forget_holdout_auc": {"min_k": 0.55}}) == (0.55, "model")
    assert fict._retrain_auc(0.7, None) is None  # no published constant for the fictitious corpus
    news = MuseBenchmark(MuseConfig(corpus="news", privleak_reference="published"))
    assert news._retrain_auc(0.7, SELF_REFERENCE) == (RETRAIN_AUC["news"], "published")


# --- real knowmem records + fixture texts through the adapter -----------------------------------------------


def test_real_knowmem_with_fixture_texts(shared_data, corpus, tmp_path, tiny_lm):
    shutil.copytree(shared_data / "muse" / "news" / "knowmem", tmp_path / "news" / "knowmem")
    write_hub_layout(corpus, tmp_path, "news", skip=("knowmem",))
    bench = MuseBenchmark(MuseConfig(corpus="news", data_dir=str(tmp_path), eval_max_examples=4,
                                     retain_eval_examples=3, max_new_tokens=4, verbmem_max_new_tokens=6))
    data = bench.data()
    assert len(bench.corpus.knowmem["forget_qa"]) == 100 == len(bench.corpus.knowmem["retain_qa"])
    assert len(bench.corpus.icl["retain_qa"]) == 10
    assert len(data.forget) >= 2 and any("Orkney" in t for t in data.tokenizer_corpus)

    model, tok = tiny_lm
    out = bench.evaluate(LM(model, tok, PromptFormat("plain"), max_length=256, batch_size=4), None)
    rows = {(m.split, m.metric): m.value for m in out.metrics}
    assert rows[("forget_holdout", "auc_min_k_retrain_published")] == RETRAIN_AUC["news"]
    assert all(math.isfinite(v) for v in rows.values())
    knowmem = [g for g in out.generations if g["split"] == "knowmem_forget"]
    assert [g["reference"] for g in knowmem][:1] == ["1472"] and len(knowmem) == 4
    assert len([g for g in out.generations if g["split"] == "knowmem_retain"]) == 3
    assert out.reference_data["forget_holdout_auc"].keys() == set(ATTACKS)


# --- end to end ----------------------------------------------------------------------------------------------


def test_end_to_end_fictitious_run(tmp_path):
    from unlearn_bench.pipeline.runner import run

    register_configs()
    with initialize_config_module(config_module="unlearn_bench.conf", version_base="1.3"):
        cfg = compose("config", overrides=[
            "experiment=smoke", "bench=muse", "method=graddiff",
            # 12 authors (1 forget, 3 holdout) and a model just big enough to memorise them in 60 short epochs
            "bench.num_authors=12", "bench.holdout_percent=25", "bench.verbmem_max_new_tokens=40",
            "model.vocab_size=1024", "model.hidden_size=128", "model.intermediate_size=256",
            "model.finetune.epochs=60", f"paths.cache_dir={tmp_path / 'cache'}",
            f"paths.results_dir={tmp_path / 'results'}",
        ])
    record = run(cfg)
    assert record.status == "ok"
    run_dir = next((tmp_path / "results").rglob("metrics.jsonl")).parent
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    value = {(r["method"], r["split"], r["metric"]): r["value"] for r in rows}
    for method in ("finetuned", "retain", "graddiff"):
        for key in [("forget", "verbmem"), ("forget", "knowmem"), ("retain", "knowmem"), ("forget", "privleak"),
                    ("forget_holdout", "auc_min_k_retrain_model")] + \
                   [(pair, f"auc_{a}") for pair in ("forget_holdout", "retain_holdout") for a in ATTACKS]:
            assert math.isfinite(value[(method, *key)]), (method, key)
    assert value[("retain", "forget", "privleak")] == 0.0  # the retrain model against itself
    # the target memorised the forget articles, the retain model never saw them
    # (world seeds 0-2 give 0.84-0.87 against 0.21-0.33)
    assert value[("finetuned", "forget", "verbmem")] > value[("retain", "forget", "verbmem")] + 0.2
    mia_log = json.loads((run_dir / "muse_mia.json").read_text())
    assert set(mia_log["orientation"]) == set(ATTACKS) and mia_log["retrain_auc"]["source"] == "model"
    # open-unlearning's exact memorization on verbmem: the memorising target predicts more of it than the retain
    # model. (Extraction strength is 1/n for both here: neither gets the continuation's last token.)
    assert value[("finetuned", "forget", "verbmem_exact_memorization")] > value[("retain", "forget", "verbmem_exact_memorization")] + 0.1
    summary = json.loads((run_dir / "MUSE_SUMMARY.json").read_text())
    assert summary["forget_verbmem_ROUGE"] == value[("graddiff", "forget", "verbmem")]
    assert summary["extraction_strength"] == value[("graddiff", "forget", "verbmem_extraction_strength")]


@pytest.mark.slow
def test_sustainability_unlearns_muse_sust_folds_in_sequence(compose_cfg, smoke_overrides):
    """C6: forget_split=all makes the four sust folds the sequential diagnostic's requests, in order."""
    bench = MuseBenchmark(MuseConfig(num_authors=20, forget_source="sust", forget_split="all"))
    sizes = bench.request_sizes()
    assert len(sizes) == 4 and all(sizes) and sum(sizes) == len(bench.data().forget)
    assert MuseBenchmark(MuseConfig(num_authors=20, forget_source="sust", forget_split="forget_2")).request_sizes() is None

    from unlearn_bench.pipeline.runner import run, run_dir_for

    cfg = compose_cfg(smoke_overrides + ["bench=muse", "bench.forget_source=sust", "bench.forget_split=all", "method=npo",
                                         "eval.diagnostics=[sequential]",
                                         "eval.diag.sequential.metrics=[forget_verbmem,retain_knowmem]"])
    assert run(cfg).status == "ok"
    rows = [json.loads(line) for line in (run_dir_for(cfg)[0] / "metrics.jsonl").read_text().splitlines()]
    splits = sorted({r["split"] for r in rows if r["split"].startswith("diag/sequential/")})
    assert splits == [f"diag/sequential/request_{k}" for k in range(1, 5)]


# --- training layout: MUSE's token windows -------------------------------------------------------------------


def test_bad_train_layout_fails_naming_the_choices():
    with pytest.raises(ValueError, match="'chunks', 'windows'"):
        MuseBenchmark(MuseConfig(train_layout="window"))


def test_windows_layout_trains_on_documents_cut_later_and_keys_models_apart():
    chunks = MuseBenchmark(MuseConfig(num_authors=20, chunk_tokens=64))
    windows = MuseBenchmark(MuseConfig(num_authors=20, chunk_tokens=64, train_layout="windows"))
    data = windows.data()
    assert data.train_window == 64 and chunks.data().train_window is None
    assert [qa.answer for qa in data.forget] == windows.corpus.texts[("raw", "forget")]  # whole documents
    for role in ("target", "retain"):
        assert windows.data_key(role) != chunks.data_key(role)
        assert data.training_digest(role) != chunks.data().training_digest(role)
    assert "train_layout" not in chunks.data_key("target")  # chunks runs keep their cached models
    sust = MuseBenchmark(MuseConfig(num_authors=20, forget_source="sust", forget_split="all", train_layout="windows"))
    assert sust.request_sizes() == [len(sust.corpus.texts[("sust", f)]) for f in sust.forget_folds()]


def test_windows_run_trains_on_windows_of_chunk_tokens(compose_cfg, smoke_overrides, monkeypatch):
    from unlearn_bench.data import batching
    from unlearn_bench.pipeline.runner import run

    widths: list[int] = []

    class Recording(batching.Collator):
        def __call__(self, examples):
            batch = super().__call__(examples)
            widths.append(batch.input_ids.shape[1])
            return batch

    monkeypatch.setattr(batching, "Collator", Recording)
    cfg = compose_cfg(smoke_overrides + ["bench=muse", "bench.train_layout=windows", "bench.chunk_tokens=48",
                                         "method=graddiff", "model.finetune.epochs=1", "method.max_steps=2",
                                         "bench.eval_max_examples=4", "bench.retain_eval_examples=4",
                                         "bench.verbmem_max_new_tokens=8"])
    assert run(cfg).status == "ok"
    assert widths and set(widths) == {48}  # every batch, fine-tuning and unlearning, is made of 48-token windows


def test_windows_longer_than_the_context_fail_at_start(compose_cfg, smoke_overrides):
    from unlearn_bench.pipeline.runner import run

    cfg = compose_cfg(smoke_overrides + ["bench=muse", "bench.train_layout=windows", "bench.chunk_tokens=256"])
    with pytest.raises(ValueError, match=r"bench.chunk_tokens.*model.max_length=128"):
        run(cfg)
