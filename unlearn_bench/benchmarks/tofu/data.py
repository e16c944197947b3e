"""TOFU records (locuslab/TOFU on the hub) as typed QA / EvalQA lists.

Files in a local directory are named like the hub configs: `{split}.json` (JSON Lines despite the suffix, as
the hub ships them) or `{split}.jsonl`. Without a directory the hub dataset is loaded.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from unlearn_bench.data.hub import load_hub_dataset
from unlearn_bench.data.records import QA, DataError, EvalQA, read_json_records, read_text, require_field

HUB_ID = "locuslab/TOFU"
FORGET_SPLITS = ("forget01", "forget05", "forget10")
SPLITS = frozenset({
    "full", *FORGET_SPLITS, "retain90", "retain95", "retain99",
    *(f"{s}_perturbed" for s in FORGET_SPLITS), "retain_perturbed",
    "holdout01", "holdout05", "holdout10",
    "real_authors", "real_authors_perturbed", "world_facts", "world_facts_perturbed",
})
# The retain set is the complement of the forget set in `full` (4000 = 400 + 3600, etc.).
_RETAIN_FOR = {"forget01": "retain99", "forget05": "retain95", "forget10": "retain90"}
REFUSALS_FILE = "idontknow.jsonl"  # from the TOFU GitHub repo's data/, not a hub config


def split_path(name: str, data_dir: str | Path) -> Path:
    """The local file holding split `name`; DataError naming the directory and split if there is none."""
    _check_split(name)
    directory = Path(data_dir)
    for suffix in (".json", ".jsonl"):
        path = directory / f"{name}{suffix}"
        if path.is_file():
            return path
    raise DataError(f"{directory}: no file for TOFU split '{name}' (looked for {name}.json and {name}.jsonl)")


def load_tofu_split(name: str, data_dir: str | Path | None, hub_id: str = HUB_ID) -> list[dict[str, Any]]:
    """Raw records of one TOFU split, from `data_dir` or (data_dir=None) from the hub."""
    if data_dir is not None:
        return read_json_records(split_path(name, data_dir))
    _check_split(name)
    # Every TOFU config has a single split named "train".
    return [dict(rec) for rec in load_hub_dataset(hub_id, name, "train")]


def to_qa(records: Sequence[dict[str, Any]], path: str | Path) -> list[QA]:
    """Question/answer pairs; `path` names the source in errors."""
    return [QA(require_field(rec, "question", str, path, i), require_field(rec, "answer", str, path, i))
            for i, rec in enumerate(records, start=1)]


def to_eval_qa(records: Sequence[dict[str, Any]], path: str | Path, *, expect_perturbed: int | None) -> list[EvalQA]:
    """Records of a *_perturbed split, validated.

    Every record needs `perturbed_answer`, a non-empty list of strings of one length across the file
    (`expect_perturbed` if given, else the first record's): the truth ratio averages over that axis, so a
    ragged file would silently change what is averaged. `paraphrased_answer` / `paraphrased_question` are
    optional (real_authors and world_facts have neither) but must be strings where present.
    """
    width = expect_perturbed
    out: list[EvalQA] = []
    for i, rec in enumerate(records, start=1):
        perturbed = require_field(rec, "perturbed_answer", list, path, i)
        if not perturbed or not all(isinstance(a, str) for a in perturbed):
            raise DataError(f"{path}: record {i}: field 'perturbed_answer' should be a non-empty list of strings")
        if width is None:
            width = len(perturbed)
        elif len(perturbed) != width:
            raise DataError(f"{path}: record {i}: field 'perturbed_answer' has {len(perturbed)} answers, "
                            f"expected {width} like the rest of the file")
        out.append(EvalQA(
            question=require_field(rec, "question", str, path, i),
            answer=require_field(rec, "answer", str, path, i),
            paraphrased_answer=_optional_str(rec, "paraphrased_answer", path, i),
            perturbed_answers=tuple(perturbed),
            paraphrased_question=_optional_str(rec, "paraphrased_question", path, i),
        ))
    return out


def retain_split_for(forget_split: str) -> str:
    """forget01 -> retain99, forget05 -> retain95, forget10 -> retain90."""
    try:
        return _RETAIN_FOR[forget_split]
    except KeyError:
        raise ValueError(f"no TOFU retain split for '{forget_split}'; expected one of {FORGET_SPLITS}") from None


def holdout_split_for(forget_split: str) -> str:
    """forget10 -> holdout10 etc.: same-size sets of questions about fictitious authors absent from `full`."""
    if forget_split not in FORGET_SPLITS:
        raise ValueError(f"no TOFU holdout split for '{forget_split}'; expected one of {FORGET_SPLITS}")
    return "holdout" + forget_split.removeprefix("forget")


def load_refusals(data_dir: str | Path) -> list[str]:
    """Refusal answers ("I don't know" variants), one plain-text line each, blank lines skipped."""
    path = Path(data_dir) / REFUSALS_FILE
    if not path.is_file():
        raise DataError(f"{path}: file not found (TOFU refusal answers)")
    refusals = [line.strip() for line in read_text(path).splitlines() if line.strip()]
    if not refusals:
        raise DataError(f"{path}: no refusal lines")
    return refusals


def _check_split(name: str) -> None:
    if name not in SPLITS:
        raise ValueError(f"unknown TOFU split '{name}'; expected one of {sorted(SPLITS)}")


def _optional_str(rec: dict[str, Any], name: str, path: str | Path, index: int) -> str | None:
    return require_field(rec, name, str, path, index) if name in rec else None
