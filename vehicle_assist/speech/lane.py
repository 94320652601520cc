"""The voice lane for one utterance: ASR -> activation decision -> ask back, or intent.

Audio with no words in it (silence, road noise, text the noise gate dropped, only a noise phrase
such as "you") gives neither an intent nor an ask-back: the assistant stays silent.

Used by ``vehicle-assist listen`` and the runtime. Every stage is timed (``clock.perf_ns``); the
result is a :class:`Heard` record made only of our own types.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vehicle_assist import clock
from vehicle_assist.messages import Intent, Transcript, Utterance
from vehicle_assist.speech import intents
from vehicle_assist.speech.activation import Decision, Gate
from vehicle_assist.speech.asr import ASR, needs_ask_back


@dataclass(frozen=True)
class Heard:
    """What the lane made of one utterance."""

    transcript: Transcript
    decision: Decision
    intent: Intent | None  # None when not acted on (no wake phrase) or asked back
    ask_back: str | None  # the phrase to say when the transcript was too unsure
    timings: dict[str, float] = field(default_factory=dict)  # ms per stage


def hear(utt: Utterance, asr: ASR, gate: Gate, min_confidence: float = 0.45,
         ask_back_text: str = "Sorry, say that again?", default_minutes: int = 10) -> Heard:
    """Transcribe one utterance and decide what to do with it."""
    t0 = clock.perf_ns()
    transcript = asr.transcribe(utt)
    t1 = clock.perf_ns()
    decision = gate.decide(transcript.text)
    intent: Intent | None = None
    ask: str | None = None
    if decision.accept and transcript.text.strip():  # no words (noise, silence, gated): no intent, no ask-back
        if needs_ask_back(transcript, min_confidence):
            ask = ask_back_text
        else:
            intent = intents.classify(decision.text, transcript.t_ns, default_minutes=default_minutes)
            if intent.name == "empty":  # only a noise phrase ("you", "thank you"): nothing to act on or ask
                intent = None
    t2 = clock.perf_ns()
    return Heard(transcript, decision, intent, ask, {"asr_ms": (t1 - t0) / 1e6, "decide_ms": (t2 - t1) / 1e6})
