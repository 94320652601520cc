"""JSON schemas for MCAP channels that Foxglove understands, shared by the drive and output writers."""

from __future__ import annotations

import base64
import json
from typing import Any

TIME = {"type": "object", "title": "time", "properties": {"sec": {"type": "integer", "minimum": 0},
                                                          "nsec": {"type": "integer", "minimum": 0}}}

COMPRESSED_IMAGE = {
    "title": "foxglove.CompressedImage", "type": "object",
    "properties": {"timestamp": TIME, "frame_id": {"type": "string"},
                   "data": {"type": "string", "contentEncoding": "base64"}, "format": {"type": "string"}},
}

CAMERA_CALIBRATION = {
    "title": "foxglove.CameraCalibration", "type": "object",
    "properties": {"timestamp": TIME, "frame_id": {"type": "string"}, "width": {"type": "integer"},
                   "height": {"type": "integer"}, "distortion_model": {"type": "string"},
                   "D": {"type": "array", "items": {"type": "number"}},
                   "K": {"type": "array", "items": {"type": "number"}, "minItems": 9, "maxItems": 9},
                   "R": {"type": "array", "items": {"type": "number"}},
                   "P": {"type": "array", "items": {"type": "number"}}},
}

AUDIO_CHUNK = {
    "title": "vehicle_assist.AudioChunk", "type": "object",
    "properties": {"timestamp": TIME, "sample_rate": {"type": "integer"},
                   "encoding": {"type": "string", "enum": ["pcm_s16le"]},
                   "data": {"type": "string", "contentEncoding": "base64"}},
}

VEHICLE_STATE = {
    "title": "vehicle_assist.VehicleState", "type": "object",
    "properties": {"timestamp": TIME,
                   **{k: {"type": ["number", "null"]} for k in ("speed_mps", "heading_deg", "lat", "lon", "yaw_rate_dps")},
                   "road_type": {"type": ["string", "null"]}, "weather": {"type": ["string", "null"]}},
}

LOG_RECORD = {
    "title": "vehicle_assist.TripLogRecord", "type": "object",
    "description": "one trip-log envelope: seq, topic, drive time, processing time and the message as JSON",
    "properties": {"timestamp": TIME, "seq": {"type": "integer"}, "topic": {"type": "string"},
                   "t_ns": {"type": "integer"}, "proc_ns": {"type": ["integer", "null"]}, "msg": {"type": "object"}},
}

IMAGE_ANNOTATIONS = {
    "title": "foxglove.ImageAnnotations", "type": "object",
    "properties": {"points": {"type": "array"}, "texts": {"type": "array"}, "circles": {"type": "array"}},
}


def stamp(t_ns: int) -> dict[str, int]:
    """A Foxglove ``time`` from nanoseconds (negative clamps to 0)."""
    t_ns = max(0, int(t_ns))
    return {"sec": t_ns // 1_000_000_000, "nsec": t_ns % 1_000_000_000}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def dumps(obj: Any) -> bytes:
    """Compact JSON bytes for an MCAP message."""
    return json.dumps(obj, separators=(",", ":"), default=str).encode("utf-8")
