"""A replay's outputs as MCAP, for Foxglove: every logged topic as a JSON channel (``/va/<topic>``),
and optionally the camera frames (``/camera/image``) with their boxes as ``foxglove.ImageAnnotations``
and captions of what was said. Log time is drive time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from vehicle_assist import private
from vehicle_assist.replay import foxglove
from vehicle_assist.replay.annotate import LEVEL_BGR, OverlayIndex


def _colour(level: str) -> dict[str, float]:
    b, g, r = LEVEL_BGR.get(level, LEVEL_BGR["none"])
    return {"r": r / 255, "g": g / 255, "b": b / 255, "a": 1.0}


def annotations(t_ns: int, overlay, scale: float = 1.0) -> dict[str, Any]:
    """A foxglove.ImageAnnotations message for one frame's overlay (boxes as line loops, captions as texts)."""
    stamp = foxglove.stamp(t_ns)
    points, texts = [], []
    for (x1, y1, x2, y2), label, level in overlay.boxes:
        x1, y1, x2, y2 = (v * scale for v in (x1, y1, x2, y2))
        points.append({"timestamp": stamp, "type": 2, "points": [{"x": x1, "y": y1}, {"x": x2, "y": y1}, {"x": x2, "y": y2}, {"x": x1, "y": y2}],
                       "outline_color": _colour(level), "outline_colors": [], "fill_color": {"r": 0, "g": 0, "b": 0, "a": 0},
                       "thickness": 3 if level in ("warning", "critical") else 2})
        texts.append({"timestamp": stamp, "position": {"x": x1, "y": max(0.0, y1 - 4)}, "text": f"{label} {level}",
                      "font_size": 14, "text_color": _colour(level), "background_color": {"r": 0, "g": 0, "b": 0, "a": 0.5}})
    for k, cap in enumerate(overlay.captions):
        texts.append({"timestamp": stamp, "position": {"x": 10, "y": 30 + 24 * k}, "text": cap.line(), "font_size": 18,
                      "text_color": {"r": 1, "g": 1, "b": 1, "a": 1}, "background_color": {"r": 0, "g": 0, "b": 0, "a": 0.7}})
    return {"circles": [], "points": points, "texts": texts}


def write(path: Path, header: dict[str, Any], records: Iterable[dict[str, Any]], frames: Iterable[Any] | None = None,
          jpeg_quality: int = 80, max_width: int = 960, spoken=None) -> dict[str, int]:
    """Write the MCAP; returns message counts per channel. ``spoken``: the speaker's timing for the captions
    (:mod:`.soundtrack`; None: from the log's speech events)."""
    import cv2
    from mcap.writer import Writer

    records = list(records)
    counts: dict[str, int] = {}
    with private.open_file(path, "wb") as f:  # trip data: owner-only
        w = Writer(f)
        w.start(profile="", library="vehicle_assist")
        w.add_metadata("vehicle_assist.triplog_header", {k: json.dumps(v, default=str) for k, v in header.items()})
        schema_ids: dict[str, int] = {}
        channels: dict[str, int] = {}

        def channel(topic: str, schema: dict) -> int:
            if topic not in channels:
                if schema["title"] not in schema_ids:
                    schema_ids[schema["title"]] = w.register_schema(schema["title"], "jsonschema", json.dumps(schema).encode())
                channels[topic] = w.register_channel(topic, "json", schema_ids[schema["title"]])
            return channels[topic]

        def add(topic: str, schema: dict, t_ns: int, data: dict, publish_ns: int | None = None) -> None:
            t = max(0, int(t_ns))
            w.add_message(channel(topic, schema), t, foxglove.dumps(data), max(0, int(publish_ns if publish_ns is not None else t)),
                          counts.get(topic, 0))
            counts[topic] = counts.get(topic, 0) + 1

        for r in sorted(records, key=lambda r: (r.get("t_ns", 0), r.get("seq", 0))):
            data = {"timestamp": foxglove.stamp(r.get("t_ns", 0)), "seq": r.get("seq"), "topic": r.get("topic"),
                    "t_ns": r.get("t_ns"), "proc_ns": r.get("proc_ns"), "msg": r.get("msg")}
            add(f"/va/{r.get('topic')}", foxglove.LOG_RECORD, r.get("t_ns", 0), data)
        if frames is not None:
            index = OverlayIndex(records, spoken)
            for frame in frames:
                img, scale = frame.image, 1.0
                if img.shape[1] > max_width:
                    scale = max_width / img.shape[1]
                    img = cv2.resize(img, (max_width, int(img.shape[0] * scale)), interpolation=cv2.INTER_AREA)
                ok, jpg = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
                add("/camera/image", foxglove.COMPRESSED_IMAGE, frame.t_ns,
                    {"timestamp": foxglove.stamp(frame.t_ns), "frame_id": "camera", "format": "jpeg", "data": foxglove.b64(jpg.tobytes())})
                add("/camera/annotations", foxglove.IMAGE_ANNOTATIONS, frame.t_ns, annotations(frame.t_ns, index.at(frame.t_ns), scale))
        w.finish()
    return counts
