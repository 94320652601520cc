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

    Same maths as Ultralytics' predictor (letterbox with grey 114 padding, RGB/255, NMS at IoU 0.7)
    without its per-call overhead; used when ``perception.backend`` is ``onnxruntime``. A fixed-size
    export runs at its own size; its any-size copy (:mod:`~vehicle_assist.perception.yolo_export`,
    ``anysize=True``) runs at any ``imgsz``, and with ``rect`` letterboxes to the image's aspect
    (padding to a multiple of 32 only), so a 16:9 frame at 640 costs 640x384, not 640x640.
    ``groups`` maps class ids to NMS groups: boxes of one group suppress each other whatever their
    class (one vehicle is not kept as car, truck and bus at once).
    """

    def __init__(self, path, names: dict[int, str], threads: int = 2, iou: float = 0.7, anysize: bool = False,
                 groups: dict[int, int] | None = None) -> None:
        self.bins = None
        if anysize:
            from vehicle_assist.perception import yolo_export

            path = yolo_export.ensure(Path(path))
        self.session = models.onnx_session(path, threads)
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        shape = inp.shape
        self.fixed = tuple(shape[2:4]) if all(isinstance(d, int) for d in shape[2:4]) else None
        self.heads = len(self.session.get_outputs()) > 1  # the any-size copy: head maps, decoded here
        self.names, self.iou = names, iou
        self.groups = groups or {}

    def input_shape(self, h: int, w: int, imgsz: int, rect: bool) -> tuple[int, int]:
        """The network input (height, width) for an ``h`` x ``w`` image."""
        if self.fixed:
            return self.fixed
        if not rect:
            return imgsz, imgsz
        r = min(imgsz / h, imgsz / w)
        return int(np.ceil(round(h * r) / 32) * 32), int(np.ceil(round(w * r) / 32) * 32)

    def _raw(self, blob: np.ndarray, classes: list[int]):
        """(boxes cx, cy, w, h (A, 4), scores of ``classes`` (C, A)) in input pixels."""
        outs = self.session.run(None, {self.input_name: blob})
        if not self.heads:
            out = outs[0][0]  # (4 + classes, anchors)
            return out[:4].T, (out[4:][classes] if classes else out[4:])
        from vehicle_assist.perception import yolo_export

        if self.bins is None and len(outs) % 3 == 1:
            self.bins = outs[-1]
        maps = outs[:len(outs) - len(outs) % 3]
        boxes, logits = yolo_export.decode(maps, len(self.names), bins=self.bins)
        logits = logits[classes] if classes else logits
        return boxes, 1.0 / (1.0 + np.exp(-logits))

    def predict(self, image: np.ndarray, imgsz: int, conf: float, classes: list[int], rect: bool = False):
        """Boxes (xyxy in ``image`` pixels), class ids and confidences."""
        import cv2

        h, w = image.shape[:2]
        th, tw = self.input_shape(h, w, imgsz, rect)
        r = min(th / h, tw / w)
        nw, nh = int(round(w * r)), int(round(h * r))
        px, py = (tw - nw) / 2, (th - nh) / 2
        canvas = np.full((th, tw, 3), 114, np.uint8)
        top, left = int(round(py - 0.1)), int(round(px - 0.1))
        canvas[top:top + nh, left:left + nw] = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
        blob = np.ascontiguousarray(canvas[:, :, ::-1].transpose(2, 0, 1))[None].astype(np.float32) / 255.0
        xywh, scores = self._raw(blob, classes)
        best = scores.argmax(axis=0)
        conf_v = scores[best, np.arange(scores.shape[1])]
        keep = conf_v >= conf
        if not keep.any():
            return []
        cx, cy, bw, bh = xywh[keep, 0], xywh[keep, 1], xywh[keep, 2], xywh[keep, 3]
        cls = np.asarray(classes)[best[keep]] if classes else best[keep]
        conf_v = conf_v[keep]
        x1 = (cx - bw / 2 - left) / r
        y1 = (cy - bh / 2 - top) / r
        x2 = (cx + bw / 2 - left) / r
        y2 = (cy + bh / 2 - top) / r
        boxes = np.stack([x1, y1, x2, y2], 1)
        group = [self.groups.get(int(c), 1000 + int(c)) for c in cls]
        idx = cv2.dnn.NMSBoxesBatched(np.stack([x1, y1, x2 - x1, y2 - y1], 1).tolist(), conf_v.tolist(),
                                      group, conf, self.iou)
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
        by_name = {n: i for i, n in self.names.items()}
        self.groups = {by_name[n]: g for g, names in enumerate(self.settings.nms_groups) for n in names if n in by_name}
        if self.settings.backend == "onnxruntime" or (self.settings.backend == "auto" and is_onnx):
            self.fast = self._onnx(weights)
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
        self._pool = None  # the second thread for the road-ahead pass (settings.parallel_passes)

    def reset(self, calib: CameraCalibration | None = None) -> None:
        """Start the pass schedule afresh (a new run), optionally for another camera's calibration."""
        self._frames = 0
        self.last_passes = ()
        if calib is not None:
            self.calib = calib

    def _onnx(self, weights: Path) -> OnnxYolo:
        """The lean path; the any-size copy of the weights when a pass needs another input size than the export's."""
        s = self.settings
        fast = OnnxYolo(weights, self.names, self.threads, s.nms_iou, groups=self.groups)
        sizes = {(s.imgsz, s.imgsz)} | ({(s.roi.imgsz, s.roi.imgsz)} if s.roi.every else set())
        if fast.fixed and (s.rect or sizes != {fast.fixed}):
            from vehicle_assist.perception.yolo_export import ExportError

            try:
                return OnnxYolo(weights, self.names, self.threads, s.nms_iou, anysize=True, groups=self.groups)
            except (ExportError, OSError) as err:
                raise DetectorError("fixed-size-weights", f"{weights} only runs at {fast.fixed[1]} px and no any-size "
                                    f"copy could be made ({err}); set perception.imgsz/roi.imgsz to it") from err
        return fast

    def _predict(self, image: np.ndarray, imgsz: int, rect: bool = False) -> list[tuple[tuple[float, float, float, float], int, float]]:
        if self.fast is not None:
            return self.fast.predict(image, imgsz, self.settings.conf, self.class_ids, rect)
        res = self.model.predict(image, imgsz=imgsz, conf=self.settings.conf, classes=self.class_ids, verbose=False,
                                 rect=rect, iou=self.settings.nms_iou,
                                 agnostic_nms=False)
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
        full_rows = None
        if run_roi:
            reg = self.region(frame)
            crop = np.ascontiguousarray(frame.image[reg.y1:reg.y2, reg.x1:reg.x2])
            edge = 2.0
            if run_full and s.parallel_passes and self.fast is not None:
                # ONNX Runtime and OpenCV release the GIL: the two passes share the two cores
                if self._pool is None:
                    from concurrent.futures import ThreadPoolExecutor

                    self._pool = ThreadPoolExecutor(1, thread_name_prefix="roi-pass")
                pending = self._pool.submit(self._predict, crop, s.roi.imgsz)
                full_rows = self._predict(frame.image, s.imgsz, s.rect)
                roi_rows = pending.result()
            else:
                roi_rows = self._predict(crop, s.roi.imgsz)
            for (x1, y1, x2, y2), c, p in roi_rows:
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
            drop = set()
            for box, c, p in (full_rows if full_rows is not None else self._predict(frame.image, s.imgsz, s.rect)):
                dup = [i for i, f in enumerate(fine) if self._same_group(f[1], c) and iou(f[0], box) > 0.3]
                # the road-ahead pass measures an object finer, unless it saw only a part of it
                # (the whole-frame box clearly larger): then the whole box wins
                if dup and not any(_area(box) > s.roi.part_area_factor * _area(fine[i][0]) for i in dup):
                    continue
                drop.update(dup)
                found.append((box, c, p, "full"))
            found = [f for f in found if not (f[3] == "roi" and fine.index(f) in drop)] if drop else found
            passes.append("full")
        self.last_passes = tuple(passes)
        looked = None if run_full else (reg.x1, reg.y1, reg.x2, reg.y2)
        items = tuple(Detection(box=box, label=self.names[c], class_id=c, confidence=round(p, 4), source=src)
                      for box, c, p, src in found)
        if s.riders:
            items = ride(items, s.rider_overlap)
        return Detections(t_ns=frame.t_ns, frame_seq=frame.seq, width=frame.width, height=frame.height,
                          items=items, infer_ms=(clock.perf_ns() - start) / 1e6, region=looked)

    def _same_group(self, a: int, b: int) -> bool:
        return a == b or (a in self.groups and self.groups.get(a) == self.groups.get(b))


