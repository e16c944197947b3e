"""`bench=rwku`: RWKU, real-world knowledge unlearning (Jin et al. 2024, github.com/jinzhuoran/RWKU).

RWKU unlearns famous people the pretrained model already knows, so there is no fine-tuning stage: with a hub
model, set `model.finetune.epochs=0` (conf/experiment/rwku_llama3.yaml does) and the "target" is the base
model itself. RWKU has no retain-only reference model either, hence no forget-quality-style comparison: the
retain reference is trained on the same text as the target (`retain_train == target_train`), its rows repeat
the target's, and `evaluate` ignores `reference`. The one exception is `source=fictitious`, where the tiny
model must first learn its targets: there the target is fine-tuned on every trained author and the retain
reference on the same authors minus the targets, a model that never knew them (the floor of the forget
scores in the table, still not compared against by any metric).

Sources (`bench.source`):
- `local`: RWKU's per-target folders (`rwku_data` documents the layout) in `bench.data_dir`;
- `hub`: the same folders downloaded from `jinzhuoran/RWKU` (`bench.data_dir` = download cache);
- `fictitious` (default, offline): RWKU-style targets from the generated world (`fictitious.rwku_targets`).
`bench.targets` names targets (RWKU's single-target setting, `[1_Stephen_King]`); `bench.num_targets` takes
the first N (the batch setting); neither means the first target.

Corpora (`bench.forget_corpus`): `passages`, the targets' passages as raw text (RWKU's GA-on-passage variant,
LLaMA-Factory/scripts/full/run_ga_passage.sh); `generated`, RWKU's main setting (run_ga.sh / run_npo.sh train on
`positive.json`): biographies the target model writes about each target before unlearning
(`rwku_forget_corpus`), cached per target model and generation settings; `both`, the two together. The runner
asks for the generated texts through `generation_key` / `generate_forget` / `with_generated_forget` once the
target model exists. RWKU's main setting has no retain corpus
(`train/ga/workflow.py`, `run_ga`, trains on the forget dataset only), so `retain_corpus=none` is the default;
`other_targets` uses the passages of the other targets in the data folder (the other authors for
`fictitious`) for methods with a retain term; `neighbors` (fictitious only) the passages of the authors the
neighbour probes ask about. Refusals (idk-style methods) are the outputs of the targets'
reject.json (RWKU's RT data); there are no perturbed answers, so `method=wrong_answers` fails with a message.

Evaluation (LLaMA-Factory/src/llmtuner/eval/, `eval_forget`, `eval_neighbor`, `eval_mia`, `eval_fluency`):
greedy answers to RWKU's prompts (`metrics.rwku`; the bare prompt for a tokenizer without a chat template),
up to 30 tokens or the end of the turn (RWKU's newline terminators never fire: `metrics.rwku`), scored by
ROUGE-L recall with RWKU's `rouge` package: forget FB/QA/AA (lower is better, AA also per attack type) and
neighbour FB/QA (higher is better), pooled over targets as RWKU's batch files pool them. MIA: the mean loss, zlib and Min-K%++ (k=20%) scores of the forget_mia and retain_mia texts, as
`eval_mia` reports them (`metrics.rwku.mia_set_summary`), and each attack's AUC from the MIA suite (`mia_auc`,
forget_mia texts as members). Utility (`bench.utility_tasks`): RWKU's own per-target files, scored as its code
does (`rwku_utility_eval`): MMLU accuracy, BBH exact match, TruthfulQA MC1/MC2, TriviaQA EM/F1 and fluency
entropy, for the files the targets have (the fictitious targets have none); lm-eval tasks (the full MMLU, ...)
come from `eval.utility.tasks`.
Evaluation prompts may fill the model's context (`evaluation.lm.eval_lm`), as RWKU never cuts them;
`model.max_length` cuts training texts only.
"""
from __future__ import annotations

import math
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import Any, Optional, Sequence

