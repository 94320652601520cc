"""Detection benchmark: recall and precision of the safety lane's detector on labelled frames.

    python bench/detection.py [--data DIR] [--schedules present,chosen,...] [--eval-conf 0.25]
                              [--limit N] [--json-out FILE]
    VA_MODEL_DETECTOR=/path/other.onnx python bench/detection.py ...   # another detector, same table

The output's ``detector`` names the weights that ran (path, origin, export description, licence).

Frames: KITTI object frames with 2D labels (``$VA_MIRROR/frames_labelled/kitti``, research use
only: never shipped, never committed). Each schedule is a set of ``perception`` settings run through
the real :class:`~vehicle_assist.perception.detector.Detector` exactly as the live lane runs it: one
detector, frames in sequence, so a frame that gets only the road-ahead pass shows it. Because the
frames are unrelated stills, the sequence is run once per phase of the schedule's pass cycle
(offset by one frame each time), so every frame is seen at every phase: ``by_phase`` gives the
recall of each phase over all frames (alternate-frame blindness), ``in_sequence`` the plain live run.

Scored per class (vehicle = KITTI Car/Van/Truck vs car/truck/bus; pedestrian = Pedestrian/
Person_sitting vs person; cyclist = Cyclist (rider and bike in one box) vs cyclist/motorcyclist/
bicycle/motorcycle), per box-height bucket (<25, 25-50, 50-100, >100 px) at IoU 0.5 and 0.3, over
the detections at or above ``--eval-conf`` (default: the tracker's high threshold, the boxes that
can start a track; lower-scored boxes only continue tracks). Detections on DontCare/Misc/Tram
regions, or on a labelled object of another class, count neither way (confusions are counted apart:
``person_on_cyclist`` is a rider that would be announced as a pedestrian). KITTI leaves some parked
cars and bikes unlabelled, so precision is a lower bound. Also: false positives per frame,
duplicates (two kept boxes on one labelled object), wall and process-CPU ms per frame (the machine
is shared: load averages are recorded).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BUCKETS = ((0, 25, "<25"), (25, 50, "25-50"), (50, 100, "50-100"), (100, math.inf, ">100"))
GT_CLASS = {"Car": "vehicle", "Van": "vehicle", "Truck": "vehicle", "Pedestrian": "pedestrian",
            "Person_sitting": "pedestrian", "Cyclist": "cyclist"}
GT_IGNORE = {"DontCare", "Misc", "Tram"}
DET_CLASS = {"car": "vehicle", "truck": "vehicle", "bus": "vehicle", "person": "pedestrian",
             "cyclist": "cyclist", "motorcyclist": "cyclist", "bicycle": "cyclist", "motorcycle": "cyclist"}
CLASSES = ("vehicle", "pedestrian", "cyclist")

PRESENT = {"imgsz": 320, "full_every": 2, "rect": False, "conf": 0.25, "nms_groups": [], "riders": False,
           "roi": {"every": 1, "imgsz": 320, "part_area_factor": 1e9}}
"""The schedule the live lane ran before issue 16: 320-px full pass every 2nd frame, 320-px road-ahead
pass every frame, per-class NMS, no rider folding, detector threshold = the tracker's high threshold."""


def _issue16(full: int, roi: int, roi_every: int = 1) -> dict:
    """The issue-16 settings (conf 0.1, rider folding, NMS across vehicle classes) at these pass sizes."""
    return {"imgsz": full, "rect": True, "full_every": 1, "conf": 0.1, "riders": True,
            "nms_groups": [["car", "truck", "bus"], ["bicycle", "motorcycle"]], "roi": {"every": roi_every, "imgsz": roi}}


