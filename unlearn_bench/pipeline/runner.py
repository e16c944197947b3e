"""`run(cfg)`: fine-tune target -> fine-tune retain reference -> unlearn -> evaluate -> write results.

Fine-tuned models and their evaluations are cached by the hash of the config that determines them, so a
sweep over methods trains the target and retain models once.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from unlearn_bench.pipeline import side_process, stages, validation
from unlearn_bench.store import provenance, run_keys
from unlearn_bench.benchmarks.base import SELF_REFERENCE, BenchData, Benchmark, EvalOutput, GeneratesForgetCorpus
from unlearn_bench.benchmarks.registry import build_benchmark
from unlearn_bench.store.cache import clean_stale_temps
from unlearn_bench.data.collate import PromptFormat
from unlearn_bench.runtime.device import (SingleProcess, make_accelerator, on_main, save_pretrained, seed_everything, shared_stage,
                                  whole_model)
from unlearn_bench.diagnostics import check_settings, run_diagnostics
from unlearn_bench.evaluation import cost
from unlearn_bench.evaluation.lm import eval_lm
from unlearn_bench.store.fingerprints import data_fingerprint
from unlearn_bench.pipeline.health import collapse_reason
from unlearn_bench.runtime.logs import quiet_noise, stage
from unlearn_bench.evaluation.wrapper import InferenceWrapper
from unlearn_bench.methods.registry import method_class
from unlearn_bench.models import loading
from unlearn_bench.store.results import MetricRow
from unlearn_bench.store.run_output import RunRecord, existing_run, write_run
from unlearn_bench.pipeline.utility import utility_metrics

log = logging.getLogger(__name__)

BASELINES = {"finetuned": "baseline", "retain": "baseline"}


@dataclass
class Context:
    """What every stage of one run shares."""

    cfg: DictConfig
    bench: Benchmark
    data: BenchData
    fmt: PromptFormat
    accelerator: Any
    data_digest: str | None = None  # content hash of the local data files (store/fingerprints.py); None: hub data
    # content hashes of each role's training texts, taken from the data as first loaded (before a generated
    # forget corpus replaces the forget set), so that a model's key is the same at training and evaluation
    training_digests: dict[str, str] | None = None

    def __post_init__(self) -> None:
        if self.training_digests is None and self.data is not None:
            self.training_digests = {role: self.data.training_digest(role) for role in ("target", "retain")}

    def model_settings(self) -> dict[str, Any]:
        """The model config minus its display name (which determines nothing)."""
        m = OmegaConf.to_container(self.cfg.model, resolve=True)
        m.pop("name", None)
        return m

    def model_key(self, role: str) -> dict[str, Any]:
        key = {"model": self.model_settings(), "data": self.bench.data_key(role), "seed": self.cfg.seed, "role": role,
               "training_texts": (self.training_digests or {}).get(role)}
        if self.data_digest is not None:
            key["data_fingerprint"] = self.data_digest
        return key


def build_method(method_cfg: DictConfig) -> Any:
    cls = method_class(method_cfg.name)
    fields = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in OmegaConf.to_container(method_cfg, resolve=True).items() if k in fields})


def run_id_for(cfg: DictConfig, fingerprint: dict[str, Any] | None = None) -> str:
    """Hash of the resolved config (minus where it is written and how it is run) and of the data's contents."""
    digest = (fingerprint or data_fingerprint(cfg))["digest"]
    return run_keys.run_id(OmegaConf.to_container(cfg, resolve=True), digest)


def run_dir_for(cfg: DictConfig, fingerprint: dict[str, Any] | None = None) -> tuple[Path, str]:
    validation.check_path_components(cfg)  # model.name=../x must not escape the results folder
    run_id = run_id_for(cfg, fingerprint)
    return run_path(cfg, run_id), run_id


def run_path(cfg: DictConfig, run_id: str) -> Path:
    """<results>/<bench>/<model>/<method>/<run id>."""
    return Path(cfg.paths.results_dir) / cfg.bench.name / cfg.model.name / cfg.method.name / run_id


