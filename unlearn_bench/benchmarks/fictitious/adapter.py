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
from unlearn_bench.evaluation.lm import LM
from unlearn_bench.evaluation.mia_eval import forget_holdout_auc_rows
from unlearn_bench.benchmarks.tofu.qa_eval import privleak_rows, reference_forget_scores, score_splits, tofu_family_output

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

    def data(self) -> BenchData:
        s = self.splits()
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
            forget=forget,
            retain=retain,
            refusals=REFUSALS,
            # wrong answers to train on: the world's alternates, disjoint from every scored answer (world.py)
            forget_perturbed=[list(qa.meta["alternates"]) for qa in s["forget"]],
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
        results = score_splits(lm, splits, self.cfg.max_new_tokens)
        out = tofu_family_output(results, reference_forget_scores(results, reference))
        holdout = self.splits()["holdout"][: len(splits["forget"])]
        aucs = forget_holdout_auc_rows(lm, [q.as_qa() for q in splits["forget"]], [q.as_qa() for q in holdout])
        rows, reference_auc = privleak_rows(aucs, reference)
        out.metrics += aucs + rows
        out.reference_data |= reference_auc
        return out


def build(cfg: FictitiousConfig) -> FictitiousBenchmark:
    return FictitiousBenchmark(cfg)
