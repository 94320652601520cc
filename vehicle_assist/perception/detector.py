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
from pathlib import Path

import numpy as np

from vehicle_assist import clock, models
from vehicle_assist.config import CameraCalibration, PerceptionSettings, ThreadSettings
from vehicle_assist.errors import CodedError
from vehicle_assist.messages import CameraFrame, Detection, Detections


class DetectorError(CodedError):
    """The detector could not be loaded or run (code names the failure)."""


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


class OnnxYolo:
    """A lean path for YOLOv8 ONNX exports: letterbox, ONNX Runtime, class filter, NMS, in numpy.

    Same maths as Ultralytics' predictor (letterbox with grey 114 padding, RGB/255, per-class NMS at
    IoU 0.7) without its per-call overhead; used when ``perception.backend`` is ``onnxruntime``.
    """

    def __init__(self, path, names: dict[int, str], threads: int = 2, iou: float = 0.7) -> None:
        self.session = models.onnx_session(path, threads)
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        shape = inp.shape
        self.fixed = tuple(shape[2:4]) if all(isinstance(d, int) for d in shape[2:4]) else None
        self.names, self.iou = names, iou

    def predict(self, image: np.ndarray, imgsz: int, conf: float, classes: list[int]):
        """Boxes (xyxy in ``image`` pixels), class ids and confidences."""
        import cv2

        th, tw = self.fixed or (imgsz, imgsz)
        h, w = image.shape[:2]
        r = min(th / h, tw / w)
        nw, nh = int(round(w * r)), int(round(h * r))
        px, py = (tw - nw) / 2, (th - nh) / 2
        canvas = np.full((th, tw, 3), 114, np.uint8)
        top, left = int(round(py - 0.1)), int(round(px - 0.1))
        canvas[top:top + nh, left:left + nw] = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
        blob = np.ascontiguousarray(canvas[:, :, ::-1].transpose(2, 0, 1))[None].astype(np.float32) / 255.0
        out = self.session.run(None, {self.input_name: blob})[0][0]  # (4 + classes, anchors)
        scores = out[4:][classes] if classes else out[4:]
        best = scores.argmax(axis=0)
        conf_v = scores[best, np.arange(scores.shape[1])]
        keep = conf_v >= conf
        if not keep.any():
            return []
        cx, cy, bw, bh = out[0][keep], out[1][keep], out[2][keep], out[3][keep]
        cls = np.asarray(classes)[best[keep]] if classes else best[keep]
        conf_v = conf_v[keep]
        x1 = (cx - bw / 2 - left) / r
        y1 = (cy - bh / 2 - top) / r
        x2 = (cx + bw / 2 - left) / r
        y2 = (cy + bh / 2 - top) / r
        boxes = np.stack([x1, y1, x2, y2], 1)
        idx = cv2.dnn.NMSBoxesBatched(np.stack([x1, y1, x2 - x1, y2 - y1], 1).tolist(), conf_v.tolist(),
                                      cls.tolist(), conf, self.iou)
        idx = np.asarray(idx).reshape(-1)
        out_rows = []
        for i in idx[np.argsort(-conf_v[idx])]:
            b = np.clip(boxes[i], 0, [w, h, w, h])
            out_rows.append((tuple(float(v) for v in b), int(cls[i]), float(conf_v[i])))
        return out_rows


class Detector:
    """YOLO over a full-frame pass and a road-ahead pass; ``detect(frame) -> Detections``."""

    def __init__(self, model=None, settings: PerceptionSettings | None = None,
                 calib: CameraCalibration | None = None, threads: int | None = None) -> None:
        self.settings = settings or PerceptionSettings()
        self.threads = threads if threads is not None else ThreadSettings().detector  # runtime.threads.detector
        if calib is None:
            from vehicle_assist.perception.hazards import default_table

            calib = self.settings.calibration or default_table().camera
        self.calib = calib
        self.model = model if model is not None else (
            models.load_detector() if self.settings.backend == "ultralytics" else models.load_detector_weights())
        self.names: dict[int, str] = {int(k): str(v) for k, v in self.model.names.items()}
        wanted = set(self.settings.classes)
        self.class_ids = sorted(i for i, n in self.names.items() if n in wanted)
        unknown = wanted - set(self.names.values())
        if unknown:
            raise DetectorError("unknown-class", f"classes {sorted(unknown)} are not in the model's {len(self.names)} classes")
        self.fast: OnnxYolo | None = None
        weights = Path(str(getattr(self.model, "ckpt_path", None) or getattr(self.model, "model_name", "") or ""))
        is_onnx = weights.suffix == ".onnx" and weights.is_file()
        if self.settings.backend == "onnxruntime" and not is_onnx:
            raise DetectorError("backend-mismatch", f"backend onnxruntime needs .onnx weights, got {weights}")
        if self.settings.backend == "onnxruntime" or (self.settings.backend == "auto" and is_onnx):
            self.fast = OnnxYolo(weights, self.names, self.threads)
        else:  # only Ultralytics runs the model in torch, whose thread count is process-wide
            if isinstance(self.model, models.DetectorWeights):
                self.model = models.load_detector(Path(self.model.ckpt_path))
            try:
                import torch

                torch.set_num_threads(self.threads)
            except ImportError:  # torch is a dependency; this only guards odd installs
                pass
        self.backend = "onnxruntime" if self.fast is not None else "ultralytics"
        self._frames = 0
        self.last_passes: tuple[str, ...] = ()

    def reset(self, calib: CameraCalibration | None = None) -> None:
        """Start the pass schedule afresh (a new run), optionally for another camera's calibration."""
        self._frames = 0
        self.last_passes = ()
        if calib is not None:
            self.calib = calib

    def _predict(self, image: np.ndarray, imgsz: int) -> list[tuple[tuple[float, float, float, float], int, float]]:
        if self.fast is not None:
            return self.fast.predict(image, imgsz, self.settings.conf, self.class_ids)
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
        looked = None if run_full else (reg.x1, reg.y1, reg.x2, reg.y2)
        items = tuple(Detection(box=box, label=self.names[c], class_id=c, confidence=round(p, 4), source=src)
                      for box, c, p, src in found)
        return Detections(t_ns=frame.t_ns, frame_seq=frame.seq, width=frame.width, height=frame.height,
                          items=items, infer_ms=(clock.perf_ns() - start) / 1e6, region=looked)


__all__ = ["Detector", "DetectorError", "OnnxYolo", "Region", "road_ahead_region", "iou"]
