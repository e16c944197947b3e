"""The diagnose stage's settings (`eval.diag`, the schema of every attack's options), apart from the attacks' code
so that composing a config imports none of it."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from unlearn_bench.training.settings import OptimFields, Scheduler

PROBES = ("paraphrase", "mcq", "mixed")  # rephrase's probes


@dataclass
class RelearnConfig(OptimFields):
    """`recipes.finetune`'s fields at a constant rate (so the k-step point of one run is the k-step run): a budget
    ladder, every rung scored; the rung at `verdict_steps` votes. None takes the model's fine-tuning batch size, and
    `lr_fraction` x its fine-tuning rate (`model.finetune`)."""

    train_fraction: float = 0.5   # share of the forget groups in the first fold (cross-fit: each fold trains once)
    lr: Optional[float] = None
    lr_fraction: float = 0.1      # of model.finetune.lr where lr is None: gentle enough that the target keeps its answers
    batch_size: Optional[int] = None
    scheduler: Scheduler = Scheduler.constant
    steps: list[int] = field(default_factory=lambda: [5, 10, 20])  # the ladder (rung 0 is the `none` attack)
    verdict_steps: int = 10       # the rung that votes
    # a rung whose relearning lowers the target's own held-out score by more than this share has no signal
    max_ceiling_drop: float = 0.2
    unrelated: bool = True        # also relearn on retain examples only (relearn/unrelated, Łucki et al. 2024)
    params: str = "all"           # all | mlp | attention


@dataclass
class QuantizeConfig:
    bits: list[int] = field(default_factory=lambda: [8, 4])
    method: str = "rtn"  # rtn | bnb


@dataclass
class RephraseConfig:
    probes: list[str] = field(default_factory=lambda: list(PROBES))
    n_context: int = 2  # retain question/answer pairs before each forget question (mixed)
    mcq_options: int = 4  # options shown (mcq): the true answer and the first perturbed ones; each costs a forward


@dataclass
class SamplingConfig:
    k: int = 4
    threshold: float = 0.8  # ROUGE-L recall of a sample against the answer that counts as a leak


@dataclass
class ProbeConfig:
    layer: Optional[int] = None      # index into hidden_states (0 = embeddings); None = the middle layer
    attribute: Optional[int] = None  # meta["attribute"] to predict; None = chosen by `choose_attribute`
    C: float = 1.0                   # inverse L2 strength of the logistic regression


@dataclass
class PartialConfig:
    fraction: float = 0.5  # share of the answer's words given in the prompt (at least one, never all)


@dataclass
class SoftPromptConfig(OptimFields):
    n_tokens: int = 8
    lr: float = 1e-2
    batch_size: Optional[int] = None  # None: the model's fine-tuning batch size
    epochs: float = 1
    max_steps: int = 10


@dataclass
class SequentialConfig:
    requests: int = 3
    metrics: list[str] = field(default_factory=lambda: ["model_utility", "forget_quality", "forget_rouge", "forget_prob"])


@dataclass
class ControlConfig:
    """How the known-answer controls are built (`diagnostics.controls`); rates are multiples of the model's
    fine-tuning rate (`model.finetune.lr`). Defaults measured on a half-size embedded world (README)."""

    seed_offset: int = 1            # exact: the retain recipe at training seed + this
    refusal_layers: int = 1         # refusal: trainable last decoder layers (with the final norm and an untied head)
    refusal_epochs: float = 10      # refusal: epochs over the forget questions with refusals and the retain replay
    refusal_lr_factor: float = 2.5  # refusal: one layer has to learn to tell forget from retain authors
    refusal_replay: int = 3         # refusal: retain QA per refused forget question (fewer: retain answers suffer)
    partial_fraction: float = 0.5   # partial: share of the forget groups it is trained on
    partial_repeats: int = 10       # partial: copies of those groups' QA, in one pass with the whole retain set
    partial_lr_factor: float = 0.25  # partial: gentle, so the retain model keeps what it knew


@dataclass
class DiagnosticsConfig:
    threshold: float = 0.25   # knowledge share below which an attack shows nothing beyond the retain model
    bootstrap: int = 4000     # group-bootstrap resamples per share
    level: float = 0.95       # family-wise coverage: each interval at 1 - (1 - level) / (voting attacks) (Bonferroni)
    min_utility: float = 0.5  # utility gate: below this x the target's utility the model is `collapsed`
    max_width: float = 0.5    # an attack whose interval is wider than this does not vote
    controls: list[str] = field(default_factory=list)  # known-answer controls: exact, refusal, partial, collapsed
    control: ControlConfig = field(default_factory=ControlConfig)
    relearn: RelearnConfig = field(default_factory=RelearnConfig)
    quantize: QuantizeConfig = field(default_factory=QuantizeConfig)
    rephrase: RephraseConfig = field(default_factory=RephraseConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    partial: PartialConfig = field(default_factory=PartialConfig)
    soft_prompt: SoftPromptConfig = field(default_factory=SoftPromptConfig)
    sequential: SequentialConfig = field(default_factory=SequentialConfig)
