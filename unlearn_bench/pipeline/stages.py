"""The evaluate stage and the checks around it as plain typed functions (fine-tuning and unlearning are
`training.recipes`); `runner.run` wires them together and caches their outputs."""
from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from unlearn_bench.benchmarks.base import Benchmark, BenchData, EvalOutput, Metric
from unlearn_bench.data.collate import PromptFormat
from unlearn_bench.evaluation.lm import eval_lm
from unlearn_bench.evaluation.wrapper import InferenceWrapper

log = logging.getLogger(__name__)


def question_metrics(method: Any, bench: Benchmark) -> list[Metric]:
    """Rows an inference-time method reports on the evaluation questions themselves (a retrieval guard's hit
    rate per split), for benches with QA evaluation splits; none for other methods."""
    if not hasattr(method, "question_metrics") or not hasattr(bench, "eval_splits"):
        return []
    return method.question_metrics({name: [ex.question for ex in examples] for name, examples in bench.eval_splits().items()})


def evaluate(bench: Benchmark, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, fmt: PromptFormat,
             max_length: int, batch_size: int, reference: dict[str, Any] | None,
             wrapper: InferenceWrapper | None = None, generation_batch_size: int | None = None) -> EvalOutput:
    return bench.evaluate(eval_lm(model, tokenizer, fmt, max_length, batch_size, wrapper, generation_batch_size),
                          reference)


def save_eval(out: EvalOutput, path: Path) -> None:
    path.write_text(json.dumps(asdict(out)))


def load_eval(path: Path) -> EvalOutput:
    raw = json.loads(path.read_text())
    raw["metrics"] = [Metric(**m) for m in raw["metrics"]]
    return EvalOutput(**raw)


def check_data(data: BenchData) -> None:
    """Empty forget sets are errors; forget/retain overlap is a warning with the count."""
    if not data.forget:
        raise ValueError("the forget split is empty: nothing to unlearn (check bench.forget_split)")
    if not data.retain:
        log.warning("the retain split is empty: retain terms of methods are skipped")
    overlap = len(set(data.forget) & set(data.retain))
    if overlap:
        log.warning("forget and retain splits overlap in %d example(s): retain terms will pull toward forgotten data", overlap)
