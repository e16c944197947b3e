"""Removal or suppression? Robustness diagnostics of an unlearned model (`eval.diagnostics=[...]`).

Each diagnostic measures the forget metrics again under an attack (relearn, quantize, rephrase, sampling) or
reads the hidden states (probe), and reports how much of the fine-tuned model's knowledge it recovers; the
verdict row says `removed` when every recovery stays below `eval.diag.threshold`, else `suppressed`, naming
the attack that recovered most. `sequential` adds utility/forget curves over K successive requests and does
not vote. Attacks need TOFU-family QA evaluations (per-example forget scores); on other benches they are
skipped with a warning.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from omegaconf import OmegaConf

from unlearn_bench.benchmarks.base import EvalOutput
from unlearn_bench.device import seed_everything
from unlearn_bench.diagnostics import probe, quantize, relearn, rephrase, sampling, sequential
from unlearn_bench.diagnostics.common import DiagInputs, DiagResult
from unlearn_bench.evaluation.wrapper import InferenceWrapper
from unlearn_bench.results import MetricRow

log = logging.getLogger(__name__)

DIAGNOSTICS: dict[str, Callable[[DiagInputs, Any], DiagResult]] = {
    "relearn": relearn.run,
    "quantize": quantize.run,
    "rephrase": rephrase.run,
    "sampling": sampling.run,
    "probe": probe.run,
    "sequential": sequential.run,
}
BENCH_AGNOSTIC = frozenset({"sequential"})  # the rest need per-example QA forget scores


@dataclass
class DiagnosticsConfig:
    threshold: float = 0.25  # largest recovered share of the unlearning gap that still counts as removed
    min_gap: float = 0.05    # finetuned-unlearned gaps below this leave recovery undefined (NaN): nothing to recover
    relearn: relearn.RelearnConfig = field(default_factory=relearn.RelearnConfig)
    quantize: quantize.QuantizeConfig = field(default_factory=quantize.QuantizeConfig)
    rephrase: rephrase.RephraseConfig = field(default_factory=rephrase.RephraseConfig)
    sampling: sampling.SamplingConfig = field(default_factory=sampling.SamplingConfig)
    probe: probe.ProbeConfig = field(default_factory=probe.ProbeConfig)
    sequential: sequential.SequentialConfig = field(default_factory=sequential.SequentialConfig)


def check_names(names: Sequence[str]) -> None:
    unknown = [n for n in names if n not in DIAGNOSTICS]
    if unknown:
        raise ValueError(f"eval.diagnostics: unknown {unknown}; choose from {list(DIAGNOSTICS)}")


def verdict(recoveries: Mapping[str, float], threshold: float) -> tuple[float, str]:
    """(largest recovery, note): 'removed' when every defined recovery is below `threshold`, else 'suppressed',
    with the attack behind the largest; 'undetermined' when no attack had a gap to recover."""
    defined = {k: v for k, v in recoveries.items() if math.isfinite(v)}
    if not defined:
        return math.nan, "undetermined (unlearning opened no gap on the forget metrics)"
    worst = max(defined, key=defined.__getitem__)
    label = "removed" if defined[worst] < threshold else "suppressed"
    return defined[worst], f"{label} ({worst} {defined[worst]:.2f})"


def run_diagnostics(ctx: Any, model: Any, tokenizer: Any, run_id: str, new_method: Callable[[], Any],
                    evals: Mapping[str, EvalOutput], model_dirs: Mapping[str, Path],
                    wrapper: InferenceWrapper | None = None) -> list[MetricRow]:
    """Rows of every diagnostic in `ctx.cfg.eval.diagnostics` and the verdict row, for the unlearned `model`.

    ctx: the runner's Context (cfg, bench, data, fmt, accelerator); evals: unlearned/finetuned/retain
    evaluations; model_dirs: saved finetuned/retain models; new_method: a fresh method object per call;
    wrapper: an inference-time method's wrapper over `model` (None for fine-tuning methods)."""
    cfg = ctx.cfg
    names = list(cfg.eval.diagnostics)
    check_names(names)
    settings: DiagnosticsConfig = OmegaConf.to_object(cfg.eval.diag)
    inputs = DiagInputs(cfg, ctx.bench, ctx.data, ctx.fmt, ctx.accelerator, model, tokenizer, evals, model_dirs,
                        new_method, settings.min_gap, wrapper)
    if not inputs.is_qa():
        skipped = [n for n in names if n not in BENCH_AGNOSTIC]
        if skipped:
            log.warning("diagnostics %s need TOFU-family QA evaluations; bench '%s' has none: skipped", skipped, cfg.bench.name)
        names = [n for n in names if n in BENCH_AGNOSTIC]
    result = DiagResult()
    for name in names:
        start = time.time()
        seed_everything(cfg.seed)  # each diagnostic's randomness is independent of which ran before it
        result.add(DIAGNOSTICS[name](inputs, getattr(settings, name)))
        log.info("diagnostic %s done in %.1fs", name, time.time() - start)

    def row(split: str, metric: str, value: float, higher: bool | None, note: str = "") -> MetricRow:
        return MetricRow(cfg.bench.name, cfg.model.name, cfg.method.name, split, metric, value, higher, cfg.seed,
                         run_id, cfg.method.intent, note=note)

    rows = [row(m.split, m.metric, m.value, m.higher_is_better) for m in result.metrics]
    if result.recovery:
        value, note = verdict(result.recovery, settings.threshold)
        rows.append(row("diagnostics", "verdict", value, False, note))
        log.info("diagnostics verdict for %s (intent %s): %s", cfg.method.name, cfg.method.intent, note)
    return rows
