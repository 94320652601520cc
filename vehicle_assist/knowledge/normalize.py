"""Spoken questions -> query text, and the word lists behind BM25 (tables in terms.yaml)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:
    from vehicle_assist.messages import Scene

TERMS_PATH = Path(__file__).with_name("terms.yaml")

STOPWORDS = frozenset(
    "a an the and or of to in on at for from by with is are was were be been am i me my you your we "
    "our it its this that these those there here what whats which who when where why how do does did "
    "can could should would will shall may might must if so as into than then too very just about "
    "up down out over any some all ok okay im ive id dont doesnt cant isnt arent get got go going".split()
)


@dataclass(frozen=True)
class Terms:
    """The compiled tables of terms.yaml."""

    fillers: re.Pattern
    numbers: dict[str, int]
    units: tuple[tuple[re.Pattern, str], ...]
    synonyms: tuple[tuple[re.Pattern, str], ...]
    out_of_scope: tuple[tuple[str, re.Pattern], ...]
    scene: dict
    other_audience_sections: frozenset[str] = frozenset()


@lru_cache(maxsize=4)
def load_terms(path: Path = TERMS_PATH) -> Terms:
    """Read and compile terms.yaml (cached)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    fillers = sorted(data["fillers"], key=len, reverse=True)
    return Terms(
        fillers=re.compile(r"\b(" + "|".join(re.escape(f) for f in fillers) + r")\b[,]?", re.I),
        numbers={k: int(v) for k, v in data["numbers"].items()},
        units=tuple((re.compile(p, re.I), r) for p, r in data["units"]),
        synonyms=tuple((re.compile(p, re.I), r) for p, r in data["synonyms"]),
        out_of_scope=tuple((name, re.compile(p, re.I)) for name, p in data["out_of_scope"].items()),
        scene=data["scene"],
        other_audience_sections=frozenset(data.get("other_audience_sections", [])),
    )


def words_to_numbers(text: str, numbers: dict[str, int]) -> str:
    """Replace numbers in words by digits: "seventy" -> "70", "thirty five" -> "35"."""
    tokens = re.split(r"(\s+)", text)
    out: list[str] = []
    i = 0
    while i < len(tokens):
        word = tokens[i].lower().strip(",.?!")
        if word in numbers:
            value = numbers[word]
            j = i + 2
            if 20 <= value < 100 and value % 10 == 0 and j < len(tokens):
                nxt = tokens[j].lower().strip(",.?!")
                if nxt in numbers and numbers[nxt] < 10:
                    value += numbers[nxt]
                    i = j
            out.append(str(value) + tokens[i][len(tokens[i].rstrip(",.?!")):])
        else:
            out.append(tokens[i])
        i += 1
    return "".join(out)


def normalize(text: str, terms: Terms | None = None) -> str:
    """Rewrite a spoken question for search: fillers out, numbers and units as the Code writes them,
    everyday words followed by the Code's terms. Pure."""
    terms = terms or load_terms()
    q = text.replace("’", "'").strip()
    q = terms.fillers.sub(" ", q)
    q = words_to_numbers(q, terms.numbers)
    for pattern, repl in terms.units:
        q = pattern.sub(repl, q)
    extra = [repl for pattern, repl in terms.synonyms if pattern.search(q)]
    q = re.sub(r"\s+", " ", q).strip(" ,")
    return q + (" (" + "; ".join(extra) + ")" if extra else "")


def out_of_scope(text: str, terms: Terms | None = None) -> str | None:
    """The name of the out-of-scope pattern a question matches (e.g. ``price_or_cost``), or None."""
    terms = terms or load_terms()
    q = text.replace("’", "'").lower()
    for name, pattern in terms.out_of_scope:
        if pattern.search(q):
            return name
    return None


_WORD = re.compile(r"[a-z0-9]+(?:\.[0-9]+)?")


def stem(word: str) -> str:
    """A light English suffix stripper (plurals, -ing, -ed, final e) so "rules"/"rule" and
    "overtaking"/"overtake" meet in BM25."""
    if len(word) <= 3 or word[-1].isdigit():
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith(("sses", "xes", "zes", "ches", "shes")):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    return word[:-1] if word.endswith("e") and len(word) > 3 else word


def bm25_tokens(text: str) -> list[str]:
    """Lower-cased, stop-word-free, lightly stemmed words of ``text``."""
    text = text.lower().replace("’", "'").replace("'", "")
    return [stem(w) for w in _WORD.findall(text) if w not in STOPWORDS]


def _key(value: str) -> str:
    return value.strip().lower().replace("-", "_").replace(" ", "_")


def scene_query(scene: Scene, terms: Terms | None = None) -> str:
    """Query text for a structured situation: "cyclist ahead on a country road in wet weather...". Pure."""
    table = (terms or load_terms()).scene
    parts: list[str] = []
    if scene.label:
        parts.append(table["labels"].get(_key(scene.label), scene.label.replace("_", " ")))
    if scene.hazard:
        parts.append(table["hazards"].get(_key(scene.hazard), scene.hazard.replace("_", " ").replace("-", " ")))
    if scene.road_type:
        parts.append(table["road_types"].get(_key(scene.road_type), "on a " + scene.road_type.replace("_", " ")))
    if scene.weather:
        parts.append(table["weather"].get(_key(scene.weather), "in " + scene.weather.replace("_", " ")))
    if scene.speed_mps is not None and scene.speed_mps > 0:
        parts.append(f"travelling at {round(scene.speed_mps * 2.23694 / 5) * 5:.0f} mph")
    return ", ".join(parts)
