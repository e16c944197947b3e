"""Membership-inference attack (MIA) scores and their AUC.

Every score here is oriented the same way: **higher score = less likely a member** (a loss-like number), so
one `mia_auc` serves every attack. The per-text formulas follow the MUSE authors (swj0419/muse_bench,
metrics/privleak.py, `inference`) and open-unlearning (locuslab/open-unlearning, src/evals/metrics/mia/*),
which keep the same orientation.

Token log-probs are the model's log p(x_t | x_<t) for each scored token of the text (the BOS token is not
scored), as MUSE's `compute_ppl` collects them.
"""
from __future__ import annotations

import math
import zlib
from typing import Sequence

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

_SEPARABLE = "AUC 1.0 = members fully told apart, 0.5 = no signal"
ORIENTATION: dict[str, str] = {
    "loss": f"higher mean NLL = less likely member; {_SEPARABLE}",
    "zlib": f"higher NLL per zlib-compressed byte = less likely member; {_SEPARABLE}",
    "min_k": f"higher NLL of the k% least likely tokens = less likely member; {_SEPARABLE}",
    "min_k_plus_plus": f"higher negated z-score of the k% least likely tokens = less likely member; {_SEPARABLE}",
    "reference": f"higher loss above the reference model's = less likely member; {_SEPARABLE}",
    "gradnorm": f"larger gradient norm = less likely member; {_SEPARABLE}",
}


def orientation(attack: str) -> str:
    """How to read `attack`'s scores and AUC, for result tables."""
    if attack not in ORIENTATION:
        raise ValueError(f"unknown MIA attack '{attack}'; known: {sorted(ORIENTATION)}")
    return ORIENTATION[attack]


def _logprobs(token_logprobs: Sequence[float] | np.ndarray, name: str = "token_logprobs") -> np.ndarray:
    arr = np.asarray(token_logprobs, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name}: expected a non-empty 1-D sequence, got shape {arr.shape}")
    return arr


def _bottom_k_count(num_tokens: int, k: float) -> int:
    if not 0.0 < k <= 1.0:
        raise ValueError(f"k must be in (0, 1], got {k}")
    # open-unlearning (src/evals/metrics/mia/min_k.py, `MinKProbAttack.compute_score`) keeps at least one token;
    # MUSE's `int(len * ratio)` alone gives an empty mean (NaN) for texts under 1/k tokens.
    return max(1, math.floor(k * num_tokens))


def loss_score(token_logprobs: Sequence[float] | np.ndarray) -> float:
    """Mean negative log-likelihood of the text's tokens (MUSE's "PPL" key holds this loss, not exp(loss))."""
    return float(-_logprobs(token_logprobs).mean())


def zlib_score(token_logprobs: Sequence[float] | np.ndarray, text: str) -> float:
    """Loss divided by the zlib-compressed UTF-8 length of `text` (MUSE `inference`, "PPL/zlib")."""
    return loss_score(token_logprobs) / len(zlib.compress(text.encode("utf-8")))


def min_k_score(token_logprobs: Sequence[float] | np.ndarray, k: float = 0.4) -> float:
    """-(mean of the n lowest token log-probs), n = max(1, floor(k*T)); k=0.4 is MUSE's privleak "Min-40%"."""
    lp = _logprobs(token_logprobs)
    n = _bottom_k_count(lp.size, k)
    return float(-np.sort(lp)[:n].mean())


