"""The verdict of the diagnose stage, read from the knowledge shares' intervals (`diagnostics.share`).

With t = `eval.diag.threshold` and "none" the attack-free share (greedy answers to the forget questions):
  not unlearned  the interval of "none" lies above t: the knowledge is still there without any attack
  removed        the upper bound of every defined attack's share, "none" included, is below t
  suppressed     the interval of "none" lies below t and some attack's lower bound is above t
  inconclusive   anything else (an interval straddles t)
  undefined      "none" has no share (the finetuned and retain models answer alike), with the reason
The note names the deciding attack and its interval, e.g. `suppressed (relearn 0.41 [0.30, 0.52])`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from unlearn_bench.diagnostics.share import Share

NO_ATTACK = "none"
LABELS = ("not unlearned", "removed", "suppressed", "inconclusive", "undefined")


@dataclass(frozen=True)
class Verdict:
    label: str
    attack: str
    share: Share

    @property
    def note(self) -> str:
        if not self.share.defined:
            return f"{self.label} ({self.attack}: {self.share.reason})"
        s = self.share
        return f"{self.label} ({self.attack} {s.value:.2f} [{s.ci_low:.2f}, {s.ci_high:.2f}])"


def decide(shares: Mapping[str, Share], threshold: float) -> Verdict:
    """The verdict over `shares` (attack name -> share; must hold NO_ATTACK). Attacks whose share is undefined
    do not vote; the deciding attack is the one whose interval settles the label (for `removed` and
    `inconclusive`, the highest upper bound: the attack closest to showing the knowledge)."""
    base = shares[NO_ATTACK]
    if not base.defined:
        return Verdict("undefined", NO_ATTACK, base)
    if base.ci_low > threshold:
        return Verdict("not unlearned", NO_ATTACK, base)
    defined = {name: s for name, s in shares.items() if s.defined}
    closest = max(defined, key=lambda name: defined[name].ci_high)
    if defined[closest].ci_high < threshold:
        return Verdict("removed", closest, defined[closest])
    revealing = max(defined, key=lambda name: defined[name].ci_low)
    if base.ci_high < threshold and defined[revealing].ci_low > threshold:
        return Verdict("suppressed", revealing, defined[revealing])
    return Verdict("inconclusive", closest, defined[closest])
