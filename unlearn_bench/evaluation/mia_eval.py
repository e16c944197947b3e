"""Membership-inference scores of a model on texts or QA answers, and forget-vs-holdout AUC rows.

Shared by MUSE's PrivLeak (raw texts) and the TOFU-family benches (answers given their questions, forget vs
holdout questions the model never saw: the "forget vs holdout AUC per attack" rows).
"""
from __future__ import annotations

from typing import Sequence

import torch

from unlearn_bench.benchmarks.base import Metric
from unlearn_bench.data.records import QA
from unlearn_bench.evaluation.lm import LM
from unlearn_bench.methods.base import IGNORE_INDEX
from unlearn_bench.metrics import mia

ATTACKS = ("loss", "zlib", "min_k", "min_k_plus_plus")
MIN_K = 0.4  # MUSE's privleak key Min-40% (swj0419/muse_bench eval.py)


@torch.inference_mode()
def mia_scores(lm: LM, pairs: Sequence[QA], k: float = MIN_K, add_eos: bool = False) -> dict[str, list[float]]:
    """Every attack's score (higher = less likely member) of every answer (or raw text, question=None), from one
    batched forward pass. Raw texts are scored as swj0419/muse_bench metrics/privleak.py `compute_ppl` does: BOS,
    no EOS, every token after the first. Min-K%++ needs each position's full next-token distribution, which
    `LM.token_logprobs` does not return, hence this pass over the model itself."""
    encoded = [lm.encode(qa, add_eos=add_eos) for qa in pairs]
    scores: dict[str, list[float]] = {a: [0.0] * len(pairs) for a in ATTACKS}
    for idx, batch, logits in lm.forward_batches(encoded):
        for row, i in enumerate(idx):
            n = len(encoded[i][0])
            scored = batch.labels[row, 1:n] != IGNORE_INDEX
            row_logits, targets = logits[row, : n - 1][scored], batch.input_ids[row, 1:n][scored]
            lp = torch.log_softmax(row_logits.float(), -1).gather(-1, targets[:, None]).squeeze(-1).cpu().numpy()
            mu, sigma = mia.min_k_plus_plus_stats(row_logits)
            scores["loss"][i] = mia.loss_score(lp)
            scores["zlib"][i] = mia.zlib_score(lp, pairs[i].answer)
            scores["min_k"][i] = mia.min_k_score(lp, k)
            scores["min_k_plus_plus"][i] = mia.min_k_plus_plus_score(lp, mu, sigma, k)
        del logits
    return scores


def forget_holdout_auc_rows(lm: LM, forget: Sequence[QA], holdout: Sequence[QA]) -> list[Metric]:
    """AUC of telling the forget answers (trained on) from holdout answers (never seen), per attack. 0.5 is what
    a model that never saw the forget set scores; no better direction, so compare with the retain row."""
    members, nonmembers = mia_scores(lm, forget), mia_scores(lm, holdout)
    return [Metric("forget_holdout", f"auc_{a}", mia.mia_auc(members[a], nonmembers[a]), None) for a in ATTACKS]
