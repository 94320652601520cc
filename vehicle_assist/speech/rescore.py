"""Commands rescored by sound: when the free transcript's intent is uncertain, Whisper itself says which command
the audio is.

A command matched only by sound (the fuzzy fallback or the first-word rule: "Wider." -> louder) or a short
question that sounds near a command ("To beat more quietly.") is an uncertain reading. For such a transcript
the few command examples nearest it by sound (:func:`candidates`, pure) are written in its place, keeping the
driver's fillers and duration ("Hey car, quieter please."), and each is scored against the audio by Whisper
(:meth:`~vehicle_assist.speech.asr.FasterWhisperASR.score_texts`: one forced decoder pass per text over the
encoder output the transcript came from). :func:`choose` (pure) takes the best-scoring candidate when it is nearly
as likely as the free reading (``margin``); otherwise a command matched by sound is not acted on (the driver is
asked again) and a question stays a question. A command as written is never rescored (it acts at once, no cost).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from vehicle_assist import clock
from vehicle_assist.messages import Intent, Transcript, Utterance
from vehicle_assist.speech import intents


@dataclass(frozen=True)
class RescoreOptions:
    """When and how a command is rescored by sound (config: ``speech.asr.rescore``)."""

    enabled: bool = False
    max_candidates: int = 3  # command examples scored (the nearest by sound, one per command)
    min_similarity: float = 0.6  # a question is rescored when a command example is this near by sound
    margin: float = 3.0  # a candidate within this log-probability of the free reading is taken
    sound_only: str = "ask"  # a command matched by sound that no candidate confirms: ask (back) | keep
    sound_lead: float = 2.0  # ... kept all the same when its own reading beats every other command's by this much

    @classmethod
    def from_settings(cls, settings) -> "RescoreOptions":
        """Build from :class:`~vehicle_assist.config.RescoreSettings`."""
        return cls(**settings.model_dump())


@dataclass(frozen=True)
class Candidate:
    """One command reading of an uncertain transcript."""

    command: str
    example: str  # the example written in place of the heard command words
    text: str  # the whole reading scored (fillers and duration kept), normalised
    similarity: float  # by sound, the heard command words against the example


@dataclass(frozen=True)
class Rescored:
    """What the rescoring made of one transcript."""

    intent: Intent  # what to act on (a question, a command) or None ...
    route: str  # written | sound | question: how the free transcript was read
    chosen: Candidate | None
    scores: tuple[tuple[str, float], ...] = ()  # (text, log-prob) of the free reading and each candidate (in order)
    commands: tuple[str, ...] = ()  # each candidate's command
    ask_back: bool = False  # a command by sound that the audio did not confirm: ask again
    ms: float = 0.0


def _split(norm: str, table: intents.IntentTable) -> tuple[str, str, str, str] | None:
    """``norm`` as (fillers before, command words, duration, fillers after); None when nothing is left."""
    core = intents.strip_fillers(norm, table)
    if not core:
        return None
    start = norm.find(core)
    m = intents.DURATION_TAIL.search(core)
    words, duration = (core[:m.start()], core[m.start():]) if m else (core, "")
    return norm[:start].strip(), words, duration, norm[start + len(core):].strip()


def route(text: str, table: intents.CompiledTable | None = None, got: Intent | None = None) -> str:
    """Pure: how :func:`~vehicle_assist.speech.intents.classify` reads ``text`` (``got``, when already classified):
    "written" (a pattern matches, the command acts at once), "sound" (a command only by sound), "question" or "empty"."""
    table = table or intents.load_table()
    got = got if got is not None else intents.classify(text, 0, table)
    if got.name in ("question", "empty"):
        return got.name
    return "written" if intents.command_as_written(text, table) else "sound"


def candidates(text: str, table: intents.CompiledTable | None = None, n: int = 3,
               min_similarity: float = 0.0) -> list[Candidate]:
    """Pure: the ``n`` commands whose nearest example sounds most like ``text``'s command words (fillers and a
    duration set apart), each as the whole reading with that example in their place; only mute takes a duration;
    an example that says the opposite of a word heard is never one (:func:`intents.contradicts`)."""
    table = table or intents.load_table()
    t = table.table
    parts = _split(intents.normalise(text), t)
    if parts is None or len(parts[1].split()) > t.fuzzy_max_words:
        return []
    before, words, duration, after = parts
    key = intents.sound_key(words.replace(" ", ""))
    best: dict[str, tuple[float, str]] = {}
    for name, examples in t.examples.items():
        if duration and name != "mute":
            continue
        for ex in examples:
            if intents.contradicts(words, ex, t):
                continue
            sim = difflib.SequenceMatcher(None, key, intents.sound_key(ex.replace(" ", ""))).ratio()
            if sim > best.get(name, (-1.0, ""))[0]:
                best[name] = (sim, ex)
    ranked = sorted(best.items(), key=lambda kv: -kv[1][0])[:n]
    return [Candidate(name, ex, " ".join(x for x in (before, ex, duration.strip(), after) if x), round(sim, 3))
            for name, (sim, ex) in ranked if sim >= min_similarity]


def wants_rescore(text: str, opts: RescoreOptions, table: intents.CompiledTable | None = None,
                  r: str | None = None) -> bool:
    """Pure: is ``text``'s intent uncertain enough to be checked by sound? A command matched only by sound, or a
    short question (not opening with a question word) with a command example at least ``min_similarity`` near.
    ``r``: ``text``'s :func:`route` when already known."""
    if not opts.enabled or not text.strip():
        return False
    table = table or intents.load_table()
    r = r or route(text, table)
    if r == "sound":
        return True
    if r != "question":
        return False
    parts = _split(intents.normalise(text), table.table)
    if parts is None or intents.opens_with_question(parts[1], table.table):
        return False
    return bool(candidates(text, table, 1, opts.min_similarity))


