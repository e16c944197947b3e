"""What every attack shares: the run's inputs, the attack interface, and greedy ROUGE scoring.

An attack is a function model -> per-example forget scores (higher = more knowledge shown), over a fixed set
of forget examples (`Attack.index`); the diagnose stage applies each one identically to the unlearned model,
the fine-tuned target and the retain model (`diagnostics.share` turns the three means into a knowledge share).

A model behind an inference-time wrapper (`evaluation.wrapper`: an inference-time method) is attacked as
deployed by black-box attacks (prompts and sampling go through the wrapper), while white-box attacks
(`Attack.white_box`: relearning, quantization, the probe, the soft prompt) hold the weights, and whoever holds
the weights runs them without the wrapper. Weight-access attacks (`Attack.weight_access`: relearning, the probe,
the soft prompt) search the weights for what the outputs hide; a `removed` verdict needs one of them to vote.
"""
from __future__ import annotations

import dataclasses
import weakref
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Hashable, Mapping, Sequence

import numpy as np
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from unlearn_bench.benchmarks.base import EvalOutput
from unlearn_bench.data.records import EvalQA
from unlearn_bench.diagnostics.groups import disjoint_split, forget_groups
from unlearn_bench.evaluation.lm import LM, eval_lm
from unlearn_bench.evaluation.wrapper import InferenceWrapper
from unlearn_bench.metrics.rouge import rouge_recall

Scorer = Callable[[PreTrainedModel, "InferenceWrapper | None"], np.ndarray]  # (weights, wrapper) -> scores


@dataclass(frozen=True)
class Attack:
    """One attack: `score(model, wrapper)` gives one value per example of `index` (into the eval forget split)."""

    name: str                 # row split diag/<name>; "none" is the attack-free baseline
    metric: str               # what a score is, e.g. "rougeL_recall"
    index: list[int]
    score: Scorer
    settings: Any = None      # what, besides the model and the run's data, determines the scores (cache key)
    white_box: bool = False   # needs the weights: scored without the model's inference-time wrapper
    # The scores read off a model's existing evaluation, where the attack is the bench's own (no attack).
    from_evaluation: Callable[[EvalOutput], np.ndarray] | None = None
    weight_access: bool = False  # searches the weights (trains on them, reads their hidden states)
    votes: bool = True           # False: reported only (a relearning ladder's other rungs)
    # An attack that trains the weights must not wreck the target's own answers: the target's attacked mean may
    # lie at most this share below its unattacked mean over the same examples, else the attack has no signal.
    max_ceiling_drop: float | None = None


@dataclass
class Subject:
    """A model the attacks run on, in the unlearned role or a reference's: loaded at most once, its scores
    cached under `cache_key` (None: not cached); `evaluation` is its own (the `none` attack and the utility gate
    read it). Every subject is scored through its own forward passes: none borrows another's scores."""

    name: str
    load: Callable[[], Any]
    evaluation: EvalOutput
    cache_key: Any = None
    wrapper: InferenceWrapper | None = None  # what it is deployed behind (an inference-time method)


def shared_scorer(compute: Callable[[PreTrainedModel, InferenceWrapper | None], Mapping[str, np.ndarray]]
                  ) -> Callable[[str], Scorer]:
    """Scorers of several attacks that one computation yields (one relearning run scores every rung of its
    ladder): `compute(model, wrapper)` runs once per model object, each attack's scorer picks its own part."""
    done: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def part(name: str) -> Scorer:
        def score(model: PreTrainedModel, wrapper: InferenceWrapper | None) -> np.ndarray:
            if model not in done:
                done[model] = compute(model, wrapper)
            return done[model][name]

        return score

    return part


