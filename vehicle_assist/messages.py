"""The shared vocabulary: frozen message dataclasses and the log envelope.

Vendor objects (YOLO results, Whisper segments, llama.cpp chunks) are converted to these types
where they enter the program and never travel further. Times are integer nanoseconds of the run's
:class:`~vehicle_assist.clock.Clock` (drive time under replay).

One generic codec (:func:`to_record` / :func:`from_record`) turns any message into a JSON-able
dict and back; large arrays (pixels, PCM) are summarised, not logged.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Box = tuple[float, float, float, float]
"""Pixel box ``(x1, y1, x2, y2)`` in the frame's own coordinates."""


class HazardLevel(enum.IntEnum):
    """How urgent a hazard is; ordered so that ``max()`` picks the worst."""

    NONE = 0
    INFO = 1
    CAUTION = 2
    WARNING = 3
    CRITICAL = 4


class Tier(enum.IntEnum):
    """Audio tiers at the speaker: a lower value pre-empts a higher one."""

    ALERT = 0
    ADVISORY = 1


# --- perception ------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class CameraFrame:
    """One camera image (BGR, uint8, HxWx3)."""

    t_ns: int
    seq: int
    image: np.ndarray
    source: str = ""
    perf_ns: int | None = None
    """Processing-clock time (clock.perf_ns) when the frame was captured, for latency; None if unknown."""

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])


@dataclass(frozen=True)
class Detection:
    """One detected object."""

    box: Box
    label: str
    class_id: int
    confidence: float
    track_id: int | None = None
    source: str = ""
    """Which detector pass measured it (e.g. "full", "roi"); box scales differ slightly between passes."""


@dataclass(frozen=True)
class Detections:
    """Everything the detector found on one frame."""

    t_ns: int
    frame_seq: int
    width: int
    height: int
    items: tuple[Detection, ...] = ()
    infer_ms: float = 0.0
    region: tuple[int, int, int, int] | None = None
    """The part of the frame the detector looked at (x1, y1, x2, y2); None: the whole frame."""
    motion: "ImageMotion | None" = None
    """Ego motion read from the image (background flow), set by the pipeline; None: not estimated."""


@dataclass(frozen=True)
class ImageMotion:
    """Ego motion estimated from the camera image (``perception.egomotion``), for drives without telemetry."""

    t_ns: int
    speed_mps: float | None = None
    """Rough forward speed from the road's flow (median of the last few frames); None: too few points."""
    moving: bool | None = None
    """True moving, False stopped, None unknown (between the thresholds, or no estimate)."""
    points: int = 0
    """Background points the last estimate rests on."""


@dataclass(frozen=True)
class Track:
    """An object followed across frames, with a short history of its box heights."""

    track_id: int
    label: str
    box: Box
    confidence: float
    t_ns: int
    first_t_ns: int
    hits: int = 1
    history: tuple[tuple[int, float], ...] = ()
    """Recent ``(t_ns, box_height_px)`` samples, oldest first; TTC comes from their growth."""
    edges: tuple[tuple[int, float, float], ...] = ()
    """Recent ``(t_ns, x1, x2)`` samples (box left/right edges), oldest first; lateral motion."""


@dataclass(frozen=True)
class VehicleState:
    """What is known of the ego vehicle. ``None`` means unknown, never zero."""

    t_ns: int
    speed_mps: float | None = None
    heading_deg: float | None = None
    lat: float | None = None
    lon: float | None = None
    road_type: str | None = None
    weather: str | None = None
    source: str = "unknown"
    yaw_rate_dps: float | None = None
    """Yaw rate (deg/s, clockwise positive seen from above, as compass headings grow); None unknown.
    From a gyro about the gravity axis (comma2k19 IMU) or a telemetry ``yaw_rate`` column."""


@dataclass(frozen=True)
class Hazard:
    """An assessed risk from one track (pure output of ``perception.hazards.assess``)."""

    t_ns: int
    kind: str
    level: HazardLevel
    label: str
    track_id: int | None = None
    distance_m: float | None = None
    ttc_s: float | None = None
    in_corridor: bool = False
    closing_speed_mps: float | None = None


class AlertState(enum.StrEnum):
    """An alert became active or ended (logged as ``"start"`` / ``"end"``)."""

    START = "start"
    END = "end"


