"""What every stage of one run shares (`Context`), and the models and evaluations built from it and cached by the
hash of what determines them: the fine-tuned target and retain models, a generated forget corpus, evaluations.
`pipeline.runner` wires them into a run; `pipeline.side_process` builds the retain model in a second process."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Callable

from omegaconf import DictConfig, OmegaConf

from unlearn_bench.benchmarks.base import Benchmark, BenchData, EvalOutput
from unlearn_bench.data.collate import PromptFormat
from unlearn_bench.evaluation.cost import PhaseClock
from unlearn_bench.evaluation.lm import eval_lm
from unlearn_bench.evaluation.wrapper import InferenceWrapper
from unlearn_bench.models import loading
from unlearn_bench.pipeline import stages
from unlearn_bench.pipeline.utility import utility_metrics
from unlearn_bench.runtime.device import save_pretrained, seed_everything, shared_stage
from unlearn_bench.runtime.logs import stage
from unlearn_bench.store import fingerprints
from unlearn_bench.training import recipes

log = logging.getLogger(__name__)


@dataclass
class Context:
    """What every stage of one run shares."""

    cfg: DictConfig
    bench: Benchmark
    data: BenchData
    fmt: PromptFormat
    accelerator: Any
    # content hash of every local data file (store/fingerprints.py; None: hub data): keys a generated forget corpus
    data_digest: str | None = None
    # content hashes of each role's training texts, taken from the data as first loaded (before a generated
    # forget corpus replaces the forget set), so that a model's key is the same at training and evaluation
    training_digests: dict[str, str] | None = None

    def __post_init__(self) -> None:
        if self.training_digests is None and self.data is not None:
            trains_tokenizer = self.cfg.model.path is None  # the tiny model's tokenizer is trained on the corpus
            self.training_digests = {role: self.data.training_digest(role, trains_tokenizer) for role in ("target", "retain")}

    @cached_property
    def evaluation_digest(self) -> str | None:
        """Content hash of the local files evaluation reads (store/fingerprints.py); None when it reads none."""
        return fingerprints.content_digest(fingerprints.evaluation_inputs(self.cfg, self.bench), self.cfg.paths.cache_dir,
                                           update_index=False)

    def model_settings(self) -> dict[str, Any]:
        """The model config minus its display name and a given unlearned checkpoint (which determine nothing of
        the target and retain models)."""
        m = OmegaConf.to_container(self.cfg.model, resolve=True)
        m.pop("name", None)
        m.pop("unlearned_path", None)
        return m

    def model_key(self, role: str) -> dict[str, Any]:
        """What determines a fine-tuned model: its settings, data and seed, and the texts it trains on (not the
        files they come from, so an evaluation-only file changed or a data folder moved keeps the model)."""
        return {"model": self.model_settings(), "data": self.bench.data_key(role), "seed": self.cfg.seed, "role": role,
                "training_texts": (self.training_digests or {}).get(role)}


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
                result = recipes.finetune(model, tokenizer, examples, ctx.fmt, cfg.model.finetune, cfg.model.max_length,
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


def target_lm_stage(ctx: Context, target_dir: str, stage_name: str, key: dict[str, Any], filename: str,
                    produce: Callable[[Any], Any], what: str) -> Any:
    """`produce(lm)` on the target model (an `eval_lm`, torch seeded with `cfg.seed`), written as JSON to `filename`
    of a cached stage keyed by the target model's identity and `key`, logged as `what`; returns the parsed JSON.
    The target-model stages before unlearning (a generated forget corpus, generated alternates, a poisoned
    request's losses) are all this."""
    cfg = ctx.cfg

    def build(out: Path) -> None:
        model = loading.load_saved(target_dir, cfg.model).to(ctx.accelerator.device)
        tok = loading.load_tokenizer(target_dir, cfg.model)
        seed_everything(cfg.seed)
        (out / filename).write_text(json.dumps(produce(eval_lm(model, tok, ctx.fmt, cfg.model.max_length,
                                                               cfg.eval.batch_size)), indent=1))

    path, hit = shared_stage(ctx.accelerator, cfg.paths.cache_dir, stage_name,
                             {"model": model_identity(ctx, "target", target_dir), **key}, build)
    log.info("%s: %s (%s)", what, path / filename, "reused from cache" if hit else "written")
    return json.loads((path / filename).read_text())


def generated_forget_corpus(ctx: Context, target_dir: str, generation: dict[str, Any]) -> list[dict[str, Any]]:
    """The forget corpus the target model writes (from cache when this model and `generation` made it before)."""
    cfg = ctx.cfg
    # Sampled batches depend on their composition, so the batch size is part of the key.
    key = {"generation": generation, "seed": cfg.seed, "batch_size": cfg.eval.batch_size,
           "data_fingerprint": ctx.data_digest}
    return target_lm_stage(ctx, target_dir, "forget_corpus", key, "forget_corpus.json", ctx.bench.generate_forget,
                           "generated forget corpus")


def generated_alternates(ctx: Context, target_dir: str, method: Any) -> list[list[str]]:
    """The alternate answers the target model writes per forget item for a method with `alternate = "generated"`
    (`method.generate_alternates`, altpo), from cache when this model, forget set and `method.generation_key()` made
    them before, as the generated forget corpus is; `alternates.json` holds question, answer and alternates."""
    cfg = ctx.cfg
    forget = ctx.data.forget
    key = {"generation": method.generation_key(), "forget": [[qa.question, qa.answer] for qa in forget],
           "seed": cfg.seed, "batch_size": cfg.eval.batch_size, "data_fingerprint": ctx.data_digest}

    def produce(lm: Any) -> list[dict[str, Any]]:
        return [{"question": qa.question, "answer": qa.answer, "alternates": alts}
                for qa, alts in zip(forget, method.generate_alternates(lm, forget))]

    records = target_lm_stage(ctx, target_dir, "alternates", key, "alternates.json", produce, "generated alternates")
    return [r["alternates"] for r in records]


def evaluate_model(ctx: Context, model: Any, tokenizer: Any, reference: dict[str, Any] | None,
                   wrapper: InferenceWrapper | None = None) -> EvalOutput:
    """The benchmark's metrics plus the lm-eval utility rows of `eval.utility` (none when its task list is empty),
    both through an inference-time method's `wrapper` when there is one."""
    cfg = ctx.cfg
    out = stages.evaluate(ctx.bench, model, tokenizer, ctx.fmt, cfg.model.max_length, cfg.eval.batch_size, reference,
                          wrapper, cfg.eval.generation_batch_size)
    if cfg.eval.utility.tasks:
        clock = PhaseClock()
        with clock.phase("utility", ", ".join(cfg.eval.utility.tasks)):
            out.metrics += utility_metrics(model, tokenizer, cfg.eval, wrapper)
        out.metrics += clock.rows
    return out


def without_location(settings: DictConfig) -> dict[str, Any]:
    """A config group's values with its `data_dir` as "local" (when set): the files' contents are in the key."""
    values = OmegaConf.to_container(settings, resolve=True)
    if values.get("data_dir") is not None:
        values["data_dir"] = "local"
    return values


def eval_key(ctx: Context, role: str, model_dir: str, reference_model: str | None) -> dict[str, Any]:
    """What determines an evaluation: the model, the retain reference it is compared with (by identity, not by
    where it lies in the cache), the benchmark and utility settings, and the contents of the files it reads."""
    return evaluation_key(ctx, model_identity(ctx, role, model_dir), reference_model)


def evaluation_key(ctx: Context, identity: Any, reference_model: str | None) -> dict[str, Any]:
    """`eval_key` of the model that `identity` names (a known-answer control's, built by `pipeline.controls`)."""
    cfg = ctx.cfg
    return {"model": identity,
            "reference": None if reference_model is None else model_identity(ctx, "retain", reference_model),
            "bench": without_location(cfg.bench), "utility": without_location(cfg.eval.utility),
            "data_fingerprint": ctx.evaluation_digest}


def cached_eval(ctx: Context, role: str, model_dir: str, reference: dict[str, Any] | None,
                reference_model: str | None = None) -> EvalOutput:
    """The evaluation of `model_dir`, from cache when present; `reference_model` is the retain model's folder
    whose evaluation gave `reference`."""
    cfg = ctx.cfg

    def load() -> tuple[Any, Any]:
        return loading.load_saved(model_dir, cfg.model), loading.load_tokenizer(model_dir, cfg.model)

    return cached_evaluation(ctx, role, eval_key(ctx, role, model_dir, reference_model), load, reference)


def cached_evaluation(ctx: Context, label: str, key: dict[str, Any], load: Callable[[], tuple[Any, Any]],
                      reference: dict[str, Any] | None) -> EvalOutput:
    """The bench's evaluation cached under `key` (`eval_key`, `evaluation_key`); `load()` gives the model and
    its tokenizer when it is not cached."""
    cfg = ctx.cfg

    def build(out: Path) -> None:
        model, tok = load()
        with stage(f"evaluate:{label}"):
            stages.save_eval(evaluate_model(ctx, model.to(ctx.accelerator.device), tok, reference), out / "eval.json")

    path, hit = shared_stage(ctx.accelerator, cfg.paths.cache_dir, "eval", key, build)
    log.info("%s evaluation: %s", label, "reused from cache" if hit else "computed")
    return stages.load_eval(path / "eval.json")
