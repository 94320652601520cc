"""End of speech that follows the driver: a mid-sentence pause does not end a question.

The VAD ends an utterance after ``vad.trailing_silence_s`` of silence; drivers pause longer than
that in the middle of a sentence ("When am I allowed ... to use the hard shoulder?"). Once the
utterance is transcribed, :func:`hold_s` (pure) says how much longer to listen before acting on it:

- a command that matches its pattern whole ("switch the warnings on", "louder") or a noise
  phrase ("thank you"): act at once (0 s);
- no words (Whisper heard none in what the VAD took for speech, or the noise gate dropped them):
  ``hold_question_s``, so a short first word lost on its own is heard again with what follows;
- text that stops on a word no finished sentence ends with ("... on the", "... allowed to"), or only
  the wake phrase: ``hold_unfinished_s``;
- anything else, i.e. a question that looks finished: ``hold_question_s``.

The hold is counted from the end of the utterance's audio (0.2 s after its last speech; the VAD's
end event comes ``trailing_silence_s - 0.2`` s later). If the VAD opens a new utterance within the
hold, the held one is not acted on: it is merged with the next (:func:`merge`, the pause kept as
silence) and the two are transcribed as one. The hold runs while Whisper transcribes, so it adds
latency only when it outlasts the VAD's end event plus the transcription. A playback of the car's
own voice (the self-hearing gate mutes the mic) does not count: the VAD holds an open utterance
across it (:meth:`~.vad.VadSegmenter.gated`) and a held one's hold starts again when it ends
(:meth:`Joiner.muted`): the driver gets the whole hold after the car has spoken. :class:`Joiner` keeps that state for a
stream; time is an argument, so results are the same live, in replay and in tests.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

import numpy as np

from vehicle_assist.messages import Intent, Utterance
from vehicle_assist.speech import intents


@dataclass(frozen=True)
class EndpointOptions:
    """How long to keep listening after the VAD's end (config ``speech.endpoint``)."""

    enabled: bool = True
    hold_question_s: float = 0.85
    hold_unfinished_s: float = 1.2
    max_merged_s: float = 15.0
    hold_across_playback: bool = True
    stray_max_words: int = 2

    @classmethod
    def from_settings(cls, settings) -> "EndpointOptions":
        """Build from :class:`~vehicle_assist.config.EndpointSettings`."""
        return cls(**settings.model_dump())


def unfinished(text: str, table: intents.CompiledTable | None = None) -> bool:
    """Pure: does ``text`` stop mid-sentence (on a word like "the", "to", "when"; trailing "..." or
    ","; or nothing but the wake phrase / a filler)?"""
    table = table or intents.load_table()
    stripped = text.strip()
    if stripped.endswith(("...", "…", ",", "-", "—")):
        return True
    norm = intents.normalise(stripped)
    if not norm or norm in table.table.noise_phrases:
        return False
    core = intents.strip_fillers(norm, table.table)
    if not core:
        return True  # "hey car" alone: the question follows
    return core.split()[-1] in table.table.unfinished_endings


def hold_s(text: str, opts: EndpointOptions = EndpointOptions(), table: intents.CompiledTable | None = None) -> float:
    """Pure: seconds to keep listening after the VAD's end before acting on ``text``.

    0 for no words, a noise phrase, or a command that matches a pattern of configs/intents.yaml
    whole ("switch the warnings on"); ``hold_unfinished_s`` for text that stops mid-sentence;
    ``hold_question_s`` for the rest: questions, commands recognised only by sound ("volume" may
    be the start of "volume up"), and "mute" without a duration (one may follow).
    """
    if not opts.enabled:
        return 0.0
    if not text.strip():  # speech the VAD heard but Whisper gave no words for (or the gate dropped):
        return opts.hold_question_s  # if more follows, hear them together (a short "mute" alone can be lost)
    table = table or intents.load_table()
    norm = intents.normalise(text)
    core = intents.strip_fillers(norm, table.table)
    if norm in table.table.noise_phrases or core in table.table.noise_phrases:
        return 0.0
    if core and not text.strip().endswith(("...", "…", ",", "-", "—")):
        exact = intents.match_as_written(core, table)
        if exact is not None:
            if exact[0] == "mute" and not re.search(r"\b(minutes?|mins?|hours?)\b", core):
                return opts.hold_question_s
            return 0.0
    if unfinished(text, table):
        return opts.hold_unfinished_s
    return opts.hold_question_s


def merge(first: Utterance, second: Utterance) -> Utterance:
    """One utterance from two, the pause between them kept as silence (at most 1.5 s of it)."""
    sr = first.sample_rate
    gap_s = max(0.0, (second.t_start_ns - first.t_end_ns) / 1e9)
    gap = np.zeros(int(min(gap_s, 1.5) * sr), np.float32)
    pcm = np.concatenate([np.asarray(first.pcm, np.float32), gap, np.asarray(second.pcm, np.float32)])
    return Utterance(first.t_start_ns, second.t_end_ns, pcm, sr, round(first.held_s + second.held_s, 3),
                     first.short and second.short)


