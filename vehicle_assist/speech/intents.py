"""Intents: voice commands that act at once (no language model); everything else is a question.

The command phrases are a table (``configs/intents.yaml``): per intent, regular expressions that
must match the whole normalised utterance; known ASR mishearings of command words ("new to" ->
"mute", learned on the dev split) are corrected when nothing matched as heard, and the corrected
text must still match whole. :func:`classify` is pure: text and time in, an
:class:`~vehicle_assist.messages.Intent` out.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from vehicle_assist import config
from vehicle_assist.config import StrictModel
from vehicle_assist.messages import Intent

COMMANDS = ("mute", "unmute", "repeat", "louder", "quieter", "slower", "what_was_that", "stop")
NAMES = COMMANDS + ("question", "empty")
TAIL_SIMILARITY = 0.9
"""The end of a command example (all but its first word) must sound nearly the same (a first word misheard, not
the command's own words: "more quickly" is not "more quietly")."""


class IntentTable(StrictModel):
    """Schema of configs/intents.yaml."""

    fillers_start: list[str] = []
    fillers_end: list[str] = []
    noise_phrases: list[str] = []
    number_words: dict[str, float] = {}
    question_words: list[str] = []
    fuzzy_max_words: int = 0
    fuzzy_min_similarity: float = 1.0
    mishearings: dict[str, str] = {}
    opposites: list[tuple[str, str]] = []  # a word heard is never matched by sound to an example saying its opposite
    opposite_commands: list[tuple[str, str]] = []  # commands that undo each other (mute / unmute)
    opposite_margin: float = 0.0  # a match by sound must beat the opposite command's best example by this much
    unfinished_endings: list[str] = []  # an utterance ending with one of these words goes on (speech.endpoint)
    examples: dict[str, list[str]] = {}
    intents: dict[str, list[str]]


@dataclass(frozen=True)
class CompiledTable:
    """The intent table with its patterns compiled."""

    table: IntentTable
    patterns: tuple[tuple[str, re.Pattern], ...]


def compile_table(table: IntentTable, file: Path | str = "intents.yaml") -> CompiledTable:
    """Compile and check the table (unknown intent names and bad regexes are ConfigErrors)."""
    pats = []
    for name in table.examples:
        if name not in COMMANDS:
            raise config.ConfigError(file, f"examples.{name}", f"one of {', '.join(COMMANDS)}")
    for name, regexes in table.intents.items():
        if name not in COMMANDS:
            raise config.ConfigError(file, f"intents.{name}", f"one of {', '.join(COMMANDS)}")
        for rx in regexes:
            try:
                pats.append((name, re.compile(rf"(?:{rx})")))
            except re.error as err:
                raise config.ConfigError(file, f"intents.{name}", f"a valid regular expression ({err}): {rx}") from err
    return CompiledTable(table, tuple(pats))


@lru_cache(maxsize=4)
def load_table(path: Path | None = None) -> CompiledTable:
    """Load configs/intents.yaml (cached)."""
    path = path or config.config_path("intents.yaml")
    return compile_table(config.load(path, IntentTable), path)


def sound_key(word: str) -> str:
    """A crude phonetic key: c/k and ph/f merged, vowels (and y) after the first letter folded to 'a'."""
    w = word.lower().replace("ph", "f").replace("ck", "k").replace("c", "k").replace("q", "k")
    if not w:
        return w
    tail = re.sub(r"[aeiouy]+", "a", w[1:])
    return w[0] + re.sub(r"(.)\1+", r"\1", tail)


def normalise(text: str) -> str:
    """Lower case, apostrophes dropped, other punctuation to spaces, spaces collapsed."""
    text = text.lower().replace("’", "'").replace("'", " ")
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text).split())


def strip_fillers(text: str, table: IntentTable) -> str:
    """Remove polite fillers at the start and end ("please", "can you", "hey car") repeatedly."""
    changed = True
    while changed and text:
        changed = False
        for f in sorted(table.fillers_start, key=len, reverse=True):
            if text == f or text.startswith(f + " "):
                text, changed = text[len(f):].strip(), True
        for f in sorted(table.fillers_end, key=len, reverse=True):
            if text.endswith(" " + f):
                text, changed = text[: -len(f)].strip(), True
    return text


def parse_minutes(amount: str | None, unit: str | None, table: IntentTable) -> int | None:
    """'ten' 'minutes' -> 10; 'half an' 'hour' -> 30; digits pass through; unknown words -> None."""
    if not amount:
        return None
    amount = amount.strip()
    if amount.replace(".", "", 1).isdigit():
        value = float(amount)
    else:
        words = table.number_words
        if amount in words:
            value = words[amount]
        else:
            parts = amount.split()
            if not parts or not all(p in words for p in parts):
                return None
            value = sum(words[p] for p in parts)  # "twenty five"
    minutes = value * (60 if unit and unit.startswith("hour") else 1)
    return max(1, int(round(minutes)))


def classify(text: str, t_ns: int, table: CompiledTable | None = None, default_minutes: int = 10) -> Intent:
    """Pure: the intent of an utterance's text (commands by table; anything else is a question)."""
    table = table or load_table()
    norm = strip_fillers(normalise(text), table.table)
    if not norm or norm in table.table.noise_phrases:
        return Intent(t_ns, "empty", text)
    found = match_as_written(norm, table, default_minutes)
    if found is not None:
        return Intent(t_ns, found[0], text, found[1])
    fixed = correct_mishearings(norm, table.table)
    fuzzy = fuzzy_command(fixed, table.table)
    if fuzzy is not None:
        slots = (("minutes", str(_duration(fixed, table.table) or default_minutes)),) if fuzzy == "mute" else ()
        return Intent(t_ns, fuzzy, text, slots)
    return Intent(t_ns, "question", text)


