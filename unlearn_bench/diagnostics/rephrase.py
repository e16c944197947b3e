"""Rephrased and format-shifted probes of the forget set.

Lynch et al. 2024, "Eight methods to evaluate robust unlearning in LLMs" (arXiv:2402.16835), sections on
rephrased prompts, multiple-choice formats and in-context mixing: a method that learned to refuse the exact
forget questions may still answer them when they are asked differently.

  paraphrase  the question reworded (`EvalQA.paraphrased_question`), scored like the bench
  mcq         the question with its true and perturbed answers listed as options; accuracy = the true answer
              has the lowest loss. Its baseline is the same log-likelihood choice without the options shown.
  mixed       the question after `n_context` retain questions and their answers, in one prompt
"""
from __future__ import annotations

import dataclasses
import logging
import random
import string
from dataclasses import dataclass, field

import numpy as np

from unlearn_bench.data.records import QA, EvalQA
from unlearn_bench.diagnostics.common import DiagInputs, DiagResult, compare, forget_metrics
from unlearn_bench.evaluation.lm import LM

log = logging.getLogger(__name__)
PROBES = ("paraphrase", "mcq", "mixed")


@dataclass
class RephraseConfig:
    probes: list[str] = field(default_factory=lambda: list(PROBES))
    n_context: int = 2  # retain question/answer pairs before each forget question (mixed)


def mcq_prompt(ex: EvalQA, options: list[str]) -> str:
    listed = " ".join(f"({letter}) {opt}" for letter, opt in zip(string.ascii_uppercase, options))
    return f"{ex.question} Options: {listed}"


def mcq_accuracy(lm: LM, examples: list[EvalQA], seed: int) -> np.ndarray:
    """1 per example whose true answer has the lowest loss of its options, asked with the options shown
    (in a seeded random order)."""
    rng = random.Random(seed)
    pairs, widths = [], []
    for ex in examples:
        options = [ex.answer, *ex.perturbed_answers]
        shown = rng.sample(options, len(options))
        pairs += [QA(mcq_prompt(ex, shown), opt) for opt in options]  # true answer first in scoring order
        widths.append(len(options))
    losses = iter(lm.answer_losses(pairs))
    rows = [[next(losses) for _ in range(w)] for w in widths]
    return np.asarray([float(row[0] < min(row[1:])) for row in rows])


def mixed(ex: EvalQA, context: list[EvalQA]) -> EvalQA:
    prefix = " ".join(f"{c.question} {c.answer}" for c in context)
    return dataclasses.replace(ex, question=f"{prefix} {ex.question}")


def run(inputs: DiagInputs, cfg: RephraseConfig) -> DiagResult:
    unknown = sorted(set(cfg.probes) - set(PROBES))
    if unknown:
        raise ValueError(f"eval.diag.rephrase.probes: unknown {unknown}; choose from {list(PROBES)}")
    examples, refs, lm, n = inputs.forget_examples, inputs.references(), inputs.lm(), inputs.max_new_tokens
    out = DiagResult()
    if "paraphrase" in cfg.probes:
        idx = [i for i, ex in enumerate(examples) if ex.paraphrased_question]
        if idx:
            reworded = [dataclasses.replace(examples[i], question=examples[i].paraphrased_question) for i in idx]
            out.add(compare("rephrase/paraphrase", forget_metrics(lm, reworded, n), refs, idx, inputs.min_gap))
        else:
            log.warning("rephrase: no forget example has a paraphrased question; skipping the paraphrase probe")
    if "mcq" in cfg.probes:
        # every forget example has perturbed answers: the bench's truth ratio (SplitScores) requires them
        out.add(compare("rephrase/mcq", {"acc": mcq_accuracy(lm, examples, inputs.cfg.seed)}, refs, None, inputs.min_gap))
    if "mixed" in cfg.probes:
        retain = list(inputs.bench.eval_splits()["retain"])
        if len(retain) < cfg.n_context:
            raise ValueError(f"rephrase: mixed probe needs {cfg.n_context} retain questions, the eval retain split has {len(retain)}")
        rng = random.Random(inputs.cfg.seed)
        prompts = [mixed(ex, rng.sample(retain, cfg.n_context)) for ex in examples]
        out.add(compare("rephrase/mixed", forget_metrics(lm, prompts, n), refs, None, inputs.min_gap))
    return out
