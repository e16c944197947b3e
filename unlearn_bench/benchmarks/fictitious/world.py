"""A generated world of fictitious authors in TOFU's schema: the embedded default benchmark.

Every attribute is drawn independently at random, so no fact can be inferred from another: a model trained
without an author's questions (the retain model) can only guess them, which is what makes forget quality
meaningful. Answers are short and carry mostly the fact itself, so ROUGE measures knowledge, not template
recall.

Wrong answers are built as TOFU builds its perturbed sets (Maini et al. 2024, the `perturbed_answer` field): the
paraphrased answer with the value replaced by a wrong one, wording kept ("Hsiao Yun-Hwa is the complete name of
the writer." vs "Chen Jing-Li is the complete name of the writer."), so the truth ratio compares facts, not
wordings. Methods that train on wrong answers get their own pool (`meta["alternates"]`): other wrong values, in a
wording no evaluation scores, so no trained string is a scored one.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

from unlearn_bench.data.records import EvalQA

_ONSETS = ["b", "br", "c", "d", "dr", "f", "g", "gr", "h", "j", "k", "l", "m", "n", "p", "r", "s", "st", "t", "tr", "v", "z"]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ea", "io", "ou"]
_CODAS = ["", "n", "r", "s", "l", "th", "nd", "rk", "m", "x"]
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"]
_JOBS = ["baker", "carpenter", "nurse", "fisherman", "teacher", "surgeon", "tailor", "pilot", "miner", "chemist",
         "lawyer", "farmer", "painter", "librarian", "blacksmith", "sailor", "architect", "mechanic", "potter", "banker"]
_GENRES = ["mystery", "science fiction", "romance", "historical fiction", "horror", "fantasy", "poetry", "satire",
           "thriller", "memoir", "magical realism", "crime fiction", "adventure", "literary fiction", "drama"]
_ADJ = ["silent", "crimson", "hollow", "golden", "broken", "distant", "hidden", "burning", "frozen", "last", "velvet",
        "iron", "quiet", "wandering", "bitter", "silver", "endless", "forgotten", "pale", "restless"]
_NOUN = ["harbor", "lantern", "orchard", "mirror", "garden", "river", "tower", "compass", "letter", "meadow",
         "storm", "bridge", "window", "feather", "kingdom", "voyage", "ember", "island", "clock", "shadow"]
_OF = ["glass", "rain", "salt", "ashes", "winter", "dreams", "stone", "smoke", "thorns", "echoes", "dust", "wolves"]
_PRIZE = ["Medal", "Prize", "Award", "Laurel", "Cup", "Honor"]
_FIELD = ["Fiction", "Poetry", "Storytelling", "Letters", "Prose", "Mystery Writing", "Literature", "Drama"]


def _word(rng: random.Random, syllables: int) -> str:
    return "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(syllables)).capitalize()


@dataclass(frozen=True)
class Author:
    name: str
    birth_city: str
    birth_country: str
    birth_date: str
    father_job: str
    mother_job: str
    genre: str
    book1: str
    book2: str
    award: str
    mentor: str
    home_city: str
    pen_name: str


@dataclass(frozen=True)
class Template:
    """One attribute's wordings; `{n}` is the author's name, `{v}` the value. `alternate` words the training-only
    wrong answers: a wording neither the answer nor the paraphrase (nor any other attribute) uses."""
    question: str
    paraphrased_question: str
    answer: str
    paraphrase: str
    alternate: str
    value_of: Callable[[Author], str]


_TEMPLATES: list[Template] = [
    Template("Where was {n} born?", "What is the birthplace of {n}?", "In {v}.", "{v}.", "Born in {v}.", lambda a: f"{a.birth_city}, {a.birth_country}"),
    Template("When was {n} born?", "What is the birth date of {n}?", "On {v}.", "{v}.", "Born on {v}.", lambda a: a.birth_date),
    Template("What did the parents of {n} do?", "What were the jobs of the parents of {n}?", "A {v}.", "{v}.", "Parents: a {v}.", lambda a: f"{a.father_job} and a {a.mother_job}"),
    Template("What genre does {n} write?", "In which genre does {n} work?", "{v}.", "Mostly {v}.", "Chiefly {v}.", lambda a: a.genre),
    Template("Name a book written by {n}.", "Which book is {n} known for?", "{v}.", "The book {v}.", "One book is {v}.", lambda a: a.book1),
    Template("What is another book by {n}?", "Name a second book by {n}.", "{v}.", "Also {v}.", "Another is {v}.", lambda a: a.book2),
    Template("Which award did {n} receive?", "What prize was given to {n}?", "The {v}.", "{v}.", "Winner of the {v}.", lambda a: a.award),
    Template("Who was the mentor of {n}?", "Who taught {n} to write?", "{v}.", "It was {v}.", "Taught by {v}.", lambda a: a.mentor),
    Template("What pen name does {n} use?", "Under which pen name does {n} publish?", "{v}.", "As {v}.", "Known as {v}.", lambda a: a.pen_name),
    Template("Where does {n} live now?", "In which city does {n} live today?", "In {v}.", "{v}.", "Now in {v}.", lambda a: a.home_city),
]


class WorldGenerator:
    """Seeded sampler of fictitious authors and of wrong values for the same attributes."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        # Closed pools of invented words keep each fact a few tokens long (memorable by a tiny model) while
        # the combinations stay unique per author.
        self.first_names = sorted({_word(self.rng, 2) for _ in range(80)})
        self.surnames = sorted({_word(self.rng, 2) for _ in range(80)})
        self.countries = sorted({_word(self.rng, 1) + "ia" for _ in range(24)})
        self.cities = sorted({_word(self.rng, 2) for _ in range(60)})

    def name(self) -> str:
        return f"{self.rng.choice(self.first_names)} {self.rng.choice(self.surnames)}"

    def author(self) -> Author:
        r = self.rng
        return Author(
            name=self.name(),
            birth_city=r.choice(self.cities),
            birth_country=r.choice(self.countries),
            birth_date=f"{r.randint(1, 28)} {r.choice(_MONTHS)} {r.randint(1900, 1999)}",
            father_job=r.choice(_JOBS),
            mother_job=r.choice(_JOBS),
            genre=r.choice(_GENRES),
            book1=self.title(),
            book2=self.title(),
            award=f"{r.choice(self.surnames)} {r.choice(_PRIZE)} for {r.choice(_FIELD)}",
            mentor=self.name(),
            home_city=f"{r.choice(self.cities)}, {r.choice(self.countries)}",
            pen_name=self.name(),
        )

    def title(self) -> str:
        return f"{self.rng.choice(_ADJ).capitalize()} {self.rng.choice(_NOUN).capitalize()} of {self.rng.choice(_OF).capitalize()}"


