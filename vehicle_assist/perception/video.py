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


__all__ = ["load_calibration", "sidecar_calibration"]