def run_identity(cfg: DictConfig, fingerprint: dict[str, Any]) -> dict[str, str]:
    """The ids run.json records besides the run id: the report's row key and its baselines' key."""
    resolved = OmegaConf.to_container(cfg, resolve=True)
    return {"config_id": run_keys.config_id(resolved, fingerprint["digest"]),
            "baseline_id": run_keys.baseline_id(resolved, fingerprint["digest"])}


def preflight(cfg: DictConfig, main_process: bool = True) -> dict[str, Any]:
    """Config checks that need no data (fields, names, writable folders, stale temps); the data fingerprint.
    Only the main process writes (probe files, temp cleanup, the fingerprint index)."""
    quiet_noise()
    validation.check_fields(cfg)
    validation.check_path_components(cfg)
    if main_process:
        validation.check_writable(cfg.paths.results_dir, "paths.results_dir")
        validation.check_writable(cfg.paths.cache_dir, "paths.cache_dir")
        clean_stale_temps(cfg.paths.cache_dir)
    return data_fingerprint(cfg, update_index=main_process)


def run(cfg: DictConfig) -> RunRecord:
    """One run; returns its record (status ok/diverged). Skips runs whose results already exist."""
    start, started = time.time(), provenance.now()
    accelerator = make_accelerator(cpu=cfg.cpu)
    fingerprint = preflight(cfg, accelerator.is_main_process)
    run_dir, run_id = run_dir_for(cfg, fingerprint)
    if not cfg.force and (done := existing_run(run_dir)) is not None:
        log.info("results for this config already exist in %s (status %s): skipping; force=true redoes it", run_dir, done.status)
        return done
    seed_everything(cfg.seed)
    with stage("validate"):  # everything that can fail without training fails here
        method = build_method(cfg.method)
        if getattr(method, "evaluates_as_is", False):
            cfg = as_is_config(cfg)
        check_settings(cfg.eval, accelerator.device.type == "cuda")
        bench = build_benchmark(cfg.bench)
        data = bench.data()
        stages.check_data(data)
        validation.check_method_fits(method, cfg.method.name, data)
        validation.check_train_window(data, cfg.model.max_length)
        validation.check_bench_inputs(bench, cfg.eval.utility)
    fmt = PromptFormat(cfg.model.prompt_format, cfg.model.system_prompt, cfg.model.date_string)
    ctx = Context(cfg, bench, data, fmt, accelerator, fingerprint["digest"])

    tokenizer = loading.base_tokenizer(cfg.model, data.tokenizer_corpus)
    validation.check_prompt_format(fmt, tokenizer, cfg.model)
    with side_process.retain_alongside(ctx, tokenizer):  # on CPU, the retain model trains in a second process
        target_dir = finetuned_model(ctx, "target", data.target_train, tokenizer)
        if isinstance(bench, GeneratesForgetCorpus) and (generation := bench.generation_key()) is not None:
            ctx.data = bench.with_generated_forget(data, generated_forget_corpus(ctx, target_dir, generation))
            stages.check_data(ctx.data)
        if method.alternate == "generated":
            ctx.data = dataclasses.replace(ctx.data, generated_alternates=generated_alternates(ctx, target_dir, method))
    retain_dir = finetuned_model(ctx, "retain", data.retain_train, tokenizer)
    retain_eval = cached_eval(ctx, "retain", retain_dir, SELF_REFERENCE)
    if target_dir == retain_dir:  # a pretrained model used as is is its own retain reference (RWKU, WMDP)
        target_eval = retain_eval
    else:
        target_eval = cached_eval(ctx, "target", target_dir, retain_eval.reference_data, reference_model=retain_dir)

    if getattr(method, "evaluates_as_is", False):  # method=none: the model under test is the target itself
        record = RunRecord(status="ok", run_id=run_id, config_hash=run_id, seconds=round(time.time() - start, 1),
                           **run_identity(cfg, fingerprint))
        rows = metric_rows(cfg, run_id, {"retain": retain_eval}, target_eval, "ok")
        on_main(ctx.accelerator, lambda: write_run(run_dir, cfg, record, rows, target_eval, [],
                                                   provenance.collect(started, ctx.accelerator, fingerprint)))
        return record
    model = loading.load_saved(target_dir, cfg.model)
    tokenizer = loading.load_tokenizer(target_dir, cfg.model)
    seed_everything(cfg.seed)
    unlearn_start = time.time()
    with stage(f"unlearn:{cfg.method.name}"):
        result = stages.unlearn(model, tokenizer, method, cfg.method, ctx.data, ctx.fmt, cfg.model.max_length, cfg.seed,
                                ctx.accelerator, lora_cfg=cfg.model.lora)
    unlearn_time = time.time() - unlearn_start
    record = RunRecord(status=result.status, run_id=run_id, config_hash=run_id, error=result.message or None,
                       **run_identity(cfg, fingerprint))
    model = whole_model(ctx.accelerator, model)  # gathered if the engine shards it
    wrapper = stages.inference_wrapper(method, model, tokenizer) if result.status == "ok" else None

    def evaluate_and_write() -> None:  # on the main process; the others wait (device.on_main)
        if result.status == "ok" and (reason := collapse_reason(model, tokenizer, ctx.fmt, cfg.model.max_length,
                                                                ctx.data.retain or ctx.data.forget)):
            log.warning("unlearned model is unusable: %s; recording the run as diverged", reason)
            record.status, record.error = "diverged", reason
        unlearned_eval = None
        if record.status == "ok":
            with stage("evaluate:unlearned"):
                unlearned_eval = evaluate_model(ctx, model, tokenizer, retain_eval.reference_data, wrapper)
            unlearned_eval.metrics += stages.question_metrics(method, ctx.bench) + [cost.unlearn_seconds(unlearn_time)]
            unlearned_eval.metrics += cost.cost_metrics(model, tokenizer, ctx.fmt, cfg.model.max_length,
                                                        cfg.eval.batch_size, wrapper, ctx.data, cfg.eval.cost,
                                                        cfg.bench.get("max_new_tokens", 32))
        diag_rows = []
        if unlearned_eval is not None and cfg.eval.diagnostics:
            diag_start = time.time()
            with stage("diagnose"):
                diag_rows = run_diagnostics(
                    dataclasses.replace(ctx, accelerator=SingleProcess(ctx.accelerator)), model, tokenizer, run_id,
                    lambda: build_method(cfg.method),
                    {"unlearned": unlearned_eval, "finetuned": target_eval, "retain": retain_eval},
                    {"finetuned": target_dir, "retain": retain_dir}, wrapper,
                    {"finetuned": model_identity(ctx, "target", target_dir), "retain": model_identity(ctx, "retain", retain_dir)})
            unlearned_eval.metrics.append(cost.diagnose_seconds(time.time() - diag_start))
        rows = metric_rows(cfg, run_id, {"finetuned": target_eval, "retain": retain_eval}, unlearned_eval, record.status)
        rows += diag_rows
        record.seconds = round(time.time() - start, 1)
        write_run(run_dir, cfg, record, rows, unlearned_eval, result.history,
                  provenance.collect(started, ctx.accelerator, fingerprint))

    on_main(ctx.accelerator, evaluate_and_write)
    return record