def match_command(norm: str, table: CompiledTable, default_minutes: int = 10) -> tuple[str, tuple] | None:
    """(command, slots) when a pattern matches the whole normalised text, else None."""
    for name, rx in table.patterns:
        m = rx.fullmatch(norm)
        if m is None:
            continue
        slots: tuple[tuple[str, str], ...] = ()
        if name == "mute":
            groups = m.groupdict()
            minutes = parse_minutes(groups.get("amount"), groups.get("unit"), table.table)
            if groups.get("amount") and minutes is None:
                continue  # "mute the alerts for the city" is not a duration: not this pattern
            slots = (("minutes", str(minutes or default_minutes)),)
        return name, slots
    return None


def match_as_written(norm: str, table: CompiledTable, default_minutes: int = 10) -> tuple[str, tuple] | None:
    """(command, slots) when a pattern matches the normalised, filler-free ``norm`` whole, as heard or with
    known mishearings corrected (the corrected text must match whole, so questions stay questions); None
    otherwise. No match by sound."""
    return match_command(norm, table, default_minutes) or match_command(
        correct_mishearings(norm, table.table), table, default_minutes)


def command_as_written(text: str, table: CompiledTable | None = None) -> str | None:
    """Pure: the command ``text`` is as written (a pattern matches it whole, fillers stripped, known
    mishearings corrected), or None: the fuzzy fallback is not used."""
    table = table or load_table()
    norm = strip_fillers(normalise(text), table.table)
    found = match_as_written(norm, table) if norm else None
    return found[0] if found else None


def correct_mishearings(norm: str, table: IntentTable) -> str:
    """Rewrite known ASR mishearings of command words ("new to" -> "mute"), longest first, whole words only."""
    if not table.mishearings:
        return norm
    heard = "|".join(re.escape(h) for h in sorted(table.mishearings, key=len, reverse=True))
    fixed = re.sub(rf"(?<![a-z0-9])(?:{heard})(?![a-z0-9])", lambda m: table.mishearings[m[0]], norm)
    return " ".join(fixed.split())


def opens_with_question(norm: str, table: IntentTable) -> bool:
    """Pure: does the normalised ``norm`` open with one of the table's question words ("what", "can"...)?"""
    return bool(norm) and norm.split()[0] in table.question_words


DURATION_TAIL = re.compile(r" for [a-z0-9 ]+ (minutes?|mins?|hours?)$")
"""A duration ending normalised words ("... for ten minutes"): only mute takes one."""


def fuzzy_command(norm: str, table: IntentTable) -> str | None:
    """The command whose example sounds most like a short utterance, if similar enough."""
    core = DURATION_TAIL.sub("", norm)
    if not core or len(core.split()) > table.fuzzy_max_words or opens_with_question(core, table):
        return None  # a question form ("what was that sign") only ever matches a pattern exactly
    key = sound_key(core.replace(" ", ""))
    scores: dict[str, float] = {}
    for name, examples in table.examples.items():
        if core != norm and name != "mute":  # "... for ten minutes": only mute takes a duration
            continue
        for ex in examples:
            if contradicts(core, ex, table):
                continue
            score = difflib.SequenceMatcher(None, key, sound_key(ex.replace(" ", ""))).ratio()
            scores[name] = max(scores.get(name, 0.0), score)
    best_name = max(scores, key=scores.get, default=None)
    if best_name is not None and scores[best_name] >= table.fuzzy_min_similarity:
        rival = max((scores.get(b if a == best_name else a, 0.0) for a, b in table.opposite_commands
                     if best_name in (a, b)), default=0.0)
        # "a mute the alerts" sounds like mute (0.96) and unmute (0.89) alike: never guess between opposites
        return None if scores[best_name] - rival < table.opposite_margin else best_name
    return _command_by_tail(core, table)


def contradicts(heard: str, example: str, table: IntentTable) -> bool:
    """Whether ``heard`` says a word whose opposite ``example`` says instead ("turn on the lights" against
    "turn off the alerts"): a match by sound never reverses what the driver said."""
    h, e = set(heard.split()), set(example.split())
    return any((a in h and b in e and b not in h) or (b in h and a in e and a not in h) for a, b in table.opposites)


def _command_by_tail(core: str, table: IntentTable) -> str | None:
    """The command whose example of three words or more ends like ``core`` (all its words but the first, by
    sound), its first word misheard or lost ("up more slowly", "to beat more quietly"); None when no
    example or examples of more than one command do ("x the alerts" ends like mute and unmute alike)."""
    words = core.split()
    hits = set()
    for name, examples in table.examples.items():
        for ex in examples:
            tail = ex.split()[1:]
            if len(tail) < 2 or not len(tail) <= len(words) <= len(tail) + 2 or contradicts(core, ex, table):
                continue
            heard = sound_key("".join(words[-len(tail):]))
            if difflib.SequenceMatcher(None, heard, sound_key("".join(tail))).ratio() >= TAIL_SIMILARITY:
                hits.add(name)
    return hits.pop() if len(hits) == 1 else None


def _duration(norm: str, table: IntentTable) -> int | None:
    m = re.search(r" for (?P<amount>[a-z0-9 ]+?) (?P<unit>minutes?|mins?|hours?)$", norm)
    return parse_minutes(m["amount"], m["unit"], table) if m else None


def slot(intent: Intent, key: str, default: str | None = None) -> str | None:
    """One slot value of an intent."""
    return dict(intent.slots).get(key, default)