@dataclass(frozen=True)
class AlertEvent:
    """An alert from the alert table became active (``state=START``) or ended (``END``)."""

    t_ns: int
    name: str
    priority: int
    text: str
    audible: bool
    state: AlertState = AlertState.START


@dataclass(frozen=True)
class FrameDone:
    """The safety lane finished one frame: its detections, tracks, hazards and alert events are
    published (lockstep replay hands out the next frame after this)."""

    t_ns: int
    frame_seq: int


# --- voice -----------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class AudioChunk:
    """A block of mono PCM, float32 in [-1, 1]."""

    t_ns: int
    pcm: np.ndarray
    sample_rate: int = 16000

    @property
    def duration_s(self) -> float:
        return len(self.pcm) / self.sample_rate


@dataclass(frozen=True, eq=False)
class Utterance:
    """A span of speech cut by the VAD, 16 kHz mono float32. ``held_s``: seconds of the car's own
    playback the utterance was held open across (muted, not in ``pcm``; 0 when none). ``short``: less
    speech than the VAD's minimum utterance (a lone "up", a clipped "hey"): never transcribed alone, only
    joined to the utterance next to it (speech.endpoint)."""

    t_start_ns: int
    t_end_ns: int
    pcm: np.ndarray
    sample_rate: int = 16000
    held_s: float = 0.0
    short: bool = False


@dataclass(frozen=True)
class Transcript:
    """What ASR heard, with a confidence in [0, 1]."""

    t_ns: int
    text: str
    confidence: float
    backend: str = ""
    language: str = "en"
    audio_s: float = 0.0
    asr_ms: float = 0.0
    rejected: str = ""  # why Whisper's text was dropped as noise (no-speech | unsure | repetitive); "" = words


@dataclass(frozen=True)
class Intent:
    """A command acted on at once, or ``name='question'`` for the advisory lane."""

    t_ns: int
    name: str
    text: str
    slots: tuple[tuple[str, str], ...] = ()


# --- knowledge and advisory ------------------------------------------------------------------


@dataclass(frozen=True)
class Scene:
    """A structured situation to retrieve rules for (from a hazard, or typed by the user)."""

    label: str | None = None
    distance_m: float | None = None
    speed_mps: float | None = None
    road_type: str | None = None
    weather: str | None = None
    hazard: str | None = None


@dataclass(frozen=True)
class Query:
    """A question and/or a scene for retrieval."""

    t_ns: int
    text: str
    scene: Scene | None = None


@dataclass(frozen=True)
class Passage:
    """A retrieved piece of a rule source, citable by ``id`` (e.g. ``"126"``)."""

    id: str
    section: str
    title: str
    text: str
    score: float = 0.0
    source: str = ""


@dataclass(frozen=True)
class Advisory:
    """An answer or proactive advice, with the rules it rests on."""

    t_ns: int
    text: str
    route: str
    cited: tuple[str, ...] = ()
    refused: bool = False
    question: str | None = None
    ttl_s: float = 10.0


@dataclass(frozen=True, eq=False)
class SpeechRequest:
    """Something to say through the audio arbiter (the single owner of the speaker)."""

    t_ns: int
    text: str
    tier: Tier = Tier.ADVISORY
    priority: int = 0
    pcm: np.ndarray | None = None
    sample_rate: int = 22050
    source: str = ""
    origin_perf_ns: int | None = None
    """Processing time (clock.perf_ns) of what caused it (an alert's frame capture), for latency."""


# --- runtime: speech, timings, errors, topic health ------------------------------------------


@dataclass(frozen=True)
class SpeechEvent:
    """The speaker started, finished, pre-empted or dropped a request (the text, never the PCM)."""

    t_ns: int
    kind: str
    """``"start"``, ``"end"``, ``"preempted"`` or ``"dropped"`` (the audio arbiter's listener kinds)."""
    text: str
    tier: Tier = Tier.ADVISORY
    source: str = ""
    t_perf_ns: int | None = None


@dataclass(frozen=True)
class StageTiming:
    """How long one stage of a lane took on one item, in processing-time milliseconds."""

    t_ns: int
    lane: str
    stage: str
    ms: float
    item: int | None = None
    """What it worked on (e.g. the frame's seq), when there is such a thing."""


