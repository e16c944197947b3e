"""`run(cfg)`: fine-tune target -> fine-tune retain reference -> unlearn -> evaluate -> write results.

Fine-tuned models and their evaluations are cached by the hash of the config that determines them, so a
sweep over methods trains the target and retain models once.
"""
from __future__ import annotations

import copy
import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from unlearn_bench.benchmarks.base import SELF_REFERENCE, EvalOutput, GeneratesForgetCorpus
from unlearn_bench.benchmarks.open_unlearning import read_retain_agg
from unlearn_bench.benchmarks.registry import build_benchmark
from unlearn_bench.data.collate import PromptFormat
from unlearn_bench.diagnostics.stage import check_settings, prescore_references, run_diagnostics
from unlearn_bench.evaluation import cost
from unlearn_bench.methods.registry import method_class
from unlearn_bench.models import loading
from unlearn_bench.pipeline import side_process, stages, validation
from unlearn_bench.pipeline.controls import attacks_run, build_controls
from unlearn_bench.pipeline.context import (Context, cached_eval, evaluate_model, finetuned_model, generated_alternates,
                                            generated_forget_corpus, model_identity)
from unlearn_bench.pipeline.health import collapse_reason
from unlearn_bench.pipeline.poison import screened_request
from unlearn_bench.runtime.device import SingleProcess, make_accelerator, on_main, seed_everything, whole_model
from unlearn_bench.runtime.logs import quiet_noise, stage
from unlearn_bench.store import provenance, run_keys
from unlearn_bench.store.cache import clean_stale_temps
from unlearn_bench.store.fingerprints import data_fingerprint
from unlearn_bench.store.results import MetricRow
from unlearn_bench.store.run_output import RunRecord, existing_run, write_run
from unlearn_bench.training import recipes
from unlearn_bench.training.loop import TrainResult

log = logging.getLogger(__name__)

