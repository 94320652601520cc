"""Activation: when the assistant listens, and which transcripts it acts on.

- Push-to-talk (default): audio reaches the VAD only while a button is held (a key, a GPIO line,
  a steering-wheel button) through the small :class:`ButtonSource` interface; releasing it ends
  the utterance.
- Hands-free: every utterance is transcribed, but only one whose first words match the wake
  phrase ("hey car") is acted on; the phrase is removed before the intent is classified. The
  match is a fuzzy per-word comparison of the transcript's start (no extra model run), so
  passengers and the radio do not reach the language model.
- Wake phrase by sound: when a transcript's first words are near the phrase (or one of its renderings)
  but not accepted as written ("A cart, unmute the alerts"), Whisper scores the utterance read as
  starting with the phrase against its own transcript (:meth:`~.asr.FasterWhisperASR.score_prefix`);
  :func:`accept_by_sound` accepts when that reading is nearly as likely (``speech.activation.wake_check``).
- Self-hearing gate: while the audio arbiter speaks (``is_speaking()``), and for a short
  hang-over after, the microphone's audio is dropped, so the assistant never transcribes itself.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Protocol

from vehicle_assist.speech.intents import sound_key

PUSH_TO_TALK, WAKE_PHRASE = "push_to_talk", "wake_phrase"
LISTENING, PLAYBACK, OFF = "listening", "playback", "off"
"""What :meth:`Gate.state` says of the mic's audio at a moment."""
HEARD_AS_SIMILARITY = 0.9  # "okay car" must not take "Okay, carry on"
ADDRESSED_OPENERS = frozenset("what how why when where who".split())  # not "which"/"whose": "A car which is parked..."
"""After a rendering that needs a pause ("a car,"), a remainder opening with one of these is a question to
the assistant even without the pause ("A car who has priority at this junction."); a statement about a car
("A car is overtaking me") opens otherwise."""


@dataclass(frozen=True)
class WakeMatch:
    """Result of looking for the wake phrase at the start of a transcript."""

    matched: bool
    remainder: str
    score: float


def _words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]+", " ", text.lower()).replace("'", "").split()


def _similar(a: str, b: str) -> float:
    ka, kb = sound_key(a), sound_key(b)
    if not ka or not kb or ka[0] != kb[0]:
        return 0.0
    return difflib.SequenceMatcher(None, ka, kb).ratio()


def match_wake(text: str, phrase: str = "hey car", min_similarity: float = 0.7,
               heard_as: tuple[str, ...] = ()) -> WakeMatch:
    """Pure: does ``text`` start with ``phrase`` (or one of its known ASR renderings ``heard_as``)?

    Each wake word must be similar to the word in its place (``min_similarity``; a rendering, being
    an exact heard form, needs ``HEARD_AS_SIMILARITY``); the best match wins. A rendering written
    with a trailing comma ("a car,") counts only when the transcript has punctuation right after
    it ("A car, what is..." but not "A car is overtaking..."), or when what follows is plainly
    addressed to the assistant: a voice command ("A car speaks lower" -> slower) or a wh-question
    (:data:`ADDRESSED_OPENERS`: "A car who has priority at this junction.")."""
    best = _match_one(text, phrase, min_similarity)
    for variant in heard_as:
        pause = variant.rstrip().endswith(",")
        m = _match_one(text, variant.rstrip().rstrip(","), max(min_similarity, HEARD_AS_SIMILARITY), pause)
        if m.matched and (not best.matched or m.score > best.score):
            best = m
    return best


def _match_one(text: str, phrase: str, min_similarity: float, needs_pause: bool = False) -> WakeMatch:
    wake = _words(phrase)
    words = _words(text)
    if not wake or len(words) < len(wake):
        return WakeMatch(False, text, 0.0)
    best = (0.0, 0)
    # Whisper may glue or split the phrase ("Heycar", "Hey, Car", "Hay car"): compare joined forms too.
    for n in range(max(1, len(wake) - 1), min(len(words), len(wake) + 1) + 1):
        head = words[:n]
        if n == len(wake):
            score = min(_similar(a, b) for a, b in zip(wake, head))
        else:
            score = _similar("".join(wake), "".join(head)) - 0.1
        if score > best[0]:
            best = (score, n)
    if best[0] < min_similarity:
        return WakeMatch(False, text, best[0])
    rest_words = best[1]
    # remove the matched words from the original text (keeping its punctuation and case)
    tokens = re.findall(r"\S+", text)
    kept, seen, last = [], 0, ""
    for tok in tokens:
        if seen < rest_words and _words(tok):
            seen += len(_words(tok))
            last = tok
            continue
        kept.append(tok)
    remainder = " ".join(kept).lstrip(",.!?;: ")
    if needs_pause and not re.search(r"[,.!?;:]$", last) and not addressed(remainder):
        return WakeMatch(False, text, best[0])
    return WakeMatch(True, remainder, best[0])