from unlearn_bench.benchmarks.rwku.config import RwkuConfig
from unlearn_bench.benchmarks.base import BenchData, EvalOutput, Metric
from unlearn_bench.benchmarks.fictitious import rwku_targets
from unlearn_bench.benchmarks.fictitious.world import World
from unlearn_bench.benchmarks.rwku.forget_corpus import (
    generate_forget_corpus,
)
from unlearn_bench.benchmarks.rwku.data import (
    RWKUProbe,
    RWKUTarget,
    fetch_hub_targets,
    list_hub_targets,
    list_targets,
    load_target,
    select_targets,
)
from unlearn_bench.benchmarks.rwku.config import UTILITY_TASKS
from unlearn_bench.benchmarks.rwku.utility import evaluate_utility, utility_records
from unlearn_bench.data.records import QA, DataError
from unlearn_bench.evaluation.lm import LM
from unlearn_bench.evaluation.mia_eval import mia_scores
from unlearn_bench.metrics.mia import mia_auc
from unlearn_bench.benchmarks.rwku.metrics import (
    MIA_ATTACKS,
    MIA_MIN_K,
    mia_set_summary,
    probe_prompt,
    probe_scores,
    render_prompt,
    summarize_probe_scores,
)

SOURCES = ("fictitious", "local", "hub")
RETAIN_CORPORA = ("none", "other_targets", "neighbors")
FORGET_CORPORA = ("passages", "generated", "both")


def _cap(items: Sequence[Any], n: Optional[int]) -> list[Any]:
    return list(items if n is None else items[:n])


