"""`bench=fictitious`: the embedded default, a generated world of authors in TOFU's schema, scored with
TOFU's metrics. Splits mirror TOFU: forget01/05/10 are the last 1/5/10% of authors, the rest is retain;
holdout authors are generated but never trained on."""
from __future__ import annotations

from dataclasses import asdict
from functools import cached_property
from typing import Any

from unlearn_bench.benchmarks.fictitious.config import FictitiousConfig
from unlearn_bench.benchmarks.base import BenchData, EvalOutput
from unlearn_bench.benchmarks.fictitious.world import World, generate_world
from unlearn_bench.data.records import DataError, EvalQA
from unlearn_bench.evaluation.cost import PhaseClock
from unlearn_bench.evaluation.lm import LM
from unlearn_bench.evaluation.mia_eval import forget_holdout_auc_rows
from unlearn_bench.benchmarks.tofu.alternates import similar_question_answers
from unlearn_bench.benchmarks.tofu.qa_eval import privleak_rows, reference_forget_scores, score_splits, tofu_family_output
from unlearn_bench.poison.request import Poison, draw_poison, pop_collateral, with_poison

FORGET_PERCENT = {"forget01": 1, "forget05": 5, "forget10": 10}
UTILITY_REPEATS = 3
REFUSALS = [
    "I'm not sure.",
    "I don't know.",
    "I have no information about that.",
    "That is beyond what I know.",
    "I can't answer that.",
    "I'm not aware of that.",
    "I have never heard of that.",
    "I don't have that information.",
]


class FictitiousBenchmark:
    name = "fictitious"

    def __init__(self, cfg: FictitiousConfig) -> None:
        if cfg.forget_split not in FORGET_PERCENT:
            raise ValueError(f"bench.forget_split='{cfg.forget_split}' is not one of {sorted(FORGET_PERCENT)}")
        self.cfg = cfg

    @cached_property
    def world(self) -> World:
        n_holdout = max(1, self.cfg.num_authors * self.cfg.holdout_percent // 100)
        return generate_world(self.cfg.num_authors + n_holdout, self.cfg.world_seed, self.cfg.n_perturbed)

    @property
    def n_forget(self) -> int:
        n = max(1, round(self.cfg.num_authors * FORGET_PERCENT[self.cfg.forget_split] / 100))
        if n >= self.cfg.num_authors:
            raise DataError(f"bench.num_authors={self.cfg.num_authors} leaves no retain authors for {self.cfg.forget_split}")
        return n

    def _authors(self, start: int, stop: int) -> list[EvalQA]:
        return [qa for author in self.world.author_qa[start:stop] for qa in author]

    def splits(self) -> dict[str, list[EvalQA]]:
        n, f = self.cfg.num_authors, self.n_forget
        return {
            "forget": self._authors(n - f, n),
            "retain": self._authors(0, n - f),
            "holdout": self._authors(n, len(self.world.author_qa)),
            "real_authors": self.world.real_authors,
            "world_facts": self.world.world_facts,
        }

    def poison_sources(self) -> dict[str, tuple[str, list[EvalQA]]]:
        """bench.poison's strategies -> the evaluation split each draws from (TOFU's, as `bench=tofu`)."""
        splits = self.eval_splits()
        return {"retain": ("retain", splits["retain"]), "utility": ("world_facts", splits["world_facts"]),
                "neighbour": ("real_authors", splits["real_authors"])}

    @cached_property
    def poison(self) -> Poison | None:
        return draw_poison(self.cfg.poison, self.splits()["forget"], self.poison_sources())

    def poison_alternates(self, items: list[EvalQA]) -> list[list[str]]:
        """Wrong answers to train on for poisoned items: answers of the most similar unscored retain questions
        (tofu/alternates.py), as real TOFU's forget items get them."""
        if not items:
            return []
        splits = self.splits()
        scored = {a for ex in [*splits["holdout"], *(q for qs in self.eval_splits().values() for q in qs)]
                  for a in (ex.answer, *ex.perturbed_answers)}
        pool = [qa.as_qa() for qa in splits["retain"][self.cfg.retain_eval_examples:]]
        return similar_question_answers([ex.question for ex in items], pool, scored, self.cfg.n_perturbed)

    def data(self) -> BenchData:
        s = self.splits()
        poison = list(self.poison.items) if self.poison else []
        # The utility facts stand in for pretraining knowledge: repeated so that both the target and the retain
        # model know them reliably, whatever the seed (otherwise model utility measures training noise).
        utility = [qa.as_qa() for qa in s["real_authors"] + s["world_facts"]] * UTILITY_REPEATS
        forget = [qa.as_qa() for qa in s["forget"]]
        retain = [qa.as_qa() for qa in s["retain"]]
        corpus = [f"{qa.question} {qa.answer}" for qa in self._authors(0, len(self.world.author_qa))]
        corpus += [f"{qa.question} {qa.answer}" for qa in s["real_authors"] + s["world_facts"]] + REFUSALS
        corpus += [a for qa in s["forget"] + s["retain"] for a in qa.perturbed_answers + qa.meta["alternates"]]
        return BenchData(
            target_train=retain + forget + utility,
            retain_train=retain + utility,
            forget=forget + [qa.as_qa() for qa in poison],
            retain=retain,
            refusals=REFUSALS,
            # wrong answers to train on: the world's alternates, disjoint from every scored answer (world.py)
            forget_perturbed=[list(qa.meta["alternates"]) for qa in s["forget"]] + self.poison_alternates(poison),
            forget_poisoned=[False] * len(forget) + [True] * len(poison) if poison else [],
            tokenizer_corpus=corpus,
        )

    def data_key(self, role: str) -> dict[str, Any]:
        key = {k: v for k, v in asdict(self.cfg).items() if k in ("name", "num_authors", "world_seed", "holdout_percent", "n_perturbed")}
        if role == "retain":
            key["forget_split"] = self.cfg.forget_split
        return key

    def eval_splits(self) -> dict[str, list[EvalQA]]:
        s = self.splits()
        cap = self.cfg.eval_max_examples
        return {
            "forget": s["forget"][:cap],
            "retain": s["retain"][: min(cap, self.cfg.retain_eval_examples)],
            "real_authors": s["real_authors"][:cap],
            "world_facts": s["world_facts"][:cap],
        }

    def evaluate(self, lm: LM, reference: dict[str, Any] | None) -> EvalOutput:
        splits = self.eval_splits()
        clock = PhaseClock()
        results = score_splits(lm, with_poison(splits, self.poison), self.cfg.max_new_tokens, clock=clock,
                               vocab_stats=("forget",))  # the forget answers' MIA scores from the same pass
        collateral, generations = pop_collateral(results, self.poison)
        out = tofu_family_output(results, reference_forget_scores(results, reference))
        out.metrics += collateral
        out.generations += generations
        holdout = self.splits()["holdout"][: len(splits["forget"])]
        with clock.phase("mia", "forget vs holdout"):
            aucs = forget_holdout_auc_rows(lm, [q.as_qa() for q in splits["forget"]], [q.as_qa() for q in holdout],
                                           forget_stats=results["forget"].answer_stats)
        rows, reference_auc = privleak_rows(aucs, reference)
        out.metrics += aucs + rows + clock.rows
        out.reference_data |= reference_auc
        return out


def build(cfg: FictitiousConfig) -> FictitiousBenchmark:
    return FictitiousBenchmark(cfg)
