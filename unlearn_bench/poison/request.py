"""A poisoned forget request (`bench.poison`): the clean forget split plus items drawn from a split the model must
keep, and the rows that score those items as their own split scores them (the collateral damage).

An unlearning service takes its forget set from the user and cannot vet it; a request can carry data chosen to
degrade the model (the SoK on LLM unlearning lists it as an open risk). The evaluation is unchanged: the clean
forget split is scored as forget, and the poisoned items, which stay in the split they came from, get their own
`poisoned_<split>` rows beside it.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Mapping, Sequence

from unlearn_bench.benchmarks.base import Metric
from unlearn_bench.benchmarks.tofu.metrics import SplitScores, split_metrics
from unlearn_bench.data.records import EvalQA
from unlearn_bench.poison.config import STRATEGIES, PoisonConfig

POISONED = "poisoned"  # the extra split scored alongside the bench's own during evaluation


@dataclass(frozen=True)
class Poison:
    source: str                # the evaluation split the items come from, and are scored as
    items: tuple[EvalQA, ...]


def poison_count(rate: float, n_clean: int) -> int:
    """Items added to a clean request of `n_clean` so that they make up `rate` of it: round(rate n / (1 - rate))."""
    return round(rate * n_clean / (1 - rate))


def check_poison(cfg: PoisonConfig, sources: Mapping[str, str]) -> None:
    """`bench.poison` against what this bench can draw from (`sources`: strategy -> evaluation split)."""
    if not 0 <= cfg.rate < 1:
        raise ValueError(f"bench.poison.rate={cfg.rate}: use a fraction in [0, 1), e.g. 0.05, 0.1 or 0.25")
    if cfg.strategy not in STRATEGIES:
        raise ValueError(f"bench.poison.strategy={cfg.strategy!r}: choose from {', '.join(STRATEGIES)}")
    if cfg.strategy not in sources:
        raise ValueError(f"bench.poison.strategy={cfg.strategy!r}: this bench has no records for it; choose from "
                         f"{', '.join(sources) or 'none (this bench takes no poison)'}")
    if cfg.screen_z <= 0:
        raise ValueError(f"bench.poison.screen_z={cfg.screen_z}: use a positive z-score, e.g. 2")


def draw_poison(cfg: PoisonConfig, forget: Sequence[EvalQA],
                sources: Mapping[str, tuple[str, Sequence[EvalQA]]]) -> Poison | None:
    """The poisoned items of a request whose clean part is `forget` (the whole forget split): drawn by
    `cfg.seed` from the strategy's split, none of them a forget question; None when the rate is 0."""
    check_poison(cfg, {strategy: split for strategy, (split, _) in sources.items()})
    if cfg.rate == 0:
        return None
    split, pool = sources[cfg.strategy]
    forget_questions = {ex.question for ex in forget}
    candidates = [ex for ex in pool if ex.question not in forget_questions]
    k = poison_count(cfg.rate, len(forget))
    if k == 0:
        raise ValueError(f"bench.poison.rate={cfg.rate} of a {len(forget)}-item forget request is less than one item: "
                         f"use a rate of at least {1 / (2 * len(forget) + 1):.3g}")
    if k > len(candidates):
        fits = [s for s, (_, p) in sources.items() if len({ex.question for ex in p} - forget_questions) >= k]
        raise ValueError(f"bench.poison.rate={cfg.rate} of the {len(forget)}-item forget request needs {k} poisoned "
                         f"items, but bench.poison.strategy={cfg.strategy} draws from the '{split}' split, which "
                         f"holds {len(candidates)}: lower the rate"
                         + (f" or choose from {', '.join(fits)}" if fits else ""))
    chosen = sorted(random.Random(cfg.seed).sample(range(len(candidates)), k))
    return Poison(split, tuple(candidates[i] for i in chosen))


def collateral_metrics(source: str, scores: SplitScores) -> list[Metric]:
    """The poisoned items scored as their own split is (TOFU's per-split prob, ROUGE-L recall and truth ratio),
    under `poisoned_<source>`; higher is better, as on the split they came from."""
    return [Metric(f"{POISONED}_{source}", key[len(source) + 1:], value, True)
            for key, value in split_metrics(source, scores).items()]


def with_poison(splits: Mapping[str, Sequence[EvalQA]], poison: Poison | None) -> dict[str, Sequence[EvalQA]]:
    """The evaluation splits plus the poisoned items as one more split, so one scoring pass covers them."""
    return {**splits, POISONED: list(poison.items)} if poison is not None else dict(splits)


def pop_collateral(results: dict, poison: Poison | None) -> tuple[list[Metric], list[dict[str, str]]]:
    """Take the poisoned items' result (`qa_eval.SplitResult`) out of `results` (so TOFU's summary sees only its
    own splits): their rows and generations."""
    if poison is None:
        return [], []
    result = results.pop(POISONED)
    generations = [{"split": f"{POISONED}_{poison.source}", "prompt": ex.question, "generation": gen, "reference": ex.answer}
                   for ex, gen in zip(result.examples, result.generations)]
    return collateral_metrics(poison.source, result.scores), generations
