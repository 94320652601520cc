"""Features for a learned answer-sentence selector (an experiment, issue 15 fifth round; not in the lane).

Every sentence of the top 3 rules is described by a few features: the hand-set score and its parts
(word match, embedding similarity), the rule's retrieval rank, the sentence's place among its
rule's sentences by similarity (and its gap to that rule's best), its position, what kind of
sentence it is (states a number, MUST, MUST NOT, should, starts with an instruction, a condition
or a pronoun), its length, and the question's type (number, permission, action, definition,
other, scene) crossed with the sentence's kind. ``bench/fit_selector.py`` fits a linear score over
them listwise (softmax over one question's candidates, the sentences holding a key fact as targets)
on the dev split and cross-validates it against the hand-set order; it did not beat it, so the lane
does not use it (docs/advisory.md, fifth and seventh rounds).
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

QTYPES = ("number", "permission", "action", "definition", "other", "scene")
_QTYPE_PATTERNS = (  # first match wins (as bench/advisory.py's per-type report)
    ("number", re.compile(r"\b(how (far|fast|quick|long|many|much|close|often|old|tall|heavy)|what time|what hours|"
                          r"what'?s the (speed )?limit|speed limit|how big)\b")),
    ("permission", re.compile(r"^(can|may|am|is|are|do|does|must|should|could|would)\b|\ballowed\b|\blegal\b|\bok to\b")),
    ("action", re.compile(r"\bwhat (should|do|must|shall) (i|you|we) do\b|\bwhat now\b|\bhow (do|should) i\b|\bwhat do i\b")),
    ("definition", re.compile(r"\bwhat (does|do|is|are|'s)\b.*\b(mean|for)\b|\bwhat('s| is| are) (a|an|the)\b")),
)
_NUMBER = re.compile(r"\d")
_MUST = re.compile(r"\bMUST\b(?! NOT)")
_MUST_NOT = re.compile(r"\b(MUST NOT|DO NOT|NEVER)\b")
_SHOULD = re.compile(r"\bshould\b", re.I)
_CONDITION = re.compile(r"^(if|when|where|while|unless|before|after|once|on|at|in)\b", re.I)
_PRONOUN = re.compile(r"^(this|these|they|it|such|that|those|them)\b", re.I)
_INSTRUCTION = re.compile(r"^(?:[^,]{0,80},\s*)?(?:you\s+(?:should|must|MUST|may|can|need)\b|"
                          r"(?:do not|don't|never|always|keep|leave|give|stop|slow|pull|use|look|wait|allow|"
                          r"drive|check|switch|move|be|make|watch|avoid|get|take|let|pass|turn|reduce|find|"
                          r"call|put|try|drop|hold|go|remember|consider|only)\b)", re.I)

BASE = ("score", "lexical", "similarity", "rank1", "rank2", "rank3", "first_in_rule", "second_in_rule",
        "gap_rule_best", "gap_best", "first_sentence", "position", "number", "must", "must_not", "should",
        "instruction", "condition", "pronoun", "length", "joined")
CROSSED = ("number", "must", "must_not", "instruction", "first_sentence", "similarity")
NAMES = BASE + tuple(f"{q}*{c}" for q in QTYPES for c in CROSSED)


def question_type(question: str) -> str:
    """number / permission / action / definition / other for a question; scene for none."""
    q = (question or "").strip().lower()
    if not q:
        return "scene"
    return next((name for name, pattern in _QTYPE_PATTERNS if pattern.search(q)), "other")


def features(question: str, ranked: Sequence, passage_order: Sequence[str]) -> np.ndarray:
    """(candidates x len(NAMES)) for ``ranked`` (extractive.Scored, any order); ``question`` is the
    driver's own words ('' for a scene), ``passage_order`` the top passages' ids, best first."""
    n = len(ranked)
    x = np.zeros((n, len(NAMES)), dtype=np.float32)
    if n == 0:
        return x
    sims = np.array([r.similarity if r.similarity is not None else 0.0 for r in ranked], dtype=np.float32)
    lex = np.array([r.lexical for r in ranked], dtype=np.float32)
    top_lex = float(lex.max()) or 1.0
    rank = {pid: i for i, pid in enumerate(passage_order)}
    by_rule: dict[str, list[int]] = {}
    for i, r in enumerate(ranked):
        by_rule.setdefault(r.sentence.passage_id, []).append(i)
    place = np.zeros(n, dtype=np.int64)
    rule_best = np.zeros(n, dtype=np.float32)
    rule_len = np.ones(n, dtype=np.float32)
    for members in by_rule.values():
        order = sorted(members, key=lambda i: -sims[i])
        for k, i in enumerate(order):
            place[i] = k
            rule_best[i] = sims[order[0]]
        for i in members:
            rule_len[i] = max(ranked[j].sentence.index for j in members) + 1
    qi = QTYPES.index(question_type(question))
    best_sim = float(sims.max())
    for i, r in enumerate(ranked):
        text = r.sentence.text
        pr = rank.get(r.sentence.passage_id.split("-figure")[0], 2)
        row = {
            "score": r.score, "lexical": lex[i] / top_lex, "similarity": sims[i],
            "rank1": pr == 0, "rank2": pr == 1, "rank3": pr >= 2,
            "first_in_rule": place[i] == 0, "second_in_rule": place[i] == 1,
            "gap_rule_best": rule_best[i] - sims[i], "gap_best": best_sim - sims[i],
            "first_sentence": r.sentence.index == 0, "position": r.sentence.index / rule_len[i],
            "number": bool(_NUMBER.search(text)), "must": bool(_MUST.search(text)),
            "must_not": bool(_MUST_NOT.search(text)), "should": bool(_SHOULD.search(text)),
            "instruction": bool(_INSTRUCTION.match(text)), "condition": bool(_CONDITION.match(text)),
            "pronoun": bool(_PRONOUN.match(text)), "length": min(len(text.split()), 80) / 40.0,
            "joined": r.sentence.joined,
        }
        x[i, :len(BASE)] = [float(row[k]) for k in BASE]
        base = len(BASE) + qi * len(CROSSED)
        x[i, base:base + len(CROSSED)] = [float(row[c]) for c in CROSSED]
    return x
