from __future__ import annotations

import math

import pytest
import torch

from unlearn_bench.metrics.mia import (
    gradient_norm_score,
    loss_score,
    mia_auc,
    min_k_plus_plus_score,
    min_k_plus_plus_stats,
    min_k_score,
    orientation,
    reference_score,
    zlib_score,
)

LN4 = math.log(4.0)


def test_loss_is_mean_nll():
    assert loss_score([-1.0, -2.0, -3.0]) == pytest.approx(2.0)


def test_zlib_divides_by_compressed_utf8_length():
    # zlib.compress("héllo wörld".encode("utf-8")) is 21 bytes (19 in latin-1: the encoding matters).
    assert zlib_score([-1.0, -2.0, -3.0], "héllo wörld") == pytest.approx(2.0 / 21)


def test_min_k_takes_floor_of_k_times_length():
    lp = [-0.1, -5.0, -2.0, -0.5, -3.0]
    assert min_k_score(lp, k=0.4) == pytest.approx(4.0)  # n = 2: -5, -3
    assert min_k_score(lp, k=0.5) == pytest.approx(4.0)  # 2.5 rounds down to 2, not up to 3
    assert min_k_score(lp, k=0.6) == pytest.approx(10.0 / 3)  # n = 3: -5, -3, -2
    assert min_k_score(lp, k=0.75) == pytest.approx(10.0 / 3)  # 3.75 -> 3 (rounding would give 4)
    assert min_k_score(lp, k=1.0) == pytest.approx(loss_score(lp))


def test_min_k_one_token_text_keeps_that_token():
    assert min_k_score([-1.5], k=0.4) == pytest.approx(1.5)  # floor(0.4) = 0 -> at least one token


@pytest.mark.parametrize("k", [0.0, -0.1, 1.5])
def test_min_k_rejects_k_outside_unit_interval(k):
    with pytest.raises(ValueError, match="k must be"):
        min_k_score([-1.0, -2.0], k=k)


def test_scores_reject_empty_text():
    with pytest.raises(ValueError, match="non-empty"):
        loss_score([])


def test_min_k_plus_plus_on_two_token_vocab():
    # Row 0: p = (0.8, 0.2), row 1: p = (0.2, 0.8); the text is token 0 twice.
    # Both rows: mu = 0.8 ln 0.8 + 0.2 ln 0.2, sigma = sqrt(0.8 * 0.2) * |ln 0.8 - ln 0.2| = 0.4 ln 4.
    # z_0 = (ln 0.8 - mu) / sigma = 0.2 ln 4 / (0.4 ln 4) = 0.5; z_1 = (ln 0.2 - mu) / sigma = -0.8 ln 4 / (0.4 ln 4) = -2.
    probs = torch.tensor([[0.8, 0.2], [0.2, 0.8]])
    mu, sigma = min_k_plus_plus_stats(torch.log(probs) + 7.0)  # logits: any shift gives the same softmax
    expected_mu = 0.8 * math.log(0.8) + 0.2 * math.log(0.2)
    assert mu.tolist() == pytest.approx([expected_mu, expected_mu])
    assert sigma.tolist() == pytest.approx([0.4 * LN4, 0.4 * LN4])
    lp = [math.log(0.8), math.log(0.2)]
    assert min_k_plus_plus_score(lp, mu, sigma, k=0.4) == pytest.approx(2.0)  # n = 1: z = -2
    assert min_k_plus_plus_score(lp, mu, sigma, k=1.0) == pytest.approx(0.75)  # -(0.5 - 2) / 2


def test_min_k_plus_plus_floors_variance_of_uniform_distribution():
    _, sigma = min_k_plus_plus_stats(torch.zeros(1, 5))  # uniform: variance 0, floored at 1e-6
    assert sigma.tolist() == pytest.approx([1e-3])


def test_min_k_plus_plus_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="differ in length"):
        min_k_plus_plus_score([-1.0, -2.0], [0.0], [1.0, 1.0])


def test_reference_is_loss_difference():
    assert reference_score([-1.0, -3.0], [-0.5, -0.5, -0.5]) == pytest.approx(1.5)


def test_auc_separable_inverted_tied():
    assert mia_auc([0.1, 0.2], [0.9, 1.0]) == 1.0  # members have lower loss: fully told apart
    assert mia_auc([0.9, 1.0], [0.1, 0.2]) == 0.0
    assert mia_auc([0.5, 0.5], [0.5, 0.5]) == 0.5