class RwkuBenchmark:
    name = "rwku"

    def __init__(self, cfg: RwkuConfig) -> None:
        if cfg.source not in SOURCES:
            raise ValueError(f"bench.source='{cfg.source}' is not one of {SOURCES}")
        if cfg.retain_corpus not in RETAIN_CORPORA:
            raise ValueError(f"bench.retain_corpus='{cfg.retain_corpus}' is not one of {RETAIN_CORPORA}")
        if cfg.forget_corpus not in FORGET_CORPORA:
            raise ValueError(f"bench.forget_corpus='{cfg.forget_corpus}' is not one of {FORGET_CORPORA}")
        unknown = [t for t in cfg.utility_tasks if t not in UTILITY_TASKS]
        if unknown:
            raise ValueError(f"bench.utility_tasks: {unknown} unknown; choose from {UTILITY_TASKS}")
        if cfg.source == "local" and cfg.data_dir is None:
            raise ValueError("bench.source=local needs bench.data_dir (a folder of RWKU target folders)")
        if cfg.source != "fictitious" and cfg.retain_corpus == "neighbors":
            raise ValueError("bench.retain_corpus=neighbors needs source=fictitious: RWKU has neighbour probes but no "
                             "passages about the neighbours; use retain_corpus=other_targets")
        if cfg.source == "hub" and cfg.retain_corpus == "other_targets":
            raise ValueError("bench.retain_corpus=other_targets needs source=local or fictitious: "
                             "the hub download holds the selected targets only")
        self.cfg = cfg

    # --- targets -----------------------------------------------------------------------------------------
    @cached_property
    def world(self) -> World:
        return rwku_targets.make_world(self.cfg.num_authors, self.cfg.holdout_authors, self.cfg.world_seed)

    @cached_property
    def _selected_authors(self) -> list[int]:
        return rwku_targets.select(self.world, self.cfg.num_authors, self.cfg.targets, self.cfg.num_targets)

    @cached_property
    def _data_dir(self) -> Path:
        """Where the RWKU target folders are (downloading the selected ones for source=hub)."""
        cfg = self.cfg
        if cfg.source == "local":
            return Path(cfg.data_dir).expanduser()
        names = cfg.targets if cfg.targets is not None else list_hub_targets(cfg.hub_revision)[: cfg.num_targets or 1]
        return fetch_hub_targets(names, cfg.data_dir, cfg.hub_revision)

    @cached_property
    def target_names(self) -> list[str]:
        cfg = self.cfg
        if cfg.source == "fictitious":
            names = rwku_targets.target_names(self.world, cfg.num_authors)
            return [names[i] for i in self._selected_authors]
        num = 1 if cfg.targets is None and cfg.num_targets is None else cfg.num_targets
        return select_targets(self._data_dir, cfg.targets, num)

    @cached_property
    def targets(self) -> list[RWKUTarget]:
        if self.cfg.source == "fictitious":
            return [rwku_targets.build_target(self.world, self.cfg.num_authors, self._selected_authors, i)
                    for i in self._selected_authors]
        return [load_target(self._data_dir, name) for name in self.target_names]

    def _retain_passages(self) -> list[str]:
        if self.cfg.retain_corpus == "none":
            return []
        if self.cfg.source == "fictitious":
            selected = self._selected_authors
            if self.cfg.retain_corpus == "neighbors":  # the authors the neighbour probes ask about
                others = list(dict.fromkeys(j for i in selected for j in rwku_targets.neighbors(selected, i, self.cfg.num_authors)))
            else:
                others = [i for i in range(self.cfg.num_authors) if i not in selected]
            return [p for i in others for p in rwku_targets.passages(self.world, i)]
        others = [n for n in list_targets(self._data_dir) if n not in self.target_names]
        if not others:
            raise DataError(f"{self._data_dir}: bench.retain_corpus=other_targets, but every target there is selected")
        # Wikipedia boilerplate ("== External links ==...") recurs across targets: keep it out of the retain side.
        forget = {p for t in self.targets for p in t.passages}
        return [p for name in others for p in load_target(self._data_dir, name).passages if p not in forget]

    # --- data ---------------------------------------------------------------------------------------------
    def data(self) -> BenchData:
        forget = [QA(None, p) for t in self.targets for p in t.passages]
        retain = [QA(None, p) for p in self._retain_passages()]
        refusals = list(dict.fromkeys(r.answer for t in self.targets for r in t.refusals))
        if self.cfg.source == "fictitious":
            trained = list(range(self.cfg.num_authors))
            never_targets = [i for i in trained if i not in self._selected_authors]
            target_train = [QA(None, x) for x in rwku_targets.training_texts(self.world, trained)]
            retain_train = [QA(None, x) for x in rwku_targets.training_texts(self.world, never_targets)]
            corpus = rwku_targets.tokenizer_texts(self.world)
        else:  # the knowledge a pretrained model already has; only used if model.finetune.epochs > 0
            target_train = retain_train = forget + retain
            corpus = [qa.answer for qa in target_train] + refusals + [
                f"{p.query} {p.answer}" for t in self.targets for p in t.forget_probes + t.neighbor_probes
            ] + [x for t in self.targets for x in t.mia_forget + t.mia_retain]
        return BenchData(target_train=target_train, retain_train=retain_train, forget=forget, retain=retain,
                         refusals=refusals, forget_perturbed=[], tokenizer_corpus=corpus)

    def data_key(self, role: str) -> dict[str, Any]:
        cfg = self.cfg
        if cfg.source == "fictitious":  # the target learns the whole world; the retain model all but the targets
            key: dict[str, Any] = {"name": cfg.name, "source": cfg.source, "num_authors": cfg.num_authors,
                                   "holdout_authors": cfg.holdout_authors, "world_seed": cfg.world_seed}
            if role == "retain":
                key["targets"] = self.target_names
            return key
        return {"name": cfg.name, "source": cfg.source, "targets": self.target_names,
                "retain_corpus": cfg.retain_corpus, "hub_revision": cfg.hub_revision}

    # --- evaluation ---------------------------------------------------------------------------------------
    def probes(self) -> dict[str, list[RWKUProbe]]:
        """Pooled probes per split, each level capped (forget: eval_max_examples, neighbour: retain_eval_examples)."""
        def pool(field: str, cap: Optional[int]) -> list[RWKUProbe]:
            return _cap([p for t in self.targets for p in getattr(t, field)], cap)

        forget_cap, neighbor_cap = self.cfg.eval_max_examples, self.cfg.retain_eval_examples
        return {
            "forget": pool("forget_fb", forget_cap) + pool("forget_qa", forget_cap) + pool("forget_aa", forget_cap),
            "neighbor": pool("neighbor_fb", neighbor_cap) + pool("neighbor_qa", neighbor_cap),
        }

    def check_inputs(self) -> None:
        """Every file evaluation reads, parsed now: the targets' probe, MIA and intro files (`load_target`; for
        source=hub the folders data() downloads) and the records of each of `utility_tasks` that the targets have."""
        for task in self.cfg.utility_tasks:
            utility_records(self.targets, task, self._utility_root, self.cfg.utility_max_examples)

    def evaluate(self, lm: LM, reference: dict[str, Any] | None) -> EvalOutput:
        metrics, generations = self._probe_metrics(lm)
        mia_metrics, mia_log = self._mia_metrics(lm)
        metrics += mia_metrics
        utility = evaluate_utility(lm, self.targets, self.cfg.utility_tasks, self._utility_root,
                                   self.cfg.utility_max_examples, self.cfg.utility_max_new_tokens)
        return EvalOutput(metrics + utility.metrics, generations + utility.generations,
                          {"rwku_mia.json": mia_log}, reference_data={})

    @property
    def _utility_root(self) -> str:
        """Where the targets' utility files are, for error messages."""
        return "fictitious" if self.cfg.source == "fictitious" else str(self._data_dir)

    # --- the model-generated forget corpus (forget_corpus=generated|both) ---------------------------------
    def generation_key(self) -> dict[str, Any] | None:
        """What determines the generated corpus besides the target model; None when none is used."""
        cfg = self.cfg
        if cfg.forget_corpus == "passages":
            return None
        return {"targets": self.target_names, "intros": [t.intro for t in self.targets],
                "per_target": cfg.generated_per_target, "openings": list(cfg.generated_openings),
                "max_new_tokens": cfg.generated_max_new_tokens, "top_p": cfg.generated_top_p,
                "top_k": cfg.generated_top_k}

    def generate_forget(self, lm: LM) -> list[dict[str, Any]]:
        """Biographies of the targets written by `lm` (the target model), as RWKU's positive.json records."""
        cfg = self.cfg
        return generate_forget_corpus(lm, self.targets, cfg.generated_per_target, list(cfg.generated_openings),
                                      cfg.generated_max_new_tokens, cfg.generated_top_p, cfg.generated_top_k)

    def with_generated_forget(self, data: BenchData, records: list[dict[str, Any]]) -> BenchData:
        generated = [QA(None, r["text"]) for r in records]
        return replace(data, forget=generated if self.cfg.forget_corpus == "generated" else data.forget + generated)

    def _probe_metrics(self, lm: LM) -> tuple[list[Metric], list[dict[str, Any]]]:
        metrics: list[Metric] = []
        generations: list[dict[str, Any]] = []
        splits = self.probes()
        every = [p for ps in splits.values() for p in ps]
        prompts = [render_prompt(probe_prompt(p.query, p.level, p.type, p.subject), lm.tokenizer) for p in every]
        answers = lm.generate(prompts, self.cfg.max_new_tokens, raw=True)
        start = 0
        for split, probes in splits.items():
            preds, split_prompts = answers[start: start + len(probes)], prompts[start: start + len(probes)]
            start += len(probes)
            scores = probe_scores(preds, [p.answer for p in probes])
            for s in summarize_probe_scores(split, [p.level for p in probes], [p.type for p in probes], scores):
                metrics.append(Metric(split, s.metric, s.value, s.higher_is_better))
            generations += [
                {"split": split, "prompt": prompt, "generation": pred, "reference": p.answer,
                 "level": p.level, "type": p.type, "subject": p.subject, "rouge_l_recall": score}
                for p, prompt, pred, score in zip(probes, split_prompts, preds, scores)
            ]
        return metrics, generations

    def _mia_metrics(self, lm: LM) -> tuple[list[Metric], dict[str, Any]]:
        forget = _cap([x for t in self.targets for x in t.mia_forget], self.cfg.eval_max_examples)
        retain = _cap([x for t in self.targets for x in t.mia_retain], self.cfg.retain_eval_examples)
        # eval_mia scores each text alone (`model(ids, labels=ids)`: BOS, no EOS), as mia_scores does raw text.
        scores = mia_scores(lm, [QA(None, x) for x in forget + retain], k=MIA_MIN_K)
        n = len(forget)
        metrics = [Metric("mia", s.metric, s.value, s.higher_is_better) for attack in MIA_ATTACKS
                   for s in mia_set_summary(attack, scores[attack][:n], scores[attack][n:])]
        for attack, values in scores.items():
            finite = [[x for x in part if not math.isnan(x)] for part in (values[:n], values[n:])]
            # Not monotone: 0.5 means forget_mia texts look like retain_mia texts; direction depends on the source.
            metrics.append(Metric("mia", f"mia_auc_{attack}", mia_auc(*finite), None))
        log = {"orientation": "members = forget_mia texts, non-members = retain_mia texts; "
                              "every score: higher = less likely a member",
               "min_k": MIA_MIN_K, "forget": {a: v[:n] for a, v in scores.items()},
               "retain": {a: v[n:] for a, v in scores.items()}}
        return metrics, log


def build(cfg: RwkuConfig) -> RwkuBenchmark:
    return RwkuBenchmark(cfg)
