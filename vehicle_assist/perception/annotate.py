"""Draw what the lane saw on a frame with OpenCV only (boxes, track ids, distance, TTC, alert)."""

from __future__ import annotations

import cv2
import numpy as np

from vehicle_assist.messages import AlertEvent, HazardLevel
from vehicle_assist.perception.detector import Region
from vehicle_assist.perception.pipeline import FrameResult

# BGR colour per hazard level
COLOURS = {
    HazardLevel.NONE: (200, 200, 200),
    HazardLevel.INFO: (80, 200, 80),
    HazardLevel.CAUTION: (0, 220, 255),
    HazardLevel.WARNING: (0, 140, 255),
    HazardLevel.CRITICAL: (0, 0, 255),
}


def _text(img: np.ndarray, text: str, org: tuple[int, int], colour, scale: float = 0.5) -> None:
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    x, y = org
    y = max(y, h + 2)
    cv2.rectangle(img, (x, y - h - 3), (x + w + 4, y + base), (0, 0, 0), -1)
    cv2.putText(img, text, (x + 2, y - 1), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 1, cv2.LINE_AA)


def draw(image: np.ndarray, result: FrameResult, active: AlertEvent | None = None, region: Region | None = None,
         fps: float | None = None) -> np.ndarray:
    """A copy of ``image`` with tracks, their hazard level, distance and TTC, and the active alert."""
    out = image.copy()
    if region is not None:
        cv2.rectangle(out, (region.x1, region.y1), (region.x2 - 1, region.y2 - 1), (255, 255, 0), 1, cv2.LINE_AA)
    by_track = {h.track_id: h for h in result.hazards if h.track_id is not None}
    for tr in result.tracks:
        hz = by_track.get(tr.track_id)
        level = hz.level if hz else HazardLevel.NONE
        colour = COLOURS[level]
        x1, y1, x2, y2 = (int(round(v)) for v in tr.box)
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, 3 if level >= HazardLevel.WARNING else 2)
        parts = [f"#{tr.track_id} {tr.label}"]
        if hz and hz.distance_m is not None:
            parts.append(f"{hz.distance_m:.0f}m")
        if hz and hz.ttc_s is not None:
            parts.append(f"TTC {hz.ttc_s:.1f}s")
        _text(out, " ".join(parts), (x1, y1 - 4), colour)
    if active is not None:
        colour = (0, 0, 255) if active.priority >= 90 else (0, 140, 255)
        banner = f"{active.text}" + ("" if active.audible else "  (silent)")
        cv2.rectangle(out, (0, 0), (out.shape[1], 44), (0, 0, 0), -1)
        cv2.putText(out, banner, (12, 31), cv2.FONT_HERSHEY_SIMPLEX, 0.9, colour, 2, cv2.LINE_AA)
    info = f"frame {result.frame_seq}  t {result.t_ns / 1e9:.2f}s  {result.timings.get('total', 0):.0f} ms"
    if fps:
        info += f"  {fps:.1f} fps"
    _text(out, info, (8, out.shape[0] - 8), (255, 255, 255), 0.45)
    return out


__all__ = ["draw", "COLOURS"]
