"""What a method costs: unlearning wall time, and per-question inference time against the unmodified model.

Inference-time methods trade training for inference: a guard's retrieval, ICUL's longer prompts, ULD's second
forward pass. `inference_overhead` times the same questions (scoring their answers and generating, as the bench's
evaluation does) through the method's wrapper and through the bare weights, alternating the two `repeats` times
in one process and keeping each one's fastest pass, so load on a shared machine cancels in the ratio as far as
it can. For a fine-tuning method both passes run the same network: its ratio shows the noise floor (~1).
Rows: `cost/unlearn_seconds` (and `cost/unlearn_seconds_per_step`), `cost/diagnose_seconds` (when diagnostics run), `cost/seconds_per_question`,
`cost/inference_overhead` (wrapped / bare), and on every evaluation the wall time of each of its phases,
`cost/eval_<phase>_seconds` (`PhaseClock`: scoring, generation, mia, memorization, utility): the QA benches score
every split's answers in one batched pass and generate in another, so a phase covers all splits.
"""
from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

from unlearn_bench.benchmarks.base import BenchData, Metric
from unlearn_bench.data.records import QA

if TYPE_CHECKING:  # the scorer is imported where costs are measured: composing a config reads only CostConfig
    from unlearn_bench.evaluation.lm import LM
    from unlearn_bench.evaluation.wrapper import InferenceWrapper

SPLIT = "cost"
log = logging.getLogger(__name__)


@dataclass
class CostConfig:
    questions: int = 16  # forget and retain items each timed; 0 turns the overhead rows off
    repeats: int = 3


def seconds_per_question(lm: LM, pairs: Sequence[QA], max_new_tokens: int) -> float:
    """Wall time to score every answer and generate from every question, per item."""
    start = time.perf_counter()
    lm.answer_losses(pairs)
    questions = [qa.question for qa in pairs if qa.question is not None]
    if questions:
        lm.generate(questions, max_new_tokens=max_new_tokens)
    return (time.perf_counter() - start) / len(pairs)


def inference_overhead(wrapped: LM, bare: LM, pairs: Sequence[QA], max_new_tokens: int, repeats: int) -> list[Metric]:
    """`cost/seconds_per_question` through the wrapper and `cost/inference_overhead`, wrapped over bare."""
    if not pairs:
        return []
    if repeats < 1:
        raise ValueError(f"eval.cost.repeats={repeats} must be >= 1")
    best = {"wrapped": float("inf"), "bare": float("inf")}
    for _ in range(repeats):
        for name, lm in (("wrapped", wrapped), ("bare", bare)):
            best[name] = min(best[name], seconds_per_question(lm, pairs, max_new_tokens))
    return [Metric(SPLIT, "seconds_per_question", best["wrapped"], False),
            Metric(SPLIT, "inference_overhead", best["wrapped"] / best["bare"], False)]


@dataclass
class PhaseClock:
    """Wall time per evaluation phase: a `cost/eval_<phase>_seconds` row and a log line each."""

    rows: list[Metric] = field(default_factory=list)

    @contextmanager
    def phase(self, name: str, what: str = ""):
        start = time.perf_counter()
        yield
        seconds = time.perf_counter() - start
        self.rows.append(Metric(SPLIT, f"eval_{name}_seconds", seconds, False))
        log.info("evaluate: %s %.1f s%s", name, seconds, f" ({what})" if what else "")


def unlearn_rows(seconds: float, steps: int) -> list[Metric]:
    """Unlearning wall time and, for a method that trains, per optimizer step (a method's cost at any budget)."""
    per_step = [Metric(SPLIT, "unlearn_seconds_per_step", seconds / steps, False)] if steps > 0 else []
    return [Metric(SPLIT, "unlearn_seconds", seconds, False), *per_step]


def diagnose_seconds(seconds: float) -> Metric:
    """Wall time of the diagnose stage (attacks on the unlearned model, and on the finetuned and retain models and
    the controls where their scores are not cached yet)."""
    return Metric(SPLIT, "diagnose_seconds", seconds, False)


def cost_metrics(model: Any, tokenizer: Any, fmt: Any, max_length: int, batch_size: int,
                 wrapper: InferenceWrapper | None, data: BenchData, cfg: CostConfig, max_new_tokens: int) -> list[Metric]:
    """The overhead rows over the first `cfg.questions` forget and retain items (none when it is 0)."""
    pairs = list(data.forget[: cfg.questions]) + list(data.retain[: cfg.questions])
    from unlearn_bench.evaluation.lm import eval_lm

    return inference_overhead(eval_lm(model, tokenizer, fmt, max_length, batch_size, wrapper),
                              eval_lm(model, tokenizer, fmt, max_length, batch_size), pairs, max_new_tokens, cfg.repeats)
