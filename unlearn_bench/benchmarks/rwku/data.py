"""RWKU records (Jin et al. 2024, github.com/jinzhuoran/RWKU; hub dataset `jinzhuoran/RWKU`), one target at a time.

Layout, as RWKU's `process/data_process.py` writes it and the hub's `Target/` folder holds it: one folder per
target named `{rank}_{name with spaces as _}` (`1_Stephen_King`), holding
- probes: forget_level1 (fill-in-the-blank, FB), forget_level2 (question-answer, QA), forget_level3 (adversarial
  attack, AA, with the attack in `type`), neighbor_level1/2 (FB/QA about neighbouring entities, field `neighbor`);
  every probe has `subject`, `level` (a string, "1".."3"), `query`, `type`, `answer`;
- MIA texts: forget_mia (passages about the target: members) and retain_mia (about others), field `text`;
- intro.json ([{"intro", "target"}]) and passage.json (the original Wikipedia passages GA-on-passage trains on);
- utility files (retain_mmlu, retain_bbh, truthful, triviaqa, fluency), forget_words.json (a list of strings)
  and reject.json (RT's refusal data): present in RWKU, optional here because the shared copy trims them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unlearn_bench.data.hub import from_hub, load_hub_dataset
from unlearn_bench.data.records import QA, DataError, parse_json, read_json_records, read_text, require_field

HUB_ID = "jinzhuoran/RWKU"
# The hub repo (huggingface.co/datasets/jinzhuoran/RWKU) holds process/data_process.py's per-target layout here.
HUB_TARGET_DIR = "Target"

FB, QA_LEVEL, AA = 1, 2, 3
FORGET_FILES = {FB: "forget_level1.json", QA_LEVEL: "forget_level2.json", AA: "forget_level3.json"}
NEIGHBOR_FILES = {FB: "neighbor_level1.json", QA_LEVEL: "neighbor_level2.json"}
FORGET_MIA_FILE = "forget_mia.json"
RETAIN_MIA_FILE = "retain_mia.json"
INTRO_FILE = "intro.json"
PASSAGE_FILE = "passage.json"
# The utility files RWKU's `train/ga/workflow.py` (`run_ga`) reads for every target: MMLU (general), BBH
# (reasoning), TruthfulQA (truthfulness), TriviaQA (factuality) and fluency instructions.
UTILITY_FILES = ("retain_mmlu.json", "retain_bbh.json", "truthful.json", "triviaqa.json", "fluency.json")
FORGET_WORDS_FILE = "forget_words.json"
REJECT_FILE = "reject.json"
TARGET_FILES = (
    *FORGET_FILES.values(), *NEIGHBOR_FILES.values(), FORGET_MIA_FILE, RETAIN_MIA_FILE, INTRO_FILE, PASSAGE_FILE,
    *UTILITY_FILES, FORGET_WORDS_FILE, REJECT_FILE,
)

_TARGET_DIR = re.compile(r"^(\d+)_.+")


@dataclass(frozen=True)
class RWKUProbe:
    query: str
    answer: str
    type: str  # "cloze", "simple question", or the attack for AA probes ("prefix injection", ...)
    level: int  # 1 = FB, 2 = QA, 3 = AA
    subject: str  # the unlearning target
    neighbor: str | None = None  # the neighbouring entity, for neighbour probes only


@dataclass(frozen=True)
class RWKUTarget:
    name: str  # folder name, "1_Stephen_King"
    subject: str  # "Stephen King"
    intro: str
    forget_fb: tuple[RWKUProbe, ...]
    forget_qa: tuple[RWKUProbe, ...]
    forget_aa: tuple[RWKUProbe, ...]
    neighbor_fb: tuple[RWKUProbe, ...]
    neighbor_qa: tuple[RWKUProbe, ...]
    mia_forget: tuple[str, ...]  # members: text about the target
    mia_retain: tuple[str, ...]  # non-members
    passages: tuple[str, ...]
    # Raw records keyed by file stem ("retain_mmlu", ...), only the files present; their scorers own the schema.
    utility: dict[str, tuple[dict[str, Any], ...]] = field(default_factory=dict)
    forget_words: tuple[str, ...] = ()
    refusals: tuple[QA, ...] = ()

    @property
    def forget_probes(self) -> tuple[RWKUProbe, ...]:
        return self.forget_fb + self.forget_qa + self.forget_aa

    @property
    def neighbor_probes(self) -> tuple[RWKUProbe, ...]:
        return self.neighbor_fb + self.neighbor_qa


def _target_rank(name: str) -> int | None:
    m = _TARGET_DIR.match(name)
    return int(m.group(1)) if m else None


def list_targets(data_dir: Path | str) -> list[str]:
    """Target folders in RWKU's rank order (1, 2, ..., 10, not 1, 10, 2): the batch setting takes the first N."""
    root = Path(data_dir)
    if not root.is_dir():
        raise DataError(f"{root}: RWKU data directory not found")
    names = [p.name for p in root.iterdir() if p.is_dir() and _target_rank(p.name) is not None]
    if not names:
        raise DataError(f"{root}: no RWKU target folders (expected names like '1_Stephen_King')")
    return sorted(names, key=lambda n: (_target_rank(n), n))