def test_auc_counts_pairs_and_half_ties():
    # pairs (nonmember > member): 2>1, 4>1, 4>3 of 4
    assert mia_auc([1.0, 3.0], [2.0, 4.0]) == pytest.approx(0.75)
    # 2>1, 2=2 (half), 3>1, 3>2 -> 3.5 / 4
    assert mia_auc([1.0, 2.0], [2.0, 3.0]) == pytest.approx(0.875)


def test_auc_needs_both_groups():
    with pytest.raises(ValueError, match="both groups"):
        mia_auc([], [1.0])


def test_orientation_names_direction():
    assert "less likely member" in orientation("gradnorm")
    with pytest.raises(ValueError, match="unknown MIA attack"):
        orientation("ppl")


def test_gradient_norm_on_tiny_lm(tiny_lm):
    model, tokenizer = tiny_lm
    ids = tokenizer("Question: what is item 3? Answer: item 3 is a tree.", return_tensors="pt")["input_ids"]
    score = gradient_norm_score(model, ids, ids.clone())
    assert math.isfinite(score) and score > 0
    assert all(p.grad is None for p in model.parameters())  # gradients are not left behind

    # The same number by hand: mean over parameter tensors of each gradient's 2-norm.
    model(input_ids=ids, labels=ids).loss.backward()
    norms = [p.grad.norm() for p in model.parameters() if p.grad is not None]
    expected = torch.stack(norms).mean().item()
    model.zero_grad(set_to_none=True)
    assert score == pytest.approx(expected, rel=1e-5)
    assert gradient_norm_score(model, ids[0], ids[0].clone()) == pytest.approx(score, rel=1e-5)


def test_gradient_norm_rejects_bad_p_and_batches(tiny_lm):
    model, _ = tiny_lm
    ids = torch.tensor([[1, 5, 6], [1, 7, 8]])
    with pytest.raises(ValueError, match="p must be"):
        gradient_norm_score(model, ids[:1], ids[:1], p=3)
    with pytest.raises(ValueError, match="one text"):
        gradient_norm_score(model, ids, ids)


def test_mia_styles_on_qa_answers(tiny_lm):
    """open_unlearning: loss and zlib over the answer with its EOS, zlib of the decoded labels, Min-K without the
    EOS; muse: every score over the answer tokens without EOS, zlib of the raw answer."""
    import zlib

    from unlearn_bench.data.collate import PromptFormat, encode_example
    from unlearn_bench.data.records import QA
    from unlearn_bench.evaluation.lm import LM
    from unlearn_bench.evaluation.mia_eval import mia_scores

    model, tok = tiny_lm
    lm = LM(model, tok, PromptFormat("plain"), max_length=64, batch_size=2)
    pairs = [QA("what is item 3?", "item 3 is a dog."), QA("what is item 1?", "a  cat")]  # two spaces: decoding differs
    with_eos = lm.token_logprobs(pairs)  # answer tokens + EOS
    ou, muse = mia_scores(lm, pairs, style="open_unlearning"), mia_scores(lm, pairs, style="muse")
    for i, (qa, lp) in enumerate(zip(pairs, with_eos)):
        lp = lp.double().numpy()
        assert ou["loss"][i] == pytest.approx(-lp.mean(), rel=1e-5)
        assert muse["loss"][i] == pytest.approx(-lp[:-1].mean(), rel=1e-5)
        ids, labels = encode_example(qa, tok, lm.fmt, 64)
        decoded = tok.decode([t for t in labels if t != -100], skip_special_tokens=True)
        assert ou["zlib"][i] == pytest.approx(-lp.mean() / len(zlib.compress(decoded.encode())), rel=1e-5)
        assert muse["zlib"][i] == pytest.approx(-lp[:-1].mean() / len(zlib.compress(qa.answer.encode())), rel=1e-5)
        assert ou["min_k"][i] == pytest.approx(muse["min_k"][i], rel=1e-5)
        # Min-K++'s variance E[log p^2] - mu^2 cancels ~1000-fold on this random model's near-uniform distributions
        # (mu^2 ~ 35.7, variance ~ 0.03), in float32 as open-unlearning computes it: the two encodings, batched
        # differently, round to scores ~1e-4 apart
        assert ou["min_k_plus_plus"][i] == pytest.approx(muse["min_k_plus_plus"][i], rel=5e-4)
    with pytest.raises(ValueError, match="unknown MIA style"):
        mia_scores(lm, pairs, style="carlini")
