"""A recorded video's camera calibration: from a file, or from the sidecar JSON next to the video
(``<video>.json`` with a ``calibration`` object, as the approach-sequence generator and drive
manifests write). ``detect`` and the benchmarks run the safety lane over the video itself
(:func:`vehicle_assist.safety.lane.run_lockstep`).
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from vehicle_assist.config import CameraCalibration


def load_calibration(path: Path | str) -> CameraCalibration:
    """A calibration from JSON/YAML: either the fields themselves or a document with ``calibration``."""
    path = Path(path)
    text = path.read_text()
    data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    if isinstance(data, dict) and "calibration" in data:
        data = data["calibration"]
    return CameraCalibration.model_validate(data)


def sidecar_calibration(video: Path | str) -> CameraCalibration | None:
    """The calibration in ``<video>.json`` next to a video, if there is one."""
    side = Path(video).with_suffix(".json")
    if not side.is_file():
        return None
    try:
        return load_calibration(side)
    except (ValueError, TypeError):  # a sidecar without a usable calibration is simply not one
        return None


def detection_records(result) -> list[dict]:
    """A frame's detections as JSON records: box (xyxy px), label, score, track id (None when no track
    took it, e.g. a low-score box or a still), the detector pass that measured it."""
    ids = {t.box: t.track_id for t in result.tracks}
    return [{"box": [round(v, 1) for v in d.box], "label": d.label, "score": round(d.confidence, 3),
             "track_id": ids.get(d.box), "pass": d.source} for d in result.detections.items]


__all__ = ["detection_records", "load_calibration", "sidecar_calibration"]
