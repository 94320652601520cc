"""Spoken alerts: every phrase of the alert table rendered once at start-up, then played on demand.

No rendering happens when an alert fires: the PCM is ready, so the latency from the decision to
the first audio block is one queue hop and at most one arbiter block.
"""

from __future__ import annotations

import logging
from typing import Iterable, Protocol

import numpy as np

from vehicle_assist.messages import AlertEvent, AlertState, SpeechRequest
from vehicle_assist.safety.alerts import AlertSpec

log = logging.getLogger(__name__)


class _Renderer(Protocol):
    def render(self, text: str): ...


class _Speaker(Protocol):
    def say(self, req: SpeechRequest) -> None: ...


class AlertVoice:
    """Pre-rendered alert phrases, handed to the audio arbiter when an audible alert starts."""

    def __init__(self, table: dict[str, AlertSpec], renderer: _Renderer, arbiter: _Speaker) -> None:
        self.table, self.arbiter = table, arbiter
        self.phrases: dict[str, tuple[np.ndarray, int]] = {}
        self.render_ms = 0.0
        for name, spec in table.items():
            if not spec.audible:
                continue
            try:
                r = renderer.render(spec.text)
            except Exception as err:  # a missing synthesiser must not stop the safety lane: a tone instead
                log.error("alert phrase %s could not be rendered (%s); using a warning tone", name, err)
                self.phrases[name] = (warning_tone(), 22050)
                continue
            self.phrases[name] = (r.pcm, r.sample_rate)
            self.render_ms += r.render_ms

    def handle(self, events: Iterable[AlertEvent], origin_perf_ns: int | None = None) -> list[SpeechRequest]:
        """Speak every audible alert that started; returns the requests handed to the arbiter.
        ``origin_perf_ns``: when what caused them was captured (for the frame -> audio latency)."""
        said = []
        for ev in events:
            if ev.state != AlertState.START or not ev.audible or ev.name not in self.phrases:
                continue
            pcm, sr = self.phrases[ev.name]
            spec = self.table[ev.name]
            req = SpeechRequest(t_ns=ev.t_ns, text=spec.text, tier=spec.audio_tier, priority=spec.priority,
                                pcm=pcm, sample_rate=sr, source=f"alert:{ev.name}", origin_perf_ns=origin_perf_ns)
            self.arbiter.say(req)
            said.append(req)
        return said


def warning_tone(seconds: float = 0.6, sample_rate: int = 22050) -> np.ndarray:
    """Two short beeps: the fallback when a phrase cannot be synthesised."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    gate = ((t % 0.3) < 0.2).astype(np.float32)
    return (0.4 * np.sin(2 * np.pi * 1000 * t) * gate).astype(np.float32)


__all__ = ["AlertVoice", "warning_tone"]
