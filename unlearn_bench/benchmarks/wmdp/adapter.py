"""`bench=wmdp`: WMDP (Li et al. 2024, github.com/centerforaisafety/wmdp), hazardous knowledge measured by
multiple choice, removed by unlearning on text corpora.

- Unlearning data: `forget_corpora` and `retain_corpora`, each entry a hub spec `<dataset>:<config>[:<split>]`
  (split `train` unless given; `cais/wmdp-corpora:cyber-forget-corpus`, `wikitext:wikitext-2-raw-v1:test`) or a
  local file: JSON Lines / a JSON list of `{"text": ...}` records (the schema of the WMDP corpora; the bio forget
  corpus is gated, so its users bring `bio-forget-corpus.jsonl`) or `.txt`, one document a line. As the authors'
  rmu/utils.py `get_data`, documents of `corpus_min_chars` characters or fewer are dropped (rmu/unlearn.py passes
  `--min_len` 0: empty lines go) and each document is one raw-text example (`QA(None, text)`), truncated on the
  right at `model.max_length` tokens (rmu/unlearn.py: `truncation=True, max_length=512`).
  Differences kept on purpose: batches mix the forget corpora at random (rmu/unlearn.py alternates topics, takes
  batches in file order, and truncates the second topic at 768 tokens), and retain batches are drawn at random.
- No fine-tuning stage: the target is the pretrained model (run with `model.finetune.epochs=0`, as
  experiment=wmdp_rmu_zephyr does), and WMDP has no retrained model, so the "retain reference" is the same base
  model and forget-quality-style comparisons against it are not meaningful. With fine-tuning on, the target
  trains on both corpora and the retain reference on the retain corpora only.
- Evaluation through lm-eval (`unlearn_bench.evaluation.lm_eval`, zero-shot WMDP as its config): `eval_tasks`
  rows in split `wmdp` (lower accuracy is better after unlearning), `utility_tasks` (MMLU) in split `mmlu`
  (higher is better); `data_dir` reads both offline (layouts in `wmdp_data`), `eval_limit` caps questions per task.
- `source: fictitious`: the same design on the generated world, offline (`fictitious/hazard.py`).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from unlearn_bench.benchmarks.wmdp.config import WmdpConfig
from unlearn_bench.benchmarks.base import BenchData, EvalOutput, Metric
from unlearn_bench.benchmarks.fictitious.hazard import FictitiousHazard
from unlearn_bench.benchmarks.wmdp.data import check_offline_tasks
from unlearn_bench.data.hub import load_hub_dataset
from unlearn_bench.data.records import QA, DataError, read_json_records, read_text, require_field
from unlearn_bench.evaluation.lm import LM
from unlearn_bench.evaluation.lm_eval import evaluate_tasks

log = logging.getLogger(__name__)

SOURCES = ("wmdp", "fictitious")
JSON_SUFFIXES = (".jsonl", ".json")
TEXT_SUFFIXES = (".txt",)


def is_local(spec: str) -> bool:
    return Path(spec).suffix in JSON_SUFFIXES + TEXT_SUFFIXES or Path(spec).expanduser().exists()


def corpus_ids(specs: list[str]) -> list[str]:
    """Hub specs as given, local files by name: their contents reach the cache key through the training texts'
    digest (`Context.model_key`), so neither the working dir nor a moved file changes it."""
    return [f"local:{Path(s).name}" if is_local(s) else s for s in specs]


def read_corpus_file(path: Path) -> list[str]:
    if path.suffix in TEXT_SUFFIXES:
        if not path.is_file():
            raise DataError(f"{path}: file not found")
        return read_text(path).splitlines()
    return [require_field(rec, "text", str, path, i) for i, rec in enumerate(read_json_records(path), start=1)]


def read_hub_corpus(spec: str) -> list[str]:
    """`<dataset>:<config>[:<split>]` from the hub, its `text` column (the WMDP corpora's and wikitext's)."""
    parts = spec.split(":")
    if len(parts) not in (2, 3):
        raise ValueError(f"corpus {spec!r}: expected <dataset>:<config>[:<split>] or a .jsonl/.json/.txt file")
    try:
        ds = load_hub_dataset(parts[0], parts[1], parts[2] if len(parts) == 3 else "train",
                              local_field="bench.forget_corpora / bench.retain_corpora")
    except DataError:  # the hub out of reach: said with the offline way
        raise
    except Exception as e:  # gating and unknown names surface here, with differing types
        raise DataError(f"corpus {spec!r}: cannot load it from the hub ({type(e).__name__}: {e}); "
                        "a local .jsonl file of {\"text\": ...} records works offline") from e
    if "text" not in ds.column_names:
        raise DataError(f"corpus {spec!r}: no 'text' column (columns: {ds.column_names})")
    return list(ds["text"])


def load_corpus(spec: str, min_chars: int, field_name: str) -> list[str]:
    """The documents of one corpus entry; errors name the config field and the entry."""
    try:
        texts = read_corpus_file(Path(spec).expanduser()) if is_local(spec) else read_hub_corpus(spec)
    except (DataError, ValueError) as e:
        raise DataError(f"bench.{field_name}: {e}") from e
    kept = [t for t in texts if len(t) > min_chars]
    if not kept:
        raise DataError(f"bench.{field_name}: {spec}: no document longer than {min_chars} characters")
    log.info("corpus %s: %d of %d documents kept", spec, len(kept), len(texts))
    return kept


class WmdpBenchmark:
    name = "wmdp"

    def __init__(self, cfg: WmdpConfig) -> None:
        if not cfg.forget_corpora:
            raise ValueError("bench.forget_corpora is empty: WMDP unlearns on at least one forget corpus")
        if not cfg.eval_tasks + cfg.utility_tasks:
            raise ValueError("bench.eval_tasks and bench.utility_tasks are both empty: nothing to evaluate")
        self.cfg = cfg

    def _corpora(self, field_name: str) -> list[QA]:
        return [QA(None, t) for spec in getattr(self.cfg, field_name)
                for t in load_corpus(spec, self.cfg.corpus_min_chars, field_name)]

    def data(self) -> BenchData:
        forget, retain = self._corpora("forget_corpora"), self._corpora("retain_corpora")
        return BenchData(
            target_train=forget + retain,
            retain_train=retain,
            forget=forget,
            retain=retain,
            tokenizer_corpus=[qa.answer for qa in forget + retain],
        )

    def data_key(self, role: str) -> dict[str, Any]:
        # Both roles: the tiny model's tokenizer is trained on every corpus.
        return {"name": self.name, "forget_corpora": corpus_ids(self.cfg.forget_corpora),
                "retain_corpora": corpus_ids(self.cfg.retain_corpora), "min_chars": self.cfg.corpus_min_chars}

    def check_inputs(self) -> None:
        """The question files of `eval_tasks` and `utility_tasks` under `data_dir`, read now so a bad one fails before
        any training; with the hub (no `data_dir`) lm-eval downloads them at evaluation and nothing is read here."""
        if self.cfg.data_dir is not None:
            check_offline_tasks(self.cfg.eval_tasks + self.cfg.utility_tasks, Path(self.cfg.data_dir).expanduser())

    def evaluate(self, lm: LM, reference: dict[str, Any] | None) -> EvalOutput:
        rows = evaluate_tasks(lm.model, lm.tokenizer, self.cfg.eval_tasks + self.cfg.utility_tasks,
                              data_dir=self.cfg.data_dir, batch_size=lm.batch_size, limit=self.cfg.eval_limit,
                              wrapper=lm.wrapper)
        metrics = [
            Metric("wmdp", f"{r['task']}/{r['metric']}", r["value"], False) if r["task"].startswith("wmdp")
            else Metric("mmlu", f"{r['task']}/{r['metric']}", r["value"], True)
            for r in rows
        ]
        return EvalOutput(metrics, logs={"lm_eval.json": rows})


def build(cfg: WmdpConfig) -> WmdpBenchmark | FictitiousHazard:
    if cfg.source not in SOURCES:
        raise ValueError(f"bench.source={cfg.source!r} is not one of {SOURCES}")
    if cfg.source == "fictitious":
        return FictitiousHazard(cfg.num_authors, cfg.hazard_percent, cfg.world_seed)
    return WmdpBenchmark(cfg)
