"""The recipes that drive the one training loop (`training.loop`): fine-tuning a model on answer tokens, and
unlearning with a method (or fitting an inference-time method and the wrapper it deploys behind). The pipeline
(`pipeline.runner`), the ULD method and the relearning/soft-prompt/sequential diagnostics call them."""
from __future__ import annotations

import copy
from dataclasses import fields
from typing import Any, Callable, Iterable

import torch
from accelerate import Accelerator
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from unlearn_bench.benchmarks.base import BenchData
from unlearn_bench.data.batching import finetune_epochs, unlearn_epochs
from unlearn_bench.data.collate import PromptFormat, training_examples
from unlearn_bench.data.records import QA
from unlearn_bench.evaluation.wrapper import InferenceWrapper
from unlearn_bench.methods.base import LossOutput, batch_nll, is_inference_time
from unlearn_bench.models import lora
from unlearn_bench.runtime.device import prepare_frozen
from unlearn_bench.training.loop import TrainResult, train
from unlearn_bench.training.settings import OptimFields, OptimSettings


def optim_settings(cfg: Any) -> OptimSettings:
    """The optimisation fields of any config that extends OptimFields (a dataclass or a DictConfig)."""
    return OptimSettings(**{f.name: getattr(cfg, f.name) for f in fields(OptimFields)})


def n_batches(n: int, batch_size: int) -> int:
    return max(1, -(-n // batch_size))


def finetune(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, examples: list[QA], fmt: PromptFormat,
             cfg: Any, max_length: int, seed: int, accelerator: Accelerator, desc: str, lora_cfg: Any = None,
             parameters: Iterable[torch.nn.Parameter] | None = None, window: int | None = None,
             on_step: Callable[[int, torch.nn.Module], None] | None = None) -> TrainResult:
    """Causal-LM fine-tuning on answer tokens (the target on everything, the retain model without the forget set);
    with `lora_cfg.r > 0` through LoRA adapters, merged into `model` afterwards; `parameters`: the ones trained
    without LoRA (default: all); `window`: raw texts trained on as token windows (`BenchData.train_window`);
    `on_step`: `training.loop.train`'s per-step hook."""
    settings = optim_settings(cfg)
    examples = training_examples(examples, tokenizer, window)
    trained = lora.wrap(model, lora_cfg) if lora.enabled(lora_cfg) else model
    result = train(
        trained,
        lambda m, b: LossOutput(batch_nll(m, b.forget)),
        finetune_epochs(examples, tokenizer, fmt, max_length, settings.batch_size, seed,
                        group_by_length=getattr(cfg, "group_by_length", False)),
        n_batches(len(examples), settings.batch_size),
        settings,
        accelerator,
        parameters=parameters,
        on_step=on_step,
        desc=desc,
    )
    if trained is not model:
        lora.merge(trained)
    return result


def method_alternates(method: Any, name: str, data: BenchData) -> list[list[str]] | None:
    """The other answers per forget item that `method.alternate` asks for; a ValueError if the data lacks them."""
    if method.alternate == "refusal":
        if not (refusals := data.refusal_answers()):
            raise ValueError(f"method '{name}' needs refusal answers, which this benchmark lacks "
                             "(TOFU: idontknow.jsonl in bench.data_dir)")
        return [refusals] * len(data.forget)
    if method.alternate == "perturbed":
        if len(data.forget_perturbed) != len(data.forget):
            raise ValueError(f"method '{name}' needs perturbed (wrong) answers for every forget item, which this "
                             f"benchmark lacks ({len(data.forget_perturbed)} of {len(data.forget)})")
        return data.forget_perturbed
    if method.alternate == "generated":
        if len(data.generated_alternates) != len(data.forget):
            raise ValueError(f"method '{name}' needs the alternate answers the target model writes for every forget item "
                             f"(context.generated_alternates), {len(data.generated_alternates)} of {len(data.forget)} here")
        return data.generated_alternates
    return None


def unlearn_sets(data: BenchData, tokenizer: PreTrainedTokenizerBase) -> tuple[list[Any], list[Any]]:
    """The forget and retain sets as unlearning batches them: records, or token windows (`data.train_window`)."""
    window = data.train_window
    return training_examples(data.forget, tokenizer, window), training_examples(data.retain, tokenizer, window)


def unlearn(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, method: Any, method_cfg: Any, data: BenchData,
            fmt: PromptFormat, max_length: int, seed: int, accelerator: Accelerator, lora_cfg: Any = None) -> TrainResult:
    """Run `method` on the forget/retain sets; the frozen reference is built only if the method asks. With
    `lora_cfg.r > 0` adapters train (those of the modules a `trainable_parameters` hook names) and are merged into
    `model` before `finalize`; the hooks see the plain model. An inference-time method is fitted instead (its
    index, context pool or assistant): zero steps on `model`."""
    settings = optim_settings(method_cfg)
    model.to(accelerator.device)
    if is_inference_time(method):
        method.fit(model, tokenizer, data, fmt=fmt, max_length=max_length, seed=seed, accelerator=accelerator,
                   settings=settings)
        return TrainResult("ok", 0)
    reference = None
    if method.needs_reference:
        reference = prepare_frozen(accelerator, copy.deepcopy(model))
    alternates = method_alternates(method, method_cfg.name, data)
    if hasattr(method, "setup"):
        method.setup(model, reference)
    parameters = list(method.trainable_parameters(model)) if hasattr(method, "trainable_parameters") else None
    trained = model
    if lora.enabled(lora_cfg):
        trained = lora.wrap(model, lora_cfg)
        parameters = lora.adapter_parameters(trained, parameters) if parameters is not None else None
    backward = getattr(method, "backward", None)
    forget, retain = unlearn_sets(data, tokenizer)
    result = train(
        trained,
        lambda m, b: method.loss(m, b, reference),
        unlearn_epochs(forget, retain, tokenizer, fmt, max_length, settings.batch_size, seed, alternates=alternates),
        n_batches(len(forget), settings.batch_size),
        settings,
        accelerator,
        parameters=parameters,
        backward=(lambda m, b: backward(m, b, reference)) if backward else None,
        desc=f"unlearn:{method_cfg.name}",
    )
    if trained is not model:
        lora.merge(trained)
    if result.status == "ok" and hasattr(method, "finalize"):
        method.finalize(accelerator.unwrap_model(model), reference)
    return result


def inference_wrapper(method: Any, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> InferenceWrapper | None:
    """The wrapper every evaluation of an inference-time method goes through; None for fine-tuning methods."""
    return method.wrapper(model, tokenizer) if is_inference_time(method) else None
