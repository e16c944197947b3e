"""Knowledge share of an attack and its group-bootstrap interval (pure functions over per-example scores).

For an attack a and A(.) the mean attacked score over the same forget examples,

    knowledge_share_a = (A(unlearned) - A(retain)) / (A(finetuned) - A(retain))

0: the unlearned model shows no more than the retain model, which never saw the forget data (its score is
what format, guessing or the attack itself yields); 1: all that the fine-tuned target knew. The interval
resamples whole forget groups (an author's questions, with their paraphrases, are not independent samples)
with replacement, the same groups for the three models (a paired bootstrap), and takes the percentile
interval of the resampled shares (Efron & Tibshirani 1993, ch. 13).

The verdict reads several intervals at once ("every attack below the threshold", "some attack above"), so each
is taken at the Bonferroni-adjusted level 1 - (1 - level) / m for m voting attacks (`simultaneous_level`): the
m intervals then cover their true shares together with probability >= level. Bonferroni rather than Holm: Holm
is a step-down procedure for tests and gives no simultaneous intervals to print.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Hashable, Mapping, Sequence

import numpy as np

ROLES = ("unlearned", "finetuned", "retain")


@dataclass(frozen=True)
class Share:
    means: dict[str, float]   # role -> mean attacked score
    value: float              # knowledge share (NaN when undefined)
    ci_low: float
    ci_high: float
    reason: str = ""          # why the share is undefined; empty when defined

    @property
    def defined(self) -> bool:
        return not self.reason


MIN_TAIL = 5  # resamples beyond each bound of a percentile interval, at the fewest


def simultaneous_level(level: float, m: int) -> float:
    """Per-interval coverage for `m` intervals that hold together with probability >= `level` (Bonferroni)."""
    if m < 1 or not 0 < level < 1:
        raise ValueError(f"simultaneous_level: m={m} must be >= 1 and level={level} in (0, 1)")
    return 1 - (1 - level) / m


def resamples_needed(level: float) -> int:
    """The fewest bootstrap resamples whose `level` percentile interval has MIN_TAIL resamples in each tail."""
    return math.ceil(2 * MIN_TAIL / (1 - level))


def gap_fraction(finetuned: Sequence[float], retain: Sequence[float], chosen: Sequence[bool]) -> float:
    """The share of the target's knowledge (its summed gap over the retain model) held by the `chosen` examples:
    the knowledge share of a model that knows those as the target does and the others as the retain model."""
    gap = np.asarray(finetuned, dtype=float) - np.asarray(retain, dtype=float)
    return float(gap[np.asarray(chosen, dtype=bool)].sum() / gap.sum()) if gap.sum() > 0 else math.nan


def knowledge_share(unlearned: float, finetuned: float, retain: float) -> float:
    """(unlearned - retain) / (finetuned - retain); NaN when the ceiling does not lie above the floor."""
    gap = finetuned - retain
    return (unlearned - retain) / gap if gap > 0 else math.nan


def group_sums(values: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    return np.bincount(codes, weights=values, minlength=n_groups)


def bootstrap_share(scores: Mapping[str, Sequence[float]], groups: Sequence[Hashable], n_resamples: int = 1000,
                    seed: int = 0, level: float = 0.95) -> Share:
    """The knowledge share of per-example `scores` (ROLES -> one value per example, index-aligned with
    `groups`) and its `level` percentile interval over `n_resamples` resamples of whole groups.

    Undefined (with the reason) when there are fewer than two groups, or when the finetuned-retain gap is not
    above zero: at its point value, or in the lower tail of its own bootstrap interval, where a share would be a
    ratio of noise."""
    arrays = {role: np.asarray(scores[role], dtype=float) for role in ROLES}
    n = len(groups)
    if any(len(a) != n for a in arrays.values()):
        raise ValueError(f"bootstrap_share: {n} groups but scores of lengths {[len(a) for a in arrays.values()]}")
    means = {role: float(a.mean()) if n else math.nan for role, a in arrays.items()}
    failed = [role for role, a in arrays.items() if not np.isfinite(a).all()]
    if failed:
        return Share(means, math.nan, math.nan, math.nan, f"no finite scores of {', '.join(failed)} (the attack failed)")
    _, codes = np.unique(np.asarray([str(g) for g in groups], dtype=object), return_inverse=True)
    n_groups = int(codes.max()) + 1 if n else 0
    if n_groups < 2:
        return Share(means, math.nan, math.nan, math.nan, f"{n_groups} forget group(s): nothing to resample")
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, n_groups, size=(n_resamples, n_groups))
    counts = np.bincount(codes, minlength=n_groups)[picks].sum(axis=1)
    boot = {role: group_sums(a, codes, n_groups)[picks].sum(axis=1) / counts for role, a in arrays.items()}
    gap = boot["finetuned"] - boot["retain"]
    tail = (1 - level) / 2
    gap_low = float(np.quantile(gap, tail))
    point_gap = means["finetuned"] - means["retain"]
    if point_gap <= 0 or gap_low <= 0:
        return Share(means, math.nan, math.nan, math.nan,
                     f"finetuned and retain models score alike under this attack (finetuned - retain "
                     f"{point_gap:.3f}, {level:.4g} interval low {gap_low:.3f}): no ceiling above the floor")
    positive = gap > 0  # at most the lower tail: conditioning on a positive gap keeps every ratio finite
    shares = (boot["unlearned"][positive] - boot["retain"][positive]) / gap[positive]
    low, high = np.quantile(shares, [tail, 1 - tail])
    return Share(means, knowledge_share(means["unlearned"], means["finetuned"], means["retain"]), float(low), float(high))
