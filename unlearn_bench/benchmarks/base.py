"""The small interface between the runner and a benchmark adapter."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Protocol, runtime_checkable

from unlearn_bench.data.records import QA
if TYPE_CHECKING:
    from unlearn_bench.evaluation.lm import LM


# Passed as `reference` when the model being evaluated is the retain reference itself.
SELF_REFERENCE: dict[str, Any] = {"self": True}


@dataclass
class BenchData:
    target_train: list[QA]        # fine-tuning set of the target model
    retain_train: list[QA]        # fine-tuning set of the retain reference (target_train minus the forget set)
    forget: list[QA]              # what unlearning removes
    retain: list[QA]              # what unlearning must keep
    refusals: list[str] = field(default_factory=list)            # refusal answers (idk-style methods)
    # wrong answers per forget item to train on (wrong_answers): none of them is an answer the evaluation scores
    forget_perturbed: list[list[str]] = field(default_factory=list)
    # alternate answers per forget item that the target model wrote (altpo); the runner fills it once the target exists
    generated_alternates: list[list[str]] = field(default_factory=list)
    # True for the items of `forget` that a poisoned request (bench.poison) slipped in; empty: none were
    forget_poisoned: list[bool] = field(default_factory=list)
    tokenizer_corpus: list[str] = field(default_factory=list)     # text the tiny model's tokenizer is trained on
    # None: each training record is one example; a length: the raw-text training sets are trained on as token
    # windows of that many tokens (MUSE's layout, `collate.token_windows`), cut once the tokenizer exists
    train_window: int | None = None

    # Refusals read only when a method asks for them (`refusal_answers`), so that a bad refusal file (TOFU's
    # idontknow.jsonl) stops the methods that train on it and no other.
    read_refusals: Callable[[], list[str]] | None = None

    def refusal_answers(self) -> list[str]:
        return self.refusals or (self.read_refusals() if self.read_refusals is not None else [])

    def training_digest(self, role: str, trains_tokenizer: bool = True) -> str:
        """Content hash of what the `role` model ("target" or "retain") is trained on: its training texts and,
        when the tokenizer is trained too (the tiny model), the tokenizer corpus; a pretrained model's key then
        ignores the evaluation texts in that corpus. Generated worlds have no files to fingerprint, so a change
        of the generator (a new wording of the wrong answers, other draws) must still reach the cache keys
        through the texts themselves."""
        train = self.target_train if role == "target" else self.retain_train
        texts: tuple[Any, ...] = ([[qa.question, qa.answer] for qa in train],)
        if trains_tokenizer:
            texts += (self.tokenizer_corpus,)
        if self.train_window is not None:
            texts += (self.train_window,)
        return hashlib.sha256(json.dumps(texts).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Metric:
    split: str
    metric: str
    value: float
    higher_is_better: bool | None


@dataclass
class EvalOutput:
    metrics: list[Metric]
    generations: list[dict[str, Any]] = field(default_factory=list)  # prompt, generation, reference, split
    logs: dict[str, Any] = field(default_factory=dict)               # per-example logs, file name -> JSON
    reference_data: dict[str, Any] = field(default_factory=dict)     # what other models' evaluation needs


class Benchmark(Protocol):
    name: str

    def data(self) -> BenchData: ...

    def data_key(self, role: str) -> dict[str, Any]:
        """Everything that determines the fine-tuning data of `role` ('target' or 'retain'): the cache key."""
        ...

    def evaluate(self, lm: LM, reference: dict[str, Any] | None) -> EvalOutput:
        """Metrics of `lm`; `reference` is the retain model's `EvalOutput.reference_data` (None for itself)."""
        ...


@runtime_checkable
class GeneratesForgetCorpus(Protocol):
    """A benchmark whose forget corpus the target model writes itself (RWKU's synthetic corpus). The runner
    generates it once the target model exists, caches it by target model and `generation_key`, and unlearns on
    `with_generated_forget(data, records)`."""

    def generation_key(self) -> dict[str, Any] | None:
        """Everything besides the target model that determines the corpus; None when this run uses none."""
        ...

    def generate_forget(self, lm: LM) -> list[dict[str, Any]]: ...

    def with_generated_forget(self, data: BenchData, records: list[dict[str, Any]]) -> BenchData: ...