SCHEDULES: dict[str, dict] = {
    "present": PRESENT,
    "configured": {},  # configs/default.yaml as it is now
    "full320_every_frame": {**PRESENT, "full_every": 1},
    "full480rect+roi320": {"imgsz": 480, "rect": True, "full_every": 1, "roi": {"every": 1, "imgsz": 320}},
    "full512rect+roi320": {"imgsz": 512, "rect": True, "full_every": 1, "roi": {"every": 1, "imgsz": 320}},
    "full640rect+roi320": {"imgsz": 640, "rect": True, "full_every": 1, "roi": {"every": 1, "imgsz": 320}},
    "full640rect": {"imgsz": 640, "rect": True, "full_every": 1, "roi": {"every": 0}},
    "full640rect/2+roi320": {"imgsz": 640, "rect": True, "full_every": 2, "roi": {"every": 1, "imgsz": 320}},
    "full416rect+roi320": {"imgsz": 416, "rect": True, "full_every": 1, "roi": {"every": 1, "imgsz": 320}},
    "issue16": _issue16(416, 320),
    "full480rect+roi256": {"imgsz": 480, "rect": True, "full_every": 1, "roi": {"every": 1, "imgsz": 256}},
    # issue 16, third round: the frame budget (~40 ms CPU a frame with ego motion); the full pass on every frame
    "issue16+roi/2": _issue16(416, 320, roi_every=2),
    "issue16@384": _issue16(384, 320),
    "issue16@384+roi/2": _issue16(384, 320, roi_every=2),
    "issue16@352+roi/2": _issue16(352, 320, roi_every=2),
    "issue16@320+roi256": _issue16(320, 256),
    "issue16@352+roi256": _issue16(352, 256),
    "issue16@384+roi256": _issue16(384, 256),
    "issue16@320+roi288": _issue16(320, 288),
    "issue16+roi256": _issue16(416, 256),
}
"""Candidate schedules (overrides of the configured ``perception`` section)."""


@dataclass(frozen=True)
class Box:
    cls: str  # vehicle / pedestrian / cyclist, or "ignore"
    box: tuple[float, float, float, float]
    score: float = 1.0
    label: str = ""

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]


def iou(a, b) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def ioa(a, region) -> float:
    """Fraction of box ``a`` inside ``region``."""
    iw = max(0.0, min(a[2], region[2]) - max(a[0], region[0]))
    ih = max(0.0, min(a[3], region[3]) - max(a[1], region[1]))
    area = (a[2] - a[0]) * (a[3] - a[1])
    return iw * ih / area if area > 0 else 0.0


def bucket(h: float) -> str:
    return next(name for lo, hi, name in BUCKETS if lo <= h < hi)


def read_kitti_labels(path: Path) -> list[Box]:
    out = []
    for line in path.read_text().splitlines():
        f = line.split()
        if len(f) < 8:
            continue
        cls = GT_CLASS.get(f[0], "ignore" if f[0] in GT_IGNORE else None)
        if cls is not None:
            out.append(Box(cls, tuple(float(v) for v in f[4:8]), label=f[0]))
    return out


def read_kitti_calib(path: Path, width: int, height: int):
    """Camera calibration from KITTI's P2 (focal, principal point; horizon at cy: a level camera, 1.65 m up)."""
    from vehicle_assist.config import CameraCalibration

    for line in path.read_text().splitlines():
        if line.startswith("P2:"):
            p = [float(v) for v in line.split()[1:]]
            return CameraCalibration(width=width, height=height, focal_px=p[0], cx=p[2], cy=p[6], mount_height_m=1.65)
    raise ValueError(f"{path}: no P2 line")


def match_frame(gts: list[Box], dets: list[Box], thr: float) -> dict:
    """Greedy matching (highest score first) of one frame. Returns per-detection and per-truth outcomes.

    ``tp``: (class, truth height); ``fn``: (class, truth height); ``fp``: (class, det height);
    ``confusions``: (det class, truth class); ``duplicates``: detections on an already matched truth.
    """
    used = [False] * len(gts)
    res = {"tp": [], "fn": [], "fp": [], "confusions": [], "duplicates": 0}
    for d in sorted(dets, key=lambda b: -b.score):
        best, best_iou = None, thr
        for i, g in enumerate(gts):
            if g.cls == d.cls and not used[i]:
                v = iou(d.box, g.box)
                if v >= best_iou:
                    best, best_iou = i, v
        if best is not None:
            used[best] = True
            res["tp"].append((d.cls, gts[best].height))
            continue
        same = [g for g, u in zip(gts, used) if u and g.cls == d.cls and iou(d.box, g.box) >= thr]
        other = [g for g in gts if g.cls not in (d.cls, "ignore") and iou(d.box, g.box) >= thr]
        ignored = [g for g in gts if g.cls == "ignore" and (iou(d.box, g.box) >= thr or ioa(d.box, g.box) >= 0.5)]
        if same:
            res["duplicates"] += 1
            res["fp"].append((d.cls, d.height))
        elif other:
            res["confusions"].append((d.cls, other[0].cls))
        elif not ignored:
            res["fp"].append((d.cls, d.height))
    res["fn"] = [(g.cls, g.height) for g, u in zip(gts, used) if not u and g.cls != "ignore"]
    return res


