"""The one speaker for everything said that is not a pre-rendered alert: answers, replies to
commands, ask-backs. Text is rendered sentence by sentence at the driver's speech rate and each
sentence handed to the audio arbiter, so speech starts before a long answer is ready.

When nothing is playing (the driver is waiting in silence) and the renderer's time grows with the
text (Piper: ``split_first_phrase``), a long sentence's first phrase is rendered and queued on its own (:func:`vehicle_assist.speech.tts.first_chunk`): Piper's render time
grows with the text, so the first words play while the rest renders. While something plays, a
sentence renders whole (its rendering is hidden behind the playback, and whole sentences sound best).

If the arbiter's ``cancel_event`` is set (an alert pre-empted the advisory) no further sentence is
rendered. Nothing here plays audio itself.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import numpy as np

from vehicle_assist import clock
from vehicle_assist.messages import SpeechRequest, Tier
from vehicle_assist.speech.tts import first_chunk, split_sentences


class Arbiter(Protocol):
    """The part of :class:`vehicle_assist.audio_out.AudioArbiter` the speaker uses."""

    cancel_event: threading.Event

    def begin_advisory(self) -> None:
        """A new answer starts (clears an earlier pre-emption)."""

    def say(self, req: SpeechRequest) -> None:
        """Queue one rendered request."""

    def is_speaking(self) -> bool:
        """Something is playing or queued."""


class Rendered(Protocol):
    pcm: np.ndarray
    sample_rate: int


class Renderer(Protocol):
    """The TTS renderer (:class:`vehicle_assist.speech.tts.TTSRenderer`)."""

    def render(self, text: str, rate: int | None = None) -> Rendered:
        """PCM for ``text`` at ``rate`` words per minute (None: the renderer's own)."""


class Speaker:
    """Renders at :attr:`rate` and queues on the arbiter; ``speaker(sentence)`` is the advisory
    lane's sentence speaker, :meth:`say` speaks a whole text."""

    def __init__(self, arbiter: Arbiter, renderer: Renderer, rate: int | None = None, first_chunk_words: int = 6,
                 nice: int = 0) -> None:
        self.arbiter, self.renderer = arbiter, renderer
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="render", initializer=lower_priority,
                                        initargs=(nice,)) if nice > 0 else None
        """With ``nice`` > 0, rendering runs on one thread of lower CPU priority (the caller waits for it)."""
        self.rate = rate
        """Words per minute for everything rendered from now on (the driver's "speak more slowly")."""
        self.first_chunk_words = first_chunk_words
        """A long sentence that starts in silence is cut after its first phrase of at most this many words (0: never)."""
        self.queued_ns: int | None = None
        """When the last sentence's first part reached the arbiter (perf clock; None: nothing queued): its audio
        starts then, while the rest of the sentence may still be rendering."""

    def __call__(self, sentence: str, source: str = "advisory", tier: Tier = Tier.ADVISORY, t_ns: int = 0) -> bool:
        """Render one sentence and queue it; False when an alert pre-empted it (nothing more should follow)."""
        self.queued_ns = None
        head, rest = (sentence, "") if self.arbiter.is_speaking() else self.split(sentence)
        return all(self._one(part, source, tier, t_ns) for part in (head, rest) if part)

    def split(self, sentence: str) -> tuple[str, str]:
        """(what is rendered and queued first, the rest) for a sentence said in silence: the first phrase
        (:func:`~vehicle_assist.speech.tts.first_chunk`) when the renderer's time grows with the text, else the whole."""
        if getattr(self.renderer, "split_first_phrase", False):
            return first_chunk(sentence, self.first_chunk_words)
        return sentence, ""

    def opening(self, text: str) -> str:
        """The text of the first audio of ``text`` said in silence (what the driver waits for): its first
        sentence's first part. What :mod:`vehicle_assist.speech.warm` pre-renders."""
        sentences = split_sentences(text)
        return self.split(sentences[0])[0] if sentences else ""

    def _one(self, text: str, source: str, tier: Tier, t_ns: int) -> bool:
        cancel = self.arbiter.cancel_event
        if tier != Tier.ALERT and cancel.is_set():
            return False
        r = (self._pool.submit(self.renderer.render, text, self.rate).result() if self._pool
             else self.renderer.render(text, self.rate))
        if r.pcm.size == 0:
            return True  # nothing to say in it: go on
        if tier != Tier.ALERT and cancel.is_set():
            return False
        self.arbiter.say(SpeechRequest(t_ns=t_ns, text=text, tier=tier, pcm=r.pcm, sample_rate=r.sample_rate,
                                       source=source))
        if self.queued_ns is None:
            self.queued_ns = clock.perf_ns()
        return True

    def say(self, text: str, source: str = "", tier: Tier = Tier.ADVISORY, t_ns: int = 0) -> None:
        """Speak ``text`` one sentence at a time; stop when pre-empted. A new text clears an old pre-emption."""
        if tier != Tier.ALERT:
            self.arbiter.begin_advisory()  # a flag left by an earlier pre-emption must not silence this
        for sentence in split_sentences(text):
            if not self(sentence, source, tier, t_ns):
                return


def lower_priority(nice: int) -> bool:
    """Raise the calling thread's niceness by ``nice`` (Linux threads have their own; a thread cannot
    raise its priority back without privileges, hence a thread of its own). False where refused."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), os.getpriority(os.PRIO_PROCESS, 0) + nice)
        return True
    except (AttributeError, OSError):
        return False


__all__ = ["Speaker", "Arbiter", "Renderer"]
