"""What every recorded drive yields, whatever its format: :class:`Timed` messages in drive-time
order (:func:`merge`), its :class:`DriveInfo`, scripted :class:`VoicePcm` clips and the microphone
stream they make (:func:`audio_stream`). The readers (:mod:`.drive`, :mod:`.mcap_drive`) build on it.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Protocol, Sequence

import numpy as np

from vehicle_assist.messages import AudioChunk, VehicleState
from vehicle_assist.replay.manifest import Calibration

SAMPLE_RATE = 16000
TOPIC_RANK = {"vehicle": 0, "audio": 1, "frames": 2}


@dataclass(frozen=True)
class Timed:
    """One message of a drive on its topic, at drive time ``t_ns``."""

    t_ns: int
    topic: str
    msg: Any


@dataclass(frozen=True, eq=False)
class VoicePcm:
    """Speech to play into the microphone stream: 16 kHz mono PCM starting at drive time ``t_s``."""

    t_s: float
    pcm: np.ndarray
    label: str = ""


@dataclass(frozen=True)
class DriveInfo:
    """What is known of a drive before reading it."""

    name: str
    path: str
    kind: str
    duration_s: float
    frame_rate_hz: float
    frame_count: int
    width: int
    height: int
    calibration: Calibration | None
    road_type: str | None = None
    weather: str | None = None
    has_audio: bool = False
    has_telemetry: bool = False


class Drive(Protocol):
    """A recorded drive: its info, and its messages in drive-time order."""

    info: DriveInfo

    def messages(self, start_s: float = 0.0, end_s: float | None = None) -> Iterator[Timed]:
        """Messages with drive time in ``[start_s, end_s)`` (audio may run past ``end_s`` to finish voice clips)."""

    def vehicle_states(self) -> list[VehicleState]:
        """All recorded vehicle states, in time order (empty without telemetry)."""


def merge(*streams: Iterable[Timed]) -> Iterator[Timed]:
    """Merge time-sorted streams into one, ordered by (time, topic rank)."""
    return heapq.merge(*streams, key=lambda m: (m.t_ns, TOPIC_RANK.get(m.topic, 9)))


def audio_stream(track: np.ndarray, voice: Sequence[VoicePcm], start_s: float, end_s: float,
                 block_ms: int = 20, tail_s: float = 1.0) -> Iterator[Timed]:
    """The microphone as fixed blocks: the track with voice clips mixed in at their times.

    The stream covers ``[start_s, end_s)`` and runs on past ``end_s`` until every voice clip that
    starts before ``end_s`` has played, plus ``tail_s`` of silence so a VAD can close the utterance.
    """
    clips = [v for v in voice if start_s <= v.t_s < end_s]
    stop_s = max([end_s] + [v.t_s + len(v.pcm) / SAMPLE_RATE + tail_s for v in clips])
    total = int(round(stop_s * SAMPLE_RATE))
    mic = np.zeros(total, np.float32)
    n = min(total, len(track))
    mic[:n] = track[:n]
    for v in clips:
        a = int(round(v.t_s * SAMPLE_RATE))
        b = min(total, a + len(v.pcm))
        mic[a:b] += v.pcm[: b - a]
    np.clip(mic, -1.0, 1.0, out=mic)
    block = SAMPLE_RATE * block_ms // 1000
    first = int(round(start_s * SAMPLE_RATE)) // block * block
    for a in range(first, total - block + 1, block):
        t_end_ns = (a + block) * 1_000_000_000 // SAMPLE_RATE
        yield Timed(t_end_ns, "audio", AudioChunk(t_ns=t_end_ns, pcm=mic[a:a + block].copy(), sample_rate=SAMPLE_RATE))


__all__ = ["SAMPLE_RATE", "TOPIC_RANK", "Timed", "VoicePcm", "DriveInfo", "Drive", "merge", "audio_stream"]
