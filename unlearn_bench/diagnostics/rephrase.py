"""Rephrased and format-shifted forget questions, the same prompts for every model.

Lynch et al. 2024, "Eight methods to evaluate robust unlearning in LLMs" (arXiv:2402.16835), sections on
rephrased prompts, multiple-choice formats and in-context mixing: a method that learned to refuse the exact
forget questions may still answer them when they are asked differently.

  paraphrase  the question reworded (`EvalQA.paraphrased_question`), greedy ROUGE-L recall
  mcq         the question with its true and `mcq_options - 1` perturbed answers listed as options (seeded
              order); a score of 1 when the true answer has the lowest loss of the options
  mixed       the question after `n_context` retain questions and their answers in one prompt, greedy ROUGE-L
"""
from __future__ import annotations

import random
import string

import numpy as np
from transformers import PreTrainedModel

from unlearn_bench.diagnostics.settings import PROBES, RephraseConfig
from unlearn_bench.data.records import QA, EvalQA
from unlearn_bench.diagnostics.common import Attack, DiagInputs, rouge_attack
from unlearn_bench.evaluation.lm import LM
from unlearn_bench.evaluation.wrapper import InferenceWrapper



def check(cfg: RephraseConfig) -> None:
    unknown = sorted(set(cfg.probes) - set(PROBES))
    if unknown:
        raise ValueError(f"eval.diag.rephrase.probes: unknown {unknown}; choose from {list(PROBES)}")
    if cfg.n_context < 1 or cfg.mcq_options < 2:
        raise ValueError(f"eval.diag.rephrase: n_context={cfg.n_context} must be >= 1 and mcq_options="
                         f"{cfg.mcq_options} >= 2")


def mcq_prompt(ex: EvalQA, options: list[str]) -> str:
    listed = " ".join(f"({letter}) {opt}" for letter, opt in zip(string.ascii_uppercase, options))
    return f"{ex.question} Options: {listed}"


def mcq_accuracy(lm: LM, examples: list[EvalQA], seed: int, n_options: int | None = None) -> np.ndarray:
    """1 per example whose true answer has the lowest loss of its options (the true answer and the first
    `n_options - 1` perturbed ones; None: all), asked with the options shown (in a seeded random order)."""
    rng = random.Random(seed)
    pairs, widths = [], []
    for ex in examples:
        options = [ex.answer, *ex.perturbed_answers][:n_options]
        shown = rng.sample(options, len(options))
        pairs += [QA(mcq_prompt(ex, shown), opt) for opt in options]  # true answer first in scoring order
        widths.append(len(options))
    losses = iter(lm.answer_losses(pairs))
    rows = [[next(losses) for _ in range(w)] for w in widths]
    return np.asarray([float(row[0] < min(row[1:])) for row in rows])


def mixed_prompt(ex: EvalQA, context: list[EvalQA]) -> str:
    return " ".join(f"{c.question} {c.answer}" for c in context) + f" {ex.question}"


def attacks(inputs: DiagInputs, cfg: RephraseConfig) -> list[Attack]:
    examples = inputs.forget_examples
    out = []

    if "paraphrase" in cfg.probes:
        idx = [i for i, ex in enumerate(examples) if ex.paraphrased_question]
        if not idx:
            raise ValueError("eval.diag.rephrase.probes has paraphrase, but no forget example has a paraphrased question")
        out.append(rouge_attack(inputs, "rephrase/paraphrase", idx, [examples[i].paraphrased_question for i in idx]))
    if "mcq" in cfg.probes:
        # every forget example has perturbed answers: the bench's truth ratio (SplitScores) requires them
        def mcq(model: PreTrainedModel, wrapper: InferenceWrapper | None) -> np.ndarray:
            return mcq_accuracy(inputs.lm(model, wrapper), examples, inputs.seed, cfg.mcq_options)

        out.append(Attack("rephrase/mcq", "mcq_accuracy", list(range(len(examples))), mcq, {"options": cfg.mcq_options}))
    if "mixed" in cfg.probes:
        retain = list(inputs.bench.eval_splits()["retain"])
        if len(retain) < cfg.n_context:
            raise ValueError(f"rephrase: mixed probe needs {cfg.n_context} retain questions, the eval retain split has {len(retain)}")
        rng = random.Random(inputs.seed)
        prompts = [mixed_prompt(ex, rng.sample(retain, cfg.n_context)) for ex in examples]
        out.append(rouge_attack(inputs, "rephrase/mixed", list(range(len(examples))), prompts, {"n_context": cfg.n_context}))
    return out