def summarise(results: list[dict], n_frames: int) -> dict:
    """Pooled recall/precision per class and height bucket, FP per frame, confusions."""
    out: dict = {}
    for cls in CLASSES:
        tp = [h for c, h in (x for r in results for x in r["tp"]) if c == cls]
        fn = [h for c, h in (x for r in results for x in r["fn"]) if c == cls]
        fp = [h for c, h in (x for r in results for x in r["fp"]) if c == cls]
        row = {"truths": len(tp) + len(fn), "recall": _ratio(len(tp), len(tp) + len(fn)),
               "precision": _ratio(len(tp), len(tp) + len(fp)), "false_positives": len(fp), "buckets": {}}
        for _, _, name in BUCKETS:
            t = sum(bucket(h) == name for h in tp)
            f = sum(bucket(h) == name for h in fn)
            p = sum(bucket(h) == name for h in fp)
            row["buckets"][name] = {"truths": t + f, "recall": _ratio(t, t + f), "false_positives": p}
        t25 = sum(h >= 25 for h in tp)
        row["recall_h>=25"] = _ratio(t25, t25 + sum(h >= 25 for h in fn))
        t50 = sum(h >= 50 for h in tp)
        row["recall_h>=50"] = _ratio(t50, t50 + sum(h >= 50 for h in fn))
        out[cls] = row
    tl = sum(h > 100 for r in results for _, h in r["tp"])
    fl = sum(h > 100 for r in results for _, h in r["fn"])
    fps = sum(len(r["fp"]) for r in results)
    conf: dict[str, int] = {}
    for r in results:
        for d, g in r["confusions"]:
            conf[f"{d}_on_{g}"] = conf.get(f"{d}_on_{g}", 0) + 1
    return {"classes": out, "recall_large_>100px": _ratio(tl, tl + fl),
            "false_positives_per_frame": round(fps / max(n_frames, 1), 3),
            "duplicates": sum(r["duplicates"] for r in results), "confusions": conf}


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 3) if b else None


def to_boxes(dets, eval_conf: float) -> list[Box]:
    return [Box(DET_CLASS[d.label], tuple(d.box), d.confidence, d.label) for d in dets.items
            if d.label in DET_CLASS and d.confidence >= eval_conf]


def cycle_of(settings) -> int:
    roi = settings.roi.every
    return math.lcm(settings.full_every, roi) if roi else settings.full_every


def run_schedule(name: str, overrides: dict, frames: list[tuple[str, np.ndarray, object, list[Box]]],
                 eval_conf: float | None, threads: int) -> dict:
    """Every frame through one detector at every phase of the schedule; scored at IoU 0.5 and 0.3."""
    from vehicle_assist import clock
    from vehicle_assist.messages import CameraFrame
    from vehicle_assist import config
    from vehicle_assist.perception.detector import Detector

    base = config.load_app(only=("perception",)).perception
    settings = _merge(base, overrides)
    conf = eval_conf if eval_conf is not None else settings.tracker.high_thresh
    n_cycle = cycle_of(settings)
    det = Detector(None, settings, threads=threads)
    per_phase: dict[int, list] = {p: [] for p in range(n_cycle)}
    in_seq: list = []
    wall, cpu, passes = [], [], {}
    for offset in range(n_cycle):
        for i, (fname, img, cal, gts) in enumerate(frames):
            det.calib = cal
            det._frames = i + offset  # the live lane's frame counter; offset runs shift the phase  # noqa: SLF001
            phase = (i + offset) % n_cycle
            t0, c0 = clock.perf_ns(), clock.cpu_ns()
            out = det.detect(CameraFrame(t_ns=i, seq=i, image=img, source=fname))
            wall.append((clock.perf_ns() - t0) / 1e6)
            cpu.append((clock.cpu_ns() - c0) / 1e6)
            passes["+".join(det.last_passes)] = passes.get("+".join(det.last_passes), 0) + 1
            boxes = to_boxes(out, conf)
            scored = {thr: match_frame(gts, boxes, thr) for thr in (0.5, 0.3)}
            per_phase[phase].append(scored)
            if offset == 0:
                in_seq.append(scored)
    n = len(frames)
    doc = {"schedule": name, "settings": {"imgsz": settings.imgsz, "rect": settings.rect, "full_every": settings.full_every,
                                         "roi_every": settings.roi.every, "roi_imgsz": settings.roi.imgsz,
                                         "conf": settings.conf, "nms_groups": settings.nms_groups,
                                         "riders": settings.riders, "backend": det.backend},
           "eval_conf": conf, "cycle": n_cycle, "passes": passes,
           "ms_per_frame": {"wall_mean": round(float(np.mean(wall)), 1), "wall_p95": round(float(np.percentile(wall, 95)), 1),
                            "cpu_mean": round(float(np.mean(cpu)), 1)}}
    for thr in (0.5, 0.3):
        key = f"iou{thr}"
        doc[key] = {"in_sequence": summarise([s[thr] for s in in_seq], n),
                    "all_phases": summarise([s[thr] for p in per_phase.values() for s in p], n * n_cycle)}
        doc[key]["by_phase"] = {str(p): {"recall_large_>100px": summarise([s[thr] for s in v], n)["recall_large_>100px"],
                                         **{c: summarise([s[thr] for s in v], n)["classes"][c]["recall"] for c in CLASSES}}
                                for p, v in per_phase.items()}
    return doc