@dataclass(frozen=True)
class ErrorEvent:
    """A stage failed: a stable code, a clear message, and where it happened."""

    t_ns: int
    code: str
    message: str
    stage: str = ""
    restarts: int = 0


@dataclass(frozen=True)
class TopicStale:
    """A topic went stale (``stale=True``) or recovered; ``age_s`` since its last value (or since expected)."""

    t_ns: int
    topic: str
    stale: bool
    age_s: float | None = None
    stale_after_s: float | None = None


@dataclass(frozen=True)
class AdvisoryEvent:
    """One step of an advisory run: a stage (``retrieve``, ``route``, ``generate``, ``validate``,
    ``speak``, or ``run`` for the whole) started, ended or failed; ``data`` holds its details."""

    type: str
    """``"start"``, ``"end"`` or ``"error"``."""
    stage: str
    t_perf_ns: int
    data: dict[str, Any] = field(default_factory=dict)
    """Details: ``ms`` on end; ``code`` and ``message`` on error; the route, cited ids, verdict."""
    run_id: int = 0


# --- route -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RouteFeature:
    """Something on the matched path ahead (vehicle_assist.route.ahead): ``kind`` is crossing,
    signals, give_way, stop, roundabout, speed_limit_change, school or level_crossing."""

    kind: str
    distance_m: float
    detail: str = ""
    osm_id: int | None = None
    limit_mph: float | None = None
    limit_source: str | None = None
    sure: bool = True
    """No junction with another way on lies between the car and it (else the path ahead is a guess)."""


@dataclass(frozen=True)
class RouteContext:
    """The road the car is on, from the map (vehicle_assist.route). No match: ``way_id`` and
    ``speed_limit_mph`` are None, and nothing is claimed."""

    t_ns: int
    way_id: int | None = None
    road: str | None = None
    """The way's name, else its ref (e.g. "A64(M)"), else None."""
    road_class: str | None = None
    oneway: bool | None = None
    lanes: int | None = None
    speed_limit_mph: float | None = None
    limit_source: str | None = None
    """``tagged`` (the way's maxspeed), ``national`` (Rule 124 for the road category and vehicle) or
    ``built_up_inferred`` (Rule 124's built-up limit for an untagged way whose surroundings look
    built-up; vehicle_assist/route/limits.py)."""
    features_ahead: tuple[RouteFeature, ...] = ()
    lookahead_m: float | None = None
    distance_m: float | None = None
    """Fix to matched road at the last matching step (metres)."""


# --- the log envelope ------------------------------------------------------------------------


@dataclass(frozen=True)
class Envelope:
    """A message on a topic: the unit of the bus and of the trip log."""

    topic: str
    t_ns: int
    seq: int
    msg: Any
    proc_ns: int | None = None
    """Processing (wall) time when the message was made; differs from ``t_ns`` under replay."""


MESSAGE_TYPES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        CameraFrame, Detection, Detections, ImageMotion, Track, VehicleState, Hazard, AlertEvent, FrameDone, AudioChunk,
        Utterance, Transcript, Intent, Scene, Query, Passage, Advisory, SpeechRequest,
        SpeechEvent, StageTiming, ErrorEvent, TopicStale, AdvisoryEvent, RouteFeature, RouteContext,
    )
}


def to_record(msg: Any) -> Any:
    """Turn a message (or nested value) into JSON-able data. Arrays are summarised, not stored."""
    if dataclasses.is_dataclass(msg) and not isinstance(msg, type):
        out: dict[str, Any] = {"type": type(msg).__name__}
        for f in dataclasses.fields(msg):
            out[f.name] = to_record(getattr(msg, f.name))
        return out
    if isinstance(msg, np.ndarray):
        return {"ndarray": list(msg.shape), "dtype": str(msg.dtype)}
    if isinstance(msg, enum.Enum):
        return msg.name.lower()
    if isinstance(msg, (tuple, list)):
        return [to_record(v) for v in msg]
    if isinstance(msg, dict):
        return {str(k): to_record(v) for k, v in msg.items()}
    if isinstance(msg, (np.floating, np.integer)):
        return msg.item()
    return msg


