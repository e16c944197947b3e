"""MUSE records (muse-bench/MUSE-News, muse-bench/MUSE-Books on the hub) as typed lists.

Hub layout: `load_dataset(hub_id, config, split=split)`, configs and splits as in the hub README (mirrored in
jaechan-repo/muse_bench data/bbc/readme.md). A local copy mirrors it as `<data_dir>/<corpus>/<config>/<split>.json`
(a JSON list or JSON Lines), the layout of swj0419/muse_bench constants.py `DEFAULT_DATA`
(e.g. "data/news/knowmem/forget_qa.json"). Without a `data_dir` the hub dataset is loaded.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, TypedDict

from unlearn_bench.data.hub import load_hub_dataset
from unlearn_bench.data.records import QA, DataError, EvalQA, read_json_records, require_field

HUB_IDS = {"news": "muse-bench/MUSE-News", "books": "muse-bench/MUSE-Books"}
SPLITS: dict[str, tuple[str, ...]] = {
    # raw: forget = to unlearn; retain1 = optional calibration set for unlearning; retain2 = retain set seen by
    # the target model, used for evaluation; holdout = never seen.
    "raw": ("forget", "retain1", "retain2", "holdout"),
    "verbmem": ("forget",),
    "knowmem": ("forget_qa", "retain_qa", "forget_qa_icl", "retain_qa_icl"),
    "privleak": ("forget", "retain", "holdout"),
    "scal": ("forget_1", "forget_2", "forget_3", "forget_4"),  # nested: forget_2 contains forget_1, ...
    "sust": ("forget_1", "forget_2", "forget_3", "forget_4"),  # pairwise disjoint, unlearned one after another
}
KNOWMEM_QA_SPLITS = ("forget_qa", "retain_qa")
TEXT_CONFIGS = ("raw", "privleak", "scal", "sust")


class VerbmemRecord(TypedDict):
    prompt: str  # the opening of a forget-set text, fed to the model
    gt: str  # its true continuation


def _check(corpus: str, config: str, split: str) -> None:
    if corpus not in HUB_IDS:
        raise ValueError(f"unknown MUSE corpus '{corpus}'; known: {sorted(HUB_IDS)}")
    if config not in SPLITS:
        raise ValueError(f"unknown MUSE config '{config}'; known: {sorted(SPLITS)}")
    if split not in SPLITS[config]:
        raise ValueError(f"MUSE config '{config}' has no split '{split}'; known: {list(SPLITS[config])}")


def split_path(corpus: str, config: str, split: str, data_dir: str | Path) -> Path:
    """The local file holding `corpus`/`config`/`split` (it may not exist)."""
    _check(corpus, config, split)
    return Path(data_dir) / corpus / config / f"{split}.json"


def load_muse_split(
    corpus: str, config: str, split: str, data_dir: str | Path | None = None
) -> tuple[list[dict[str, Any]], str]:
    """Raw records of one split and the source name errors should cite (file path or hub id/config/split)."""
    if data_dir is not None:
        path = split_path(corpus, config, split, data_dir)
        return read_json_records(path), str(path)
    _check(corpus, config, split)
    hub_id = HUB_IDS[corpus]
    return [dict(rec) for rec in load_hub_dataset(hub_id, config, split)], f"{hub_id} {config}/{split}"


def _text(rec: dict[str, Any], name: str, source: str, index: int) -> str:
    value = require_field(rec, name, str, source, index)
    if not value.strip():
        # An empty text has no tokens to score (MIA) and an empty reference makes ROUGE 0 for any model.
        raise DataError(f"{source}: record {index}: field '{name}' is empty")
    return value


def _check_qa_split(split: str) -> None:
    if split not in KNOWMEM_QA_SPLITS:
        raise ValueError(f"knowmem QA split must be one of {KNOWMEM_QA_SPLITS}, got '{split}'")


def load_knowmem(corpus: str, split: str = "forget_qa", data_dir: str | Path | None = None) -> list[EvalQA]:
    """The knowmem questions and gold answers (100 per split on the hub)."""
    _check_qa_split(split)
    records, source = load_muse_split(corpus, "knowmem", split, data_dir)
    return [EvalQA(_text(rec, "question", source, i), _text(rec, "answer", source, i))
            for i, rec in enumerate(records, start=1)]


def load_icl(corpus: str, split: str = "forget_qa", data_dir: str | Path | None = None) -> list[QA]:
    """The few-shot examples MUSE prompts `split` with (`{split}_icl`, 10 per split; metrics/knowmem.py)."""
    _check_qa_split(split)
    records, source = load_muse_split(corpus, "knowmem", f"{split}_icl", data_dir)
    return [QA(_text(rec, "question", source, i), _text(rec, "answer", source, i))
            for i, rec in enumerate(records, start=1)]


def load_verbmem(corpus: str, data_dir: str | Path | None = None) -> list[VerbmemRecord]:
    """Prompt / true-continuation pairs from the forget set (verbmem has the one split `forget`)."""
    records, source = load_muse_split(corpus, "verbmem", "forget", data_dir)
    return [VerbmemRecord(prompt=_text(rec, "prompt", source, i), gt=_text(rec, "gt", source, i))
            for i, rec in enumerate(records, start=1)]


def load_texts(corpus: str, config: str, split: str, data_dir: str | Path | None = None) -> list[str]:
    """The `text` field of every record of a text config (raw, privleak, scal, sust)."""
    if config not in TEXT_CONFIGS:
        raise ValueError(f"load_texts reads {TEXT_CONFIGS}, not '{config}'")
    records, source = load_muse_split(corpus, config, split, data_dir)
    return [_text(rec, "text", source, i) for i, rec in enumerate(records, start=1)]


def load_raw(corpus: str, split: str, data_dir: str | Path | None = None) -> list[str]:
    """Raw corpus texts: the forget set to unlearn, the retain sets, or the holdout set."""
    return load_texts(corpus, "raw", split, data_dir)


def load_privleak(corpus: str, data_dir: str | Path | None = None) -> dict[str, list[str]]:
    """{"forget", "retain", "holdout"} texts for the MIA behind PrivLeak (metrics/privleak.py `eval`)."""
    return {split: load_texts(corpus, "privleak", split, data_dir) for split in SPLITS["privleak"]}
