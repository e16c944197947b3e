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
from unlearn_bench.evaluation.lm import LM
from unlearn_bench.methods.base import IGNORE_INDEX
from unlearn_bench.metrics import memorization, mia

ATTACKS = ("loss", "zlib", "min_k", "min_k_plus_plus")
MIN_K = 0.4  # MUSE's privleak key Min-40% (swj0419/muse_bench eval.py)


# How the per-text scores read a QA answer: "muse" scores the answer tokens without EOS and compresses the raw
# answer text for zlib (MUSE's privleak.py `compute_ppl` / `inference` applied to answers); "open_unlearning" is
# open-unlearning's TOFU MIA (src/evals/metrics/mia/*.py): loss and zlib over the answer tokens with the appended
# EOS (`evaluate_probability`), zlib of the decoded labels (`extract_target_texts_from_processed_data`), Min-K and
# Min-K++ without the EOS (`tokenwise_vocab_logprobs` drops the last labelled token).
MIA_STYLES = ("open_unlearning", "muse")


@torch.inference_mode()
def mia_scores(lm: LM, pairs: Sequence[QA], k: float = MIN_K, style: str = "muse") -> dict[str, list[float]]:
    """Every attack's score (higher = less likely member) of every answer (or raw text, question=None), from one
    batched forward pass, read as `style` says (see MIA_STYLES; raw texts never get an EOS). Raw texts are scored
    as swj0419/muse_bench metrics/privleak.py `compute_ppl` does: BOS, no EOS, every token after the first.
    Min-K%++ needs each position's full next-token distribution, which `LM.token_logprobs` does not return, hence
    this pass over the model itself."""
    if style not in MIA_STYLES:
        raise ValueError(f"unknown MIA style '{style}'; choose from: {', '.join(MIA_STYLES)}")
    with_eos = style == "open_unlearning"
    encoded = [lm.encode(qa, add_eos=with_eos and qa.question is not None) for qa in pairs]
    scores: dict[str, list[float]] = {a: [0.0] * len(pairs) for a in ATTACKS}
    for idx, batch, logits in lm.forward_batches(encoded):
        for row, i in enumerate(idx):
            n = len(encoded[i][0])
            scored = batch.labels[row, 1:n] != IGNORE_INDEX
            row_logits, targets = logits[row, : n - 1][scored], batch.input_ids[row, 1:n][scored]
            lp = torch.log_softmax(row_logits.float(), -1).gather(-1, targets[:, None]).squeeze(-1).cpu().numpy()
            mu, sigma = mia.min_k_plus_plus_stats(row_logits)
            text, cut = pairs[i].answer, lp
            if with_eos and pairs[i].question is not None:
                text = lm.tokenizer.decode(targets.tolist(), skip_special_tokens=True)
                if lp.size > 1:  # Min-K / Min-K++ leave the EOS out
                    cut, mu, sigma = lp[:-1], mu[:-1], sigma[:-1]
            scores["loss"][i] = mia.loss_score(lp)
            scores["zlib"][i] = mia.zlib_score(lp, text)
            scores["min_k"][i] = mia.min_k_score(cut, k)
            scores["min_k_plus_plus"][i] = mia.min_k_plus_plus_score(cut, mu, sigma, k)
        del logits
    return scores


def memorization_rows(lm: LM, split: str, pairs: Sequence[QA], raw: bool = False, prefix: str = ""
                      ) -> tuple[list[Metric], dict[str, list[float | None]]]:
    """open-unlearning's extraction strength and exact memorization of `split`: the mean rows (lower is better
    on forget data: less of the answer is reproduced) and the per-example scores."""
    matches = lm.greedy_matches(pairs, raw=raw)
    per_example = {"extraction_strength": [memorization.extraction_strength(m) for m in matches],
                   "exact_memorization": [memorization.exact_memorization(m) for m in matches]}
    means = {name: [x for x in values if x is not None] for name, values in per_example.items()}
    rows = [Metric(split, prefix + name, float(np.mean(v)) if v else math.nan, False) for name, v in means.items()]
    return rows, per_example


def forget_holdout_auc_rows(lm: LM, forget: Sequence[QA], holdout: Sequence[QA], style: str = "open_unlearning") -> list[Metric]:
    """AUC of telling the forget answers (trained on) from holdout answers (never seen), per attack. 0.5 is what
    a model that never saw the forget set scores; no better direction, so compare with the retain row."""
    return forget_holdout_mia(lm, forget, holdout, style)[0]


def forget_holdout_mia(lm: LM, forget: Sequence[QA], holdout: Sequence[QA], style: str = "open_unlearning"
                       ) -> tuple[list[Metric], dict[str, tuple[list[float], list[float]]]]:
    """`forget_holdout_auc_rows` and, per attack, the per-example scores behind each AUC (forget, holdout)."""
    members, nonmembers = mia_scores(lm, forget, style=style), mia_scores(lm, holdout, style=style)
    rows = [Metric("forget_holdout", f"auc_{a}", mia.mia_auc(members[a], nonmembers[a]), None) for a in ATTACKS]
    return rows, {a: ([float(x) for x in members[a]], [float(x) for x in nonmembers[a]]) for a in ATTACKS}