def as_is_config(cfg: DictConfig) -> DictConfig:
    """method=none: `model.path` used as is (fine-tuning off) and `model.retain_path` as the reference."""
    if cfg.model.path is None:
        raise ValueError("method=none evaluates model.path as is: set model.path to the model to evaluate")
    if not cfg.model.retain_path:
        log.warning("method=none without model.retain_path: the model is its own reference, so forget quality "
                    "and PrivLeak compare it with itself")
    cfg = copy.deepcopy(cfg)
    cfg.model.finetune.epochs, cfg.model.finetune.max_steps = 0, 0
    return cfg


def finetunes(model_cfg: DictConfig) -> bool:
    return model_cfg.finetune.epochs > 0 or model_cfg.finetune.max_steps > 0


def finetuned_model(ctx: Context, role: str, examples: list, tokenizer: Any) -> str:
    """The fine-tuned target (role 'target') or retain reference ('retain'), from cache when present. A given
    `model.retain_path` (e.g. a released retrain checkpoint) is the retain reference; a hub/local model with
    fine-tuning off is used as is (no copy), as RWKU and WMDP start from the pretrained model."""
    cfg = ctx.cfg
    if role == "retain" and cfg.model.retain_path:
        log.info("retain model: %s (model.retain_path)", cfg.model.retain_path)
        return cfg.model.retain_path
    if cfg.model.path is not None and not finetunes(cfg.model):
        log.info("%s model: %s (used as is: fine-tuning is off)", role, cfg.model.path)
        return cfg.model.path

    def build(out: Path) -> None:
        seed_everything(cfg.seed)
        model = loading.base_model(cfg.model, tokenizer, cfg.seed)
        if finetunes(cfg.model):
            with stage(f"finetune:{role}"):
                result = stages.finetune(model, tokenizer, examples, ctx.fmt, cfg.model.finetune, cfg.model.max_length,
                                         cfg.seed, ctx.accelerator, desc=f"finetune:{role}", lora_cfg=cfg.model.lora,
                                         window=ctx.data.train_window)
            if result.status != "ok":
                raise RuntimeError(f"fine-tuning the {role} model diverged: {result.message}")
        save_pretrained(ctx.accelerator, model, tokenizer, out)

    path, hit = shared_stage(ctx.accelerator, cfg.paths.cache_dir, "finetune", ctx.model_key(role), build, collective=True)
    log.info("%s model: %s (%s)", role, path, "reused from cache" if hit else "trained")
    return str(path)


