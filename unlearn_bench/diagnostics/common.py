"""What every diagnostic shares: its inputs, per-example forget metrics, and recovery of the unlearning gap.

Recovery of a metric under an attack is (after - unlearned) / (finetuned - unlearned), where `unlearned` and
`finetuned` are the per-example forget scores the runner's evaluations already hold
(`EvalOutput.reference_data["forget_scores"]`, index-aligned with the benchmark's eval forget split), averaged
over the same examples the attack is measured on. 0 = the attack recovered nothing, 1 = everything the
fine-tuned model knew.

The verdict uses recovery beyond the retain model: the same ratio with max(unlearned, retain) in place of
`unlearned`. A model unlearned below the retain model (e.g. gradient ascent collapsing fluency) that an attack
lifts back to the retain model's level regained the answer format, not the forgotten facts, which the retain
model never saw.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from unlearn_bench.benchmarks.base import EvalOutput, Metric
from unlearn_bench.data.records import EvalQA
from unlearn_bench.evaluation.lm import LM, eval_lm
from unlearn_bench.evaluation.qa_eval import score_splits
from unlearn_bench.evaluation.wrapper import InferenceWrapper

ROLES = ("unlearned", "finetuned", "retain")
PerExample = dict[str, np.ndarray]  # metric name -> one value per example


@dataclass
class DiagInputs:
    """The unlearned model and everything of its run a diagnostic needs (built by `run_diagnostics`)."""

    cfg: Any                                  # the run's DictConfig
    bench: Any                                # the Benchmark
    data: Any                                 # its BenchData
    fmt: Any                                  # PromptFormat
    accelerator: Any
    model: PreTrainedModel                    # unlearned, unwrapped
    tokenizer: PreTrainedTokenizerBase
    evals: Mapping[str, EvalOutput]           # ROLES -> evaluation
    model_dirs: Mapping[str, Path]            # "finetuned", "retain" -> saved model
    new_method: Callable[[], Any]             # a fresh method object (sequential unlearning)
    min_gap: float                            # below this finetuned-unlearned gap recovery is undefined (NaN)
    wrapper: InferenceWrapper | None = None   # an inference-time method's wrapper over `model`

    def lm(self, model: PreTrainedModel | None = None) -> LM:
        """The unlearned system as a user queries it (no `model`: the unlearned weights behind the method's
        wrapper, if any), or the given weights run as they are: an attack that needs the weights (relearning,
        quantization, probing) holds them, and whoever holds the weights runs them without a wrapper."""
        wrapper = self.wrapper if model is None else None
        return eval_lm(model if model is not None else self.model, self.tokenizer, self.fmt, self.cfg.model.max_length,
                       self.cfg.eval.batch_size, wrapper)

    @property
    def max_new_tokens(self) -> int:
        return self.bench.cfg.max_new_tokens

    @cached_property
    def forget_examples(self) -> list[EvalQA]:
        """The eval forget split, in the order of the evaluations' per-example forget scores."""
        return list(self.bench.eval_splits()["forget"])

    def is_qa(self) -> bool:
        """TOFU-family: eval splits of EvalQA and per-example forget scores in every evaluation."""
        return hasattr(self.bench, "eval_splits") and all(
            "forget_scores" in self.evals[r].reference_data for r in ROLES)

    def references(self) -> dict[str, PerExample]:
        return {role: self.reference(role) for role in ROLES}

    def reference(self, role: str) -> PerExample:
        """Per-example forget scores of the unlearned/finetuned/retain model in the standard format."""
        s = self.evals[role].reference_data["forget_scores"]
        gt = np.asarray(s["gt_loss"], dtype=float)
        return {
            "rouge": np.asarray(s["rouge_l_recall"], dtype=float),
            "prob": np.exp(-gt),
            # log-likelihood multiple choice without options in the prompt: the true answer beats every wrong one
            "acc": (gt < np.asarray(s["perturbed_loss"], dtype=float).min(axis=1)).astype(float),
        }


@dataclass
class DiagResult:
    metrics: list[Metric] = field(default_factory=list)
    recovery: dict[str, float] = field(default_factory=dict)  # attack label -> largest recovery over its metrics

    def add(self, other: "DiagResult") -> "DiagResult":
        self.metrics += other.metrics
        self.recovery.update(other.recovery)
        return self


def forget_metrics(lm: LM, examples: Sequence[EvalQA], max_new_tokens: int) -> PerExample:
    """Forget ROUGE-L recall (greedy generation) and answer probability per example, scored like the bench."""
    scores = score_splits(lm, {"forget": examples}, max_new_tokens)["forget"].scores
    return {"rouge": np.asarray(scores.rouge_l_recall, dtype=float), "prob": np.exp(-np.asarray(scores.gt_loss, dtype=float))}


def recovery(after: float, unlearned: float, finetuned: float, min_gap: float) -> float:
    """Fraction of the unlearning gap an attack recovers (every metric here grows with knowledge); NaN when
    unlearning opened no gap of at least `min_gap` to recover, as a ratio of noise would decide the verdict."""
    gap = finetuned - unlearned
    if not (math.isfinite(gap) and math.isfinite(after)) or gap < min_gap:
        return math.nan
    return (after - unlearned) / gap


def compare(label: str, after: PerExample, refs: Mapping[str, PerExample], index: Sequence[int] | None,
            min_gap: float) -> DiagResult:
    """Rows `diag/<label>`: each metric after the attack, its recovery of the finetuned-unlearned gap and its
    recovery beyond the retain model (which votes in the verdict); `refs` are per-example, `index` selects the
    examples `after` was measured on (None: all)."""
    out = DiagResult()
    split = f"diag/{label}"
    recoveries = []
    for name, values in after.items():
        value = float(np.mean(values))
        base = {role: float(np.mean(r[name] if index is None else r[name][list(index)])) for role, r in refs.items()}
        beyond = recovery(value, max(base["unlearned"], base["retain"]), base["finetuned"], min_gap)
        recoveries.append(beyond)
        out.metrics += [Metric(split, name, value, False),
                        Metric(split, f"{name}_recovery", recovery(value, base["unlearned"], base["finetuned"], min_gap), False),
                        Metric(split, f"{name}_recovery_beyond_retain", beyond, False)]
    finite = [r for r in recoveries if math.isfinite(r)]
    out.recovery[label] = max(finite) if finite else math.nan
    return out
