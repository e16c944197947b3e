"""Typed config schemas, registered in Hydra's ConfigStore so that a typo or a wrong type fails at start.

Groups mirror modules: `method/*` schemas are made from each method's dataclass (its fields are the
method's hyperparameters) plus the common optimisation fields; `bench/*` schemas are each adapter's config
dataclass; `model` has one schema for the tiny model and hub models alike.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from unlearn_bench.benchmarks.registry import BENCHMARKS, bench_config_class
from unlearn_bench.data.collate import DATE_STRING
from unlearn_bench.diagnostics.settings import DiagnosticsConfig
from unlearn_bench.evaluation.cost import CostConfig
from unlearn_bench.methods.registry import method_classes
from unlearn_bench.models.lora import LoraSettings
from unlearn_bench.training.settings import OptimFields


@dataclass
class FinetuneConfig(OptimFields):
    batch_size: int = 16
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    # HF TrainingArguments' group_by_length: batches of similar lengths (less padding), in random order.
    group_by_length: bool = False


@dataclass
class ModelConfig:
    name: str = "tiny"
    # Hub id or local directory (save_pretrained layout); None builds the tiny model from scratch.
    path: Optional[str] = None
    # A released retain/retrain checkpoint to use as the retain reference instead of fine-tuning one.
    retain_path: Optional[str] = None
    # An unlearned checkpoint to evaluate and diagnose against this target and retain model, in place of running
    # the method (which then only labels the rows; method=none for an unknown one).
    unlearned_path: Optional[str] = None
    # Where to load the tokenizer of `path`/`retain_path` from when those checkpoints ship without one.
    tokenizer_path: Optional[str] = None
    prompt_format: str = "plain"  # plain | phi | llama2 | base | chat (data/collate.py)
    # prompt_format=chat: the system turn (None: none) and the template's date (Llama-3.1+ headers print it).
    system_prompt: Optional[str] = None
    date_string: str = DATE_STRING
    # Storage dtype of loaded models (auto: bf16 on CUDA, fp32 on CPU): frozen references and evaluated checkpoints
    # stay in it; trained parameters (and AdamW's state) are fp32 whatever it says, compute bf16 on CUDA (runtime/device.py).
    dtype: str = "auto"
    trust_remote_code: bool = False
    max_length: int = 256
    gradient_checkpointing: bool = False
    # Tiny model architecture (used only when path is None).
    hidden_size: int = 128
    num_layers: int = 2
    num_heads: int = 4
    intermediate_size: int = 344
    vocab_size: int = 1024
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    # LoRA adapters (peft) for fine-tuning and unlearning when r > 0; merged before evaluation.
    lora: LoraSettings = field(default_factory=LoraSettings)


@dataclass
class MethodConfig(OptimFields):
    """Fields every method has; each method's schema adds its own hyperparameters."""

    name: str = MISSING
    intent: str = MISSING  # removal | suppression (set by the method's schema, shown in every table)


@dataclass
class UtilityEvalConfig:
    tasks: list[str] = field(default_factory=list)  # lm-eval task names, e.g. [mmlu]
    data_dir: Optional[str] = None                  # offline records (WMDP/MMLU layouts); None = hub
    limit: Optional[int] = None
    num_fewshot: Optional[int] = None


@dataclass
class EvalConfig:
    batch_size: int = 32
    # Rows greedy decoding runs at once. Its KV cache holds rows x (prompt + max_new_tokens) positions: 128 x 300
    # on Llama-2-7B in bf16 is about 20 GB, so lower it on a smaller GPU. On a tiny Llama, 128 rows decode TOFU
    # forget10's 400 questions 1.6x faster than 32 (one CPU thread). Sampling batches by batch_size.
    generation_batch_size: int = 128
    utility: UtilityEvalConfig = field(default_factory=UtilityEvalConfig)
    diagnostics: list[str] = field(default_factory=list)
    diag: DiagnosticsConfig = field(default_factory=DiagnosticsConfig)  # per-diagnostic settings
    cost: CostConfig = field(default_factory=CostConfig)  # per-question inference overhead rows


@dataclass
class PathsConfig:
    cache_dir: str = "~/.cache/unlearn_bench"
    results_dir: str = "results"


@dataclass
class RunConfig:
    method: Any = MISSING
    model: ModelConfig = MISSING
    bench: Any = MISSING
    seed: int = 0
    eval: EvalConfig = field(default_factory=EvalConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    force: bool = False       # redo a run whose results already exist for the same config
    cpu: bool = False         # force CPU even where CUDA is available
    # on CPU, fine-tune the retain model in a second process while the target trains (pipeline/side_process.py)
    parallel_finetune: bool = True


def method_schema(name: str, cls: type) -> type:
    """MethodConfig + the method's own dataclass fields, with its intent as the default."""
    hints = typing.get_type_hints(cls)
    extra = [(f.name, hints[f.name], field(default_factory=f.default_factory) if f.default_factory is not dataclasses.MISSING else field(default=f.default))
             for f in dataclasses.fields(cls)]
    schema = dataclasses.make_dataclass(f"{cls.__name__}Config", extra, bases=(MethodConfig,))
    schema.__dataclass_fields__["name"].default = name
    schema.__dataclass_fields__["intent"].default = cls.intent
    return dataclasses.dataclass(schema)


def register_configs() -> None:
    cs = ConfigStore.instance()
    cs.store(name="run_schema", node=RunConfig)
    cs.store(group="schema/model", name="model", node=ModelConfig)
    for name, cls in method_classes().items():
        cs.store(group="schema/method", name=name, node=method_schema(name, cls))
    for name in BENCHMARKS:
        cs.store(group="schema/bench", name=name, node=bench_config_class(name))