def addressed(remainder: str) -> bool:
    """Pure: does this text, said right after something like the wake phrase, speak to the assistant?
    A wh-question opener, or a voice command (configs/intents.yaml, exact or by sound)."""
    from vehicle_assist.speech.intents import classify

    words = _words(remainder)
    if not words:
        return False
    return words[0] in ADDRESSED_OPENERS or classify(remainder, 0).name not in ("question", "empty")


@dataclass(frozen=True)
class WakeCheck:
    """When a transcript is scored against the wake phrase by sound, and what is accepted
    (config: ``speech.activation.wake_check``)."""

    enabled: bool = True
    near_similarity: float = 0.6
    min_margin: float = -6.5
    min_prefix_logprob: float = -3.0

    @classmethod
    def from_settings(cls, settings) -> "WakeCheck":
        return cls(**settings.model_dump())


def _near_head(text: str, phrase: str, heard_as: tuple[str, ...] = ()) -> tuple[float, int]:
    """(how near the start of ``text`` is to ``phrase`` or a rendering, how many of its first words that takes)."""
    best = (0.0, 0)
    words = _words(text)
    for p in (phrase, *heard_as):
        pw = _words(p)
        key = sound_key("".join(pw))
        for n in range(1, min(len(words), len(pw) + 1) + 1):
            head = sound_key("".join(words[:n]))
            score = difflib.SequenceMatcher(None, key, head).ratio() if key and head else 0.0
            if n == len(pw):  # the per-word match of the phrase's own length
                score = max(score, min(_similar(a, b) for a, b in zip(pw, words[:n])))
            if score > best[0]:
                best = (score, n)
    return best


def near_wake(text: str, phrase: str, heard_as: tuple[str, ...] = ()) -> float:
    """Pure: how near the start of ``text`` is to ``phrase`` or one of its renderings (0-1), whether or not
    it is accepted as written: the best of the per-word match and the sound similarity of the first one to
    n+1 words run together (no first-letter rule, so "Day car", "Pay car" and "They car" count as near)."""
    return _near_head(text, phrase, heard_as)[0]


def after_near_wake(text: str, phrase: str, heard_as: tuple[str, ...] = ()) -> str:
    """Pure: ``text`` without the first words that stand for the wake phrase (those :func:`near_wake`
    matched), punctuation and case kept: "A cart, unmute the alerts." -> "unmute the alerts."."""
    return _drop_words(text, _near_head(text, phrase, heard_as)[1])


def _drop_words(text: str, n: int) -> str:
    kept, seen = [], 0
    for tok in re.findall(r"\S+", text):
        if seen < n and _words(tok):
            seen += len(_words(tok))
            continue
        kept.append(tok)
    return " ".join(kept).lstrip(",.!?;: ")


def text_after_wake_by_sound(free_rest: str, forced_rest: str) -> str:
    """Pure: the words to act on once the phrase was heard by sound. Whisper's free transcript (after the words
    that stood for the phrase) when it is a voice command as written; otherwise the words Whisper decoded
    after the forced phrase. Forcing "Hey car," onto the audio can take a syllable of the command with it
    ("A cart, unmute the alerts." -> "Hey car, mute the alerts."), and a command acts at once, so an
    unforced reading that already is a command wins; the forced reading decides whether to wake."""
    from vehicle_assist.speech.intents import command_as_written

    if command_as_written(free_rest) is not None:
        return free_rest
    return forced_rest


def accept_by_sound(margin: float, prefix_logprob: float, check: WakeCheck) -> bool:
    """Pure: is the wake phrase heard, given Whisper's scores of the utterance read with it? ``margin``:
    log P(reading that starts with the phrase) - log P(the transcript); ``prefix_logprob``: the mean
    log-probability of the phrase's own tokens."""
    return check.enabled and margin >= check.min_margin and prefix_logprob >= check.min_prefix_logprob


@dataclass(frozen=True)
class Decision:
    """Whether to act on a transcript, and the text to act on (wake phrase removed)."""

    accept: bool
    text: str
    reason: str  # "push-to-talk" | "wake-phrase" | "wake-by-sound" | "no-wake-phrase"


@dataclass(frozen=True)
class ButtonEvent:
    """A push-to-talk button went down (``pressed=True``) or up, at ``t_ns``."""

    pressed: bool
    t_ns: int


class ButtonSource(Protocol):
    """Anything that reports push-to-talk presses: a key, a GPIO line, a steering-wheel button."""

    def events(self) -> Iterator[ButtonEvent]:
        """Button transitions in time order."""


@dataclass
class ScriptedButton:
    """Presses from a list (a recorded drive's button log, or a test)."""

    script: list[ButtonEvent]

    def events(self) -> Iterator[ButtonEvent]:
        return iter(sorted(self.script, key=lambda e: e.t_ns))


class FileButton:
    """A GPIO-style button: a file holding ``1`` while pressed and ``0`` otherwise (Linux sysfs GPIO)."""

    def __init__(self, path: Path | str, now_ns: Callable[[], int], active_low: bool = False) -> None:
        self.path, self.now_ns, self.active_low = Path(path), now_ns, active_low
        self._last: bool | None = None

    def poll(self) -> ButtonEvent | None:
        """Read the line once; an event when it changed since the last read."""
        try:
            raw = self.path.read_text().strip()
        except OSError:
            return None
        pressed = (raw == "1") != self.active_low
        if pressed == self._last:
            return None
        self._last = pressed
        return ButtonEvent(pressed, self.now_ns())

    def events(self) -> Iterator[ButtonEvent]:
        while True:
            ev = self.poll()
            if ev is not None:
                yield ev


