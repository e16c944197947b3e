"""Checks that run before any training, so a run fails in seconds rather than after hours of fine-tuning.

- names that become path components of the results folder (bench, model, method) are single, plain names;
- the results and cache folders are writable;
- every config field is one its typed schema declares (Hydra lets `+model.nlayers=2` add a field to a
  structured config, which would then be recorded and silently ignored);
- the method fits the benchmark (refusal / perturbed alternate answers) and every file the stages read parses.
"""
from __future__ import annotations

import dataclasses
import os
import tempfile
import typing
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from unlearn_bench.benchmarks.base import BenchData

# The config fields whose values name folders under paths.results_dir.
PATH_COMPONENT_FIELDS = ("bench.name", "model.name", "method.name")


class ConfigError(ValueError):
    """A config that cannot run; the message names the field and what is allowed."""


def check_path_component(value: Any, field: str) -> str:
    """`value` as a single folder name: no separator, not '.', '..' or empty, not absolute."""
    name = str(value)
    if not name or name in (".", "..") or "/" in name or "\\" in name or os.path.isabs(name) or "\0" in name:
        raise ConfigError(f"{field}={name!r} becomes a folder name of the results: use a plain name "
                          "(no '/', '\\', '..' or absolute path), e.g. the model's short name")
    return name


def check_path_components(cfg: DictConfig) -> None:
    for field in PATH_COMPONENT_FIELDS:
        group, key = field.split(".")
        check_path_component(cfg[group][key], field)


def check_writable(directory: str | Path, field: str) -> Path:
    """`directory` (created if missing) accepts a new file; a ConfigError naming the field otherwise."""
    path = Path(directory).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-check-"):
            pass
    except OSError as e:
        raise ConfigError(f"{field}={directory}: folder is not writable ({e.strerror or e}); "
                          "nothing was trained, fix the folder or point the field elsewhere") from e
    return path


def _dataclass_fields(schema: type) -> dict[str, Any]:
    hints = typing.get_type_hints(schema)
    return {f.name: hints.get(f.name) for f in dataclasses.fields(schema)}


def unknown_fields(node: DictConfig, schema: type, prefix: str) -> list[str]:
    """Dotted names of the keys of `node` (recursively) that the dataclass `schema` does not declare."""
    declared = _dataclass_fields(schema)
    found = []
    for key in node.keys():
        if key not in declared:
            found.append(f"{prefix}{key}: valid fields of {prefix.rstrip('.') or 'the config'}: {', '.join(sorted(declared))}")
            continue
        kind = declared[key]
        value = node._get_node(key)
        if dataclasses.is_dataclass(kind) and isinstance(value, DictConfig):
            found += unknown_fields(value, kind, f"{prefix}{key}.")
    return found


# Bounds that a field's type cannot express: numpy's RNG (seed_everything) takes seeds in [0, 2**32).
SEED_RANGE = (0, 2**32)


def check_fields(cfg: DictConfig) -> None:
    """Every field of the run config is declared by its group's schema (a ConfigError lists the valid ones), and
    the seed is within SEED_RANGE."""
    if not SEED_RANGE[0] <= cfg.seed < SEED_RANGE[1]:
        raise ConfigError(f"seed={cfg.seed}: must be an integer with 0 <= seed < 2**32 (numpy's seed range)")
    from unlearn_bench.benchmarks.registry import bench_config_class
    from unlearn_bench.config import RunConfig, method_schema
    from unlearn_bench.methods.registry import method_class

    groups = {"method": method_schema(cfg.method.name, method_class(cfg.method.name)),
              "bench": bench_config_class(cfg.bench.name)}
    problems = unknown_fields(cfg, RunConfig, "")
    for group, schema in groups.items():
        problems += unknown_fields(cfg[group], schema, f"{group}.")
    if problems:
        raise ConfigError("unknown config field(s) (a typo, or a `+field` the schema does not have):\n  "
                          + "\n  ".join(problems))
    if cfg.method.max_steps < 0:  # experiment=strong's mark, cleared by a method's strong setting
        raise ConfigError(f"method.max_steps={cfg.method.max_steps}: method '{cfg.method.name}' has no "
                          f"conf/method_experiment/{cfg.method.name}_strong.yaml for experiment=strong; find one with "
                          "`python -m unlearn_bench.report.strong` (its --apply writes the file)")


def _group_schemas(group: str, choice: str) -> type | None:
    from unlearn_bench.benchmarks.registry import BENCHMARKS, bench_config_class
    from unlearn_bench.config import EvalConfig, ModelConfig, PathsConfig, method_schema
    from unlearn_bench.methods.registry import method_class, method_classes

    if group == "method":
        return method_schema(choice, method_class(choice)) if choice in method_classes() else None
    if group == "bench":
        return bench_config_class(choice) if choice in BENCHMARKS else None
    return {"model": ModelConfig, "eval": EvalConfig, "paths": PathsConfig}.get(group)


