"""Annotated MP4 of a replay: boxes from the logged detections/tracks, hazard levels, and captions of
what was said (alerts and advisories), drawn with OpenCV onto the drive's frames."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from vehicle_assist.replay.report import LEVEL_RANK, events

# BGR colours per hazard level
LEVEL_BGR = {"none": (200, 200, 200), "info": (177, 165, 154), "caution": (76, 201, 242),
             "warning": (74, 153, 242), "critical": (87, 87, 235)}


@dataclass(frozen=True)
class Overlay:
    """What to draw on one frame."""

    t_s: float
    boxes: tuple[tuple[tuple[float, float, float, float], str, str], ...] = ()
    """(box, label text, hazard level) per object."""
    captions: tuple[tuple[str, str], ...] = ()
    """(text, kind) with kind ``alert`` | ``advisory`` | ``driver``."""
    status: str = ""


class OverlayIndex:
    """Logged detections, tracks, hazards and captions indexed by drive time (built once per log)."""

    def __init__(self, records: Iterable[dict[str, Any]], hold_s: float = 1.5) -> None:
        records = list(records)
        self.hold_s = hold_s
        tracks: list[tuple[int, list]] = []
        dets: list[tuple[int, list]] = []
        self._levels: list[tuple[int, dict, list]] = []
        for r in records:
            msg = r.get("msg")
            if r.get("topic") == "tracks" and isinstance(msg, list):
                tracks.append((r["t_ns"], [(m["box"], f"{m['label']} #{m['track_id']}", m["track_id"]) for m in msg]))
            elif r.get("topic") == "detections" and isinstance(msg, dict):
                dets.append((r["t_ns"], [(m["box"], f"{m['label']} {m['confidence']:.2f}", m.get("track_id"))
                                         for m in msg.get("items") or []]))
            elif r.get("topic") == "hazards" and isinstance(msg, list):
                self._levels.append((r["t_ns"], {h.get("track_id"): str(h.get("level")) for h in msg}, msg))
        self._boxes = sorted(tracks or dets, key=lambda x: x[0])  # tracks carry the ids hazards refer to
        self._levels.sort(key=lambda x: x[0])
        self._box_t = [t for t, _ in self._boxes]
        self._lvl_t = [t for t, _, _ in self._levels]
        ev = events(records)
        self.captions = [(t0, t1, text, "alert" if tier == "alert" else "advisory") for t0, t1, text, tier, _ in ev["speaker"]]
        self.captions += [(t, t + hold_s, text, "alert") for t, _, text, _, audible in ev["said"] if audible]
        self.captions += [(t, t + hold_s, f"driver: {text}", "driver") for t, text, _ in ev["driver"]]
        self.captions.sort()

    def at(self, t_ns: int, max_age_s: float = 0.5) -> Overlay:
        """The overlay for a frame at drive time ``t_ns``: the latest logged state no older than ``max_age_s``."""
        t_s = t_ns / 1e9
        boxes: list = []
        i = bisect.bisect_right(self._box_t, t_ns) - 1
        j = bisect.bisect_right(self._lvl_t, t_ns) - 1
        levels = self._levels[j][1] if j >= 0 and t_ns - self._levels[j][0] <= max_age_s * 1e9 else {}
        if i >= 0 and t_ns - self._boxes[i][0] <= max_age_s * 1e9:
            for box, label, tid in self._boxes[i][1]:
                boxes.append((tuple(box), label, levels.get(tid, "none")))
        caps, seen = [], set()
        for t0, t1, text, kind in self.captions:
            if t0 <= t_s <= t1 and text not in seen:
                seen.add(text)
                caps.append((text, kind))
        worst = max(levels.values(), key=lambda lv: LEVEL_RANK.get(lv, 0), default="none")
        return Overlay(t_s, tuple(boxes), tuple(caps[-3:]), f"t={t_s:5.2f}s  hazard: {worst}")


def draw(image: np.ndarray, overlay: Overlay) -> np.ndarray:
    """A copy of ``image`` with the overlay drawn (boxes by hazard level, captions at the bottom)."""
    import cv2

    out = image.copy()
    h, w = out.shape[:2]
    scale = max(0.5, w / 1280 * 0.8)
    for (x1, y1, x2, y2), label, level in overlay.boxes:
        colour = LEVEL_BGR.get(level, LEVEL_BGR["none"])
        thick = 4 if LEVEL_RANK.get(level, 0) >= 3 else 2
        cv2.rectangle(out, (int(x1), int(y1)), (int(x2), int(y2)), colour, thick)
        cv2.putText(out, f"{label} {level if level != 'none' else ''}".strip(), (int(x1), max(12, int(y1) - 5)),
                    cv2.FONT_HERSHEY_SIMPLEX, scale * 0.6, colour, 1, cv2.LINE_AA)
    cv2.rectangle(out, (0, 0), (w, int(28 * scale)), (0, 0, 0), -1)
    cv2.putText(out, overlay.status, (8, int(20 * scale)), cv2.FONT_HERSHEY_SIMPLEX, scale * 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    line_h = int(30 * scale)
    for k, (text, kind) in enumerate(reversed(overlay.captions)):
        y = h - 10 - k * line_h
        colour = {"alert": (60, 60, 235), "advisory": (96, 174, 39), "driver": (237, 128, 47)}.get(kind, (255, 255, 255))
        text = text if len(text) <= 90 else text[:87] + "..."
        cv2.rectangle(out, (0, y - line_h + 6), (w, y + 6), (0, 0, 0), -1)
        cv2.putText(out, text, (8, y - 4), cv2.FONT_HERSHEY_SIMPLEX, scale * 0.65, colour, 1 if kind != "alert" else 2, cv2.LINE_AA)
    return out


def write_video(frames: Iterable[Any], records: Iterable[dict[str, Any]], path: Path, fps: float,
                max_width: int = 960, on_frame=None) -> int:
    """Write the annotated video (MP4, mp4v codec); ``frames`` are CameraFrames. Returns frames written."""
    import cv2

    index = OverlayIndex(records)
    writer = None
    n = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        for frame in frames:
            img = draw(frame.image, index.at(frame.t_ns))
            if img.shape[1] > max_width:
                s = max_width / img.shape[1]
                img = cv2.resize(img, (max_width, int(round(img.shape[0] * s / 2)) * 2), interpolation=cv2.INTER_AREA)
            if writer is None:
                writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (img.shape[1], img.shape[0]))
                if not writer.isOpened():
                    raise OSError(f"OpenCV cannot write MP4 to {path}")
            writer.write(img)
            n += 1
            if on_frame:
                on_frame()
    finally:
        if writer is not None:
            writer.release()
    return n