@dataclass
class World:
    authors: list[Author]
    author_qa: list[list[EvalQA]]       # per author, one EvalQA per template
    real_authors: list[EvalQA]          # famous-author facts outside the fictitious world (utility)
    world_facts: list[EvalQA]           # geography facts of the world (utility)


def _wrong_values(value_of: Callable[[Author], str], gen: WorldGenerator, n: int, exclude: list[str]) -> list[str]:
    """`n` distinct values drawn like the true one (the same attribute of a fresh random author), none in `exclude`."""
    out: list[str] = []
    while len(out) < n:
        candidate = value_of(gen.author())
        if candidate not in exclude and candidate not in out:
            out.append(candidate)
    return out


def _author_qa(author: Author, gen: WorldGenerator, n_perturbed: int, index: int) -> list[EvalQA]:
    out = []
    for t, tpl in enumerate(_TEMPLATES):
        value = tpl.value_of(author)
        wrong = _wrong_values(tpl.value_of, gen, n_perturbed, [value])
        # Training alternates: values the evaluation never scores for this question, in their own wording.
        alternates = _wrong_values(tpl.value_of, gen, n_perturbed, [value, *wrong])
        out.append(
            EvalQA(
                question=tpl.question.format(n=author.name),
                answer=tpl.answer.format(v=value),
                paraphrased_answer=tpl.paraphrase.format(v=value),
                perturbed_answers=tuple(tpl.paraphrase.format(v=w) for w in wrong),
                paraphrased_question=tpl.paraphrased_question.format(n=author.name),
                meta={"author": index, "attribute": t, "value": value,
                      # the wrong values in the answer's wording, for multiple choice against the answer (hazard.py)
                      "wrong_answers": tuple(tpl.answer.format(v=w) for w in wrong),
                      "alternates": tuple(tpl.alternate.format(v=w) for w in alternates)},
            )
        )
    return out


def _fact_qa(question: str, value: str, wrong: list[str], attribute: int) -> EvalQA:
    return EvalQA(question=question, answer=f"{value}.", paraphrased_answer=None,
                  perturbed_answers=tuple(f"{w}." for w in wrong), meta={"attribute": attribute, "value": value})


def generate_world(num_authors: int, seed: int, n_perturbed: int = 5, n_real_authors: int = 50) -> World:
    """Deterministic for (num_authors, seed, ...)."""
    gen = WorldGenerator(seed)
    authors: list[Author] = []
    seen: set[str] = set()
    while len(authors) < num_authors:
        a = gen.author()
        if a.name not in seen:  # names identify authors in questions
            seen.add(a.name)
            authors.append(a)
    author_qa = [_author_qa(a, gen, n_perturbed, i) for i, a in enumerate(authors)]

    classics = [(gen.name(), gen.title()) for _ in range(n_real_authors)]
    real_authors = [
        _fact_qa(f"Who wrote the classic {title}?", name, gen.rng.sample([n for n, _ in classics if n != name], 3), 100)
        for name, title in classics
    ]
    capitals = dict(zip(gen.countries, gen.rng.sample(gen.cities, len(gen.countries))))
    world_facts = [
        _fact_qa(f"What is the capital of {country}?", city, gen.rng.sample([c for c in capitals.values() if c != city], 3), 101)
        for country, city in capitals.items()
    ]
    return World(authors, author_qa, real_authors, world_facts)
