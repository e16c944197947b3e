"""Multiple-choice utility (MMLU) and hazard (WMDP) scores through lm-evaluation-harness, in process.

`evaluate_tasks` wraps the model object already in memory in lm-eval's `HFLM` (no save and reload) and runs
`lm_eval.simple_evaluate`, so prompts, choices and scoring (`acc`: argmax over the summed log-likelihood of
each answer letter) are lm-eval's own. Callers always use lm-eval's task names:

- `data_dir=None`: names go to lm-eval unchanged (`wmdp`, `wmdp_bio`, `mmlu`, `mmlu_college_biology`, ...),
  and lm-eval fetches the data from the hub.
- `data_dir` given: each name maps to the offline task shipped in `unlearn_bench/benchmarks/wmdp/tasks`, which
  reads the same records from local files (layouts in `unlearn_bench.benchmarks.wmdp.data`):
  `wmdp` -> group `offline_wmdp`, `wmdp_<domain>` -> `offline_wmdp_<domain>`,
  `mmlu_<subject>` -> `offline_mmlu_<subject>`, and `mmlu` -> a group of every subject with a test CSV under
  `<data_dir>/mmlu/test`, weighted by size as lm-eval's `mmlu` group is. Other names raise `ValueError`.
  The directory reaches the tasks' `custom_dataset` loader through lm-eval's task metadata (`data_dir`).

An inference-time method's `wrapper` reaches lm-eval through `WrappedHFLM`: every request's context is
rewritten before lm-eval tokenizes it and every logits tensor goes through the wrapper's hook.

Rows name tasks as lm-eval does, without the `offline_` prefix, so online and offline results line up.

The offline configs copy lm-eval's `lm_eval/tasks/wmdp/_default_template_yaml` and
`lm_eval/tasks/mmlu/default/_default_template_yaml` (prompt, letter choices, integer target, `acc`, MMLU's
first-n dev few-shot; WMDP is zero-shot by config, so `num_fewshot` leaves it alone as in lm-eval);
tests/test_lm_eval.py compares them with the installed lm-eval's. Prompts longer than the model's
`max_position_embeddings` are cut from the left by lm-eval, as for any HF model.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import os
from pathlib import Path
from typing import Any, Iterator, TypedDict
from unittest import mock

import lm_eval
import lm_eval.api.task
import lm_eval.evaluator
import torch
from lm_eval.api.group import Group
from lm_eval.api.instance import Instance
from lm_eval.loggers.utils import get_commit_from_path
from lm_eval.models.huggingface import HFLM
from lm_eval.tasks import TaskManager
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from unlearn_bench.benchmarks.wmdp.data import mmlu_subjects, no_offline_task
from unlearn_bench.evaluation.lm import context_length
from unlearn_bench.evaluation.wrapper import InferenceWrapper
from unlearn_bench.benchmarks.wmdp.tasks import TASKS_DIR
from unlearn_bench.runtime.logs import bar_is_off, counted_truncations

OFFLINE_PREFIX = "offline_"


class TaskScore(TypedDict):
    task: str
    metric: str
    value: float
    stderr: float | None
    n: int


def evaluate_tasks(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    tasks: list[str],
    *,
    data_dir: str | None = None,
    batch_size: int = 8,
    limit: int | None = None,
    num_fewshot: int | None = None,
    wrapper: InferenceWrapper | None = None,
) -> list[TaskScore]:
    """One row per task (and group) and metric; `limit` caps the questions per task."""
    if not tasks:
        raise ValueError("no tasks to evaluate")
    # Task loading (offline_tasks builds the local `mmlu` group) logs noise too, so the filters cover it.
    with counted_truncations("lm-eval " + ",".join(tasks)), quiet_git_probe(), quiet_task_bars():
        if data_dir is None:
            task_manager, specs = None, list(tasks)  # simple_evaluate indexes lm-eval's own tasks
        else:
            task_manager, specs = offline_tasks(tasks, Path(data_dir))
        was_training = model.training  # HFLM switches the model to eval mode; a training loop must get it back
        try:
            # The model's context window, so lm-eval cuts longer prompts from the left instead of failing.
            settings = dict(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, max_length=context_length(model))
            lm = WrappedHFLM(wrapper, **settings) if wrapper is not None else QuietHFLM(**settings)
            out = lm_eval.simple_evaluate(
                model=lm,
                tasks=specs,
                task_manager=task_manager,
                limit=limit,
                num_fewshot=num_fewshot,
                log_samples=False,
                # lm-eval reseeds the global python/numpy/torch RNGs by default; a training loop calling us must keep
                # its own streams. Few-shot sampling has its own seed (fewshot_random_seed) and stays reproducible.
                random_seed=None,
                numpy_random_seed=None,
                torch_random_seed=None,
            )
        finally:
            model.train(was_training)
    return tidy_results(out)


@contextlib.contextmanager
def quiet_git_probe() -> Iterator[None]:
    """lm-eval's `simple_evaluate` records the git commit of the working directory by running `git describe`
    with stderr inherited (lm_eval/loggers/utils.py `get_git_commit_hash`), so every evaluation outside a git
    checkout prints `fatal: not a git repository`. Inside this block it uses lm-eval's own fallback instead,
    which reads `.git` without running git; the hash lands in lm-eval's results dict, which we do not keep
    (provenance.json records the harness's commit)."""
    with mock.patch.object(lm_eval.evaluator, "get_git_commit_hash", lambda: get_commit_from_path(os.getcwd())):
        yield


@contextlib.contextmanager
def quiet_task_bars() -> Iterator[None]:
    """lm-eval's bar over each task's documents (lm_eval/api/task.py `build_all_requests`) takes tqdm's defaults as
    they were when tqdm was imported; inside this block it is off whenever ours is (output not a terminal)."""
    bar = getattr(lm_eval.api.task, "tqdm", None)
    if bar is None or not bar_is_off():
        yield
        return
    with mock.patch.object(lm_eval.api.task, "tqdm", functools.partial(bar, disable=True)):
        yield


class QuietHFLM(HFLM):
    """lm-eval's HF model with its request bars ("Tokenizing inputs", "Running loglikelihood requests"), which it
    turns on explicitly, off whenever ours is (output not a terminal): a log file would get a line per redraw."""

    def loglikelihood(self, requests: list[Instance], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        return super().loglikelihood(requests, disable_tqdm or bar_is_off())

    def loglikelihood_rolling(self, requests: list[Instance], disable_tqdm: bool = False) -> list[float]:
        return super().loglikelihood_rolling(requests, disable_tqdm or bar_is_off())

    def generate_until(self, requests: list[Instance], disable_tqdm: bool = False) -> list[str]:
        return super().generate_until(requests, disable_tqdm or bar_is_off())


class WrappedHFLM(QuietHFLM):
    """lm-eval's HF model behind an inference-time method's wrapper: request contexts rewritten (input space),
    logits of every forward pass and generation step passed through the hook (output space)."""

    def __init__(self, wrapper: InferenceWrapper, **kwargs: Any):
        super().__init__(**kwargs)
        self.wrapper = wrapper

    def _rewritten(self, requests: list[Instance]) -> list[Instance]:
        return [dataclasses.replace(r, arguments=(self.wrapper.rewrite(r.arguments[0]), *r.arguments[1:])) for r in requests]

    def loglikelihood(self, requests: list[Instance], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        return super().loglikelihood(self._rewritten(requests), disable_tqdm)

    def generate_until(self, requests: list[Instance], disable_tqdm: bool = False) -> list[str]:
        return super().generate_until(self._rewritten(requests), disable_tqdm)

    def _model_call(self, inps: torch.Tensor, attn_mask: torch.Tensor | None = None,
                    labels: torch.Tensor | None = None) -> torch.Tensor:
        logits = super()._model_call(inps, attn_mask, labels)
        if self.wrapper.logits is None:
            return logits
        with torch.no_grad():  # causal HFLM calls the model on right-padded ids without a mask
            return self.wrapper.logits({"input_ids": inps}, logits)

    def _model_generate(self, context: torch.Tensor, max_length: int, stop: list[str], **generation_kwargs: Any) -> torch.Tensor:
        processors = self.wrapper.processors(generation_kwargs.get("attention_mask"))
        return super()._model_generate(context, max_length, stop, logits_processor=processors, **generation_kwargs)


def offline_tasks(tasks: list[str], data_dir: Path) -> tuple[TaskManager, list[str | Group]]:
    """A TaskManager over the shipped offline tasks, with `data_dir` in their metadata, and the specs to load."""
    task_manager = TaskManager(
        include_path=str(TASKS_DIR),
        include_defaults=False,  # indexing lm-eval's ~15k built-in configs takes seconds and none are needed
        metadata={"data_dir": str(data_dir.resolve())},
    )
    specs: list[str | Group] = []
    for name in tasks:
        if name == "mmlu":
            specs.append(local_mmlu_group(task_manager, data_dir))
        elif OFFLINE_PREFIX + name in task_manager.all_tasks:
            specs.append(OFFLINE_PREFIX + name)
        else:
            raise no_offline_task(name)
    return task_manager, specs


def local_mmlu_group(task_manager: TaskManager, data_dir: Path) -> Group:
    """`mmlu` over the subjects present locally, aggregated as lm-eval's `mmlu` group (lm_eval/tasks/mmlu/default/
    _mmlu.yaml: acc weighted by size, over category groups also weighted by size, i.e. the mean over questions).

    Built as an object because a static group YAML would list all 57 subjects, and lm-eval 0.4.13 passes an
    inline group dict's own keys down to its children as task overrides."""
    subjects = mmlu_subjects(data_dir)
    group = Group.from_config(
        {"group": OFFLINE_PREFIX + "mmlu", "aggregate_metric_list": [{"metric": "acc", "weight_by_size": True}]}
    )
    for task in task_manager.load([f"{OFFLINE_PREFIX}mmlu_{s}" for s in subjects])["tasks"].values():
        group.add(task)
    return group


def tidy_results(out: dict[str, Any]) -> list[TaskScore]:
    """lm-eval's `results` ({task: {"acc,none": v, "acc_stderr,none": s, "sample_len": n}}) as one row per task
    (or group) and metric; the filter suffix is dropped when it is lm-eval's default, `none`."""
    rows: list[TaskScore] = []
    for name, metrics in out["results"].items():
        for key, value in metrics.items():
            # metric keys are "<metric>,<filter>"; others ("alias", "sample_len", ...) describe the task
            if "," not in key or "_stderr," in key:
                continue
            metric, _, filter_name = key.partition(",")
            stderr = metrics.get(f"{metric}_stderr,{filter_name}")
            rows.append(
                TaskScore(
                    task=name.removeprefix(OFFLINE_PREFIX),
                    metric=metric if filter_name == "none" else key,
                    value=float(value),
                    # lm-eval writes "N/A" where it cannot compute one (e.g. a single question)
                    stderr=float(stderr) if isinstance(stderr, (int, float)) and math.isfinite(stderr) else None,
                    n=int(metrics["sample_len"]),
                )
            )
    return rows

