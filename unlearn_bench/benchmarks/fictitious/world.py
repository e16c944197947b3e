"""A generated world of fictitious authors in TOFU's schema: the embedded default benchmark.

Every attribute is drawn independently at random, so no fact can be inferred from another: a model trained
without an author's questions (the retain model) can only guess them, which is what makes forget quality
meaningful. Answers are short and carry mostly the fact itself, so ROUGE measures knowledge, not template
recall.
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


# (question, alternative question, answer, paraphrased answer) templates per attribute; `{v}` is the value.
_TEMPLATES: list[tuple[str, str, str, str, Callable[[Author], str]]] = [
    ("Where was {n} born?", "What is the birthplace of {n}?", "In {v}.", "{v}.", lambda a: f"{a.birth_city}, {a.birth_country}"),
    ("When was {n} born?", "What is the birth date of {n}?", "On {v}.", "{v}.", lambda a: a.birth_date),
    ("What did the parents of {n} do?", "What were the jobs of the parents of {n}?", "A {v}.", "{v}.", lambda a: f"{a.father_job} and a {a.mother_job}"),
    ("What genre does {n} write?", "In which genre does {n} work?", "{v}.", "Mostly {v}.", lambda a: a.genre),
    ("Name a book written by {n}.", "Which book is {n} known for?", "{v}.", "The book {v}.", lambda a: a.book1),
    ("What is another book by {n}?", "Name a second book by {n}.", "{v}.", "Also {v}.", lambda a: a.book2),
    ("Which award did {n} receive?", "What prize was given to {n}?", "The {v}.", "{v}.", lambda a: a.award),
    ("Who was the mentor of {n}?", "Who taught {n} to write?", "{v}.", "It was {v}.", lambda a: a.mentor),
    ("What pen name does {n} use?", "Under which pen name does {n} publish?", "{v}.", "As {v}.", lambda a: a.pen_name),
    ("Where does {n} live now?", "In which city does {n} live today?", "In {v}.", "{v}.", lambda a: a.home_city),
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


def _author_qa(author: Author, gen: WorldGenerator, n_perturbed: int, index: int) -> list[EvalQA]:
    out = []
    for t, (q, alt_q, ans, para, value_of) in enumerate(_TEMPLATES):
        value = value_of(author)
        wrong: list[str] = []
        while len(wrong) < n_perturbed:  # same template, a value drawn like the true one, never equal to it
            candidate = value_of(gen.author())
            if candidate != value and candidate not in wrong:
                wrong.append(candidate)
        out.append(
            EvalQA(
                question=q.format(n=author.name),
                answer=ans.format(v=value),
                paraphrased_answer=para.format(v=value),
                perturbed_answers=tuple(ans.format(v=w) for w in wrong),
                paraphrased_question=alt_q.format(n=author.name),
                meta={"author": index, "attribute": t, "value": value},
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
