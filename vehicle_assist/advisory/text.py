"""Pure text helpers for the advisory lane: passage -> sentences, word terms, sentence relevance.

Rule passages are prose with bullet lists and markdown tables. :func:`passage_sentences` turns one
into speakable sentences: a bullet keeps its short lead-in ("You should" + "leave enough space..."),
and each table cell becomes its own sentence ("70 mph, overall stopping distance: 96 metres").
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

from vehicle_assist.messages import Passage

_STOP = frozenset(
    """a an the and or but if of to in on at by for with from into onto as is are was were be been being
    do does did can could should would will shall may might must i me my we our you your he she it its
    they them their this that these those there here what which who whom whose when where why how
    not no yes so than then too very just also about over under up down out off again any all some
    such only own same other more most much many few each both am have has had having let lets get
    gets got tell please im ive id youre dont doesnt isnt arent whats thats theres""".split()
)
_WORD = re.compile(r"[a-z0-9]+(?:\.[0-9]+)?")
_SENT_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9‘'\"(])")
_BULLET = re.compile(r"^(\s*)[-*•]\s+(.*)$")
_NUM_WORDS = {
    "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
    "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "twenty": "20",
    "half": "0.5", "double": "2", "doubled": "2", "twice": "2",
}


@dataclass(frozen=True)
class Sentence:
    """One speakable sentence of a passage, with its position (0 = first)."""

    passage_id: str
    index: int
    text: str
    group: int = -1
    """The bullet list this sentence belongs to (an item, or the list joined into one sentence); -1: none."""
    joined: bool = False
    """The whole list as one sentence ("You should reduce your speed, be prepared ..., and ...")."""


def stem(word: str) -> str:
    """A tiny suffix stripper so that 'overtaking', 'overtakes' and 'overtake' meet."""
    for suffix, keep in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: len(word) - len(suffix)] + keep
            if suffix in ("ing", "ed") and len(word) >= 4 and word[-1] == word[-2] and word[-1] in "bdgmnprt":
                word = word[:-1]  # 'stopping' -> 'stop', 'running' -> 'run' (not 'fall', 'pass')
            break
    return word[:-1] if len(word) > 4 and word.endswith("e") else word


def terms(text: str) -> list[str]:
    """Content-word stems of ``text`` (stop words dropped; numbers and number words normalised)."""
    out = []
    for w in _WORD.findall(text.lower().replace("’", "'").replace("'", "")):
        w = _NUM_WORDS.get(w, w)
        if w in _STOP or (len(w) < 2 and not w.isdigit()):
            continue
        out.append(w if w[0].isdigit() else stem(w))
    return out


def _clean(text: str) -> str:
    text = re.sub(r"\*\*|__|`", "", text)
    text = text.replace("’", "'").replace("‘", "'")
    return " ".join(text.split())


def table_cells(rows: list[list[str]]) -> list[tuple[str, str, str]]:
    """A markdown table's data cells as ``(row label, column header, value with units)``."""
    rows = [r for r in rows if not all(re.fullmatch(r":?-{2,}:?", c) or not c for c in r)]
    if len(rows) < 2:
        return []
    header, body = rows[0], rows[1:]
    units: list[str] | None = None
    if body and all(not re.search(r"\d", c) for c in body[0][1:]) and len(body) > 1:
        units, body = body[0], body[1:]
    out = []
    for row in body:
        label = row[0].rstrip(".")
        for j, cell in enumerate(row[1:], start=1):
            if not cell or j >= len(header):
                continue
            value = cell
            if units and j < len(units):
                m = re.fullmatch(r"(\d+)\S*\s*\((\d+)\)", cell)
                u = re.fullmatch(r"(\S+)\s*\((\S+)\)", units[j])
                if m and u:
                    value = f"{m.group(1)} {u.group(1)} ({m.group(2)} {u.group(2)})"
            out.append((label, header[j].lower(), value))
    return out


def table_rows(text: str) -> list[list[list[str]]]:
    """Every markdown table in ``text``, as rows of cleaned cells."""
    tables: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in text.split("\n") + [""]:
        if line.strip().startswith("|"):
            current.append([_clean(c) for c in line.strip().strip("|").split("|")])
        elif current:
            tables.append(current)
            current = []
    return tables


