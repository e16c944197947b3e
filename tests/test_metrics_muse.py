"""MUSE metrics (unlearn_bench.benchmarks.muse.metrics) against hand-computed values and the real knowmem ICL records."""
from __future__ import annotations

import pytest

from unlearn_bench.benchmarks.muse.data import load_icl
from unlearn_bench.metrics.mia import privleak
from unlearn_bench.benchmarks.muse.metrics import (
    MUSE_AUC_RETRAIN,
    RETRAIN_AUC,
    knowmem_answer,
    knowmem_prompt,
    knowmem_score,
    rouge_l_f1,
    verbmem_reference,
    verbmem_score,
)


def test_prompt_from_real_icl(shared_data):
    shots = load_icl("books", "forget_qa", data_dir=shared_data / "muse")
    prompt = knowmem_prompt("Which class did Professor McGonagall teach?", shots)
    assert prompt.startswith("Question: What advice did Myrtle give Harry for understanding the egg's song?\n"
                             "Answer: put your head under\n\nQuestion: ")
    assert prompt.count("Question: ") == 11
    assert prompt.endswith("\n\nQuestion: Which class did Professor McGonagall teach?\nAnswer: ")


def test_published_retrain_aucs():
    assert MUSE_AUC_RETRAIN == {"news": 0.4772, "books": 0.5393}
    assert RETRAIN_AUC["news"] == pytest.approx(0.5228)


def test_privleak_converts_to_muse_orientation():
    # mia_auc 0.75 is MUSE AUC 0.25; retrain 0.5 -> (0.25 - 0.5) / 0.5 * 100
    assert privleak(0.75, 0.5) == pytest.approx(-50.0)
    assert privleak(0.25, 0.5) == pytest.approx(50.0)  # over-unlearned: forget set looks *less* seen than holdout
    assert privleak(RETRAIN_AUC["books"], RETRAIN_AUC["books"]) == pytest.approx(0.0)
    # A model that fully separates the forget set (like the target) scores -100 on both corpora.
    assert privleak(1.0, RETRAIN_AUC["news"]) == pytest.approx(-100.0)
    # MUSE AUC 0.6 against news retrain 0.4772: (0.6 - 0.4772) / 0.4772 * 100 = 25.733...
    assert privleak(0.4, RETRAIN_AUC["news"]) == pytest.approx(25.7334450964)


def test_privleak_rejects_non_aucs():
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        privleak(1.2, 0.5)
    with pytest.raises(ValueError, match="divides"):
        privleak(0.5, 1.0)


def test_knowmem_answer_cuts_at_muse_stop_strings():
    assert knowmem_answer("1472\n\nQuestion: What year did") == "1472"
    assert knowmem_answer(" Transfiguration.\nQuestion: Who") == "Transfiguration."
    assert knowmem_answer("the Golden Snitch Question: Who") == "the Golden Snitch"
    assert knowmem_answer("line one\nline two") == "line one\nline two"  # a single newline does not end it


def test_rouge_l_is_f1_without_stemming():
    # tokens: pred [the, golden, snitch, is], ref [the, golden, snitch]; LCS 3 -> P 3/4, R 1, F 6/7
    assert rouge_l_f1("The golden snitch is", "the Golden Snitch") == pytest.approx(6 / 7)
    assert rouge_l_f1("running", "run") == 0.0  # TOFU's stemmer would make this 1.0


def test_knowmem_and_verbmem_scores():
    assert knowmem_score("the Golden Snitch\n\nQuestion: next", "the Golden Snitch") == 1.0
    assert verbmem_score("a b c d", "a b x d") == pytest.approx(0.75)  # LCS a b d: P = R = 3/4


def test_verbmem_reference_counts_bos_in_budget(tiny_lm):
    _, tokenizer = tiny_lm
    gt = "item 3 is a tree. item 4 is a river."
    body = tokenizer(gt, add_special_tokens=False)["input_ids"]
    assert tokenizer(gt)["input_ids"][0] == tokenizer.bos_token_id
    # 4 ids with BOS first = BOS + the first 3 text tokens
    assert verbmem_reference(gt, tokenizer, max_new_tokens=4) == tokenizer.decode(body[:3])
    assert verbmem_reference(gt, tokenizer, max_new_tokens=1000) == gt