def _area(b: tuple[float, ...]) -> float:
    return max(b[2] - b[0], 0.0) * max(b[3] - b[1], 0.0)


RIDERS = {"bicycle": "cyclist", "motorcycle": "motorcyclist"}
"""A person on a bicycle is a cyclist, on a motorcycle (scooter) a motorcyclist: one road user, one box."""


def ride(items: tuple[Detection, ...], min_overlap: float = 0.3) -> tuple[Detection, ...]:
    """Fold each rider into the bicycle or motorcycle under them: one ``cyclist``/``motorcyclist``
    detection whose box spans both, scored by the likelier of the two (pure).

    A person is a rider when at least ``min_overlap`` of its box lies inside the vehicle's and its
    centre is over it; each vehicle takes its best-overlapping person, so a second person on it (a
    pillion) is folded in too. Bicycles and motorcycles without a rider stay as they are (parked).
    """
    bikes = [i for i, d in enumerate(items) if d.label in RIDERS]
    if not bikes:
        return items
    taken: dict[int, list[int]] = {}
    for pi, d in enumerate(items):
        if d.label != "person":
            continue
        px1, py1, px2, py2 = d.box
        parea = max(_area(d.box), 1.0)
        best, best_ov = None, min_overlap
        for bi in bikes:
            bx1, by1, bx2, by2 = items[bi].box
            inter = max(0.0, min(px2, bx2) - max(px1, bx1)) * max(0.0, min(py2, by2) - max(py1, by1))
            ov = inter / parea
            if ov >= best_ov and bx1 <= (px1 + px2) / 2 <= bx2 and py1 < by1 + 0.5 * (by2 - by1):
                best, best_ov = bi, ov
        if best is not None:
            taken.setdefault(best, []).append(pi)
    if not taken:
        return items
    riders = {pi for ps in taken.values() for pi in ps}
    out = []
    for i, d in enumerate(items):
        if i in riders:
            continue
        if i in taken:
            group = [d] + [items[pi] for pi in taken[i]]
            box = (min(g.box[0] for g in group), min(g.box[1] for g in group),
                   max(g.box[2] for g in group), max(g.box[3] for g in group))
            d = Detection(box=box, label=RIDERS[d.label], class_id=d.class_id,
                          confidence=max(g.confidence for g in group), source=d.source)
        out.append(d)
    return tuple(out)


__all__ = ["Detector", "DetectorError", "OnnxYolo", "RIDERS", "Region", "iou", "ride", "road_ahead_region"]