def time_720p(overrides: dict, clip: Path, frames: int, threads: int) -> dict:
    """Wall and process-CPU ms per frame of the schedule on a 1280x720 clip (the live camera's size;
    the KITTI frames are 1242x375, so a rectangular pass costs less there)."""
    from vehicle_assist import clock
    from vehicle_assist import config
    from vehicle_assist.perception.detector import Detector
    from vehicle_assist.perception.sources import open_source

    det = Detector(None, _merge(config.load_app(only=("perception",)).perception, overrides), threads=threads)
    src = open_source(str(clip), realtime=False)
    wall, cpu = [], []
    for i, frame in enumerate(src):
        if i >= frames + 2:
            break
        t0, c0 = clock.perf_ns(), clock.cpu_ns()
        det.detect(frame)
        if i >= 2:  # the first frames warm the session
            wall.append((clock.perf_ns() - t0) / 1e6)
            cpu.append((clock.cpu_ns() - c0) / 1e6)
    src.close()
    return {"clip": clip.name, "frames": len(wall), "wall_mean": round(float(np.mean(wall)), 1),
            "wall_p95": round(float(np.percentile(wall, 95)), 1), "cpu_mean": round(float(np.mean(cpu)), 1),
            "fps_one_free_core_estimate": round(1000 / float(np.mean(cpu)), 1)}


def _merge(base, overrides: dict):
    upd = dict(overrides)
    if "roi" in upd:
        upd["roi"] = base.roi.model_copy(update=upd["roi"])
    return base.model_copy(update=upd)


def targets(doc: dict) -> dict:
    """Issue 16's detection targets (frames_labelled, live schedule) for one schedule's result."""
    a5, a3 = doc["iou0.5"]["all_phases"]["classes"], doc["iou0.3"]["all_phases"]["classes"]
    phases = doc["iou0.5"]["by_phase"].values()
    worst_large = min((p["recall_large_>100px"] or 0.0) for p in phases)

    def met(v, thr):
        return {"value": v, "met": v is not None and v >= thr}

    return {"vehicle_recall_h>=25>=0.85": met(a5["vehicle"]["recall_h>=25"], 0.85),
            "vehicle_recall>=0.70": met(a5["vehicle"]["recall"], 0.70),
            "pedestrian_recall_h>=50>=0.80": met(a5["pedestrian"]["recall_h>=50"], 0.80),
            "cyclist_recall_iou0.3>=0.60": met(a3["cyclist"]["recall"], 0.60),
            "vehicle_precision>=0.75": met(a5["vehicle"]["precision"], 0.75),
            "pedestrian_precision>=0.75": met(a5["pedestrian"]["precision"], 0.75),
            "worst_phase_large_recall>=0.85": met(worst_large, 0.85)}