def choose(free_logprob: float, scored: list[tuple[Candidate, float]], margin: float) -> Candidate | None:
    """Pure: the best-scoring candidate if it is within ``margin`` (log-probability) of the free reading."""
    if not scored:
        return None
    cand, lp = max(scored, key=lambda cs: cs[1])
    return cand if lp >= free_logprob - margin else None


def keeps(command: str, scored: list[tuple[Candidate, float]], lead: float) -> bool:
    """Pure: does the audio prefer ``command`` (matched by sound) over every other command read in its place, by at
    least ``lead``? ("Wider.": louder -10.1, quieter -10.1: no, ask again; one reading only, mute with a duration: yes.)"""
    own = [lp for c, lp in scored if c.command == command]
    rivals = [lp for c, lp in scored if c.command != command]
    return bool(own) and (not rivals or max(own) - max(rivals) >= lead)


def as_heard(text: str) -> str:
    """The transcript's words in the readings' style, apostrophes kept ("It's lower." -> "it's lower"): a reading
    Whisper would not write ("it s lower") would score low and make any command reading look close."""
    return " ".join(re.sub(r"[^a-z0-9']+", " ", text.lower().replace("’", "'")).split())


def styled(norm: str, capital: bool = True) -> str:
    """A normalised reading written as Whisper writes a short sentence ("quieter please" -> "Quieter please."; after
    the wake phrase, ``capital`` False: "quieter please.")."""
    return (norm[:1].upper() if capital else norm[:1]) + norm[1:] + "." if norm else norm


def resolve(utt: Utterance, transcript: Transcript, text: str, asr, opts: RescoreOptions,
            table: intents.CompiledTable | None = None, default_minutes: int = 10, head: str | None = None) -> Rescored:
    """The intent of ``text`` (the words acted on: the transcript, or what follows the wake phrase), checked by
    sound when uncertain (:func:`wants_rescore`) and the backend can score texts. Every reading keeps the words
    before ``text``: ``head`` when given (the wake phrase forced by the check by sound), else the transcript's
    words before it (``text`` must then end the transcript)."""
    table = table or intents.load_table()
    start = clock.perf_ns()
    got = intents.classify(text, transcript.t_ns, table, default_minutes)
    r = route(text, table, got)
    if not wants_rescore(text, opts, table, r) or not hasattr(asr, "score_texts"):
        return Rescored(got, r, None)
    full = transcript.text.strip()
    tail = text.strip()
    if head is None:
        if not tail or not full.lower().endswith(tail.lower()):
            return Rescored(got, r, None)  # the words acted on are not the transcript's own
        head = full[: len(full) - len(tail)].strip()
    cands = candidates(text, table, opts.max_candidates)
    if not cands:
        return Rescored(got, r, None)
    capital = not head or tail[:1].isupper()
    readings = [styled(as_heard(text), capital)] + [styled(c.text, capital) for c in cands]
    logps = asr.score_texts(utt, [f"{head} {x}".strip() for x in readings])
    chosen = choose(logps[0], list(zip(cands, logps[1:])), opts.margin)
    scores = tuple((x, round(lp, 2)) for x, lp in zip(readings, logps))
    ms = (clock.perf_ns() - start) / 1e6
    commands = tuple(c.command for c in cands)
    if chosen is not None:
        return Rescored(intents.classify(chosen.text, transcript.t_ns, table, default_minutes), r, chosen, scores,
                        commands, False, ms)
    if r == "sound" and opts.sound_only == "ask" and not keeps(got.name, list(zip(cands, logps[1:])), opts.sound_lead):
        return Rescored(Intent(transcript.t_ns, "question", text), r, None, scores, commands, True, ms)
    return Rescored(got, r, None, scores, commands, False, ms)
