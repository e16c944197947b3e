"""The known-answer controls' models (`diagnostics.controls` says what each is and what it must get), built and
cached like the target and retain models: a cache entry keyed by what determines it, so a second method of a
sweep pays nothing for them, and each evaluated once (its `none` scores and utility are its own).

Cost on the embedded default: exact is one more retain fine-tune (1,260 steps), trained after the retain model
by the side process (`pipeline.side_process`) when that runs, and it is the next seed's retain model, so
`-m seed=0,1,2` trains one more model in all; partial is one pass of 10 copies of 10 forget authors' QA with
the retain set (3,222 QA: 101 steps); refusal trains one layer for 10 epochs over the 200 refused forget
questions and 600 retain QA (250 steps, the backward pass through one layer only); collapsed trains nothing
(rebuilt in memory, never written). Each then costs one evaluation and its attacks.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Callable, Sequence

from unlearn_bench.data.records import QA
from unlearn_bench.diagnostics import controls
from unlearn_bench.diagnostics.common import Subject
from unlearn_bench.diagnostics.controls import PREFIX, Control, Unavailable
from unlearn_bench.diagnostics.groups import disjoint_split, forget_groups
from unlearn_bench.models import loading
from unlearn_bench.pipeline.context import (Context, cached_evaluation, evaluation_key, finetuned_model, finetunes,
                                            model_identity)
from unlearn_bench.runtime.device import save_pretrained, seed_everything, shared_stage
from unlearn_bench.runtime.logs import stage
from unlearn_bench.training import recipes

log = logging.getLogger(__name__)

VERSION = 2  # part of every control's cache key: bump when a control is built differently


def exact_context(ctx: Context) -> Context:
    """The run's context at the exact control's training seed: its retain model is the control."""
    cfg = copy.deepcopy(ctx.cfg)
    cfg.seed = int(ctx.cfg.seed) + int(ctx.cfg.eval.diag.control.seed_offset)
    return dataclasses.replace(ctx, cfg=cfg)


def attacks_run(ctx: Context) -> bool:
    """Whether this run's diagnose stage attacks (and so builds controls): an attack is asked for and the bench
    has QA evaluation splits (the attacks' forget examples)."""
    return any(name != "sequential" for name in ctx.cfg.eval.diagnostics) and hasattr(ctx.bench, "eval_splits")


def wants_exact(ctx: Context) -> bool:
    """Whether this run needs control:exact, whose model the side process then trains after the retain model."""
    cfg = ctx.cfg
    return attacks_run(ctx) and "exact" in cfg.eval.diag.controls and not cfg.model.retain_path and finetunes(cfg.model)


def digest(examples: Sequence[QA]) -> str:
    return hashlib.sha256(json.dumps([[qa.question, qa.answer] for qa in examples]).encode()).hexdigest()


def trained_from(ctx: Context, name: str, start_dir: str, start_key: Any, examples: list[QA], settings: Any,
                 tokenizer: Any, parameters: Callable[[Any], list] | None = None) -> tuple[str, Any]:
    """A control fine-tuned from the model in `start_dir` on `examples` (`parameters(model)`: the ones trained;
    default all, through `model.lora` as the target's recipe), from cache when present; (its folder, its cache
    identity)."""
    cfg = ctx.cfg
    key = {"control": name, "version": VERSION, "from": start_key, "examples": digest(examples), "settings": dataclasses.asdict(settings),
           "max_length": cfg.model.max_length, "seed": cfg.seed,
           "layers": cfg.eval.diag.control.refusal_layers if name == "refusal" else None}

    def build(out: Path) -> None:
        seed_everything(cfg.seed)
        model = loading.load_saved(start_dir, cfg.model)
        with stage(f"finetune:{PREFIX}{name}"):
            result = recipes.finetune(model, tokenizer, examples, ctx.fmt, settings, cfg.model.max_length, cfg.seed,
                                     ctx.accelerator, desc=f"finetune:{PREFIX}{name}",
                                     lora_cfg=None if parameters else cfg.model.lora,
                                     parameters=parameters(model) if parameters else None)
        if result.status != "ok":
            raise Unavailable(f"its fine-tuning diverged ({result.message})")
        save_pretrained(ctx.accelerator, model, tokenizer, out)

    path, hit = shared_stage(ctx.accelerator, cfg.paths.cache_dir, "finetune", key, build)
    log.info("%s%s model: %s (%s)", PREFIX, name, path, "reused from cache" if hit else "trained")
    return str(path), key


def build_controls(ctx: Context, tokenizer: Any, target_dir: str, retain_dir: str, retain_eval: Any,
                   exact_ready: Callable[[], None] = lambda: None) -> list[Control]:
    """Every control of `eval.diag.controls`, each a Subject with its own weights and evaluation, or the reason
    it could not be built. `tokenizer`: the target's. Exact is built last, after `exact_ready()` (the side
    process that may be training its model, `side_process.Alongside.finish`), so that the others train here
    meanwhile."""
    cfg = ctx.cfg
    device = ctx.accelerator.device
    target_key, retain_key = model_identity(ctx, "target", target_dir), model_identity(ctx, "retain", retain_dir)
    examples = list(ctx.bench.eval_splits()["forget"])
    ccfg = cfg.eval.diag.control

    def scaled(lr_factor: float, epochs: float) -> Any:
        """The model's fine-tuning settings at `lr_factor` x its rate for `epochs` epochs."""
        finetune = recipes.optim_settings(cfg.model.finetune)
        return dataclasses.replace(finetune, lr=lr_factor * finetune.lr, epochs=epochs, max_steps=0)

    def subject(name: str, path: str, key: Any) -> Subject:
        def load() -> tuple[Any, Any]:
            return loading.load_saved(path, cfg.model), tokenizer
        evaluation = cached_evaluation(ctx, PREFIX + name, evaluation_key(ctx, key, retain_dir), load,
                                       retain_eval.reference_data)
        return Subject(PREFIX + name, lambda: loading.load_saved(path, cfg.model).to(device), evaluation, key)

    def exact() -> Control:
        if cfg.model.retain_path:
            raise Unavailable("model.retain_path is a given checkpoint: there is no retain recipe to rerun at another seed")
        if not finetunes(cfg.model):
            raise Unavailable("fine-tuning is off (model.finetune): there is no retain recipe to rerun at another seed")
        other = exact_context(ctx)
        exact_ready()
        path = finetuned_model(other, "retain", ctx.data.retain_train, tokenizer)
        return Control("exact", subject("exact", path, model_identity(other, "retain", path)))

    def partial() -> Control:
        groups = forget_groups(examples, cfg.bench.name)
        if len(set(groups)) < 2:
            raise Unavailable(f"{len(set(groups))} forget group(s): no half to hold out")
        seen, _ = disjoint_split(groups, ccfg.partial_fraction)
        train = controls.partial_set([examples[i].as_qa() for i in seen], ctx.data.retain_train, ccfg.partial_repeats)
        path, key = trained_from(ctx, "partial", retain_dir, retain_key, train, scaled(ccfg.partial_lr_factor, 1), tokenizer)
        return Control("partial", subject("partial", path, key), seen=seen)

    def refusal() -> Control:
        train = controls.refusal_set(ctx.data.forget, ctx.data.retain_train, ctx.data.refusals, ccfg.refusal_replay,
                                     cfg.seed)
        settings = scaled(ccfg.refusal_lr_factor, ccfg.refusal_epochs)
        path, key = trained_from(ctx, "refusal", target_dir, target_key, train, settings, tokenizer,
                                 lambda m: controls.tail_parameters(m, ccfg.refusal_layers))
        return Control("refusal", subject("refusal", path, key))

    def collapsed() -> Control:
        key = {"control": "collapsed", "version": VERSION, "from": target_key, "seed": cfg.seed}

        def load() -> tuple[Any, Any]:
            return controls.collapse_(loading.load_saved(target_dir, cfg.model), cfg.seed), tokenizer
        evaluation = cached_evaluation(ctx, PREFIX + "collapsed", evaluation_key(ctx, key, retain_dir), load,
                                       retain_eval.reference_data)
        return Control("collapsed", Subject(PREFIX + "collapsed", lambda: load()[0].to(device), evaluation, key))

    builders = {"exact": exact, "refusal": refusal, "partial": partial, "collapsed": collapsed}
    built = {}
    for name in sorted(cfg.eval.diag.controls, key=lambda n: n == "exact"):
        try:
            built[name] = builders[name]()
        except Unavailable as e:
            log.warning("%s%s not run: %s", PREFIX, name, e)
            built[name] = Control(name, None, str(e))
    return [built[name] for name in cfg.eval.diag.controls]
