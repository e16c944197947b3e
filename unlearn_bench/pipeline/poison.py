"""The screening stage of a poisoned request (`bench.poison`, poison/screen.py): the target model's answer loss
per request item (cached like the other target-model stages), the detector's flags and its rows, and, with
`bench.poison.screen=true`, the request without the flagged items."""
from __future__ import annotations

import dataclasses
import logging

from unlearn_bench.benchmarks.base import BenchData, Metric
from unlearn_bench.pipeline.context import Context, target_lm_stage
from unlearn_bench.poison.screen import retain_similarity, screen_flags, screen_metrics

log = logging.getLogger(__name__)


def request_losses(ctx: Context, target_dir: str) -> list[float]:
    """The target model's answer loss on every item of the forget request, from cache when computed before."""
    forget = ctx.data.forget
    key = {"request": [[qa.question, qa.answer] for qa in forget], "max_length": ctx.cfg.model.max_length}
    return target_lm_stage(ctx, target_dir, "poison_screen", key, "losses.json", lambda lm: lm.answer_losses(forget),
                           "the target's losses on the request")


def screened_request(ctx: Context, target_dir: str) -> tuple[BenchData, list[Metric]]:
    """The request to unlearn and the detector's rows; the data unchanged (and no rows) when nothing is poisoned."""
    data = ctx.data
    if not any(data.forget_poisoned):  # also every benchmark without bench.poison
        return data, []
    settings = ctx.cfg.bench.poison
    flags = screen_flags(request_losses(ctx, target_dir), retain_similarity(data.forget, data.retain), settings.screen_z)
    rows = screen_metrics(flags, data.forget_poisoned, dropped=settings.screen)
    log.info("poisoned request: %d of %d items injected (%s from bench.poison); the detector flags %d, %d of them injected%s",
             sum(data.forget_poisoned), len(data.forget), settings.strategy, sum(flags),
             sum(f and p for f, p in zip(flags, data.forget_poisoned)), ": dropping them" if settings.screen else "")
    if not settings.screen:
        return data, rows
    return drop_flagged(data, flags), rows


def drop_flagged(data: BenchData, flags: list[bool]) -> BenchData:
    """The request without its flagged items, its per-item lists kept aligned."""
    keep = [i for i, flagged in enumerate(flags) if not flagged]
    return dataclasses.replace(
        data, forget=[data.forget[i] for i in keep],
        forget_perturbed=[data.forget_perturbed[i] for i in keep] if data.forget_perturbed else [],
        forget_poisoned=[data.forget_poisoned[i] for i in keep])