def model_identity(ctx: Context, role: str, model_dir: str) -> Any:
    """What a cache key needs to name a model: its training key, or, for a model used as is, its path and the
    settings it is loaded and run with (dtype, max_length, ...)."""
    if finetunes(ctx.cfg.model) or model_dir != ctx.cfg.model.path:
        return ctx.model_key(role)
    return {"path": model_dir, "settings": ctx.model_settings()}


def generated_forget_corpus(ctx: Context, target_dir: str, generation: dict[str, Any]) -> list[dict[str, Any]]:
    """The forget corpus the target model writes (from cache when this model and `generation` made it before)."""
    cfg = ctx.cfg
    # Sampled batches depend on their composition, so the batch size is part of the key.
    key = {"model": model_identity(ctx, "target", target_dir), "generation": generation, "seed": cfg.seed,
           "batch_size": cfg.eval.batch_size, "data_fingerprint": ctx.data_digest}

    def build(out: Path) -> None:
        model = loading.load_saved(target_dir, cfg.model).to(ctx.accelerator.device)
        tok = loading.load_tokenizer(target_dir, cfg.model)
        seed_everything(cfg.seed)
        records = ctx.bench.generate_forget(eval_lm(model, tok, ctx.fmt, cfg.model.max_length, cfg.eval.batch_size))
        (out / "forget_corpus.json").write_text(json.dumps(records, indent=1))

    path, hit = shared_stage(ctx.accelerator, cfg.paths.cache_dir, "forget_corpus", key, build)
    log.info("generated forget corpus: %s (%s)", path / "forget_corpus.json", "reused from cache" if hit else "written")
    return json.loads((path / "forget_corpus.json").read_text())