def _detector_identity() -> dict:
    """Which weights ran (VA_MODEL_DETECTOR or the configured role) and their export metadata."""
    from vehicle_assist import models

    res = models.resolve("detector")
    doc = {"path": str(res.path), "origin": res.origin, "size_bytes": res.size_bytes}
    if res.path.suffix == ".onnx":
        import onnxruntime as ort

        meta = ort.InferenceSession(str(res.path), providers=["CPUExecutionProvider"]).get_modelmeta().custom_metadata_map
        doc.update({k: meta[k] for k in ("description", "license", "imgsz") if k in meta})
    return doc


def load_frames(root: Path, limit: int | None = None):
    import cv2

    out = []
    for img_path in sorted((root / "image_2").glob("*.*"))[:limit]:
        img = cv2.imread(str(img_path))
        if img is None:
            continue
        stem = img_path.stem
        cal = read_kitti_calib(root / "calib" / f"{stem}.txt", img.shape[1], img.shape[0])
        out.append((img_path.name, img, cal, read_kitti_labels(root / "label_2" / f"{stem}.txt")))
    return out


def main() -> None:
    from common import emit_json, save_json  # bench/common.py (the script's folder is on sys.path)
    from vehicle_assist import paths
    from vehicle_assist import config

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mirror = paths.mirror()
    ap.add_argument("--data", type=Path, default=(mirror / "frames_labelled" / "kitti") if mirror else None,
                    help="KITTI-layout folder (image_2, label_2, calib); default $VA_MIRROR/frames_labelled/kitti")
    ap.add_argument("--schedules", default=",".join(SCHEDULES), help=f"comma-separated, from {list(SCHEDULES)}")
    ap.add_argument("--eval-conf", type=float, default=None, help="score threshold scored (default: tracker high_thresh)")
    ap.add_argument("--limit", type=int, default=None, help="first N frames only")
    ap.add_argument("--threads", type=int, default=None, help="detector threads (default runtime.threads.detector)")
    ap.add_argument("--timing-frames", type=int, default=40, help="frames of the 720p clip timed per schedule (0: skip)")
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args()
    if args.data is None or not (args.data / "label_2").is_dir():
        print(json.dumps({"error": f"no labelled frames at {args.data} (set VA_MIRROR or --data)"}))
        sys.exit(2)
    names = [s.strip() for s in args.schedules.split(",") if s.strip()]
    bad = [s for s in names if s not in SCHEDULES]
    if bad:
        print(json.dumps({"error": f"unknown schedules {bad}; known: {list(SCHEDULES)}"}))
        sys.exit(2)
    frames = load_frames(args.data, args.limit)
    threads = args.threads or config.load_app(only=("runtime.threads",)).runtime.threads.detector
    out = {"command": " ".join(["python", "bench/detection.py"] + sys.argv[1:]), "data": str(args.data),
           "frames": len(frames), "threads": threads, "load_before": [round(x, 2) for x in os.getloadavg()],
           "cpus": os.cpu_count(), "detector": _detector_identity(), "schedules": {}}
    for name in names:
        doc = run_schedule(name, SCHEDULES[name], frames, args.eval_conf, threads)
        doc["targets"] = targets(doc)
        if args.timing_frames:
            from vehicle_assist import fetch

            doc["ms_per_frame_720p"] = time_720p(SCHEDULES[name], fetch.data_path("drives", "highway_cars_1s.mp4"),
                                                 args.timing_frames, threads)
        doc["load_after"] = [round(x, 2) for x in os.getloadavg()]
        out["schedules"][name] = doc
        a5 = doc["iou0.5"]["all_phases"]["classes"]
        print(f"{name:<24} veh {a5['vehicle']['recall']} (>=25px {a5['vehicle']['recall_h>=25']}) "
              f"ped {a5['pedestrian']['recall']} (>=50px {a5['pedestrian']['recall_h>=50']}) "
              f"cyc@0.3 {doc['iou0.3']['all_phases']['classes']['cyclist']['recall']} "
              f"prec veh {a5['vehicle']['precision']} ped {a5['pedestrian']['precision']} "
              f"fp/frame {doc['iou0.5']['all_phases']['false_positives_per_frame']} "
              f"large by phase {[p['recall_large_>100px'] for p in doc['iou0.5']['by_phase'].values()]} "
              f"ms {doc['ms_per_frame']} 720p {doc.get('ms_per_frame_720p')} load {doc['load_after']}",
              file=sys.stderr, flush=True)
        save_json(out, args.json_out)  # keep what is done if a later schedule fails
    emit_json(out, args.json_out)


if __name__ == "__main__":
    main()