@dataclass
class DiagInputs:
    """Everything of one run the attacks need (built by `run_diagnostics`)."""

    cfg: Any                                  # the run's DictConfig
    settings: Any                             # its DiagnosticsConfig
    bench: Any
    data: Any                                 # BenchData
    fmt: Any                                  # PromptFormat
    accelerator: Any
    tokenizer: PreTrainedTokenizerBase
    evals: Mapping[str, EvalOutput]           # unlearned / finetuned / retain -> evaluation
    model_dirs: Mapping[str, Path]            # finetuned / retain -> saved model
    new_method: Callable[[], Any]             # a fresh method object (sequential unlearning)

    def lm(self, model: PreTrainedModel, wrapper: InferenceWrapper | None = None) -> LM:
        return eval_lm(model, self.tokenizer, self.fmt, self.cfg.model.max_length, self.cfg.eval.batch_size, wrapper,
                       self.cfg.eval.generation_batch_size)

    @property
    def max_new_tokens(self) -> int:
        return self.bench.cfg.max_new_tokens

    @property
    def seed(self) -> int:
        return int(self.cfg.seed)

    @cached_property
    def forget_examples(self) -> list[EvalQA]:
        """The eval forget split, in the order of the evaluations' per-example forget scores."""
        return list(self.bench.eval_splits()["forget"])

    @cached_property
    def groups(self) -> list[Hashable]:
        return forget_groups(self.forget_examples, self.cfg.bench.name)

    @cached_property
    def split(self) -> tuple[list[int], list[int]]:
        """(train, held out) forget indices, whole groups on each side: relearning and the soft prompt train
        on the first and are scored on the second."""
        return disjoint_split(self.groups, self.settings.relearn.train_fraction)

    def is_qa(self) -> bool:
        """TOFU-family: eval splits of EvalQA and per-example forget scores in every evaluation."""
        return hasattr(self.bench, "eval_splits") and all("forget_scores" in e.reference_data for e in self.evals.values())


def greedy_rouge(lm: LM, prompts: Sequence[str], answers: Sequence[str], max_new_tokens: int, raw: bool = False) -> np.ndarray:
    """ROUGE-L recall of each greedy answer against its reference, scored as the bench scores generations."""
    generations = lm.generate(list(prompts), max_new_tokens=max_new_tokens, raw=raw)
    return np.asarray(rouge_recall(generations, list(answers))["rougeL"], dtype=float)


def forget_rouge(evaluation: EvalOutput) -> np.ndarray:
    """The bench's own per-example forget ROUGE-L recall of an evaluated model."""
    return np.asarray(evaluation.reference_data["forget_scores"]["rouge_l_recall"], dtype=float)


def rouge_attack(inputs: DiagInputs, name: str, index: list[int], prompts: Sequence[str], settings: Any = None, *,
                 references: Sequence[str] | None = None, transform: Callable[[PreTrainedModel], PreTrainedModel | None] | None = None,
                 raw: bool = False) -> Attack:
    """An attack scored by greedy ROUGE-L recall: `prompts` (one per example of `index`) asked of
    `transform(model)` (the weights attacked, which makes the attack white-box; None when the attack failed,
    which leaves the scores NaN), against the examples' answers or `references`."""
    answers = list(references) if references is not None else [inputs.forget_examples[i].answer for i in index]

    def score(model: PreTrainedModel, wrapper: InferenceWrapper | None) -> np.ndarray:
        attacked = transform(model) if transform is not None else model
        if attacked is None:
            return np.full(len(index), np.nan)
        return greedy_rouge(inputs.lm(attacked, wrapper), prompts, answers, inputs.max_new_tokens, raw=raw)

    return Attack(name, "rougeL_recall", list(index), score, settings, white_box=transform is not None)


def no_attack(inputs: DiagInputs) -> Attack:
    """Attack zero: the forget questions as the bench asks them, greedy answers (reused from the evaluations)."""
    examples = inputs.forget_examples
    attack = rouge_attack(inputs, "none", list(range(len(examples))), [ex.question for ex in examples])
    return dataclasses.replace(attack, from_evaluation=forget_rouge)
