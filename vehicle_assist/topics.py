"""The topic table: every topic on the bus, its expected rate, its queue kind, and whether it is logged.

``latest`` topics keep only the newest value (a slow consumer skips to it; skipped values are
counted as dropped). ``fifo`` topics queue every value, bounded (the oldest is dropped when full,
and counted). A topic with ``stale_after_s`` goes stale when nothing was published on it for that
long while it is expected (a source for it is running); staleness is a signal of its own
(:class:`~vehicle_assist.messages.TopicStale` on ``health``), from which the runtime raises an alert.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["latest", "fifo"]


@dataclass(frozen=True)
class TopicSpec:
    """How one topic behaves on the bus and in the trip log."""

    rate_hz: float | None
    """Expected publishing rate; None for event topics (published when something happens)."""
    kind: Kind
    logged: bool
    """Every envelope of this topic goes to the trip log."""
    stale_after_s: float | None
    """Age after which the topic is stale while expected; None: never stale (event topics)."""
    message: str
    """Name of the messages.py type carried (documentation and table lint)."""
    doc: str = ""


TOPICS: dict[str, TopicSpec] = {
    # safety lane: sensors and perception are latest-value (stale frames are dropped, never queued)
    "frames": TopicSpec(15.0, "latest", False, 0.5, "CameraFrame", "camera images (pixels are never logged)"),
    "detections": TopicSpec(10.0, "latest", True, 0.5, "Detections", "detector output per processed frame"),
    "tracks": TopicSpec(10.0, "latest", True, 0.5, "tuple[Track, ...]", "tracker output per processed frame"),
    "hazards": TopicSpec(10.0, "latest", True, 0.5, "tuple[Hazard, ...]", "hazards.assess output per frame"),
    "alerts": TopicSpec(None, "fifo", True, None, "AlertEvent", "alert start/end from the alert manager"),
    "frame_done": TopicSpec(None, "fifo", True, None, "FrameDone", "the safety lane finished a frame (its decisions are out)"),
    "vehicle": TopicSpec(10.0, "latest", True, 2.0, "VehicleState", "ego state (unknown fields are None)"),
    "route": TopicSpec(10.0, "latest", True, None, "RouteContext",
                       "the road from the map per new fix (route lane, when route.map is set)"),
    # voice lane: audio is latest-value only for monitoring; the VAD consumes its own FIFO
    "audio": TopicSpec(50.0, "fifo", False, 0.5, "AudioChunk", "microphone blocks (PCM never logged)"),
    "utterances": TopicSpec(None, "fifo", True, None, "Utterance", "speech spans cut by the VAD (PCM summarised)"),
    "transcripts": TopicSpec(None, "fifo", True, None, "Transcript", "what ASR heard"),
    "intents": TopicSpec(None, "fifo", True, None, "Intent", "commands and questions"),
    "advisory_events": TopicSpec(None, "fifo", True, None, "AdvisoryEvent", "AdvisoryRun stage start/end/error"),
    "advisories": TopicSpec(None, "fifo", True, None, "Advisory", "the answer or proactive advice"),
    # the speaker and the runtime itself
    "speech": TopicSpec(None, "fifo", True, None, "SpeechEvent", "what the speaker started, finished, pre-empted, dropped"),
    "timings": TopicSpec(None, "fifo", True, None, "StageTiming", "per-stage processing time"),
    "errors": TopicSpec(None, "fifo", True, None, "ErrorEvent", "stage failures and restarts"),
    "health": TopicSpec(None, "fifo", True, None, "TopicStale", "a topic went stale or recovered"),
}


def spec(topic: str) -> TopicSpec:
    """The spec of ``topic``; an unknown topic is a KeyError naming the known ones."""
    try:
        return TOPICS[topic]
    except KeyError:
        raise KeyError(f"unknown topic '{topic}'; known: {', '.join(TOPICS)}") from None


def logged_topics() -> tuple[str, ...]:
    """Topics whose envelopes go to the trip log."""
    return tuple(name for name, s in TOPICS.items() if s.logged)
