"""`bench=tofu`: TOFU (locuslab/TOFU, Maini et al. 2024) as its authors published it.

The target model is fine-tuned on `full` (4000 QA about 200 fictitious authors), the retain reference on the
complement of the forget split (forget01/05/10 <-> retain99/95/90). Evaluation follows the authors'
config/eval_everything.yaml (locuslab/tofu): the four `*_perturbed` splits (retain, real authors, world facts,
forget), each capped at its first `ds_size: 300` questions, greedy generations of TOFU's length 200, and the
aggregation of aggregate_eval_stat.py. Per-example logs carry TOFU's file names (`eval_task` there), so the
authors' aggregation script reads them unchanged. Generation starts from the whole prompt, as TOFU and
open-unlearning's `eval_text_similarity` (src/evals/metrics/utils.py) do; `bench.cut_generation_prompts=true` keeps
a prompt's last (context - max_new_tokens) tokens instead.

Differences from the authors' code, kept on purpose:
- `eval_max_examples=300` matches TOFU's `ds_size`; open-unlearning (locuslab/open-unlearning) scores all 400
  forget10 questions: set `bench.eval_max_examples=null` to do the same.
- Methods that train on wrong answers (wrong_answers) do not get TOFU's perturbed answers, which the truth ratio
  scores, but other retain questions' answers of the same kind (`training_alternates`, tofu_alternates.py).
- TOFU bounds generation by `max_length: 200` (prompt + new tokens of the left-padded batch); we bound the new
  tokens at `max_new_tokens=200`, which only differs for generations that never reach EOS.
"""
from __future__ import annotations

import logging
from functools import cached_property
from pathlib import Path
from typing import Any

from unlearn_bench.benchmarks.tofu.config import TofuConfig
from unlearn_bench.benchmarks.base import BenchData, EvalOutput
from unlearn_bench.benchmarks.tofu.alternates import similar_question_answers
from unlearn_bench.benchmarks.tofu.data import (
    REFUSALS_FILE,
    holdout_split_for,
    load_refusals,
    load_tofu_split,
    retain_split_for,
    split_path,
    to_eval_qa,
    to_qa,
)
from unlearn_bench.data.records import QA, DataError, EvalQA
from unlearn_bench.evaluation.cost import PhaseClock
from unlearn_bench.evaluation.lm import LM
from unlearn_bench.evaluation.mia_eval import MIA_STYLES, forget_holdout_mia, memorization_rows
from unlearn_bench.benchmarks.open_unlearning import (TOFU_NAMES, eval_files, read_retain_agg, read_retain_truth_ratios,
                                                      tofu_per_example)
from unlearn_bench.benchmarks.tofu.qa_eval import privleak_rows, reference_forget_scores, score_splits, tofu_family_output
from unlearn_bench.poison.request import Poison, draw_poison, pop_collateral, with_poison

log = logging.getLogger(__name__)

# Our split name -> (TOFU eval split, TOFU `eval_task` = log file stem), from config/eval_everything.yaml.
EVAL_SPLITS = {
    "retain": ("retain_perturbed", "eval_log"),
    "real_authors": ("real_authors_perturbed", "eval_real_author_wo_options"),
    "world_facts": ("world_facts_perturbed", "eval_real_world_wo_options"),
    "forget": (None, "eval_log_forget"),  # the forget split's own *_perturbed file
}
# forget10 holds forget05 and forget01 (the last 10% of authors), so this corpus is the same whatever
# forget split runs, and a cached target model's tokenizer stays valid across forget splits.
CORPUS_PERTURBED = ("forget10_perturbed", "retain_perturbed", "real_authors_perturbed", "world_facts_perturbed")


