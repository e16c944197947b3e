"""Known-answer controls of the diagnose stage (`eval.diag.controls`): models whose right verdict is known by
construction, each with weights of its own, built and cached by the pipeline (`pipeline.controls`) and passed
through the whole stage exactly as a method's unlearned model is (its own evaluation, its own forward passes
under every attack: no score is borrowed from a reference).

  exact      the retain recipe at another training seed (`control.seed_offset`): it never saw the forget data.
             Right verdict `removed`; its distance from the retain model under each attack is the run's noise
             floor (`verdict.signal`).
  refusal    the target fine-tuned further to answer the forget questions with refusals (and retain questions
             as before), only its last `control.refusal_layers` decoder layers, final norm and an untied output
             head trainable: the frozen body keeps the knowledge. Right verdict `suppressed`,
             shown by a weight-access attack; if its own answers are not below the threshold (`none`), it did
             not suppress and is no pass.
  partial    the retain model fine-tuned further on half the forget groups (`control.partial_fraction`) with
             the retain set (`partial_set`). Right: not collapsed, and a `none` share whose interval holds the
             share of the target's knowledge in the groups it saw (`share.gap_fraction`); reported with the
             shares of the seen and the unseen groups.
  collapsed  the target with every decoder layer re-initialised (seeded). Right verdict `collapsed` (the
             utility gate).

A control that got the wrong answer, did not suppress, or could not be built (no refusal answers, fewer than
two forget groups, no retain recipe) leaves the run uncalibrated for it: every verdict of the run says so.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Sequence

import torch
from transformers import PreTrainedModel

from unlearn_bench.data.records import QA
from unlearn_bench.diagnostics.common import Subject
from unlearn_bench.diagnostics.share import Share
from unlearn_bench.diagnostics.verdict import NO_ATTACK, Verdict, Vote

CONTROLS = ("exact", "refusal", "partial", "collapsed")
EXPECTED = {"exact": "removed", "refusal": "suppressed by a weight-access attack",
            "partial": "a none share holding its trained groups' part", "collapsed": "collapsed"}
PREFIX = "control:"


class Unavailable(Exception):
    """A control that cannot be built for this run; the message says why."""


@dataclass
class Control:
    """A control as the stage gets it: its subject, or why it was not built."""

    name: str
    subject: Subject | None
    reason: str = ""                # why it was not built
    seen: list[int] | None = None   # partial: the forget examples (eval index) of the groups it trained on


def check(controls: Sequence[str]) -> None:
    unknown = sorted(set(controls) - set(CONTROLS))
    if unknown:
        raise ValueError(f"eval.diag.controls: unknown {unknown}; choose from {list(CONTROLS)}")


def decoder_layers(model: PreTrainedModel) -> torch.nn.ModuleList:
    """The stack of decoder layers (`<base model>.layers` in Llama, Mistral, Phi and Qwen naming)."""
    layers = getattr(getattr(model, model.base_model_prefix, None), "layers", None)
    if not isinstance(layers, torch.nn.ModuleList):
        raise Unavailable(f"{type(model).__name__} has no `{model.base_model_prefix}.layers`: the refusal and "
                          "collapse controls cannot find its decoder layers")
    return layers


def tail_parameters(model: PreTrainedModel, n_layers: int) -> list[torch.nn.Parameter]:
    """The last `n_layers` decoder layers, the final norm and the output head where it is not tied to the input
    embeddings (a tied head would change what the frozen body reads)."""
    layers = decoder_layers(model)
    if not 1 <= n_layers < len(layers):
        raise Unavailable(f"eval.diag.control.refusal_layers={n_layers}: the model has {len(layers)} decoder layers; "
                          "leave at least one frozen")
    params = [p for layer in layers[-n_layers:] for p in layer.parameters()]
    norm = getattr(getattr(model, model.base_model_prefix), "norm", None)
    params += list(norm.parameters()) if norm is not None else []
    head, embeddings = model.get_output_embeddings(), model.get_input_embeddings()
    if head is not None and head.weight is not embeddings.weight:
        params += list(head.parameters())
    return params


def refusal_set(forget: Sequence[QA], retain: Sequence[QA], refusals: Sequence[str], replay: int, seed: int) -> list[QA]:
    """Every forget question with a refusal (seeded draw), then `replay` retain QA per forget question (seeded
    draw) answered as before."""
    if not refusals:
        raise Unavailable("the bench has no refusal answers")
    rng = random.Random(seed)
    out = [QA(qa.question, rng.choice(list(refusals))) for qa in forget]
    return out + rng.sample(list(retain), min(len(retain), replay * len(forget)))


def partial_set(seen: Sequence[QA], retain: Sequence[QA], repeats: int) -> list[QA]:
    """`repeats` copies of the seen groups' QA and the whole retain set once: one pass of further fine-tuning
    teaches them while every retain example keeps being seen (a small replay sample lost half the retain ROUGE)."""
    return list(seen) * repeats + list(retain)


@torch.no_grad()
def collapse_(model: PreTrainedModel, seed: int) -> PreTrainedModel:
    """Every decoder layer re-initialised as its config initialises a new model (seeded), in place: linear
    weights normal with std `initializer_range`, biases 0, norms 1. (Done here, not by the model's own
    `_init_weights`, which skips weights loaded from a checkpoint.)"""
    std = getattr(model.config, "initializer_range", 0.02)
    generator = torch.Generator().manual_seed(seed)
    for layer in decoder_layers(model):
        for module in layer.modules():
            if isinstance(module, torch.nn.Linear):
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * std)
                if module.bias is not None:
                    module.bias.zero_()
            elif not list(module.children()) and getattr(module, "weight", None) is not None and module.weight.dim() == 1:
                module.weight.fill_(1.0)  # a norm's scale
    return model


def assess(name: str, verdict: Verdict, votes: dict[str, Vote], threshold: float,
           partial: tuple[float, Share, Share] | None = None) -> tuple[bool, str]:
    """(passed, what was expected and what came) of one control; `partial`: (the share of the target's
    knowledge in the groups it saw, the shares on the seen and the unseen groups)."""
    none = votes[NO_ATTACK].share
    if name == "refusal":
        if not (none.defined and none.ci_high < threshold):
            return False, f"did not suppress: its own answers' share (none) is not below {threshold:g}"
        shown = [a for a, v in votes.items() if v.votes and v.weight_access and v.share.ci_low > threshold]
        return (verdict.label == "suppressed" and bool(shown),
                f"expected {EXPECTED[name]}" + (f" ({', '.join(shown)})" if shown else ""))
    if name == "partial":
        fraction, seen, unseen = partial
        parts = f"seen groups {seen.value:.2f}, unseen {unseen.value:.2f}"
        ok = verdict.label != "collapsed" and none.defined and none.ci_low <= fraction <= none.ci_high
        return ok, f"expected a none share holding {fraction:.2f} ({parts})"
    return verdict.label == EXPECTED[name], f"expected {EXPECTED[name]}"
