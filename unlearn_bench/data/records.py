"""Plain data records shared by every benchmark adapter.

A benchmark hands the runner lists of `QA` (question/answer pairs; `question=None` means raw text, trained
on every token, as MUSE and WMDP corpora are) and `EvalQA` (a QA pair with the answers TOFU-style metrics
score against it).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator


class DataError(ValueError):
    """Bad benchmark input; the message names the file, record and field."""


@dataclass(frozen=True)
class QA:
    question: str | None
    answer: str


@dataclass(frozen=True)
class EvalQA:
    question: str
    answer: str
    paraphrased_answer: str | None = None
    perturbed_answers: tuple[str, ...] = ()
    paraphrased_question: str | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def as_qa(self) -> QA:
        return QA(self.question, self.answer)


def parse_json(text: str, path: Path) -> Any:
    """`text`, the contents of the JSON file `path`, parsed; a DataError naming file and line if it does not parse."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: invalid JSON at line {e.lineno}: {e.msg}") from e


def read_text(path: Path) -> str:
    """The UTF-8 text of `path`; a DataError naming the file, line and byte offset if it does not decode."""
    raw = Path(path).read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise DataError(f"{path}: line {line}: not UTF-8 (byte {raw[e.start]:#04x} at offset {e.start}: {e.reason})") from None


def read_json_records(path: Path) -> list[dict[str, Any]]:
    """Records of a JSON Lines file, or of a JSON file holding one list; errors name file and line."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    text = read_text(path)
    stripped = text.lstrip()
    if stripped.startswith("["):
        records = parse_json(text, path)
    else:
        records = []
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise DataError(f"{path}: line {lineno}: invalid JSON: {e.msg}") from e
    for i, rec in enumerate(records, start=1):
        if not isinstance(rec, dict):
            raise DataError(f"{path}: record {i}: expected a JSON object, got {type(rec).__name__}")
    return records


def require_field(rec: dict[str, Any], name: str, kind: type | tuple[type, ...], path: Path | str, index: int) -> Any:
    """`rec[name]` checked for presence and type; `index` is the 1-based record (line) number."""
    if name not in rec:
        raise DataError(f"{path}: record {index}: missing field '{name}'")
    value = rec[name]
    if not isinstance(value, kind):
        raise DataError(f"{path}: record {index}: field '{name}' should be {kind}, got {type(value).__name__}")
    return value


def iter_chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