class Joiner:
    """Holds a transcribed utterance while the driver may go on; merges it with the next one.

    Times are seconds on the utterances' clock (``Utterance.t_end_ns / 1e9``). ``end(utt, text)``:
    ``utt`` was transcribed as ``text``; returns the hold (0: act on it now), counted from the end
    of its audio. ``started(t_s)``: the VAD opened an utterance at ``t_s`` (it may come before
    ``end``, while the ASR is still busy: it is remembered); True when that continues the held one
    (it will be merged). ``muted(t_s, d)``: the car spoke for ``d`` s from ``t_s`` (the hold starts again after it). ``take(utt)``: the utterance to transcribe, the held fragment
    merged in front when there is one. ``settled(t_s)``: the VAD has announced every onset up to ``t_s``.
    ``due(t_s)``: True when the held utterance must now be acted on (its hold passed with no new speech,
    and either the VAD's onset lag too or the VAD settled past it); ``release()`` then forgets it.
    ``close()``: the input ended, nothing is held any more.
    """

    def __init__(self, opts: EndpointOptions = EndpointOptions(), onset_lag_s: float = 0.0) -> None:
        self.opts = opts
        self.onset_lag_s = onset_lag_s
        """How late the VAD confirms that speech began (``2 * vad.start_s``): ``started`` is given the onset,
        so a held utterance is acted on only once a start within its hold could no longer be announced."""
        self.held: Utterance | None = None
        self.deadline_s = 0.0
        self.hold = 0.0
        self.continued = False
        self.last_start_s = float("-inf")  # the VAD may open the next utterance while this one is transcribed
        self.closing = asyncio.Event()  # the audio input ended (:meth:`close`): wakes a wait on a clock that stopped
        self.settled_s = float("-inf")  # up to here every speech onset has been announced (VadSegmenter.settled_s)
        self._muted: list[tuple[float, float]] = []  # (start s, seconds) the mic was muted by playback

    def end(self, utt: Utterance, text: str) -> float:
        hold = 0.0 if self.closed else hold_s(text, self.opts)
        if hold > 0 and len(utt.pcm) / utt.sample_rate < self.opts.max_merged_s:
            end_s = utt.t_end_ns / 1e9
            after = [t + d for t, d in self._muted if t >= end_s - 1e-9]  # playback since its end: the hold restarts after it
            self.held, self.hold, self.continued = utt, hold, False
            self.deadline_s = max([end_s] + after) + hold
            self.continued = end_s < self.last_start_s <= self.deadline_s + 1e-9
            return hold
        self.release()
        return 0.0

    def started(self, t_s: float) -> bool:
        self.last_start_s = max(self.last_start_s, t_s)
        if self.held is not None and not self.continued and t_s <= self.deadline_s + 1e-9:
            self.continued = True
        return self.continued

    def take(self, utt: Utterance) -> Utterance:
        if self.held is not None and self.continued:
            utt = merge(self.held, utt)
        self.release()
        return utt

    def muted(self, t_s: float, duration_s: float) -> None:
        """The mic was muted from ``t_s`` for ``duration_s`` while the car spoke: the driver cannot be
        heard going on, so a held utterance's hold starts again when the playback ends (the whole
        hold after it, as the VAD's trailing silence). Spans are remembered a while, as they may come
        before :meth:`end` (while the ASR runs)."""
        if not self.opts.hold_across_playback:
            return
        self._muted = [m for m in self._muted if m[0] > t_s - 30.0] + [(t_s, duration_s)]
        if self.held is not None and not self.continued:
            self.deadline_s = max(self.deadline_s, t_s + duration_s + self.hold)

    def settled(self, t_s: float | None) -> None:
        """The VAD says every speech onset up to ``t_s`` has been announced (None: an utterance is open)."""
        if t_s is not None:
            self.settled_s = max(self.settled_s, t_s)

    def due(self, t_s: float) -> bool:
        """The hold has passed with no new speech: ``onset_lag_s`` after it, or at once when the VAD has
        settled past it (no speech frame pending that could still be announced as starting within it);
        at once when the input has ended."""
        if self.held is None or self.continued:
            return False
        if self.closed:
            return True
        if t_s < self.deadline_s - 1e-9:
            return False
        return t_s >= self.deadline_s + self.onset_lag_s - 1e-9 or self.settled_s >= self.deadline_s - 1e-9

    @property
    def closed(self) -> bool:
        """The audio input ended: nothing more can follow, so nothing is held."""
        return self.closing.is_set()

    def close(self) -> None:
        """The audio input ended (a recorded drive's end, the microphone closed): a held utterance is due now,
        and the ones still to come are acted on at once (no speech can follow them)."""
        self.closing.set()

    def continues(self, utt: Utterance) -> bool:
        """Is ``utt`` heard now? A ``short`` span only when it continues the held utterance (merged behind it by
        :meth:`take`); any other utterance always."""
        return not utt.short or (self.held is not None and self.continued)

    def release(self) -> None:
        """The held utterance was acted on (or dropped)."""
        self.held, self.continued = None, False