class TofuBenchmark:
    name = "tofu"

    def __init__(self, cfg: TofuConfig) -> None:
        self._loaded: dict[str, list[dict[str, Any]]] = {}
        self.retain_split = retain_split_for(cfg.forget_split)  # ValueError naming the choices
        if cfg.mia_style not in MIA_STYLES:
            raise ValueError(f"bench.mia_style={cfg.mia_style!r}: choose from {', '.join(MIA_STYLES)}")
        if cfg.eval_max_examples is not None and cfg.eval_max_examples < 1:
            raise ValueError(f"bench.eval_max_examples={cfg.eval_max_examples}: use a positive number, or null for every question")
        self.cfg = cfg

    def _source(self, split: str) -> str:
        """Where `split` comes from, for error messages."""
        if self.cfg.data_dir is None:
            return f"{self.cfg.hub_id}[{split}]"
        return str(split_path(split, self.cfg.data_dir))

    def _records(self, split: str) -> list[dict[str, Any]]:
        """A split's raw records, read and parsed once per run (data(), the start check and the evaluation all
        read the perturbed splits)."""
        if split not in self._loaded:
            self._loaded[split] = load_tofu_split(split, self.cfg.data_dir, self.cfg.hub_id)
        return self._loaded[split]

    def _qa(self, split: str) -> list[QA]:
        return to_qa(self._records(split), self._source(split))

    def _eval_qa(self, split: str) -> list[EvalQA]:
        return to_eval_qa(self._records(split), self._source(split), expect_perturbed=None)

    @cached_property
    def forget_perturbed(self) -> list[EvalQA]:
        """`{forget_split}_perturbed`, checked to hold the forget split's questions and answers in its order."""
        split = f"{self.cfg.forget_split}_perturbed"
        perturbed, forget = self._eval_qa(split), self._qa(self.cfg.forget_split)
        if len(perturbed) != len(forget):
            raise DataError(f"{self._source(split)}: {len(perturbed)} records, but {self._source(self.cfg.forget_split)} "
                            f"has {len(forget)}; the perturbed answers must pair with the forget questions one to one")
        for i, (p, f) in enumerate(zip(perturbed, forget), start=1):
            for field in ("question", "answer"):
                if getattr(p, field) != getattr(f, field):
                    raise DataError(f"{self._source(split)}: record {i}: field '{field}' differs from record {i} of "
                                    f"{self._source(self.cfg.forget_split)}: {getattr(p, field)!r} vs {getattr(f, field)!r}")
        return perturbed

    def _refusals(self) -> list[str]:
        if self.cfg.data_dir is None:  # idontknow.jsonl is in the TOFU GitHub repo's data/, not on the hub
            log.warning("bench.data_dir is unset: no refusal answers (idontknow.jsonl), so idk-style methods cannot run")
            return []
        # Only refusal-based methods need the file (the runner checks that before training); the hub lacks it.
        if not (Path(self.cfg.data_dir) / REFUSALS_FILE).is_file():
            log.info("%s: no %s: refusal-based methods cannot run on this folder", self.cfg.data_dir, REFUSALS_FILE)
            return []
        return load_refusals(self.cfg.data_dir)

    def scored_answers(self) -> set[str]:
        """Every answer string any evaluation split or the MIA holdout scores, whatever the caps."""
        scored = {qa.answer for qa in self._qa(holdout_split_for(self.cfg.forget_split))}
        for split in CORPUS_PERTURBED:
            for ex in self._eval_qa(split):
                scored |= {ex.answer, *ex.perturbed_answers} | ({ex.paraphrased_answer} - {None})
        return scored

    def training_alternates(self, retain: list[QA], questions: list[str]) -> list[list[str]]:
        """Wrong answers for methods that train on them: other retain questions' answers (tofu_alternates.py),
        from authors outside retain_perturbed, none of them a scored answer."""
        evaluated = {ex.question for ex in self._eval_qa("retain_perturbed")}
        pool = [qa for qa in retain if qa.question not in evaluated]
        k = len(self.forget_perturbed[0].perturbed_answers)
        return similar_question_answers(questions, pool, self.scored_answers(), k)

    def poison_sources(self) -> dict[str, tuple[str, list[EvalQA]]]:
        """bench.poison's strategies -> the evaluation split each draws from: retain_perturbed, world facts (the
        general knowledge of model utility) and real authors (the forget authors' neighbours)."""
        splits = self.eval_splits()
        return {"retain": ("retain", splits["retain"]), "utility": ("world_facts", splits["world_facts"]),
                "neighbour": ("real_authors", splits["real_authors"])}

    @cached_property
    def poison(self) -> Poison | None:
        return draw_poison(self.cfg.poison, self.forget_perturbed, self.poison_sources())

    def data(self) -> BenchData:
        full = self._qa("full")
        # Without the refusals, which only refusal-based methods read (`read_refusals`): the tiny model's byte-level
        # tokenizer encodes them all the same, and a bad idontknow.jsonl must not stop other methods' training.
        corpus = [f"{qa.question} {qa.answer}" for qa in full]
        for split in CORPUS_PERTURBED:
            for ex in self._eval_qa(split):
                corpus += [ex.question, ex.answer, *ex.perturbed_answers]
                corpus += [s for s in (ex.paraphrased_question, ex.paraphrased_answer) if s is not None]
        retain = retain_split = self._qa(self.retain_split)
        if self.cfg.train_retain_examples is not None:  # `full` = retain split + forget split, in that order
            dropped = set(retain[self.cfg.train_retain_examples:])
            retain = retain[: self.cfg.train_retain_examples]
            full = [qa for qa in full if qa not in dropped]
        request = [*self.forget_perturbed, *(self.poison.items if self.poison else ())]
        return BenchData(
            target_train=full,
            retain_train=retain,
            forget=[ex.as_qa() for ex in request],
            retain=retain,
            read_refusals=self._refusals,
            # drawn from the whole retain split: a smoke run's training subset may hold no unscored answers
            forget_perturbed=self.training_alternates(retain_split, [ex.question for ex in request]),
            forget_poisoned=[i >= len(self.forget_perturbed) for i in range(len(request))] if self.poison else [],
            tokenizer_corpus=corpus,
        )

    def data_key(self, role: str) -> dict[str, Any]:
        # A local folder's contents are in the key (the training texts' digest, `Context.model_key`), not its path,
        # so a moved or copied folder keeps its models.
        key: dict[str, Any] = {"name": self.name, "source": self.cfg.hub_id if self.cfg.data_dir is None else "local"}
        if role == "retain":
            key["forget_split"] = self.cfg.forget_split
        if self.cfg.train_retain_examples is not None:  # the subset's target set depends on the forget split too
            key.update(forget_split=self.cfg.forget_split, train_retain_examples=self.cfg.train_retain_examples)
        return key

    def eval_splits(self) -> dict[str, list[EvalQA]]:
        cap = self.cfg.eval_max_examples
        return {name: (self.forget_perturbed if split is None else self._eval_qa(split))[:cap]
                for name, (split, _) in EVAL_SPLITS.items()}

    def evaluation_files(self) -> list[Path]:
        """The local files evaluation reads (their contents key the cached evaluations): the scored splits, the
        forget split the perturbed one is checked against, the MIA holdout and `retain_logs_path`."""
        files = [Path(self.cfg.retain_logs_path)] if self.cfg.retain_logs_path else []
        if self.cfg.data_dir is None:
            return files
        splits = [split or f"{self.cfg.forget_split}_perturbed" for split, _ in EVAL_SPLITS.values()]
        splits += [self.cfg.forget_split, holdout_split_for(self.cfg.forget_split)]
        return files + [split_path(split, self.cfg.data_dir) for split in splits]

    def check_inputs(self) -> None:
        """Read and parse every file evaluation reads, so a bad one fails before any training."""
        self.eval_splits()
        self._qa(holdout_split_for(self.cfg.forget_split))

    def evaluate(self, lm: LM, reference: dict[str, Any] | None) -> EvalOutput:
        splits = self.eval_splits()
        clock = PhaseClock()
        # open-unlearning's MIA encodes the forget answers as the scoring pass does (with EOS): their stats serve
        # the MIA and memorization rows too, so the forget set runs through the model once
        shared = ("forget",) if self.cfg.mia_style == "open_unlearning" else ()
        results = score_splits(lm, with_poison(splits, self.poison), self.cfg.max_new_tokens,
                               self.cfg.cut_generation_prompts, clock, vocab_stats=shared)
        forget_stats = results["forget"].answer_stats
        collateral, generations = pop_collateral(results, self.poison)
        retain_forget = (read_retain_truth_ratios(self.cfg.retain_logs_path) if self.cfg.retain_logs_path
                         else reference_forget_scores(results, reference))
        out = tofu_family_output(results, retain_forget)
        out.metrics += collateral
        out.generations += generations
        # MIA per attack: forget answers vs the matching holdout split's (TOFU holdout01/05/10, never trained on).
        holdout = self._qa(holdout_split_for(self.cfg.forget_split))[: len(splits["forget"])]
        with clock.phase("mia", "forget vs holdout"):
            aucs, mia_scores = forget_holdout_mia(lm, [q.as_qa() for q in splits["forget"]], holdout, self.cfg.mia_style,
                                                  forget_stats)
        logged = read_retain_agg(self.cfg.retain_logs_path, "mia_min_k") if self.cfg.retain_logs_path else None
        rows, reference_auc = privleak_rows(aucs, reference, logged)
        out.metrics += aucs + rows
        out.reference_data |= reference_auc
        # open-unlearning's default TOFU metrics beyond TOFU's own (configs/eval/tofu.yaml), on the forget split.
        with clock.phase("memorization", "forget"):
            rows, memorization = memorization_rows(lm, "forget", [q.as_qa() for q in splits["forget"]], stats=forget_stats)
        out.metrics += rows + clock.rows
        # TOFU's file names, which its aggregate_eval_stat.py looks up (`get_model_utility`'s eval_task_dict).
        renamed = {f"eval_log_{name}.json": f"{EVAL_SPLITS[name][1]}.json" for name in results}
        out.logs = {renamed.get(key, key): value for key, value in out.logs.items()}
        mia_by_name = {TOFU_NAMES[("forget_holdout", f"auc_{attack}")]: scores for attack, scores in mia_scores.items()}
        out.logs |= eval_files("TOFU", out.metrics, TOFU_NAMES, tofu_per_example(results["forget"], memorization), mia_by_name)
        return out


def build(cfg: TofuConfig) -> TofuBenchmark:
    return TofuBenchmark(cfg)
