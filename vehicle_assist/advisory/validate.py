"""Grounding checks (pure): every number, unit and rule id in an answer must be supported.

Support is the text of the cited passages plus the scene. Numbers are compared after
normalisation ("two-second" == "2 second", "30mph" == "30 mph", "metres" == "m"), and a number
with a unit must appear with the same unit. Cited ids must be among the retrieved ones, and an
answer must share some content words with what it cites (a model that echoes its instructions
cites a rule it does not use).

Meaning (``meaning``): each sentence of an answer must be supported by the cited text itself, not
by the question: most of its content words must be in the cited passages (words it shares only
with the question count against it), a negated action ("must not stop") must be negated in the
cited text too, an obligation or permission ("must run", "you can park") must be one the cited
text states, and a sentence must keep the polarity of the rule sentence it paraphrases.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vehicle_assist.advisory.text import passage_sentences, terms
from vehicle_assist.messages import Passage

_NUM_WORDS = {
    "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7", "eight": "8",
    "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "fifteen": "15", "twenty": "20",
    "thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "seventy": "70", "hundred": "100",
    "double": "2 times", "doubled": "2 times", "twice": "2 times", "half": "0.5",
}
_UNITS = {
    "mph": "mph", "km/h": "kmh", "kmh": "kmh", "kph": "kmh", "metre": "m", "metres": "m", "meter": "m",
    "meters": "m", "m": "m", "feet": "ft", "foot": "ft", "ft": "ft", "second": "s", "seconds": "s",
    "secs": "s", "sec": "s", "s": "s", "minute": "min", "minutes": "min", "hour": "h", "hours": "h",
    "tonne": "t", "tonnes": "t", "kg": "kg", "year": "yr", "years": "yr", "times": "x", "%": "%",
    "percent": "%", "mm": "mm", "cm": "cm", "yards": "yd", "yard": "yd", "miles": "mi", "mile": "mi",
    "car": "car", "cars": "car", "lengths": "len", "length": "len",
}
_UNIT_RE = "|".join(sorted((re.escape(u) for u in _UNITS), key=len, reverse=True))
_QUANTITY = re.compile(rf"(?<![\w.])(\d+(?:\.\d+)?)(?:\s*({_UNIT_RE})(?![\w/]))?", re.I)
_RULE_REF = re.compile(r"\brules?\s+((?:H?\d+[a-z]?)(?:\s*(?:,|and|to|-|–)\s*H?\d+[a-z]?)*)", re.I)


@dataclass(frozen=True)
class Verdict:
    """The outcome of validation: ``ok`` or not, and every reason it failed (empty when ok)."""

    ok: bool
    reasons: tuple[str, ...] = ()


def normalise(text: str) -> str:
    """Lower-case text with number words as digits and hyphens as spaces ('two-second' -> '2 second')."""
    text = text.lower().replace("–", " ").replace("’", "'")
    text = re.sub(r"(?<=[a-z0-9])-(?=[a-z0-9])", " ", text)
    return re.sub(r"\b(" + "|".join(_NUM_WORDS) + r")\b", lambda m: _NUM_WORDS[m.group(1)], text)


def quantities(text: str) -> list[tuple[str, str | None]]:
    """``(number, canonical unit or None)`` pairs in ``text``; digits inside rule refs are excluded."""
    text = _RULE_REF.sub(" ", normalise(text))
    out = []
    for m in _QUANTITY.finditer(text):
        num = m.group(1).rstrip("0").rstrip(".") if "." in m.group(1) else m.group(1)
        out.append((num, _UNITS.get(m.group(2).lower()) if m.group(2) else None))
    return out


def rule_refs(text: str) -> set[str]:
    """Rule ids named in text ('Rule 126', 'Rules 211 to 215' -> {'126', '211', '215'})."""
    out: set[str] = set()
    for m in _RULE_REF.finditer(text):
        out.update(x.upper() for x in re.findall(r"H?\d+[a-z]?", m.group(1), re.I))
    return out


_NEGATORS = frozenset("not never no cannot cant dont doesnt mustnt shouldnt wont neither nor".split())
_MODALS = frozenset("must should may can need shall".split())
_SKIP = frozenset("be been to do the a an your you any only always also ever just still it".split())
_TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)?|\d+(?:\.\d+)?")
MIN_SHARE = 0.6
"""Share of a spoken sentence's content words that must be in the cited text (not the question)."""