def override_field_errors(args: list[str], defaults: dict[str, str]) -> list[str]:
    """Messages for command-line overrides (`model.nlayers=2`, `+method.betta=1`) naming fields that the chosen
    group's schema lacks, each listing the valid fields. Hydra rejects the plain form without that list and
    accepts the `+` form; this check runs before either. `defaults` maps group -> default choice."""
    overrides = [a for a in args if "=" in a and not a.startswith("-")]
    choices = {g: [c] for g, c in defaults.items()}
    for arg in overrides:
        key, _, value = arg.lstrip("+~").partition("=")
        if key in choices:
            choices[key] = value.split(",")
    errors = []
    for arg in overrides:
        key = arg.lstrip("+~").partition("=")[0]
        group, _, path = key.partition(".")
        if not path:
            continue
        for choice in choices.get(group, [""]):
            schema = _group_schemas(group, choice)
            for i, part in enumerate(path.split(".")):
                if schema is None or not dataclasses.is_dataclass(schema):
                    break
                declared = _dataclass_fields(schema)
                if part not in declared:
                    where = ".".join([group, *path.split(".")[:i]]) + (f" ({choice})" if choice else "")
                    errors.append(f"{arg}: {where} has no field '{part}'; valid fields: {', '.join(sorted(declared))}")
                    break
                schema = declared[part]
    return sorted(set(errors))


def check_method_fits(method: Any, name: str, data: BenchData) -> None:
    """The method's alternate answers (refusals, perturbed answers) exist in this benchmark's data, or, for answers
    the target model generates, the forget records have questions to answer; a method that needs retain data has it."""
    from unlearn_bench.training.recipes import method_alternates

    if getattr(method, "needs_retain", False) and not data.retain:
        raise ValueError(f"method '{name}' needs retain data, which this benchmark run has none of "
                         "(RWKU: set bench.retain_corpus)")
    if method.alternate != "generated":
        method_alternates(method, name, data)
        return
    raw = sum(qa.question is None for qa in data.forget)
    if raw:
        raise ValueError(f"method '{name}' trains on alternate answers the target model writes to each forget question, "
                         f"but {raw} of the {len(data.forget)} forget records are raw text without a question "
                         "(MUSE's and WMDP's corpora, RWKU's passages): use a QA benchmark (fictitious, tofu)")


def check_prompt_format(fmt: Any, tokenizer: Any, model_cfg: Any) -> None:
    """The model's prompt format renders with this tokenizer: a known format, and for `chat` a chat template that
    accepts the configured turns (Gemma's rejects a system turn), checked before any training rather than at the
    first evaluation prompt."""
    from jinja2 import TemplateError

    from unlearn_bench.data.collate import TEMPLATES

    where = f"model={model_cfg.name} (model.path={model_cfg.path})"
    if fmt.name != "chat":
        if fmt.name not in TEMPLATES:
            raise ValueError(f"{where}: model.prompt_format='{fmt.name}' is not one of chat, {', '.join(TEMPLATES)}")
        return
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(f"{where}: model.prompt_format=chat, but its tokenizer has no chat template (a base model?): "
                         f"use one of {', '.join(TEMPLATES)}, or a tokenizer that has one (model.tokenizer_path)")
    try:
        fmt.prompt("question", tokenizer)
        fmt.turn_end(tokenizer)
    except TemplateError as err:  # a template's raise_exception(...) too
        raise ValueError(f"{where}: its chat template fails on a question with model.system_prompt="
                         f"{fmt.system_prompt!r}: {err}") from err


def check_unlearned_path(cfg: DictConfig, method: Any) -> None:
    """`model.unlearned_path` is a folder of weights, diagnosed in place of the method's output: the method only
    labels the rows (its intent), so an inference-time method, whose output is a wrapper, cannot be one."""
    from unlearn_bench.methods.base import is_inference_time

    path = cfg.model.unlearned_path
    if not path:
        return
    if not Path(path).expanduser().is_dir():
        raise ConfigError(f"model.unlearned_path={path}: not a folder (a save_pretrained checkpoint)")
    if is_inference_time(method):
        raise ConfigError(f"model.unlearned_path is a checkpoint's weights, but method={cfg.method.name} is an "
                          "inference-time method (its output is a wrapper, not weights): use method=none or the "
                          "fine-tuning method that made the checkpoint")


def check_same_vocabulary(model: Any, tokenizer: Any, path: str) -> None:
    """A given unlearned checkpoint is scored with the target's tokenizer: their vocabularies must agree."""
    rows = model.get_input_embeddings().weight.shape[0]
    if rows < len(tokenizer):
        raise ConfigError(f"model.unlearned_path={path}: {rows} embedding rows for the target's tokenizer of "
                          f"{len(tokenizer)} tokens: it is not an unlearned copy of this target")


def check_train_window(data: BenchData, max_length: int) -> None:
    """Token windows are batched as cut (`collate.token_windows`): they must fit the model's context."""
    if data.train_window is not None and data.train_window > max_length:
        raise ValueError(f"training windows of {data.train_window} tokens (bench.chunk_tokens) exceed "
                         f"model.max_length={max_length}: lower bench.chunk_tokens")


def check_bench_inputs(bench: Any, utility: Any) -> None:
    """Files read only at evaluation, read now: the benchmark's (adapters that read local evaluation files
    implement `check_inputs`) and `eval.utility`'s offline lm-eval records (`utility.data_dir`)."""
    check = getattr(bench, "check_inputs", None)
    if check is not None:
        check()
    if utility.tasks and utility.data_dir:
        from unlearn_bench.benchmarks.wmdp.data import check_offline_tasks

        check_offline_tasks(list(utility.tasks), Path(utility.data_dir).expanduser())
