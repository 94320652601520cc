"""Structured facts (pure): the Code's numbers, parsed from its own text, answered by slot.

A fact is one cell of a table in the Code (Rule 124's speed limits by vehicle and road, the stopping
distances of the Rule 126 figure, the Annex 5 penalties, the Rule 99 seat belt table...) or one
sentence of a rule that states a quantity (1.5 metres past a cyclist, 45 metres for the warning
triangle, 35 microgrammes, 11.30 pm to 7.00 am...). Each keeps its rule id. Facts are parsed from
the passages the retriever holds, so they change when the source (and so the index) changes;
nothing is typed in by hand. ``facts.yaml`` only maps spoken words to the Code's words.

A question that asks for a number is answered from the retrieved rules' fact whose slots best match
it: for a table cell, its row label (the vehicle, the offence, the speed) and its column (the road,
the distance, the penalty); for a sentence, its words. A number the question names (fifty -> 50)
must be the one in the row. The fact's sentence is said and its rule cited; without a match the
sentence answer stays.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from vehicle_assist.advisory.text import cell_sentence, passage_sentences, table_cells, table_rows, terms, wants_number
from vehicle_assist.messages import Passage

FACTS_PATH = Path(__file__).with_name("facts.yaml")
_QUANTITY = re.compile(r"\d|\b(double|twice|ten times|half)\b", re.I)
_PERMISSION = re.compile(r"^(can|may|am|is|are|do|does|must|should|could|would)\b")
_NUMBER = re.compile(r"\b\d+(?:\.\d+)?\b")


@dataclass(frozen=True)
class Fact:
    """One number the Code states: where (rule id), which slots it answers, and how it is said."""

    rule_id: str
    text: str
    """The speakable sentence (a table cell as '<row>, <column>: <value>.', else the rule's sentence)."""
    context: str = ""
    """The sentence before a numeric sentence ('In Scotland the legal limits are lower.'): it says
    which case the number is for, so it is matched too, and said first when the question names it."""
    row: str = ""
    column: str = ""
    value: str = ""
    index: int = 0
    """Order within its rule (earlier rows and columns win ties: the Code lists cars and England first)."""


@dataclass(frozen=True)
class Table:
    slots: tuple[tuple[re.Pattern, str], ...]
    number_q: re.Pattern
    places: frozenset[str]


@lru_cache(maxsize=2)
def load_table(path: Path = FACTS_PATH) -> Table:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return Table(tuple((re.compile(r["spoken"], re.I), r["code"]) for r in data["slots"]),
                 re.compile(data["number_questions"], re.I), frozenset(t for p in data["places"] for t in terms(p)))


@lru_cache(maxsize=2048)
def _facts(rule_id: str, text: str, title: str) -> tuple[Fact, ...]:
    out: list[Fact] = []
    for rows in table_rows(text):
        for label, column, value in table_cells(rows):
            if _QUANTITY.search(value) or value.strip() in {"-"}:
                out.append(Fact(rule_id, cell_sentence(label, column, value), row=label, column=column, value=value,
                                 index=len(out)))
    prev = ""
    for s in passage_sentences(Passage(rule_id, "", title, text)):
        if "|" in s.text or s.joined or any(f.text == s.text for f in out):
            continue
        if _QUANTITY.search(s.text) and not re.match(r"^(rule|laws?)\b", s.text, re.I):
            out.append(Fact(rule_id, s.text, context=prev if not _QUANTITY.search(prev) else "", index=len(out)))
        prev = s.text
    return tuple(out)


def facts(passage: Passage) -> tuple[Fact, ...]:
    """Every fact of one passage (cached by its text: a changed source gives new facts)."""
    return _facts(passage.id, passage.text, passage.title)


def is_number_question(question: str) -> bool:
    """Does the driver ask for a number (how fast / far / many / long, what time, the limit, the fine)?"""
    q = (question or "").strip().lower()
    if not q or (_PERMISSION.match(q) and not re.search(r"\b(how|what)\b", q)):
        return False  # "am I allowed to go over the limit?" asks for a rule, not a number
    return wants_number(q) or bool(load_table().number_q.search(q))


def expand(question: str) -> tuple[set[str], set[str]]:
    """The question's terms with the Code's words for its spoken ones, and the numbers it names."""
    from vehicle_assist.advisory.validate import normalise

    q = normalise(question)
    extra = [code for pattern, code in load_table().slots if pattern.search(q)]
    return set(terms(" ".join([q] + extra))), set(_NUMBER.findall(q))


def _score(fact: Fact, words: set[str], numbers: set[str]) -> float:
    if fact.row:
        row, col = set(terms(fact.row)), set(terms(fact.column))
        r, c = len(words & row), len(words & col)
        if "not" in re.findall(r"[a-z]+", fact.row.lower()):
            r -= 0.5  # 'not exceeding 7.5 tonnes' is not what 'a heavy lorry' names
        row_numbers = set(_NUMBER.findall(fact.row))
        if numbers and row_numbers:
            if not numbers & row_numbers:
                return -1.0
            r += 2
        if r <= 0 or c <= 0:
            return -1.0  # a cell answers only when the question names both its row and its column
        return r + c + 0.5 * (r > 0 and c > 0)
    said = set(terms(fact.text))
    hit = words & said
    around = (words & set(terms(fact.context))) - said
    nums = set(_NUMBER.findall(fact.text))
    if numbers and nums and not numbers & nums:
        return -1.0
    places = load_table().places
    named = words & places
    if named and not named & (said | set(terms(fact.context))):
        return -1.0  # the question names Scotland; a sentence about England and Wales does not answer it
    return len(hit) + 0.5 * len(around) - 0.5 + (2 if numbers & nums else 0)


def best(question: str, passages: list[Passage] | tuple[Passage, ...], max_passages: int = 3,
         min_score: float = 2.0) -> Fact | None:
    """The fact of the top ``max_passages`` rules (a rule's attached figure counts with it) whose
    slots best match a number question; None when the question asks for no number or nothing matches."""
    if not is_number_question(question):
        return None
    words, numbers = expand(question)
    top = [p.id for p in list(passages)[:max_passages]]
    pool = [p for p in passages if p.id in top or p.id.split("-figure")[0] in top]
    scored: list[tuple[float, int, int, Fact]] = []
    for rank, p in enumerate(pool):
        for f in facts(p):
            sc = _score(f, words, numbers)
            if sc >= min_score:
                scored.append((sc, -rank, -f.index, f))
    if not scored:
        return None
    return max(scored, key=lambda x: x[:3])[3]


def spoken(fact: Fact, question: str) -> str:
    """What is said for a fact: its sentence, after its context sentence when the question names
    something only the context holds ('... in Scotland' -> 'In Scotland the legal limits are lower.')."""
    if fact.context:
        words, _ = expand(question)
        if words & (set(terms(fact.context)) - set(terms(fact.text))):
            return f"{fact.context} {fact.text}"
    return fact.text