def _tokens(text: str) -> list[str]:
    text = re.sub(r"(?m)^\s*[-*•]\s+", " ", text.lower().replace("’", "'"))
    return [t.replace("'", "") for t in _TOKEN.findall(text.replace("n't", " not").replace("cannot", "can not"))]


def _head(tokens: list[str], i: int) -> str | None:
    """The content word an operator at ``i`` applies to ('must not *stop*', 'never *use*')."""
    for t in tokens[i + 1:i + 5]:
        if t in _NEGATORS or t in _SKIP or t in _MODALS:
            continue
        found = terms(t)
        if found:
            return found[0]
    return None


def polarity(text: str) -> tuple[set[str], set[str]]:
    """``(negated, stated)``: the actions the text negates ('MUST NOT park' -> 'park') and the ones
    it states as an obligation, permission or instruction ('MUST stop', 'you may proceed', a
    bullet or sentence that starts with its verb)."""
    neg: set[str] = set()
    pos: set[str] = set()
    for line in re.split(r"\n|(?<=[.!?;:])\s+", text):
        tokens = _tokens(line)
        if tokens:
            first = terms(tokens[0])
            if first:
                pos.add(first[0])  # an instruction: 'Give way ...', '- keep well back ...'
        for i, t in enumerate(tokens):
            if t in _NEGATORS:
                h = _head(tokens, i)
                if h:
                    neg.add(h)
            elif t in _MODALS and not any(x in _NEGATORS for x in tokens[i + 1:i + 3]):
                h = _head(tokens, i)
                if h:
                    pos.add(h)
    return neg, pos


def _negated(text: str) -> bool:
    return any(t in _NEGATORS for t in _tokens(text))


def _sentences(text: str) -> list[str]:
    return [x for x in re.split(r"\n+|(?<=[.!?;])\s+", text) if terms(x)]


def meaning(answer: str, support: str, question: str = "") -> list[str]:
    """Why the sentences of ``answer`` are not supported by ``support`` (the cited passages and the
    scene); empty when every one is. Words the answer shares only with ``question`` are no evidence."""
    reasons: list[str] = []
    have = set(terms(support))
    asked = set(terms(question))
    neg_have, pos_have = polarity(support)
    rule_sents = _sentences(support)
    for sent in _sentences(answer):
        said = [t for t in dict.fromkeys(terms(sent)) if not t[0].isdigit()]
        if not said:
            continue
        quoted = short = f"'{' '.join(sent.split()[:8])}'"
        missing = [t for t in said if t not in have]
        if len(said) - len(missing) < MIN_SHARE * len(said):
            copied = [t for t in missing if t in asked]
            why = " (its words come from the question)" if len(copied) * 2 >= len(missing) and copied else ""
            reasons.append(f"sentence {quoted} is not supported by the cited rules{why}")
            continue
        copied = [t for t in missing if t in asked]
        if len(copied) >= 2 or (copied and 3 * len(copied) >= len(said)):
            reasons.append(f"sentence {quoted} takes {', '.join(repr(t) for t in copied)} from the question, "
                           "not from the cited rules")
            continue
        neg, pos = polarity(sent)
        for h in sorted(neg - neg_have):
            reasons.append(f"sentence {short} negates '{h}', which the cited rules do not")
        first = terms(_tokens(sent)[0]) if _tokens(sent) else []
        for h in sorted(pos - pos_have - neg_have - set(first)):
            reasons.append(f"sentence {short} states '{h}' as a rule, which the cited rules do not")
        if first and first[0] in neg_have and first[0] not in pos_have and not neg:
            reasons.append(f"sentence {short} drops the rules' negation of '{first[0]}'")
        # the rule sentence it paraphrases: the one sharing most of its words
        words = set(said)
        best = max(rule_sents, key=lambda r: len(words & set(terms(r))), default="")
        if best and len(words & set(terms(best))) >= 0.8 * len(words) and _negated(best) != _negated(sent):
            if not (neg and neg <= neg_have) and not (not neg and _negated(best) and pos & pos_have):
                reasons.append(f"sentence {short} reverses the negation of the rule it paraphrases")
    return reasons


