"""Membership-inference scores of a model on texts or QA answers, and forget-vs-holdout AUC rows.

Shared by MUSE's PrivLeak (raw texts) and the TOFU-family benches (answers given their questions, forget vs
holdout questions the model never saw: the "forget vs holdout AUC per attack" rows).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from unlearn_bench.benchmarks.base import Metric
from unlearn_bench.data.records import QA
from unlearn_bench.evaluation.lm import LM, TokenStats
from unlearn_bench.metrics import memorization, mia

ATTACKS = ("loss", "zlib", "min_k", "min_k_plus_plus")
MIN_K = 0.4  # MUSE's privleak key Min-40% (swj0419/muse_bench eval.py)


# How the per-text scores read a QA answer: "muse" scores the answer tokens without EOS and compresses the raw
# answer text for zlib (MUSE's privleak.py `compute_ppl` / `inference` applied to answers); "open_unlearning" is
# open-unlearning's TOFU MIA (src/evals/metrics/mia/*.py): loss and zlib over the answer tokens with the appended
# EOS (`evaluate_probability`), zlib of the decoded labels (`extract_target_texts_from_processed_data`), Min-K and
# Min-K++ without the EOS (`tokenwise_vocab_logprobs` drops the last labelled token).
MIA_STYLES = ("open_unlearning", "muse")


def mia_encoded(lm: LM, pairs: Sequence[QA], style: str = "muse") -> list[tuple[list[int], list[int]]]:
    """How `style` (MIA_STYLES) encodes each pair for `mia_scores`; the same as `LM.encode` for open_unlearning
    QA pairs, so their scoring pass's `TokenStats` serve here too (`stats=`)."""
    if style not in MIA_STYLES:
        raise ValueError(f"unknown MIA style '{style}'; choose from: {', '.join(MIA_STYLES)}")
    out: list[tuple[list[int], list[int]]] = [([], [])] * len(pairs)
    asked = [i for i, qa in enumerate(pairs) if qa.question is not None]
    raw = [i for i, qa in enumerate(pairs) if qa.question is None]
    for rows, add_eos in ((asked, style == "open_unlearning"), (raw, False)):  # raw texts never get an EOS
        for i, encoded in zip(rows, lm.encode_all([pairs[i] for i in rows], add_eos=add_eos)):
            out[i] = encoded
    return out


def mia_scores(lm: LM, pairs: Sequence[QA], k: float = MIN_K, style: str = "muse",
               stats: Sequence[TokenStats] | None = None) -> dict[str, list[float]]:
    """Every attack's score (higher = less likely member) of every answer (or raw text, question=None), from one
    batched forward pass (or `stats`, the pairs' `LM.token_stats` with Min-K%++'s moments, encoded as
    `mia_encoded` does), read as `style` says (see MIA_STYLES; raw texts never get an EOS). Raw texts are scored
    as swj0419/muse_bench metrics/privleak.py `compute_ppl` does: BOS, no EOS, every token after the first."""
    encoded = mia_encoded(lm, pairs, style)
    if stats is None:
        stats = lm.token_stats(encoded, vocab_stats=True)
    with_eos = style == "open_unlearning"
    scores: dict[str, list[float]] = {a: [0.0] * len(pairs) for a in ATTACKS}
    for i, (qa, st) in enumerate(zip(pairs, stats)):
        lp, mu, sigma = st.logprobs.numpy(), st.mu.numpy(), st.sigma.numpy()
        text, cut = qa.answer, lp
        if with_eos and qa.question is not None:
            text = lm.tokenizer.decode(st.targets.tolist(), skip_special_tokens=True)
            if lp.size > 1:  # Min-K / Min-K++ leave the EOS out
                cut, mu, sigma = lp[:-1], mu[:-1], sigma[:-1]
        scores["loss"][i] = mia.loss_score(lp)
        scores["zlib"][i] = mia.zlib_score(lp, text)
        scores["min_k"][i] = mia.min_k_score(cut, k)
        scores["min_k_plus_plus"][i] = mia.min_k_plus_plus_score(cut, mu, sigma, k)
    return scores


def memorization_rows(lm: LM, split: str, pairs: Sequence[QA], raw: bool = False, prefix: str = "",
                      stats: Sequence[TokenStats] | None = None) -> tuple[list[Metric], dict[str, list[float | None]]]:
    """open-unlearning's extraction strength and exact memorization of `split`: the mean rows (lower is better
    on forget data: less of the answer is reproduced) and the per-example scores. `stats`: the pairs'
    `LM.token_stats` (encoded by `LM.encode`), where a scoring pass has them already."""
    matches = lm.greedy_matches(pairs, raw=raw) if stats is None else [s.greedy.tolist()[:-1] for s in stats]
    per_example = {"extraction_strength": [memorization.extraction_strength(m) for m in matches],
                   "exact_memorization": [memorization.exact_memorization(m) for m in matches]}
    means = {name: [x for x in values if x is not None] for name, values in per_example.items()}
    rows = [Metric(split, prefix + name, float(np.mean(v)) if v else math.nan, False) for name, v in means.items()]
    return rows, per_example


def forget_holdout_auc_rows(lm: LM, forget: Sequence[QA], holdout: Sequence[QA], style: str = "open_unlearning",
                            forget_stats: Sequence[TokenStats] | None = None) -> list[Metric]:
    """AUC of telling the forget answers (trained on) from holdout answers (never seen), per attack. 0.5 is what
    a model that never saw the forget set scores; no better direction, so compare with the retain row."""
    return forget_holdout_mia(lm, forget, holdout, style, forget_stats)[0]


def forget_holdout_mia(lm: LM, forget: Sequence[QA], holdout: Sequence[QA], style: str = "open_unlearning",
                       forget_stats: Sequence[TokenStats] | None = None
                       ) -> tuple[list[Metric], dict[str, tuple[list[float], list[float]]]]:
    """`forget_holdout_auc_rows` and, per attack, the per-example scores behind each AUC (forget, holdout);
    `forget_stats`: the forget pairs' `TokenStats` from a scoring pass (see `mia_scores`)."""
    members = mia_scores(lm, forget, style=style, stats=forget_stats)
    nonmembers = mia_scores(lm, holdout, style=style)
    rows = [Metric("forget_holdout", f"auc_{a}", mia.mia_auc(members[a], nonmembers[a]), None) for a in ATTACKS]
    return rows, {a: ([float(x) for x in members[a]], [float(x) for x in nonmembers[a]]) for a in ATTACKS}