class Gate:
    """Decides whether mic audio is listened to now, and whether a transcript is acted on."""

    def __init__(self, mode: str = PUSH_TO_TALK, wake_phrase: str = "hey car", min_similarity: float = 0.7,
                 is_speaking: Callable[[], bool] = lambda: False, hangover_s: float = 0.3,
                 heard_as: tuple[str, ...] | None = None, check: WakeCheck | None = None) -> None:
        if mode not in (PUSH_TO_TALK, WAKE_PHRASE):
            raise ValueError(f"activation mode must be {PUSH_TO_TALK!r} or {WAKE_PHRASE!r}, got {mode!r}")
        self.mode, self.wake_phrase, self.min_similarity = mode, wake_phrase, min_similarity
        if heard_as is None:  # the configured renderings of this phrase (none for a phrase without any)
            from vehicle_assist.config import ActivationSettings

            heard_as = tuple(ActivationSettings().wake_heard_as.get(wake_phrase.lower(), ()))
        self.heard_as = tuple(heard_as)
        self.check = check if check is not None else WakeCheck()
        self.is_speaking, self.hangover_ns = is_speaking, int(hangover_s * 1e9)
        self.pressed = False
        self._spoke_until_ns: int | None = None

    @classmethod
    def from_settings(cls, settings, is_speaking: Callable[[], bool] = lambda: False) -> "Gate":
        """Build from :class:`~vehicle_assist.config.ActivationSettings`."""
        return cls(settings.mode, settings.wake_phrase, settings.wake_min_similarity, is_speaking,
                   settings.speaking_hangover_s, tuple(settings.wake_heard_as.get(settings.wake_phrase.lower(), ())),
                   WakeCheck.from_settings(settings.wake_check))

    def button(self, event: ButtonEvent) -> bool:
        """Apply a push-to-talk event; returns True when the button was just released (end the utterance)."""
        released = self.pressed and not event.pressed
        self.pressed = event.pressed
        return released

    def listening(self, t_ns: int) -> bool:
        """Should mic audio at ``t_ns`` reach the VAD? Never while the assistant speaks (plus hang-over)."""
        return self.state(t_ns) == LISTENING

    def state(self, t_ns: int) -> str:
        """Mic audio at ``t_ns``: ``listening`` (to the VAD), ``playback`` (muted because the car speaks,
        or within the hang-over after: an open utterance is held across it) or ``off`` (push-to-talk
        not pressed)."""
        if self.is_speaking():
            self._spoke_until_ns = t_ns
            return PLAYBACK
        if self._spoke_until_ns is not None and t_ns - self._spoke_until_ns < self.hangover_ns:
            return PLAYBACK
        return LISTENING if self.mode != PUSH_TO_TALK or self.pressed else OFF

    def may_go_on(self) -> bool:
        """Could the driver still be speaking? False once the push-to-talk button was released (the
        release is the end of speech, so a mid-sentence hold is pointless)."""
        return self.mode != PUSH_TO_TALK or self.pressed

    def decide(self, text: str) -> Decision:
        """Act on this transcript? In hands-free mode only when it starts with the wake phrase."""
        if self.mode == PUSH_TO_TALK:
            return Decision(True, text, "push-to-talk")
        m = match_wake(text, self.wake_phrase, self.min_similarity, self.heard_as)
        return Decision(m.matched, m.remainder if m.matched else text, "wake-phrase" if m.matched else "no-wake-phrase")

    @property
    def prefix(self) -> str:
        """The wake phrase as Whisper writes it before a request ("Hey car,"): the decoder prefix of the check."""
        return self.wake_phrase.strip().capitalize() + ","

    def near(self, text: str) -> float:
        """How near the transcript's first words are to the phrase or a rendering (0-1)."""
        return near_wake(text, self.wake_phrase, self.heard_as)

    def wants_sound_check(self, text: str) -> bool:
        """Hands-free, words heard, the phrase not accepted as written, but the start near it: check by sound."""
        return (self.mode == WAKE_PHRASE and self.check.enabled and bool(_words(text))
                and self.near(text) >= self.check.near_similarity and not self.decide(text).accept)

    def decide_by_sound(self, text: str, score) -> Decision:
        """Act on the utterance when Whisper's reading with the phrase (an :class:`~.asr.PrefixScore`) is close
        enough to its transcript. The text acted on: the transcript's own words after the phrase when they are a
        command as written, else what Whisper decoded after the forced phrase (:func:`text_after_wake_by_sound`)."""
        if accept_by_sound(score.margin, score.prefix_logprob, self.check):
            free = after_near_wake(text, self.wake_phrase, self.heard_as)
            return Decision(True, text_after_wake_by_sound(free, score.text), "wake-by-sound")
        return Decision(False, text, "no-wake-phrase")
