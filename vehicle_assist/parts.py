"""What a run is made of: the loaded models (:class:`Parts`, loaded once by :func:`load_parts`), the
inputs (:class:`Sources`) and the outputs (:class:`Sinks`), each field typed by what the lanes need
of it. The runtime (:mod:`vehicle_assist.runtime`) wires them; replay and the tests hand in their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Protocol

from vehicle_assist.advisory.dispatch import Advisor
from vehicle_assist.advisory.timing import Situation
from vehicle_assist.audio_out import Sink
from vehicle_assist.clock import Clock
from vehicle_assist.config import AppConfig
from vehicle_assist.messages import AdvisoryEvent, AudioChunk, CameraFrame
from vehicle_assist.perception.hazards import HazardTable
from vehicle_assist.perception.pipeline import FrameDetector, FrameTracker
from vehicle_assist.safety.alerts import AlertSpec
from vehicle_assist.speech.activation import ButtonEvent
from vehicle_assist.speech.asr import ASR
from vehicle_assist.speech.speak import Renderer, Speaker
from vehicle_assist.vehicle import UnknownSource, VehicleSource


class AdvisoryLane(Protocol):
    """What the runtime needs of ``advisory.lane.AdvisoryParts``: the loaded lane, bound per run."""

    def bind(self, speaker: Speaker | None = None, on_event: Callable[[AdvisoryEvent], None] | None = None,
             cancel_event: Any = None, clock: Clock | None = None, situation: Situation | None = None) -> Advisor: ...


class Button(Protocol):
    def events(self) -> Iterator[ButtonEvent]: ...


@dataclass
class Parts:
    """The loaded components (models loaded once, by :func:`load_parts` or by a test)."""

    detector: FrameDetector
    tracker: FrameTracker
    hazard_table: HazardTable
    alert_table: dict[str, AlertSpec]
    renderer: Renderer
    asr: ASR | None = None
    """None: no voice lane."""
    advisory: AdvisoryLane | None = None
    """None: questions are answered with an apology."""
    model_paths: dict[str, Path] = field(default_factory=dict)
    """Role -> model file, for the trip log's provenance header."""


@dataclass
class Sources:
    """The inputs; any may be absent (``missing`` says why, and the run goes on without it)."""

    frames: Iterable[CameraFrame] | None = None
    audio: Iterable[AudioChunk] | None = None
    vehicle: VehicleSource = field(default_factory=UnknownSource)
    audio_is_held: bool = False
    """Push-to-talk held for the whole audio input (a recorded question is one long press)."""
    button: Button | None = None
    """Push-to-talk button of a live microphone; None: none."""
    missing: dict[str, str] = field(default_factory=dict)
    modes: dict[str, str] = field(default_factory=dict)
    """Lanes switched off on purpose (``{"voice": "off (--no-voice)"}``): in the header, not errors."""


@dataclass
class Sinks:
    """The outputs: the speaker (an ``audio_out`` sink) and where the trip log goes."""

    speaker: Sink
    trip_log: Path | None = None
    """None: a new file under ``runtime.trip_log_dir``."""


def load_parts(config: AppConfig, voice: bool = True) -> Parts:
    """Load every model once, with the thread counts of ``runtime.threads`` (malloc arenas capped first)."""
    from vehicle_assist import memory, models
    from vehicle_assist.perception.detector import Detector
    from vehicle_assist.perception.hazards import load_table as load_hazards
    from vehicle_assist.perception.tracker import Tracker
    from vehicle_assist.safety import alerts
    from vehicle_assist.speech.tts import load_renderer

    memory.cap_malloc_arenas(config.runtime.malloc_arenas)
    th, perception, table = config.runtime.threads, config.perception, load_hazards()
    paths_: dict[str, Path] = {}
    for role in ("detector", "asr", "embedder", "slm"):
        try:
            paths_[role] = models.resolve(role).path
        except Exception:  # a missing optional model shows as absent in the header
            pass
    parts = Parts(detector=Detector(settings=perception, calib=perception.calibration or table.camera, threads=th.detector),
                  tracker=Tracker(perception.tracker), hazard_table=table, alert_table=alerts.load_table(),
                  renderer=load_renderer(config.speech.tts.engine), model_paths=paths_)
    if voice:
        from vehicle_assist.advisory import lane as advisory_lane
        from vehicle_assist.speech import asr

        parts.asr = asr.load_backend(config.speech.asr.backend, asr.AsrOptions.from_settings(config.speech.asr), threads=th.asr)
        parts.advisory = advisory_lane.load(config)
    return parts


__all__ = ["Parts", "Sources", "Sinks", "AdvisoryLane", "Button", "load_parts"]