def check(answer: str, cited: tuple[str, ...] | list[str], retrieved_ids: tuple[str, ...] | list[str] | set[str],
          support: dict[str, str], scene_text: str = "", require_citation: bool = True,
          instructions: str = "", question: str = "", check_meaning: bool = True) -> Verdict:
    """Validate one answer. ``support`` maps a passage id to its text (at least the cited ones);
    ``instructions`` is the model's system prompt: an answer made of its words is an echo, not an answer;
    ``question`` is the driver's question: never evidence (see :func:`meaning`)."""
    reasons: list[str] = []
    if not answer.strip():
        return Verdict(False, ("empty answer",))
    retrieved = {str(r) for r in retrieved_ids}
    cited = tuple(str(c) for c in cited)
    if require_citation and not cited:
        reasons.append("no rule cited")
    for c in cited:
        if c not in retrieved:
            reasons.append(f"cited rule {c} was not retrieved")
        elif c not in support:
            reasons.append(f"cited rule {c} has no text to check against")
    base_ids = {c.split("-")[0].split("#")[0].upper() for c in cited}
    for ref in sorted(rule_refs(answer)):
        if ref not in base_ids:
            reasons.append(f"mentions Rule {ref}, which is not cited")
    text = " ".join(support.get(c, "") for c in cited) + " " + scene_text
    have = quantities(text)
    have_nums = {n for n, _ in have}
    have_pairs = {(n, u) for n, u in have if u}
    have_units = {u for _, u in have if u} | {
        _UNITS[w] for w in re.findall(rf"(?<![\w])({_UNIT_RE})(?![\w/])", normalise(text)) if w in _UNITS}
    for num, unit in quantities(answer):
        if num not in have_nums:
            reasons.append(f"number {num} is not in the cited rules or the scene")
        elif unit and (num, unit) not in have_pairs:
            reasons.append(f"'{num} {unit}' is not in the cited rules or the scene")
    for w in re.findall(r"\b(mph|km/h|metres?|meters?|feet|seconds?|tonnes?)(?![\w/])", normalise(answer)):
        if _UNITS[w] not in have_units:
            reasons.append(f"unit '{w}' is not in the cited rules or the scene")
    said = set(terms(answer))
    rule_words = set(terms(text))
    if cited and len(said) >= 4 and len(said & rule_words) < 2:
        reasons.append("the answer shares no words with the cited rules")
    if instructions and said and len((said & set(terms(instructions))) - rule_words) >= max(1, len(said) / 2):
        reasons.append("the answer repeats the model's instructions")
    if check_meaning and cited:
        reasons.extend(meaning(answer, text, question))
    return Verdict(not reasons, tuple(dict.fromkeys(reasons)))


def supported_part(answer: str, cited: tuple[str, ...] | list[str], retrieved_ids, support: dict[str, str],
                   scene_text: str = "", question: str = "") -> str:
    """The sentences of ``answer`` that pass :func:`check` on their own, in order ("" when none does):
    what may still be said when the whole answer fails (an extractive sentence naming a rule it does
    not cite is left out, never spoken). Pure."""
    parts = [x.strip() for x in re.split(r"(?<=[.!?])\s+", " ".join(answer.split())) if x.strip()]
    return " ".join(x for x in parts if check(x, cited, retrieved_ids, support, scene_text, question=question).ok)


def support_texts(passages: tuple[Passage, ...] | list[Passage]) -> dict[str, str]:
    """What an answer may be checked against: each passage's text plus its speakable sentences
    (table cells rendered with their units, e.g. '70 mph (112 km/h)')."""
    return {p.id: p.text + "\n" + " ".join(s.text for s in passage_sentences(p)) for p in passages}


def pick_citations(answer: str, ids: tuple[str, ...] | list[str], support: dict[str, str]) -> tuple[str, ...]:
    """The rules an answer written without citations comes from, chosen among ``ids`` only: the one
    passage (else the pair) that supports every number and unit in it, with the most words in common;
    when none does, the closest one (validation then says what is unsupported)."""
    ids = [i for i in ids if i in support]
    if not ids:
        return ()
    words = set(terms(answer))
    overlap = {i: len(words & set(terms(support[i]))) for i in ids}
    order = sorted(ids, key=lambda i: -overlap[i])
    for i in order:
        if check(answer, (i,), ids, support).ok:
            return (i,)
    if len(order) > 1 and check(answer, tuple(order[:2]), ids, support).ok:
        return tuple(order[:2])
    return (order[0],)