def select_targets(data_dir: Path | str, targets: list[str] | None = None, num_targets: int | None = None) -> list[str]:
    """`targets` by name, or the first `num_targets` (RWKU's batch runs use targets 1-10 ... 1-50,
    scripts/batch/run_ga_batch.sh), or every target when both are None."""
    available = list_targets(data_dir)
    if targets is not None and num_targets is not None:
        raise ValueError("select_targets: give targets or num_targets, not both")
    if targets is not None:
        if not targets:
            raise ValueError("select_targets: empty target list")
        missing = [t for t in targets if t not in available]
        if missing:
            raise DataError(f"{data_dir}: unknown RWKU targets {missing}; available: {available}")
        return list(targets)
    if num_targets is not None:
        if not 1 <= num_targets <= len(available):
            raise ValueError(f"select_targets: num_targets={num_targets}, but {data_dir} holds {len(available)} targets")
        return available[:num_targets]
    return available


def _str_field(rec: dict[str, Any], name: str, path: Path, index: int) -> str:
    return require_field(rec, name, str, path, index)


def parse_probes(records: list[dict[str, Any]], path: Path, level: int, neighbor: bool) -> tuple[RWKUProbe, ...]:
    """Typed probes; `level` is the one the file's name promises, so a record filed in the wrong level fails."""
    probes = []
    for i, rec in enumerate(records, start=1):
        raw_level = require_field(rec, "level", (str, int), path, i)
        if str(raw_level) != str(level):
            raise DataError(f"{path}: record {i}: field 'level' is {raw_level!r}, expected '{level}' for this file")
        probes.append(
            RWKUProbe(
                query=_str_field(rec, "query", path, i),
                answer=_str_field(rec, "answer", path, i),
                type=_str_field(rec, "type", path, i),
                level=level,
                subject=_str_field(rec, "subject", path, i),
                neighbor=_str_field(rec, "neighbor", path, i) if neighbor else None,
            )
        )
    return tuple(probes)


def _texts(path: Path) -> tuple[str, ...]:
    return tuple(_str_field(rec, "text", path, i) for i, rec in enumerate(read_json_records(path), start=1))


def _read_strings(path: Path) -> tuple[str, ...]:
    """forget_words.json is a JSON list of strings, not of objects."""
    items = parse_json(read_text(path), path)
    if not isinstance(items, list):
        raise DataError(f"{path}: expected a JSON list of strings, got {type(items).__name__}")
    for i, item in enumerate(items, start=1):
        if not isinstance(item, str):
            raise DataError(f"{path}: record {i}: expected a string, got {type(item).__name__}")
    return tuple(items)