def cell_sentence(label: str, column: str, value: str) -> str:
    """How a table cell is said: '<row label>, <column>: <value>.'"""
    return f"{label}, {column}: {value}."


def _table_sentences(rows: list[list[str]]) -> list[str]:
    """A markdown table -> one sentence per data cell: '<row label>, <column>: <value>.'"""
    cells = table_cells(rows)
    if not cells:
        rows = [r for r in rows if not all(re.fullmatch(r":?-{2,}:?", c) or not c for c in r)]
        return [" ".join(c for c in r if c) + "." for r in rows]
    return [cell_sentence(*c) for c in cells]


_CAPTION = re.compile(r"^(rule \w+:|laws? [A-Z(]|see rules? \w+)", re.I)


def _is_heading(text: str, title: str) -> bool:
    """A title repeated as the first line ("Amber flashing lights."), an image caption
    ("Rule 257: Signal warning of a hazard") or a law reference: never an answer."""
    bare = text.rstrip(".:").strip().lower()
    return bool(title) and bare == title.strip().rstrip(".").lower() or bool(_CAPTION.match(text))


_JOINABLE_LEAD = re.compile(r"\b(should|must|MUST|MUST NOT|not|never|because|need to|can|could|will|may|to)$")


def _join_items(lead: str, items: list[str]) -> str:
    """'You should' + ['reduce your speed', 'be prepared'] -> 'You should reduce your speed, and be prepared.'"""
    heads = [(_split(i) or [i])[0].rstrip(" .;,") for i in items]
    body = heads[0] if len(heads) == 1 else ", ".join(heads[:-1]) + ", and " + heads[-1]
    return f"{lead} {body}."


def passage_sentences(passage: Passage) -> list[Sentence]:
    """Split a passage into speakable sentences.

    A bullet list after a lead-in ("You should" + items) gives one sentence per item (with the lead-in
    when it is short) and, when the lead-in runs on into the items, one sentence that joins them
    ("You should reduce your speed, be prepared for the hazard, and ..."); tables become one sentence
    per cell. The title repeated as a heading, image captions and law references are left out."""
    texts: list[tuple[str, int, bool]] = []
    lead = ""
    items: list[str] = []
    table: list[list[str]] = []
    group = 0

    def close_list() -> None:
        nonlocal group
        if items:
            if lead and len(items) > 1 and _JOINABLE_LEAD.search(lead):
                texts.append((_join_items(lead, items), group, True))
            group += 1
        items.clear()

    for raw in passage.text.split("\n") + [""]:
        line = raw.rstrip()
        if line.strip().startswith("|"):
            table.append([_clean(c) for c in line.strip().strip("|").split("|")])
            continue
        if table:
            texts.extend((t, -1, False) for t in _table_sentences(table))
            table = []
        if not line.strip():
            close_list()
            lead = ""
            continue
        m = _BULLET.match(line)
        if m:
            body = _clean(m.group(2))
            if not body:
                continue
            if not m.group(1):
                items.append(body)
            if lead and len(lead.split()) <= 6 and not m.group(1):
                body = f"{lead} {body}"
            else:
                body = body[0].upper() + body[1:]
            texts.extend((t, group, False) for t in _split(body))
            continue
        close_list()
        parts = _split(_clean(line))
        if parts and not re.search(r"[.!?:]$", parts[-1]):
            lead = parts.pop()  # "You should" before a list
        else:
            lead = ""
        texts.extend((t, -1, False) for t in parts)
    out, seen = [], set()
    for t, grp, joined in texts:
        t = t.strip()
        if not t or t in seen or len(t.split()) < 3 or not re.search(r"[A-Za-z]", t):
            continue
        seen.add(t)
        if _is_heading(t, passage.title):
            continue
        if not re.search(r"[.!?]$", t):
            t = t.rstrip(":;,") + "."
        out.append(Sentence(passage.id, len(out), t, grp, joined))
    return out


def _split(text: str) -> list[str]:
    return [s for s in _SENT_END.split(text) if s.strip()]