BASELINES = {"finetuned": "baseline", "retain": "baseline"}


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
        validation.check_unlearned_path(cfg, method)
        if getattr(method, "evaluates_as_is", False) and not cfg.model.unlearned_path:
            cfg = as_is_config(cfg)
        check_settings(cfg.eval, accelerator.device.type == "cuda")
        bench = build_benchmark(cfg.bench)
        data = bench.data()
        stages.check_data(data)
        if not cfg.model.unlearned_path:  # a given checkpoint trains nothing: the method only labels its rows
            validation.check_method_fits(method, cfg.method.name, data)
        validation.check_train_window(data, cfg.model.max_length)
        validation.check_bench_inputs(bench, cfg.eval.utility)
    fmt = PromptFormat(cfg.model.prompt_format, cfg.model.system_prompt, cfg.model.date_string)
    ctx = Context(cfg, bench, data, fmt, accelerator, fingerprint["digest"])

    tokenizer = loading.base_tokenizer(cfg.model, data.tokenizer_corpus)
    validation.check_prompt_format(fmt, tokenizer, cfg.model)
    # on CPU, the retain model (and control:exact) trains in a second process, ended with this block
    with side_process.retain_alongside(ctx, tokenizer) as side:
        target_dir = finetuned_model(ctx, "target", data.target_train, tokenizer)
        if isinstance(bench, GeneratesForgetCorpus) and (generation := bench.generation_key()) is not None:
            ctx.data = bench.with_generated_forget(data, generated_forget_corpus(ctx, target_dir, generation))
            stages.check_data(ctx.data)
        trains = not cfg.model.unlearned_path and not getattr(method, "evaluates_as_is", False)
        screen_rows = []
        if trains:  # a poisoned request is screened (and with bench.poison.screen, filtered) before unlearning
            ctx.data, screen_rows = screened_request(ctx, target_dir)
        if method.alternate == "generated" and not cfg.model.unlearned_path:  # a given checkpoint trains nothing
            ctx.data = dataclasses.replace(ctx.data, generated_alternates=generated_alternates(ctx, target_dir, method))
        side.retain_ready()  # control:exact may still train there, beside what follows (side_process)
        retain_dir = finetuned_model(ctx, "retain", data.retain_train, tokenizer)
        retain_eval = cached_eval(ctx, "retain", retain_dir, SELF_REFERENCE)
        if target_dir == retain_dir:  # a pretrained model used as is is its own retain reference (RWKU, WMDP)
            target_eval = retain_eval
        else:
            target_eval = cached_eval(ctx, "target", target_dir, retain_eval.reference_data, reference_model=retain_dir)

        if getattr(method, "evaluates_as_is", False) and not cfg.model.unlearned_path:  # method=none: the target itself
            record = RunRecord(status="ok", run_id=run_id, config_hash=run_id, seconds=round(time.time() - start, 1),
                               **run_identity(cfg, fingerprint))
            # Without model.retain_path there is no retain model: its evaluation is the model's own, whose rows
            # carry the method's name only (the reference is the model itself or bench.retain_logs_path).
            baselines = {"retain": retain_eval} if retain_dir != target_dir else {}
            rows = metric_rows(cfg, run_id, baselines, target_eval, "ok")
            on_main(ctx.accelerator, lambda: write_run(run_dir, cfg, record, rows, target_eval, [],
                                                       provenance.collect(started, ctx.accelerator, fingerprint)))
            return record
        tokenizer = loading.load_tokenizer(target_dir, cfg.model)
        seed_everything(cfg.seed)
        unlearn_start = time.time()
        if cfg.model.unlearned_path:  # a given unlearned checkpoint: nothing to train, the target's tokenizer scores it
            log.info("unlearned model: %s (model.unlearned_path)", cfg.model.unlearned_path)
            model = loading.load_saved(cfg.model.unlearned_path, cfg.model)
            validation.check_same_vocabulary(model, tokenizer, cfg.model.unlearned_path)
            result = TrainResult("ok", 0)
        else:
            model = loading.load_saved(target_dir, cfg.model)
            with stage(f"unlearn:{cfg.method.name}"):
                result = recipes.unlearn(model, tokenizer, method, cfg.method, ctx.data, ctx.fmt, cfg.model.max_length,
                                        cfg.seed, ctx.accelerator, lora_cfg=cfg.model.lora)
        unlearn_time = time.time() - unlearn_start
        record = RunRecord(status=result.status, run_id=run_id, config_hash=run_id, error=result.message or None,
                           **run_identity(cfg, fingerprint))
        model = whole_model(ctx.accelerator, model)  # gathered if the engine shards it
        wrapper = recipes.inference_wrapper(method, model, tokenizer) if result.status == "ok" else None

        def evaluate_and_write() -> None:  # on the main process; the others wait (device.on_main)
            if result.status == "ok" and (reason := collapse_reason(model, tokenizer, ctx.fmt, cfg.model.max_length,
                                                                    ctx.data.retain or ctx.data.forget)):
                log.warning("unlearned model is unusable: %s; recording the run as diverged", reason)
                record.status, record.error = "diverged", reason
            unlearned_eval = None
            if record.status == "ok":
                with stage("evaluate:unlearned"):
                    unlearned_eval = evaluate_model(ctx, model, tokenizer, retain_eval.reference_data, wrapper)
                unlearned_eval.metrics += (stages.question_metrics(method, ctx.bench)
                                           + cost.unlearn_rows(unlearn_time, result.steps))
                unlearned_eval.metrics += screen_rows
                unlearned_eval.metrics += cost.cost_metrics(model, tokenizer, ctx.fmt, cfg.model.max_length,
                                                            cfg.eval.batch_size, wrapper, ctx.data, cfg.eval.cost,
                                                            cfg.bench.get("max_new_tokens", 32))
            diag_rows = []
            if unlearned_eval is not None and cfg.eval.diagnostics:
                diag_start = time.time()
                diag_ctx = dataclasses.replace(ctx, accelerator=SingleProcess(ctx.accelerator))
                evals = {"unlearned": unlearned_eval, "finetuned": target_eval, "retain": retain_eval}
                dirs = {"finetuned": target_dir, "retain": retain_dir}
                keys = {"finetuned": model_identity(ctx, "target", target_dir),
                        "retain": model_identity(ctx, "retain", retain_dir)}

                def exact_ready() -> None:  # the references' attacks first, while control:exact may train beside
                    prescore_references(diag_ctx, tokenizer, evals, dirs, keys)
                    side.finish()

                with stage("controls"):  # trained and evaluated once per configuration, then read from cache
                    controls = (build_controls(diag_ctx, tokenizer, target_dir, retain_dir, retain_eval, exact_ready)
                                if attacks_run(ctx) else [])
                with stage("diagnose"):
                    diag_rows = run_diagnostics(diag_ctx, model, tokenizer, run_id, lambda: build_method(cfg.method),
                                                evals, dirs, wrapper, keys, controls)
                unlearned_eval.metrics.append(cost.diagnose_seconds(time.time() - diag_start))
            rows = metric_rows(cfg, run_id, {"finetuned": target_eval, "retain": retain_eval}, unlearned_eval,
                               record.status)
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
    logs = cfg.bench.get("retain_logs_path")  # TOFU: an open-unlearning retain log is the reference instead
    if not cfg.model.retain_path and not logs:
        log.warning("method=none without model.retain_path: the model is its own reference, so forget quality "
                    "and PrivLeak compare it with itself")
    elif not cfg.model.retain_path and read_retain_agg(logs, "mia_min_k") is None:
        log.warning("method=none without model.retain_path: forget quality compares with bench.retain_logs_path, "
                    "which has no mia_min_k, so PrivLeak compares the model with itself")
    cfg = copy.deepcopy(cfg)
    cfg.model.finetune.epochs, cfg.model.finetune.max_steps = 0, 0
    return cfg


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