def _refusals(path: Path) -> tuple[QA, ...]:
    """reject.json is alpaca-style; LLaMA-Factory (which RWKU's RT trains with) joins instruction and input
    with a newline into the user turn (llmtuner/data/aligner.py, `convert_alpaca`)."""
    out = []
    for i, rec in enumerate(read_json_records(path), start=1):
        instruction = _str_field(rec, "instruction", path, i)
        extra = rec.get("input") or ""
        if not isinstance(extra, str):
            raise DataError(f"{path}: record {i}: field 'input' should be a string, got {type(extra).__name__}")
        question = f"{instruction}\n{extra}" if extra else instruction
        out.append(QA(question, _str_field(rec, "output", path, i)))
    return tuple(out)


def _intro(path: Path) -> tuple[str, str]:
    records = read_json_records(path)
    if len(records) != 1:
        raise DataError(f"{path}: expected exactly one record, got {len(records)}")
    return _str_field(records[0], "target", path, 1), _str_field(records[0], "intro", path, 1)


def load_target(data_dir: Path | str, target: str) -> RWKUTarget:
    folder = Path(data_dir) / target
    if not folder.is_dir():
        raise DataError(f"{folder}: RWKU target folder not found")
    subject, intro = _intro(folder / INTRO_FILE)

    def probes(name: str, level: int, neighbor: bool) -> tuple[RWKUProbe, ...]:
        path = folder / name
        return parse_probes(read_json_records(path), path, level, neighbor)

    utility = {
        Path(name).stem: tuple(read_json_records(folder / name)) for name in UTILITY_FILES if (folder / name).is_file()
    }
    words_path, reject_path = folder / FORGET_WORDS_FILE, folder / REJECT_FILE
    return RWKUTarget(
        name=target,
        subject=subject,
        intro=intro,
        forget_fb=probes(FORGET_FILES[FB], FB, neighbor=False),
        forget_qa=probes(FORGET_FILES[QA_LEVEL], QA_LEVEL, neighbor=False),
        forget_aa=probes(FORGET_FILES[AA], AA, neighbor=False),
        neighbor_fb=probes(NEIGHBOR_FILES[FB], FB, neighbor=True),
        neighbor_qa=probes(NEIGHBOR_FILES[QA_LEVEL], QA_LEVEL, neighbor=True),
        mia_forget=_texts(folder / FORGET_MIA_FILE),
        mia_retain=_texts(folder / RETAIN_MIA_FILE),
        passages=_texts(folder / PASSAGE_FILE),
        utility=utility,
        forget_words=_read_strings(words_path) if words_path.is_file() else (),
        refusals=_refusals(reject_path) if reject_path.is_file() else (),
    )


def list_hub_targets(revision: str | None = None) -> list[str]:
    """Target folder names from the hub's `forget_target` config, numbered as RWKU's process/data_process.py
    names the folders (`str(cnt) + '_' + target.replace(' ', '_')`, cnt from 1). Needs network."""
    names = load_hub_dataset(HUB_ID, "forget_target", "train", revision=revision)["target"]
    return [f"{rank}_{name.replace(' ', '_')}" for rank, name in enumerate(names, start=1)]


def fetch_hub_targets(targets: list[str], cache_dir: Path | str | None = None, revision: str | None = None) -> Path:
    """Download the named targets' files from the hub; returns a directory `load_target` reads.

    The hub's per-probe configs (forget_level1..3, neighbor_level1..2, utility_*, train_original_passage; RWKU
    README and process/data_process.py) pool all 200 targets, and the MIA files have no config RWKU's own code
    loads; the `Target/` folders hold every file per target, so downloading them keeps one parsing path. Only
    the files read here are fetched: the folders also hold ~10 MB of generated training corpora per target."""
    from huggingface_hub import snapshot_download

    local = from_hub(f"{HUB_ID} ({HUB_TARGET_DIR}/)", "bench.data_dir", lambda: snapshot_download(
        repo_id=HUB_ID,
        repo_type="dataset",
        revision=revision,
        cache_dir=None if cache_dir is None else str(cache_dir),
        allow_patterns=[f"{HUB_TARGET_DIR}/{t}/{name}" for t in targets for name in TARGET_FILES],
    ))
    return Path(local) / HUB_TARGET_DIR