def min_k_plus_plus_stats(logits: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(mu_t, sigma_t) of log p(v) under each row's next-token distribution, from [T, V] logits.

    Row t must be the distribution that scores token t (for a causal LM: `logits[0, :-1]` against `ids[0, 1:]`).
    mu_t = E_v[log p(v)], sigma_t^2 = E_v[(log p(v))^2] - mu_t^2, as open-unlearning computes them
    (src/evals/metrics/mia/min_k_plus_plus.py, `MinKPlusPlusAttack.compute_score`), including its variance floor
    of 1e-6, which keeps z finite when a distribution is (nearly) one-hot.
    """
    if logits.ndim != 2:
        raise ValueError(f"logits: expected shape [T, V], got {tuple(logits.shape)}")
    # float32 like open-unlearning: float64 would double a [T, V] buffer that is already large for real vocabularies.
    logp = torch.log_softmax(logits.detach().float(), dim=-1)
    p = logp.exp()
    mu = (p * logp).sum(-1)
    var = ((p * logp.square()).sum(-1) - mu.square()).clamp(min=1e-6)
    return mu.cpu().numpy(), var.sqrt().cpu().numpy()


def min_k_plus_plus_score(
    token_logprobs: Sequence[float] | np.ndarray,
    mu: Sequence[float] | np.ndarray,
    sigma: Sequence[float] | np.ndarray,
    k: float = 0.4,
) -> float:
    """-(mean of the n lowest z_t), z_t = (log p(x_t) - mu_t) / sigma_t; n as in `min_k_score`.

    Min-K%++ (Zhang et al. 2024) as open-unlearning scores it (`MinKPlusPlusAttack.compute_score`).
    """
    lp = _logprobs(token_logprobs)
    mu_arr, sigma_arr = _logprobs(mu, "mu"), _logprobs(sigma, "sigma")
    if not lp.size == mu_arr.size == sigma_arr.size:
        raise ValueError(f"token_logprobs, mu, sigma differ in length: {lp.size}, {mu_arr.size}, {sigma_arr.size}")
    if np.any(sigma_arr <= 0):
        raise ValueError("sigma must be positive everywhere (min_k_plus_plus_stats floors it)")
    z = (lp - mu_arr) / sigma_arr
    n = _bottom_k_count(z.size, k)
    return float(-np.sort(z)[:n].mean())


def reference_score(
    token_logprobs: Sequence[float] | np.ndarray, ref_token_logprobs: Sequence[float] | np.ndarray
) -> float:
    """Target loss minus a reference model's loss on the same text.

    A difference, as open-unlearning (src/evals/metrics/mia/reference.py, `ReferenceAttack.compute_score`);
    MUSE's "PPL/ref" is the ratio instead. The reference may tokenize differently, so lengths may differ.
    """
    return loss_score(token_logprobs) - loss_score(ref_token_logprobs)


def gradient_norm_score(
    model: torch.nn.Module, input_ids: torch.Tensor, labels: torch.Tensor, p: float = 2.0
) -> float:
    """Gradient norm of one text's mean NLL w.r.t. the parameters; members (fit already) have smaller norms.

    As open-unlearning (src/evals/metrics/mia/gradnorm.py, `GradNormAttack`): the mean over parameter tensors
    of each tensor's p-norm, p in {1, 2, inf}, returned positive (higher = less likely member). `labels` follow
    the Hugging Face convention (same shape as `input_ids`, -100 = not scored). The model's gradients are
    cleared before and after, so do not call this between a backward pass and its optimizer step.
    """
    if p not in (1, 2, math.inf):
        raise ValueError(f"p must be 1, 2 or inf, got {p}")
    if input_ids.ndim == 1:
        input_ids, labels = input_ids.unsqueeze(0), labels.unsqueeze(0)
    if input_ids.ndim != 2 or input_ids.shape[0] != 1 or labels.shape != input_ids.shape:
        raise ValueError(f"expected one text: input_ids and labels of shape [L] or [1, L], got "
                         f"{tuple(input_ids.shape)} and {tuple(labels.shape)}")
    model.zero_grad(set_to_none=True)
    with torch.enable_grad():
        model(input_ids=input_ids, labels=labels).loss.backward()
    norms = [param.grad.detach().norm(p=p) for param in model.parameters() if param.grad is not None]
    model.zero_grad(set_to_none=True)
    if not norms:
        raise ValueError("no parameter received a gradient (all frozen, or no scored label)")
    return float(torch.stack(norms).mean())


def mia_auc(member_scores: Sequence[float], nonmember_scores: Sequence[float]) -> float:
    """P(nonmember score > member score), ties counted half: 0.5 = no signal, 1.0 = fully separable.

    Non-members are the positive class because scores are loss-like. MUSE (metrics/privleak.py, `eval`/`sweep`)
    reports the complement for its forget-vs-holdout key; `privleak` converts.
    """
    members, nonmembers = list(member_scores), list(nonmember_scores)
    if not members or not nonmembers:
        raise ValueError(f"mia_auc needs both groups: got {len(members)} member and {len(nonmembers)} "
                         "non-member scores")
    labels = [0] * len(members) + [1] * len(nonmembers)
    return float(roc_auc_score(labels, members + nonmembers))


def privleak(auc_unlearned: float, auc_retrain: float) -> float:
    """MUSE's PrivLeak in percent: (AUC_unlearned - AUC_retrain) / AUC_retrain * 100 on MUSE's AUC (C3; also
    open-unlearning's TOFU `privleak`, on Min-40% forget-vs-holdout AUCs against the retain model's).

    Inputs are `mia_auc(forget_scores, holdout_scores)` values (1.0 = forget set fully told apart as members),
    e.g. `benchmarks.muse.metrics.RETRAIN_AUC[corpus]` for the retrained model. MUSE's AUC is their complement: its
    `sweep` labels the forget split 0 and the holdout split 1 and scores with -loss (metrics/privleak.py `eval`),
    i.e. P(forget loss > holdout loss). open-unlearning's `privleak` (src/evals/metrics/privacy.py) converts with
    1 - AUC the same way (and adds 1e-10 to the divisor, where this refuses a retrain AUC of 1.0). Sign: near 0 =
    like the retrained model; negative = forget set still leaks membership (under-unlearning; the target model
    scores about -100); positive = over-unlearning.
    """
    for name, auc in (("auc_unlearned", auc_unlearned), ("auc_retrain", auc_retrain)):
        if not 0.0 <= auc <= 1.0:
            raise ValueError(f"{name} must be an AUC in [0, 1], got {auc}")
    muse_unlearned, muse_retrain = 1.0 - auc_unlearned, 1.0 - auc_retrain
    if muse_retrain == 0.0:
        raise ValueError("auc_retrain = 1.0 gives MUSE's retrain AUC 0: PrivLeak divides by it")
    return (muse_unlearned - muse_retrain) / muse_retrain * 100.0
