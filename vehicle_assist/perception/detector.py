"""The detector: Ultralytics YOLO (any format it loads) behind our :class:`Detections` type.

Two passes share one model. The full-frame pass sees everything around the road; the road-ahead
pass runs the same network over a square region centred just below the horizon, at a much finer
scale, because at 320 px a car 60 m ahead is only a few pixels tall. Road-ahead detections replace
their coarser full-frame duplicates, so an object in the corridor is measured the same way on every
frame (TTC comes from its box-height growth and must not see the two scales alternate).

Ultralytics results are converted to :class:`~vehicle_assist.messages.Detection` here; nothing
vendor-specific leaves this module.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vehicle_assist import clock, models
from vehicle_assist.config import CameraCalibration, PerceptionSettings
from vehicle_assist.messages import CameraFrame, Detection, Detections


class DetectorError(Exception):
    """The detector could not be loaded or run (code names the failure)."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(f"{code}: {message}")


@dataclass(frozen=True)
class Region:
    """A pixel rectangle of the frame ``[x1, x2) x [y1, y2)``."""

    x1: int
    y1: int
    x2: int
    y2: int


def road_ahead_region(width: int, height: int, calib: CameraCalibration, size_frac: float, below_frac: float) -> Region:
    """The square region over the road ahead: centred on the corridor's vanishing point, clipped to the frame."""
    cal = calib.scaled(width, height)
    side = int(min(round(size_frac * width), width, height))
    cx, cy = cal.cx, cal.cy + below_frac * side
    x1 = int(np.clip(round(cx - side / 2), 0, width - side))
    y1 = int(np.clip(round(cy - side / 2), 0, height - side))
    return Region(x1, y1, x1 + side, y1 + side)


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over union of two xyxy boxes."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


class Detector:
    """YOLO over a full-frame pass and a road-ahead pass; ``detect(frame) -> Detections``."""

    def __init__(self, model=None, settings: PerceptionSettings | None = None,
                 calib: CameraCalibration | None = None) -> None:
        self.settings = settings or PerceptionSettings()
        if calib is None:
            from vehicle_assist.perception.hazards import default_table

            calib = self.settings.calibration or default_table().camera
        self.calib = calib
        try:
            import torch

            torch.set_num_threads(self.settings.threads)
        except ImportError:  # torch is a dependency; this only guards odd installs
            pass
        self.model = model if model is not None else models.load_detector()
        self.names: dict[int, str] = {int(k): str(v) for k, v in self.model.names.items()}
        wanted = set(self.settings.classes)
        self.class_ids = sorted(i for i, n in self.names.items() if n in wanted)
        unknown = wanted - set(self.names.values())
        if unknown:
            raise DetectorError("unknown-class", f"classes {sorted(unknown)} are not in the model's {len(self.names)} classes")
        self._frames = 0
        self.last_passes: tuple[str, ...] = ()

    def _predict(self, image: np.ndarray, imgsz: int) -> list[tuple[tuple[float, float, float, float], int, float]]:
        res = self.model.predict(image, imgsz=imgsz, conf=self.settings.conf, classes=self.class_ids, verbose=False)
        boxes = res[0].boxes
        xyxy = boxes.xyxy.cpu().numpy() if len(boxes) else np.zeros((0, 4))
        cls = boxes.cls.cpu().numpy().astype(int) if len(boxes) else np.zeros(0, int)
        conf = boxes.conf.cpu().numpy() if len(boxes) else np.zeros(0)
        return [(tuple(float(v) for v in b), int(c), float(p)) for b, c, p in zip(xyxy, cls, conf)]

    def region(self, frame: CameraFrame) -> Region:
        """The road-ahead region for this frame's size."""
        r = self.settings.roi
        return road_ahead_region(frame.width, frame.height, self.calib, r.size_frac, r.below_frac)

    def detect(self, frame: CameraFrame) -> Detections:
        """Run the passes due on this frame and merge them into one :class:`Detections`."""
        if frame.image is None or frame.image.ndim != 3 or frame.image.shape[2] != 3 or frame.image.size == 0:
            raise DetectorError("bad-frame", f"frame {frame.seq} is not an HxWx3 image")
        start = clock.perf_ns()
        n = self._frames
        self._frames += 1
        s = self.settings
        run_roi = s.roi.every > 0 and n % s.roi.every == 0
        run_full = n % s.full_every == 0 or not run_roi
        found: list[tuple[tuple[float, float, float, float], int, float, str]] = []
        passes = []
        if run_roi:
            reg = self.region(frame)
            crop = np.ascontiguousarray(frame.image[reg.y1:reg.y2, reg.x1:reg.x2])
            edge = 2.0
            for (x1, y1, x2, y2), c, p in self._predict(crop, s.roi.imgsz):
                box = (x1 + reg.x1, y1 + reg.y1, x2 + reg.x1, y2 + reg.y1)
                # cut by the region's border (and not by the frame's): the full pass measures it whole
                cut = ((x1 <= edge and reg.x1 > 0) or (y1 <= edge and reg.y1 > 0)
                       or (x2 >= reg.x2 - reg.x1 - edge and reg.x2 < frame.width)
                       or (y2 >= reg.y2 - reg.y1 - edge and reg.y2 < frame.height))
                if not cut:
                    found.append((box, c, p, "roi"))
            passes.append("roi")
        if run_full:
            fine = [f for f in found if f[3] == "roi"]
            for box, c, p in self._predict(frame.image, s.imgsz):
                if not any(f[1] == c and iou(f[0], box) > 0.3 for f in fine):
                    found.append((box, c, p, "full"))
            passes.append("full")
        self.last_passes = tuple(passes)
        items = tuple(Detection(box=box, label=self.names[c], class_id=c, confidence=round(p, 4), source=src)
                      for box, c, p, src in found)
        return Detections(t_ns=frame.t_ns, frame_seq=frame.seq, width=frame.width, height=frame.height,
                          items=items, infer_ms=(clock.perf_ns() - start) / 1e6)


__all__ = ["Detector", "DetectorError", "Region", "road_ahead_region", "iou"]