class Shorts:
    """Spans too short for the VAD to make utterances of (less than ``vad.min_utterance_s`` of speech: a
    clipped "Hey", the "up" of "Volume ... up") are not lost when they sit within the question hold
    (``hold_question_s``, onset minus end of audio) of an utterance: one just before an utterance is put in
    front of it (:meth:`before`), one just after an utterance is heard (:meth:`after`: the caller hands it on,
    and :meth:`Joiner.continues` merges it behind a held fragment or drops it). A short span alone is
    never transcribed, so noise blips cost no ASR run and make no words."""

    def __init__(self, opts: EndpointOptions = EndpointOptions()) -> None:
        self.opts = opts
        self.pending: Utterance | None = None
        self.last_end_s = float("-inf")

    def ended(self, utt: Utterance) -> None:
        """An utterance was handed on (its audio ends at ``utt.t_end_ns``)."""
        self.last_end_s = utt.t_end_ns / 1e9

    def after(self, short: Utterance, onset_s: float) -> bool:
        """A short span closed: True when it began within the hold after the last utterance (hand it on);
        otherwise it is kept for the next utterance (joined to an earlier kept one within the hold)."""
        if not self.opts.enabled:
            return False
        if onset_s - self.last_end_s <= self.opts.hold_question_s + 1e-9:
            self.pending = None
            return True
        if self.pending is not None and onset_s - self.pending.t_end_ns / 1e9 <= self.opts.hold_question_s + 1e-9:
            short = merge(self.pending, short)
        self.pending = short
        return False

    def before(self, utt: Utterance, onset_s: float) -> Utterance:
        """The utterance to hand on: a kept short span that ended within the hold before ``onset_s`` in front."""
        pending, self.pending = self.pending, None
        if pending is not None and self.opts.enabled and 0 <= onset_s - pending.t_end_ns / 1e9 <= self.opts.hold_question_s + 1e-9:
            utt = merge(pending, utt)
        self.ended(utt)
        return utt


def stray_fragment(rest: str, table: intents.CompiledTable | None = None,
                   max_words: int = EndpointOptions.stray_max_words) -> bool:
    """Pure: is ``rest`` (words heard within the hold after a command acted on at once) a stray piece of that
    command rather than something new: a question by the table (no command, not even by sound) of at most
    ``max_words`` words, not opening with a question word ("Stop ... talking" heard as "Stop." + "Cocky.")?"""
    table = table or intents.load_table()
    norm = intents.strip_fillers(intents.normalise(rest), table.table)
    if not norm or max_words <= 0 or len(norm.split()) > max_words or intents.opens_with_question(norm, table.table):
        return False
    return intents.classify(rest, 0, table).name == "question"


def continues_command(command: str, said: str, rest: str, t_ns: int = 0,
                      table: intents.CompiledTable | None = None, slots: tuple = (),
                      stray_max_words: int = EndpointOptions.stray_max_words) -> Intent | None:
    """Pure: a command acted on at once (``command`` with ``slots``, from the words ``said``) and, within the
    hold after it, more words (``rest``): the intent of the two as one when they still are that command (the
    driver finished it: "Slow down." + "your speech", "What was that?" + "last warning", "Turn off the
    alerts." + "for 15 minutes"), or when ``rest`` alone is that command only by sound (a garbled remainder:
    "Again." + "You repeat that, please."), or the command as acted on (``slots`` kept: nothing new to act
    on) when ``rest`` is a stray fragment of it (:func:`stray_fragment` with ``stray_max_words``, 0: off:
    short, no command, no question word; "Stop." + "Cocky." for "Stop ... talking"); None otherwise, the rest heard and acted on as usual (a
    command as written on its own is meant: "Louder." + "Louder." is louder twice)."""
    table = table or intents.load_table()
    joined = intents.classify(f"{said} {rest}", t_ns, table)
    if joined.name == command:
        return joined
    if intents.command_as_written(rest, table) is not None:
        return None  # a command as written is meant: "Louder." twice is louder twice
    alone = intents.classify(rest, t_ns, table)
    if alone.name == command:
        return alone
    if stray_fragment(rest, table, stray_max_words):
        return Intent(t_ns, command, f"{said} {rest}", tuple(slots))  # the rest of it misheard: no second action
    return None


async def wait_for_rest(joiner: Joiner, now_s, sleep, step_s: float = 0.02) -> bool:
    """After :meth:`Joiner.end` returned a hold: wait until the driver goes on (True: the held
    utterance will be merged into the next one, do not act on it) or the hold passes (False: act).
    ``now_s()`` gives the latest time on the utterances' clock; ``sleep`` is the run's clock sleep."""
    closing = asyncio.ensure_future(joiner.closing.wait())  # a replay's clock stops when its drive ends
    try:
        while not joiner.continued and not joiner.due(now_s()):
            nap = asyncio.ensure_future(sleep(step_s))
            await asyncio.wait({nap, closing}, return_when=asyncio.FIRST_COMPLETED)
            nap.cancel()
    finally:
        closing.cancel()
    if joiner.continued:
        return True
    joiner.release()
    return False


__all__ = ["EndpointOptions", "Joiner", "Shorts", "continues_command", "hold_s", "merge", "stray_fragment",
           "unfinished", "wait_for_rest"]
