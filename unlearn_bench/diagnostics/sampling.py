"""Sampling leakage: k temperature-1 samples per forget question; a question leaks when any sample reproduces
the answer (ROUGE-L recall >= threshold).

Greedy decoding shows only the mode; suppression that lowers the answer's rank without removing its
probability mass still leaks under sampling (Scholten et al. 2024, "A probabilistic perspective on unlearning
and alignment for LLMs", who show greedy evaluation underestimates leakage). The baseline is the same
threshold applied to the greedy generations the bench already scored.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from unlearn_bench.diagnostics.common import DiagInputs, DiagResult, compare
from unlearn_bench.evaluation.lm import LM
from unlearn_bench.metrics.rouge import rouge_recall


@dataclass
class SamplingConfig:
    k: int = 8
    threshold: float = 0.8  # ROUGE-L recall of a sample against the answer that counts as a leak


def sample_answers(lm: LM, questions: Sequence[str], k: int, max_new_tokens: int, seed: int) -> list[list[str]]:
    """k seeded samples per question (the generator's RNG is torch's)."""
    if k < 1:
        raise ValueError(f"eval.diag.sampling.k={k} must be >= 1")
    torch.manual_seed(seed)
    flat = lm.generate([q for q in questions for _ in range(k)], max_new_tokens=max_new_tokens, sample=True)
    return [flat[i * k : (i + 1) * k] for i in range(len(questions))]


def leaks(samples: Sequence[Sequence[str]], answers: Sequence[str], threshold: float) -> np.ndarray:
    """1 per question where any sample's ROUGE-L recall against the answer reaches `threshold`."""
    flat = [s for group in samples for s in group]
    refs = [a for group, a in zip(samples, answers) for _ in group]
    scores = iter(rouge_recall(flat, refs)["rougeL"])
    return np.asarray([float(max(next(scores) for _ in group) >= threshold) for group in samples])


def run(inputs: DiagInputs, cfg: SamplingConfig) -> DiagResult:
    examples = inputs.forget_examples
    samples = sample_answers(inputs.lm(), [ex.question for ex in examples], cfg.k, inputs.max_new_tokens, inputs.cfg.seed)
    after = {"leak": leaks(samples, [ex.answer for ex in examples], cfg.threshold)}
    greedy = {role: {"leak": (r["rouge"] >= cfg.threshold).astype(float)} for role, r in inputs.references().items()}
    return compare("sampling", after, greedy, None, inputs.min_gap)
