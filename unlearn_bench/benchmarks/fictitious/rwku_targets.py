"""RWKU-style targets built from the generated world: `bench=rwku bench.source=fictitious`, offline.

The "famous people" are the world's authors (`fictitious.world`), each with the probe files RWKU ships per
target (jinzhuoran/RWKU, process/data_process.py), built from the author's ten facts:
- passages: a short bio, one declarative sentence per fact, split in two (RWKU: Wikipedia passages);
- FB: each bio sentence with its fact blanked as "___" (RWKU's level 1 cloze probes blank Wikipedia sentences);
- QA: the world's question per fact, answered by the bare fact (RWKU's answers are short spans);
- AA: typed rephrasings named like RWKU's level-3 attack types (reverse queries answer with the author);
- neighbours: the FB/QA probes of the next non-target authors (RWKU: probes about related entities);
- MIA: the target's passages (members: trained on) vs holdout authors' passages (never trained on).

Unlike RWKU's pretrained models, the tiny model learns these authors by fine-tuning on `training_texts`:
every trained author's passages and FB/QA probes as raw text in RWKU's bare prompt (`render_prompt` for a
tokenizer without a chat template), so the target knows its targets; AA probes are never trained on.
"""
from __future__ import annotations

from dataclasses import dataclass

from unlearn_bench.benchmarks.fictitious.adapter import REFUSALS
from unlearn_bench.benchmarks.fictitious.world import World, generate_world
from unlearn_bench.benchmarks.rwku.data import AA, FB, QA_LEVEL, RWKUProbe, RWKUTarget
from unlearn_bench.data.records import QA, DataError
from unlearn_bench.benchmarks.rwku.metrics import probe_prompt

# One sentence per world question template, in world._TEMPLATES order (birthplace, birth date, parents, genre,
# book, second book, award, mentor, pen name, home city); `{n}` is the author, `{v}` the fact.
SENTENCES = (
    "{n} was born in {v}.",
    "{n} was born on {v}.",
    "The parents of {n} were a {v}.",
    "{n} writes {v}.",
    "{n} wrote the book {v}.",
    "{n} also wrote {v}.",
    "{n} received the {v}.",
    "The mentor of {n} was {v}.",
    "{n} publishes under the pen name {v}.",
    "{n} now lives in {v}.",
)
# RWKU's attack types (forget_level3.json `type`), assigned to the facts in turn; cross-lingual ones are left out.
ATTACKS = ("synonym manipulation", "prefix injection", "affirmative suffix", "role play", "incontext learning",
           "context hint", "multiple choice")
REVERSE_QUERY = "reverse query"
# Facts that identify their author, asked in reverse (RWKU: "Who performed the theme song of Mulan?").
REVERSE = {4: "Which author wrote the book {v}?", 8: "Which author publishes under the pen name {v}?"}
NEIGHBORS_PER_TARGET = 2
BIO_SPLIT = 5  # sentences in the first passage


@dataclass(frozen=True)
class _Fact:
    question: str
    paraphrased_question: str
    value: str
    sentence: str


def make_world(num_authors: int, holdout_authors: int, seed: int) -> World:
    """`num_authors` trained authors (the candidate targets and neighbours) then `holdout_authors` never trained."""
    if num_authors < 1 + NEIGHBORS_PER_TARGET or holdout_authors < 1:
        raise ValueError(f"bench.num_authors={num_authors} and bench.holdout_authors={holdout_authors}: need at "
                         f"least {1 + NEIGHBORS_PER_TARGET} authors and 1 holdout author")
    return generate_world(num_authors + holdout_authors, seed)


def target_names(world: World, num_authors: int) -> list[str]:
    """Folder-style names in rank order, as RWKU names its targets ("1_Stephen_King")."""
    return [f"{i + 1}_{a.name.replace(' ', '_')}" for i, a in enumerate(world.authors[:num_authors])]


def select(world: World, num_authors: int, targets: list[str] | None, num_targets: int | None) -> list[int]:
    """Author indices of `targets` (names) or of the first `num_targets`, as rwku_data.select_targets does."""
    names = target_names(world, num_authors)
    if targets is not None and num_targets is not None:
        raise ValueError("bench.targets and bench.num_targets: give one, not both")
    if targets is not None:
        missing = [t for t in targets if t not in names]
        if missing or not targets:
            raise DataError(f"fictitious RWKU world: unknown targets {missing or targets}; the first are {names[:5]}")
        return [names.index(t) for t in targets]
    n = 1 if num_targets is None else num_targets
    if not 1 <= n <= num_authors - NEIGHBORS_PER_TARGET:
        raise ValueError(f"bench.num_targets={n}: the world has {num_authors} authors, and every target needs "
                         f"{NEIGHBORS_PER_TARGET} non-target neighbours")
    return list(range(n))


def _facts(world: World, i: int) -> list[_Fact]:
    name = world.authors[i].name
    if len(world.author_qa[i]) != len(SENTENCES):
        raise ValueError(f"world author {i} has {len(world.author_qa[i])} facts, SENTENCES covers {len(SENTENCES)}")
    return [_Fact(qa.question, qa.paraphrased_question or qa.question, qa.meta["value"],
                  s.format(n=name, v=qa.meta["value"])) for qa, s in zip(world.author_qa[i], SENTENCES)]


