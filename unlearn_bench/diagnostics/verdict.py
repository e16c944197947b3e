"""The verdict of the diagnose stage, read from the knowledge shares' intervals (`diagnostics.share`).

An attack votes only where it has signal (`signal`): its share is defined, its interval is no wider than
`eval.diag.max_width`, its ceiling (finetuned - retain mean score) exceeds the noise floor that `control:exact`
measures (|exact - retain|: how far apart two models that never saw the forget data land under the attack), and
an attack that trains the weights leaves the target's own score within its `max_ceiling_drop`. With
t = `eval.diag.threshold`, "none" the attack-free share (greedy answers to the forget questions) and the
intervals simultaneous over the voting attacks (Bonferroni, `share.simultaneous_level`):

  collapsed      the utility gate (`diagnostics.gate`) fails: decided first, so a wreck is never `removed`
  undefined      "none" does not vote (no share, or no signal), with the reason
  not unlearned  the interval of "none" lies above t: the knowledge is still there without any attack
  removed        the upper bound of every voter, "none" included, is below t, and a weight-access attack
                 (relearning, the probe, the soft prompt) votes; without one: inconclusive
  suppressed     the interval of "none" lies below t and some voter's lower bound is above t (the note names a
                 weight-access one where one shows it: the weights hold the knowledge); for a model whose
                 weights are the target's (an inference-time method) `suppressed (weights unchanged)` without
                 claiming that an attack measured it
  inconclusive   anything else (an interval straddles t)
The note names the deciding attack and its interval, then who voted, e.g.
`removed (relearn@10 0.08 [0.01, 0.15]; 6 of 9 attacks voted: mcq, mixed, probe without signal)`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from unlearn_bench.diagnostics.share import Share

NO_ATTACK = "none"
LABELS = ("collapsed", "not unlearned", "removed", "suppressed", "inconclusive", "undefined")


@dataclass(frozen=True)
class Vote:
    """One attack's share and whether it votes (`reason` empty) or why not."""

    share: Share
    weight_access: bool = False
    reason: str = ""
    eligible: bool = True  # False: an attack that only reports (a relearning ladder's other rungs)

    @property
    def votes(self) -> bool:
        return self.eligible and not self.reason


def signal(share: Share, max_width: float, noise: float | None = None,
           ceiling_drop: tuple[float, float, float] | None = None) -> str:
    """Why an attack has no signal, or "" when it votes. `noise`: |exact - retain| mean score under the attack
    (None: no exact control ran); `ceiling_drop`: (target's unattacked mean, attacked mean, largest allowed
    drop) for an attack that trains the weights."""
    if not share.defined:
        return f"undefined: {share.reason}"
    if ceiling_drop is not None:
        before, after, allowed = ceiling_drop
        if after < (1 - allowed) * before:
            return f"it lowers the target's own score {before:.2f} -> {after:.2f} (more than {allowed:.0%})"
    if share.ci_high - share.ci_low > max_width:
        return f"interval {share.ci_high - share.ci_low:.2f} wide (> {max_width:g})"
    ceiling = share.means["finetuned"] - share.means["retain"]
    if noise is not None and ceiling <= noise:
        return f"ceiling {ceiling:.3f} within the noise floor {noise:.3f} (control:exact)"
    return ""


def _interval(name: str, s: Share) -> str:
    return f"{name} {s.value:.2f} [{s.ci_low:.2f}, {s.ci_high:.2f}]"


@dataclass(frozen=True)
class Verdict:
    label: str
    attack: str                  # the deciding attack ("" when the utility gate decided)
    share: Share | None
    detail: str = ""             # the gate's reason, "weights unchanged", a missing weight-access vote
    voted: tuple[str, ...] = ()  # eligible attacks (none excluded) that voted
    silent: tuple[str, ...] = field(default_factory=tuple)  # eligible attacks without signal

    @property
    def note(self) -> str:
        parts = [_interval(self.attack, self.share)] if self.share is not None else []
        parts += [self.detail] if self.detail else []
        n = len(self.voted) + len(self.silent)
        if n:
            parts.append(f"{len(self.voted)} of {n} attacks voted" +
                         (f": {', '.join(self.silent)} without signal" if self.silent else ""))
        return f"{self.label} ({'; '.join(parts)})"


def decide(votes: Mapping[str, Vote], threshold: float, gate: str | None = None,
           weights_unchanged: bool = False) -> Verdict:
    """The verdict over `votes` (attack name -> vote; must hold NO_ATTACK). The deciding attack is the one whose
    interval settles the label (for `removed` and `inconclusive`, the voter of highest upper bound: the one
    closest to showing the knowledge)."""
    if gate:
        return Verdict("collapsed", "", None, gate)
    others = {name: v for name, v in votes.items() if name != NO_ATTACK and v.eligible}
    voted = tuple(name for name, v in others.items() if v.votes)
    silent = tuple(name for name, v in others.items() if not v.votes)
    base = votes[NO_ATTACK]
    if not base.votes:
        return Verdict("undefined", NO_ATTACK, None, f"{NO_ATTACK}: {base.reason.removeprefix('undefined: ')}",
                       voted, silent)
    b = base.share
    if b.ci_low > threshold:
        return Verdict("not unlearned", NO_ATTACK, b, voted=voted, silent=silent)
    if weights_unchanged:
        label = "suppressed" if b.ci_high < threshold else "inconclusive"
        return Verdict(label, NO_ATTACK, b, "weights unchanged", voted, silent)
    voters = {NO_ATTACK: base, **{name: others[name] for name in voted}}
    closest = max(voters, key=lambda name: voters[name].share.ci_high)
    if voters[closest].share.ci_high < threshold:
        if any(v.weight_access for v in voters.values()):
            return Verdict("removed", closest, voters[closest].share, voted=voted, silent=silent)
        return Verdict("inconclusive", closest, voters[closest].share, "no weight-access attack voted", voted, silent)
    # the attack that shows the knowledge best, a weight-access one first: it says the weights hold it
    revealing = max(voters, key=lambda name: (voters[name].share.ci_low > threshold and voters[name].weight_access,
                                              voters[name].share.ci_low))
    if b.ci_high < threshold and voters[revealing].share.ci_low > threshold:
        return Verdict("suppressed", revealing, voters[revealing].share, voted=voted, silent=silent)
    return Verdict("inconclusive", closest, voters[closest].share, voted=voted, silent=silent)
