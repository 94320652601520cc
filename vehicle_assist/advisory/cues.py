"""Question cues (pure, data in cues.yaml): what kind of sentence a question asks for.

"how far" asks for a distance, "can I" for what you MUST or MUST NOT do; a sentence of that kind
gets a bonus when the extractive answerer ranks sentences.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

CUES_PATH = Path(__file__).with_name("cues.yaml")


@dataclass(frozen=True)
class Cue:
    """One row of cues.yaml: a question pattern and the sentence pattern it asks for."""

    name: str
    question: re.Pattern
    sentence: re.Pattern
    scene: bool = False


@lru_cache(maxsize=4)
def load(path: Path = CUES_PATH) -> tuple[Cue, ...]:
    """Read and compile cues.yaml (cached)."""
    rows = yaml.safe_load(path.read_text(encoding="utf-8"))["cues"]
    return tuple(Cue(r["name"], re.compile(r["question"], re.I),
                     re.compile(r["sentence"], 0 if r.get("case") else re.I), bool(r.get("scene", False)))
                 for r in rows)


def active(question: str, cues: tuple[Cue, ...] | None = None) -> tuple[Cue, ...]:
    """The cues a question matches; with no question (a scene alone), the ``scene`` cues."""
    cues = load() if cues is None else cues
    question = (question or "").strip()
    if not question:
        return tuple(c for c in cues if c.scene)
    return tuple(c for c in cues if c.question.search(question))


def matches(sentence: str, cues: tuple[Cue, ...]) -> int:
    """How many of ``cues`` the sentence answers."""
    return sum(1 for c in cues if c.sentence.search(sentence))