_NUMERIC_Q = re.compile(
    r"\b(how (far|much|many|long|close|fast|wide|big|often|old|heavy)|distance|gap|space|room|limit|speed|"
    r"minimum|maximum|at least|metres?|meters?|feet|mph|seconds?|age)\b", re.I)


def idf(sentences: list[Sentence]) -> dict[str, float]:
    """Inverse document frequency of terms over a small set of sentences."""
    df: Counter[str] = Counter()
    for s in sentences:
        df.update(set(terms(s.text)))
    n = max(len(sentences), 1)
    return {t: math.log(1 + n / c) for t, c in df.items()}


def relevance(sentence: str, query_terms: list[str], weights: dict[str, float], numeric: bool) -> float:
    """How well a sentence answers the query: idf-weighted term overlap, a bonus for numbers
    when the question asks for a quantity, and a small penalty for length."""
    st = set(terms(sentence))
    if not st:
        return 0.0
    qs = set(query_terms)
    score = sum(weights.get(t, 1.0) for t in qs & st)
    if score <= 0:
        return 0.0
    if numeric and re.search(r"\d", sentence):
        score += 1.5
    if _ADVICE.search(sentence):
        score += 0.5
    if _ANAPHORA.match(sentence):
        score *= 0.7
    return score / (1.0 + 0.01 * len(st))


_ADVICE = re.compile(r"\b(should|must|do not|never|always|give way|allow|keep|leave|slow down|stop|wait|avoid)\b", re.I)
_ANAPHORA = re.compile(r"^(this|these|they|it|such|that|those|them)\b", re.I)


def wants_number(question: str) -> bool:
    """True when the question asks for a quantity (distance, speed, time, age...)."""
    return bool(_NUMERIC_Q.search(question))


_REFS = r"rules?\s+H?\d+[a-z]?(?:\s*(?:,|and|or|to|-|–)\s*H?\d+[a-z]?)*"
_CROSS_REFS = (
    re.compile(r"\s*\([^()]*\b" + _REFS + r"[^()]*(?:\)|$)", re.I),  # "(see Rule 275)", an unclosed "(see Rule 275"
    re.compile(r"\s*\((?:(?:also )?see|for example|e\.g\.|including|excluding)[^)]*(?:\)|$)", re.I),
    re.compile(r",?\s*\b(?:(?:and|also|please)\s+)*see\s+(?:also\s+)?" + _REFS + r"\b", re.I),
    re.compile(r",?\s*\b(?:as\s+(?:described|shown|set out|explained|detailed)\s+)?(?:in|under|at|by)\s+"
               + _REFS + r"\b", re.I),
)


def strip_cross_refs(text: str) -> str:
    """Drop the Code's cross-references from a spoken sentence: parentheticals naming a rule, closed
    or not ("(see Rule 275)", "(see Rule 275" cut off by a line end), "see Rules 211 to 215" and "in
    Rule 277" phrases, and the examples in "(for example ...)". A rule number said aloud must be a
    cited one (validate.check); a reference to another rule is never the answer. Pure."""
    for pattern in _CROSS_REFS:
        text = pattern.sub("", text)
    text = re.sub(r"\s+([,.;:!?])", r"\1", re.sub(r"\s+", " ", text)).strip()
    return re.sub(r"[,;:–-]+(?=[.!?]?$)", "", text).strip()


def shorten(text: str, max_words: int) -> str:
    """Shorten a sentence for speech: drop cross-references and examples (:func:`strip_cross_refs`)
    and trailing clauses past ``max_words``."""
    ended = text.rstrip().endswith((".", "!", "?"))
    text = strip_cross_refs(text)
    if ended and text and not text.endswith((".", "!", "?")):
        text += "."
    words = text.split()
    if len(words) <= max_words:
        return text
    clauses = re.split(r"(?<=[,;–-])\s+", text)
    out: list[str] = []
    for c in clauses:
        if out and len(" ".join(out + [c]).split()) > max_words:
            break
        out.append(c)
    short = " ".join(out)
    if len(short.split()) > max_words:
        short = " ".join(short.split()[:max_words])
    return short.rstrip(" ,;:–-") + "."
