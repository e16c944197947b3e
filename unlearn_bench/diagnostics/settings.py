"""The diagnose stage's settings (`eval.diag`, the schema of every attack's options), apart from the attacks' code
so that composing a config imports none of it."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from unlearn_bench.training.settings import OptimFields

PROBES = ("paraphrase", "mcq", "mixed")  # rephrase's probes


@dataclass
class RelearnConfig(OptimFields):
    """`recipes.finetune`'s fields; None takes the model's fine-tuning value (`model.finetune`)."""

    train_fraction: float = 0.5   # share of the forget groups trained on (the rest are scored)
    lr: Optional[float] = None
    batch_size: Optional[int] = None
    epochs: float = 1
    max_steps: int = 10
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
class DiagnosticsConfig:
    threshold: float = 0.25   # knowledge share below which an attack shows nothing beyond the retain model
    bootstrap: int = 1000     # group-bootstrap resamples per share
    level: float = 0.95       # interval coverage
    controls: list[str] = field(default_factory=list)  # known-answer controls: retain, suppressed
    relearn: RelearnConfig = field(default_factory=RelearnConfig)
    quantize: QuantizeConfig = field(default_factory=QuantizeConfig)
    rephrase: RephraseConfig = field(default_factory=RephraseConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    partial: PartialConfig = field(default_factory=PartialConfig)
    soft_prompt: SoftPromptConfig = field(default_factory=SoftPromptConfig)
    sequential: SequentialConfig = field(default_factory=SequentialConfig)
