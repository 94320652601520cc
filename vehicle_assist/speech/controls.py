"""What voice commands change: alert mute, speech volume and rate. Pure state transitions."""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from vehicle_assist.messages import Intent
from vehicle_assist.speech.intents import slot

VOLUME_STEP, VOLUME_MIN, VOLUME_MAX = 0.2, 0.2, 2.0
RATE_STEP, RATE_MIN = 25, 100


@dataclass(frozen=True)
class VoiceControls:
    """Settings voice commands adjust (gain goes to the arbiter, rate to the TTS renderer)."""

    gain: float = 1.0
    rate: int = 175
    mute_until_ns: int | None = None

    def muted(self, now_ns: int) -> bool:
        """Are alerts muted at ``now_ns``?"""
        return self.mute_until_ns is not None and now_ns < self.mute_until_ns


class Effect(enum.StrEnum):
    """What the voice lane does after a command, besides speaking its reply."""

    NONE = "none"
    REPEAT = "repeat"
    """Say the last advisory again."""
    WHAT_WAS_THAT = "what_was_that"
    """Say the last alert again."""
    STOP_SPEAKING = "stop_speaking"
    """Stop what is being said (alerts excepted)."""
    ASK_ADVISORY = "ask_advisory"
    """A question: the advisory lane answers it."""


@dataclass(frozen=True)
class Action:
    """The effect of a command: the new controls and what to do next."""

    controls: VoiceControls
    reply: str | None = None  # a short confirmation to speak
    effect: Effect = Effect.NONE


def apply(intent: Intent, controls: VoiceControls, now_ns: int) -> Action:
    """Pure: the action for an intent (questions go to the advisory lane)."""
    name = intent.name
    if name == "mute":
        minutes = int(slot(intent, "minutes", "10") or 10)
        return Action(replace(controls, mute_until_ns=now_ns + minutes * 60 * 1_000_000_000),
                      f"Alerts muted for {minutes} minute{'s' if minutes != 1 else ''}.")
    if name == "unmute":
        return Action(replace(controls, mute_until_ns=None), "Alerts are back on.")
    if name == "louder":
        return Action(replace(controls, gain=min(VOLUME_MAX, round(controls.gain + VOLUME_STEP, 2))), "Louder.")
    if name == "quieter":
        return Action(replace(controls, gain=max(VOLUME_MIN, round(controls.gain - VOLUME_STEP, 2))), "Quieter.")
    if name == "slower":
        return Action(replace(controls, rate=max(RATE_MIN, controls.rate - RATE_STEP)), "I'll speak more slowly.")
    if name == "repeat":
        return Action(controls, None, Effect.REPEAT)
    if name == "what_was_that":
        return Action(controls, None, Effect.WHAT_WAS_THAT)
    if name == "stop":
        return Action(controls, None, Effect.STOP_SPEAKING)
    if name == "question":
        return Action(controls, None, Effect.ASK_ADVISORY)
    return Action(controls)
