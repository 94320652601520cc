"""Spoken answers: render sentence by sentence and hand each to the audio arbiter.

The first sentence plays while the next is rendered, so speech starts before a long answer is
ready. If the arbiter's ``cancel_event`` is set (an alert pre-empted the advisory) no further
sentence is rendered. Nothing here plays audio itself.
"""

from __future__ import annotations

from typing import Protocol

from vehicle_assist.messages import SpeechRequest, Tier
from vehicle_assist.speech.tts import split_sentences


class Arbiter(Protocol):
    """The part of :class:`vehicle_assist.audio_out.AudioArbiter` this module uses."""

    cancel_event: object

    def begin_advisory(self) -> None:
        """A new answer starts (clears an earlier pre-emption)."""

    def say(self, req: SpeechRequest) -> None:
        """Queue one rendered request."""


def speak_text(text: str, arbiter: Arbiter, renderer, tier: Tier = Tier.ADVISORY, t_ns: int = 0,
               source: str = "", rate: int | None = None) -> None:
    """Render ``text`` one sentence at a time and queue each on ``arbiter``; stop when pre-empted."""
    cancel = arbiter.cancel_event
    if tier != Tier.ALERT:
        arbiter.begin_advisory()  # a flag left by an earlier pre-emption must not silence this answer
    for sentence in split_sentences(text):
        if tier != Tier.ALERT and cancel.is_set():
            return
        r = renderer.render(sentence, rate)
        if r.pcm.size == 0:
            continue
        if tier != Tier.ALERT and cancel.is_set():
            return
        arbiter.say(SpeechRequest(t_ns=t_ns, text=sentence, tier=tier, pcm=r.pcm, sample_rate=r.sample_rate,
                                  source=source))