def from_record(data: Any) -> Any:
    """Inverse of :func:`to_record` for messages without arrays (arrays come back as None)."""
    if isinstance(data, dict) and data.get("type") in MESSAGE_TYPES:
        cls = MESSAGE_TYPES[data["type"]]
        hints = typing.get_type_hints(cls)
        kwargs = {}
        for f in dataclasses.fields(cls):
            if f.name in data:
                kwargs[f.name] = _coerce(hints[f.name], from_record(data[f.name]))
        return cls(**kwargs)
    if isinstance(data, dict) and "ndarray" in data:
        return None
    if isinstance(data, list):
        return [from_record(v) for v in data]
    return data


class MessageError(ValueError):
    """A logged message does not decode to the type expected of it (``code`` is ``bad-message``)."""

    code = "bad-message"

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


T = typing.TypeVar("T")


def decode(data: Any, expected: type[T]) -> T:
    """:func:`from_record`, checked: the result is an ``expected`` whose fields (and nested messages)
    hold their declared types; raises :class:`MessageError` saying which field is wrong."""
    try:
        obj = from_record(data)
    except (KeyError, TypeError, ValueError) as err:  # a missing field, an unknown enum name
        raise MessageError(f"cannot decode a {expected.__name__}: {err}") from None
    why = type_problem(obj, expected)
    if why:
        raise MessageError(f"not a valid {expected.__name__}: {why}")
    return obj


def type_problem(value: Any, hint: Any, where: str = "") -> str | None:
    """Why ``value`` does not fit the type ``hint`` (None when it does); message dataclasses are
    checked field by field. Hints this does not know (Literal, Callable) are accepted."""
    origin = typing.get_origin(hint)
    label = where or "value"
    if hint is Any:
        return None
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        problems = [type_problem(value, a, where) for a in args]
        return None if any(p is None for p in problems) else problems[-1]
    if hint is type(None):
        return None if value is None else f"{label} is {value!r}, expected null"
    if origin is tuple:
        if not isinstance(value, tuple):
            return f"{label} is {type(value).__name__}, expected a list"
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return next((p for i, v in enumerate(value) if (p := type_problem(v, args[0], f"{label}[{i}]"))), None)
        if args and len(args) != len(value):
            return f"{label} has {len(value)} items, expected {len(args)}"
        return next((p for i, (a, v) in enumerate(zip(args, value)) if (p := type_problem(v, a, f"{label}[{i}]"))), None)
    if origin is not None:
        return None if isinstance(value, origin) else f"{label} is {type(value).__name__}, expected {origin.__name__}"
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if not isinstance(value, hint):
            return f"{label} is {type(value).__name__}, expected {hint.__name__}"
        hints = typing.get_type_hints(hint)
        for f in dataclasses.fields(hint):
            p = type_problem(getattr(value, f.name), hints[f.name], f"{where}.{f.name}" if where else f.name)
            if p:
                return p
        return None
    if hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(hint, type):
        ok = isinstance(value, hint)
    else:
        return None
    return None if ok else f"{label} is {type(value).__name__} {value!r:.30}, expected {hint.__name__}"


def _coerce(hint: Any, value: Any) -> Any:
    """Bring a decoded JSON value back to the field's declared type (enums, tuples)."""
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(hint):
            if arg is not type(None):
                return _coerce(arg, value)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint[value.upper()] if isinstance(value, str) else hint(value)
    if origin is tuple and isinstance(value, list):
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v) for v in value)
        return tuple(_coerce(a, v) for a, v in zip(args, value)) if args else tuple(value)
    return value


def envelope_record(env: Envelope) -> dict[str, Any]:
    """The trip-log form of an envelope."""
    rec = {"seq": env.seq, "topic": env.topic, "t_ns": env.t_ns, "msg": to_record(env.msg)}
    if env.proc_ns is not None:
        rec["proc_ns"] = env.proc_ns
    return rec


__all__ = [
    "Box", "HazardLevel", "Tier", "AlertState",
    "CameraFrame", "Detection", "Detections", "ImageMotion", "Track", "VehicleState", "Hazard", "AlertEvent", "FrameDone",
    "AudioChunk", "Utterance", "Transcript", "Intent",
    "Scene", "Query", "Passage", "Advisory", "RouteFeature", "RouteContext",
    "SpeechRequest", "SpeechEvent", "StageTiming", "ErrorEvent", "TopicStale", "AdvisoryEvent",
    "Envelope", "MESSAGE_TYPES", "to_record", "from_record", "envelope_record", "MessageError", "decode", "type_problem",
]
