"""Sampling leakage: k temperature-1 samples per forget question; a question leaks (score 1) when any sample
reproduces the answer (ROUGE-L recall >= threshold).

Greedy decoding shows only the mode; suppression that lowers the answer's rank without removing its
probability mass still leaks under sampling (Scholten et al. 2024, "A probabilistic perspective on unlearning
and alignment for LLMs", who show greedy evaluation underestimates leakage). Best-of-k is drawn from all three
models with the same seed: a model that only learned the answer format also "leaks" by chance (a parent's job
right is recall 4/5 on a parents question), and the retain model's best-of-k is that floor.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from transformers import PreTrainedModel

from unlearn_bench.diagnostics.settings import SamplingConfig
from unlearn_bench.diagnostics.common import Attack, DiagInputs
from unlearn_bench.evaluation.lm import LM
from unlearn_bench.evaluation.wrapper import InferenceWrapper
from unlearn_bench.metrics.rouge import rouge_recall


def check(cfg: SamplingConfig) -> None:
    if cfg.k < 1:
        raise ValueError(f"eval.diag.sampling.k={cfg.k} must be >= 1")
    if not 0 < cfg.threshold <= 1:
        raise ValueError(f"eval.diag.sampling.threshold={cfg.threshold} must be in (0, 1]")


def sample_answers(lm: LM, questions: Sequence[str], k: int, max_new_tokens: int, seed: int) -> list[list[str]]:
    """k seeded samples per question (the generator's RNG is torch's)."""
    torch.manual_seed(seed)
    flat = lm.generate([q for q in questions for _ in range(k)], max_new_tokens=max_new_tokens, sample=True)
    return [flat[i * k : (i + 1) * k] for i in range(len(questions))]


def leaks(samples: Sequence[Sequence[str]], answers: Sequence[str], threshold: float) -> np.ndarray:
    """1 per question where any sample's ROUGE-L recall against the answer reaches `threshold`."""
    flat = [s for group in samples for s in group]
    refs = [a for group, a in zip(samples, answers) for _ in group]
    scores = iter(rouge_recall(flat, refs)["rougeL"])
    return np.asarray([float(max(next(scores) for _ in group) >= threshold) for group in samples])


def best_of_k(lm: LM, questions: Sequence[str], answers: Sequence[str], cfg: SamplingConfig, max_new_tokens: int,
              seed: int) -> np.ndarray:
    return leaks(sample_answers(lm, questions, cfg.k, max_new_tokens, seed), answers, cfg.threshold)


def attacks(inputs: DiagInputs, cfg: SamplingConfig) -> list[Attack]:
    examples = inputs.forget_examples

    def score(model: PreTrainedModel, wrapper: InferenceWrapper | None) -> np.ndarray:
        return best_of_k(inputs.lm(model, wrapper), [ex.question for ex in examples], [ex.answer for ex in examples], cfg,
                         inputs.max_new_tokens, inputs.seed)

    return [Attack("sampling", f"leak@{cfg.k}", list(range(len(examples))), score, {"k": cfg.k, "threshold": cfg.threshold})]