def generated_alternates(ctx: Context, target_dir: str, method: Any) -> list[list[str]]:
    """The alternate answers the target model writes per forget item for a method with `alternate = "generated"`
    (`method.generate_alternates`, altpo), from cache when this model, forget set and `method.generation_key()` made
    them before, as the generated forget corpus is; `alternates.json` holds question, answer and alternates."""
    cfg = ctx.cfg
    forget = ctx.data.forget
    key = {"model": model_identity(ctx, "target", target_dir), "generation": method.generation_key(),
           "forget": [[qa.question, qa.answer] for qa in forget], "seed": cfg.seed, "batch_size": cfg.eval.batch_size,
           "data_fingerprint": ctx.data_digest}

    def build(out: Path) -> None:
        model = loading.load_saved(target_dir, cfg.model).to(ctx.accelerator.device)
        tok = loading.load_tokenizer(target_dir, cfg.model)
        seed_everything(cfg.seed)
        alternates = method.generate_alternates(eval_lm(model, tok, ctx.fmt, cfg.model.max_length, cfg.eval.batch_size), forget)
        records = [{"question": qa.question, "answer": qa.answer, "alternates": alts} for qa, alts in zip(forget, alternates)]
        (out / "alternates.json").write_text(json.dumps(records, indent=1))

    path, hit = shared_stage(ctx.accelerator, cfg.paths.cache_dir, "alternates", key, build)
    log.info("generated alternates: %s (%s)", path / "alternates.json", "reused from cache" if hit else "written")
    return [r["alternates"] for r in json.loads((path / "alternates.json").read_text())]


def evaluate_model(ctx: Context, model: Any, tokenizer: Any, reference: dict[str, Any] | None,
                   wrapper: InferenceWrapper | None = None) -> EvalOutput:
    """The benchmark's metrics plus the lm-eval utility rows of `eval.utility` (none when its task list is empty),
    both through an inference-time method's `wrapper` when there is one."""
    cfg = ctx.cfg
    out = stages.evaluate(ctx.bench, model, tokenizer, ctx.fmt, cfg.model.max_length, cfg.eval.batch_size, reference,
                          wrapper)
    out.metrics += utility_metrics(model, tokenizer, cfg.eval, wrapper)
    return out


def cached_eval(ctx: Context, role: str, model_dir: str, reference: dict[str, Any] | None,
                reference_model: str | None = None) -> EvalOutput:
    cfg = ctx.cfg
    key = {"model": model_identity(ctx, role, model_dir), "reference": reference_model,
           "bench": OmegaConf.to_container(cfg.bench, resolve=True),
           "utility": OmegaConf.to_container(cfg.eval.utility, resolve=True), "data_fingerprint": ctx.data_digest}

    def build(out: Path) -> None:
        model = loading.load_saved(model_dir, cfg.model).to(ctx.accelerator.device)
        tok = loading.load_tokenizer(model_dir, cfg.model)
        with stage(f"evaluate:{role}"):
            stages.save_eval(evaluate_model(ctx, model, tok, reference), out / "eval.json")

    path, hit = shared_stage(ctx.accelerator, cfg.paths.cache_dir, "eval", key, build)
    log.info("%s evaluation: %s", role, "reused from cache" if hit else "computed")
    return stages.load_eval(path / "eval.json")


def metric_rows(cfg: DictConfig, run_id: str, baselines: dict[str, EvalOutput], unlearned: EvalOutput | None,
                status: str) -> list[MetricRow]:
    def rows_of(method: str, intent: str, out: EvalOutput, row_status: str = "ok") -> list[MetricRow]:
        return [
            MetricRow(cfg.bench.name, cfg.model.name, method, m.split, m.metric, m.value, m.higher_is_better,
                      cfg.seed, run_id, intent, row_status)
            for m in out.metrics
        ]

    rows = [r for name, out in baselines.items() for r in rows_of(name, BASELINES[name], out)]
    if unlearned is not None:
        rows += rows_of(cfg.method.name, cfg.method.intent, unlearned)
    else:
        rows.append(MetricRow(cfg.bench.name, cfg.model.name, cfg.method.name, "run", "status", None, None,
                              cfg.seed, run_id, cfg.method.intent, status))
    return rows