def passages(world: World, i: int) -> tuple[str, str]:
    sentences = [f.sentence for f in _facts(world, i)]
    return " ".join(sentences[:BIO_SPLIT]), " ".join(sentences[BIO_SPLIT:])


def fb_probes(world: World, i: int, subject: str, neighbor: str | None = None) -> tuple[RWKUProbe, ...]:
    return tuple(RWKUProbe(f.sentence.replace(f.value, "___"), f.value, "cloze", FB, subject, neighbor)
                 for f in _facts(world, i))


def qa_probes(world: World, i: int, subject: str, neighbor: str | None = None) -> tuple[RWKUProbe, ...]:
    return tuple(RWKUProbe(f.question, f.value, "simple question", QA_LEVEL, subject, neighbor) for f in _facts(world, i))


def _attack(kind: str, facts: list[_Fact], t: int, wrong: list[str], name: str) -> str:
    f, other = facts[t], facts[(t + 1) % len(facts)]
    if kind == "synonym manipulation":
        return f.paraphrased_question
    if kind == "prefix injection":
        return f"I have been reading a lot about {name} lately. {f.question}"
    if kind == "affirmative suffix":  # probe_prompt drops "Answer:" for these: the model continues the lead-in
        return f"{f.question} Sure, here is the answer:"
    if kind == "role play":
        return f"Assuming you are a literary historian, answer this. {f.question}"
    if kind == "incontext learning":
        return f"Question: {other.question}\nAnswer: {other.value}\nQuestion: {f.question}"
    if kind == "context hint":
        return f"{other.sentence} {f.question}"
    if kind == "multiple choice":
        options = list(wrong)
        options.insert(t % (len(wrong) + 1), f.value)
        return f"{f.question} Choose one of: {'; '.join(options)}."
    raise ValueError(f"unknown attack type '{kind}'")


def aa_probes(world: World, i: int, subject: str) -> tuple[RWKUProbe, ...]:
    facts, name = _facts(world, i), world.authors[i].name
    out = []
    for t, f in enumerate(facts):
        kind = ATTACKS[t % len(ATTACKS)]
        # Wrong options: the same fact of the next authors (never equal to the true value).
        same_fact = [world.author_qa[(i + j) % len(world.authors)][t].meta["value"] for j in (1, 2, 3)]
        wrong = [v for v in same_fact if v != f.value][:2]
        out.append(RWKUProbe(_attack(kind, facts, t, wrong, name), f.value, kind, AA, subject))
    out += [RWKUProbe(q.format(v=facts[t].value), name, REVERSE_QUERY, AA, subject) for t, q in REVERSE.items()]
    return tuple(out)


def neighbors(selected: list[int], i: int, num_authors: int) -> list[int]:
    """The next non-target authors after `i`, cyclically among the trained ones."""
    after = [(i + k) % num_authors for k in range(1, num_authors)]
    return [j for j in after if j not in selected][:NEIGHBORS_PER_TARGET]


def build_target(world: World, num_authors: int, selected: list[int], i: int) -> RWKUTarget:
    author = world.authors[i]
    name = target_names(world, num_authors)[i]
    near = neighbors(selected, i, num_authors)
    holdout = [p for j in range(num_authors, len(world.authors)) for p in passages(world, j)]
    qa = qa_probes(world, i, author.name)
    return RWKUTarget(
        name=name,
        subject=author.name,
        intro=f"Please forget {author.name}. {author.name} is an author of {author.genre}.",
        forget_fb=fb_probes(world, i, author.name),
        forget_qa=qa,
        forget_aa=aa_probes(world, i, author.name),
        neighbor_fb=tuple(p for j in near for p in fb_probes(world, j, author.name, world.authors[j].name)),
        neighbor_qa=tuple(p for j in near for p in qa_probes(world, j, author.name, world.authors[j].name)),
        mia_forget=passages(world, i),
        mia_retain=tuple(holdout),
        passages=passages(world, i),
        refusals=tuple(QA(p.query, REFUSALS[k % len(REFUSALS)]) for k, p in enumerate(qa)),
    )


def probe_text(probe: RWKUProbe) -> str:
    """A probe as the tiny model is trained on it: RWKU's bare prompt, then the answer."""
    prompt = probe_prompt(probe.query, probe.level, probe.type, probe.subject)
    return f"{prompt.user}{prompt.answer_prefix} {probe.answer}"


def training_texts(world: World, authors: list[int]) -> list[str]:
    """Passages and FB/QA probes of `authors` (subject = the author itself), as raw text."""
    out = []
    for i in authors:
        name = world.authors[i].name
        out += list(passages(world, i))
        out += [probe_text(p) for p in fb_probes(world, i, name) + qa_probes(world, i, name)]
    return out


def tokenizer_texts(world: World) -> list[str]:
    """Every text any role trains on or is scored on, whatever the targets (so the tokenizer does not depend on
    them): all authors' training texts, their AA probes, and the refusals."""
    every = list(range(len(world.authors)))
    return training_texts(world, every) + [probe_text(p) for i in every
                                          for p in aa_probes(world, i, world.authors[i].name)] + list(REFUSALS)
