"""What every stage of one run shares (`Context`), and the models and evaluations built from it and cached by the
hash of what determines them: the fine-tuned target and retain models, a generated forget corpus, evaluations.
`pipeline.runner` wires them into a run; `pipeline.side_process` builds the retain model in a second process."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from omegaconf import DictConfig, OmegaConf

from unlearn_bench.benchmarks.base import Benchmark, BenchData, EvalOutput
from unlearn_bench.data.collate import PromptFormat
from unlearn_bench.evaluation.lm import eval_lm
from unlearn_bench.evaluation.wrapper import InferenceWrapper
from unlearn_bench.models import loading
from unlearn_bench.pipeline import stages
from unlearn_bench.pipeline.utility import utility_metrics
from unlearn_bench.runtime.device import save_pretrained, seed_everything, shared_stage
from unlearn_bench.runtime.logs import stage
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
    data_digest: str | None = None  # content hash of the local data files (store/fingerprints.py); None: hub data
    # content hashes of each role's training texts, taken from the data as first loaded (before a generated
    # forget corpus replaces the forget set), so that a model's key is the same at training and evaluation
    training_digests: dict[str, str] | None = None

    def __post_init__(self) -> None:
        if self.training_digests is None and self.data is not None:
            self.training_digests = {role: self.data.training_digest(role) for role in ("target", "retain")}

    def model_settings(self) -> dict[str, Any]:
        """The model config minus its display name and a given unlearned checkpoint (which determine nothing of
        the target and retain models)."""
        m = OmegaConf.to_container(self.cfg.model, resolve=True)
        m.pop("name", None)
        m.pop("unlearned_path", None)
        return m

    def model_key(self, role: str) -> dict[str, Any]:
        key = {"model": self.model_settings(), "data": self.bench.data_key(role), "seed": self.cfg.seed, "role": role,
               "training_texts": (self.training_digests or {}).get(role)}
        if self.data_digest is not None:
            key["data_fingerprint"] = self.data_digest
        return key


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

    def load() -> tuple[Any, Any]:
        return loading.load_saved(model_dir, cfg.model), loading.load_tokenizer(model_dir, cfg.model)

    return cached_evaluation(ctx, role, model_identity(ctx, role, model_dir), load, reference, reference_model)


def cached_evaluation(ctx: Context, label: str, identity: Any, load: Callable[[], tuple[Any, Any]],
                      reference: dict[str, Any] | None, reference_model: str | None = None) -> EvalOutput:
    """The bench's evaluation of the model `identity` names (`load()` gives it and its tokenizer), from cache
    when present."""
    cfg = ctx.cfg
    key = {"model": identity, "reference": reference_model, "bench": OmegaConf.to_container(cfg.bench, resolve=True),
           "utility": OmegaConf.to_container(cfg.eval.utility, resolve=True), "data_fingerprint": ctx.data_digest}

    def build(out: Path) -> None:
        model, tok = load()
        with stage(f"evaluate:{label}"):
            stages.save_eval(evaluate_model(ctx, model.to(ctx.accelerator.device), tok, reference), out / "eval.json")

    path, hit = shared_stage(ctx.accelerator, cfg.paths.cache_dir, "eval", key, build)
    log.info("%s evaluation: %s", label, "reused from cache" if hit else "computed")
    return stages.load_eval(path / "eval.json")
