"""Approach sequences with ground truth, for the forward-collision warning targets.

A real car, cropped from a fetched dashcam frame with its YOLO box, is composited into a real
road frame straight ahead in the ego lane, scaled so its box height is ``h = f * H / d(t)`` and its
bottom sits on the road at ``y = horizon + f * mount_height / d(t)``. The gap ``d(t)`` follows the
NHTSA forward-collision-warning confirmation tests (ego at 45 mph):

- ``lead-stopped``: lead vehicle stopped; a warning is due at TTC >= 2.1 s.
- ``lead-slower``: lead at 20 mph; due at TTC >= 2.0 s.
- ``lead-braking``: lead at 45 mph, 30 m ahead (the NHTSA headway), brakes at 0.3 g; due at TTC >= 2.4 s.
- ``lead-braking-far``: the same from an 80 m headway.

Output (deterministic for a seed): ``<out>/<name>.mp4`` and ``<out>/<name>.json`` holding the
scenario, the calibration, the collision time, the warning deadline and per-frame ground truth
(t, gap, true TTC, box). Default ``out``: ``sim/generated/approach`` (git-ignored).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Iterable

import numpy as np

from vehicle_assist import fetch, paths
from vehicle_assist.config import CameraCalibration

MPH = 0.44704
G = 9.80665


@dataclass(frozen=True)
class Scenario:
    """One approach: ego and lead kinematics and the NHTSA warning requirement."""

    name: str
    description: str
    ego_speed_mps: float
    lead_speed_mps: float
    gap0_m: float
    required_ttc_s: float
    lead_decel_mps2: float = 0.0
    brake_at_s: float = 0.0
    crop: str = "highway_test1.jpg"
    crop_index: int = 1
    """Which car of the crop frame (detections sorted by x) is pasted."""
    background: str = "highway_test3.jpg"
    fps: float = 25.0
    stop_gap_m: float = 5.0
    max_s: float = 15.0


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("lead-stopped", "NHTSA FCW test 1: lead vehicle stopped, ego 45 mph", 45 * MPH, 0.0, 100.0, 2.1),
    Scenario("lead-slower", "NHTSA FCW test 2: lead vehicle at 20 mph, ego 45 mph", 45 * MPH, 20 * MPH, 100.0, 2.0,
             crop="highway_test4.jpg", crop_index=1),
    Scenario("lead-braking", "NHTSA FCW test 3: both at 45 mph, 30 m apart, lead brakes at 0.3 g", 45 * MPH, 45 * MPH,
             30.0, 2.4, lead_decel_mps2=0.3 * G, brake_at_s=1.5),
    Scenario("lead-braking-far", "NHTSA FCW test 3 from an 80 m headway: lead brakes at 0.3 g", 45 * MPH, 45 * MPH,
             80.0, 2.4, lead_decel_mps2=0.3 * G, brake_at_s=1.5, crop="highway_test5.jpg", crop_index=0),
)}

CROP_BOXES: dict[tuple[str, int], tuple[int, int, int, int]] = {
    ("highway_test1.jpg", 1): (1053, 405, 1270, 507),
    ("highway_test4.jpg", 1): (1041, 403, 1252, 503),
    ("highway_test5.jpg", 0): (814, 409, 939, 488),
    ("highway_test6.jpg", 0): (810, 411, 945, 498),
    ("highway_test5.jpg", 1): (1084, 399, 1280, 511),
    ("highway_test6.jpg", 1): (1012, 408, 1200, 501),
    ("highway_test4.jpg", 0): (813, 409, 943, 495),
}
"""The car boxes (x1, y1, x2, y2) of (crop frame, index) as :func:`find_car` found them with the
fetched YOLOv8n ONNX weights. Pinned so that a sequence is the same pixels on every machine: the
detector's floats differ between CPUs' SIMD paths, and a box rounded one pixel the other way would
change every frame. A crop not in the table is found with the detector."""

# The road frame's camera: horizon row and the ego lane's vanishing point measured on highway_test3.jpg.
ROAD_CALIBRATION = CameraCalibration(width=1280, height=720, focal_px=1150.0, cx=688.0, cy=435.0, mount_height_m=1.25)
CAR_HEIGHT_M = 1.5


def gap_at(sc: Scenario, t: float) -> float:
    """Bumper-to-bumper gap (m) at time ``t`` (s): closed-form kinematics."""
    v_rel0 = sc.ego_speed_mps - sc.lead_speed_mps
    if sc.lead_decel_mps2 <= 0 or t <= sc.brake_at_s:
        return sc.gap0_m - v_rel0 * t
    g_b = sc.gap0_m - v_rel0 * sc.brake_at_s
    tb = t - sc.brake_at_s
    t_stop = sc.lead_speed_mps / sc.lead_decel_mps2
    lead = sc.lead_speed_mps * min(tb, t_stop) - 0.5 * sc.lead_decel_mps2 * min(tb, t_stop) ** 2
    return g_b + lead - sc.ego_speed_mps * tb


def collision_time(sc: Scenario, dt: float = 1e-4) -> float:
    """When the gap reaches zero (s), if the ego vehicle does not brake."""
    t = 0.0
    while gap_at(sc, t) > 0:
        t += 0.01
        if t > 120:
            raise ValueError(f"{sc.name}: no collision within 120 s")
    lo, hi = t - 0.01, t
    while hi - lo > dt:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if gap_at(sc, mid) > 0 else (lo, mid)
    return hi


def find_car(image: np.ndarray, model, index: int) -> tuple[int, int, int, int]:
    """The ``index``-th car (left to right) YOLO finds in ``image``, refined by a second look at 320 px."""
    res = model.predict(image, imgsz=320, conf=0.3, classes=[2], verbose=False)[0]
    boxes = sorted((tuple(int(round(v)) for v in b) for b in res.boxes.xyxy.cpu().numpy()), key=lambda b: b[0])
    if len(boxes) <= index:
        raise ValueError(f"only {len(boxes)} cars found; wanted index {index}")
    x1, y1, x2, y2 = boxes[index]
    pad = int(0.6 * (y2 - y1))
    X1, Y1 = max(0, x1 - pad), max(0, y1 - pad)
    X2, Y2 = min(image.shape[1], x2 + pad), min(image.shape[0], y2 + pad)
    fine = model.predict(np.ascontiguousarray(image[Y1:Y2, X1:X2]), imgsz=320, conf=0.3, classes=[2], verbose=False)[0]
    best = None
    for b in fine.boxes.xyxy.cpu().numpy():
        cand = (int(round(b[0])) + X1, int(round(b[1])) + Y1, int(round(b[2])) + X1, int(round(b[3])) + Y1)
        area = (cand[2] - cand[0]) * (cand[3] - cand[1])
        if best is None or area > best[0]:
            best = (area, cand)
    return best[1] if best else (x1, y1, x2, y2)


def _alpha(h: int, w: int, feather: float = 0.08) -> np.ndarray:
    """A mask that is 1 inside the car box and fades out at its edges (hides the crop's seam)."""
    fy, fx = max(1.0, feather * h), max(1.0, feather * w)
    ys = np.minimum(np.arange(h) + 0.5, h - np.arange(h) - 0.5) / fy
    xs = np.minimum(np.arange(w) + 0.5, w - np.arange(w) - 0.5) / fx
    return np.clip(np.minimum(ys[:, None], xs[None, :]), 0, 1).astype(np.float32)


def composite(background: np.ndarray, car: np.ndarray, gap_m: float, cal: CameraCalibration,
              jitter: tuple[float, float] = (0.0, 0.0)) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """Paste ``car`` at distance ``gap_m`` straight ahead; returns the frame and the true box."""
    import cv2

    h = cal.focal_px * CAR_HEIGHT_M / gap_m
    w = h * car.shape[1] / car.shape[0]
    bottom = cal.cy + cal.focal_px * cal.mount_height_m / gap_m + jitter[1]
    cx = cal.cx + jitter[0]
    box = (cx - w / 2, bottom - h, cx + w / 2, bottom)
    hi, wi = max(1, int(round(h))), max(1, int(round(w)))
    interp = cv2.INTER_AREA if hi < car.shape[0] else cv2.INTER_CUBIC
    sprite = cv2.resize(car, (wi, hi), interpolation=interp).astype(np.float32)
    out = background.astype(np.float32)
    x0, y0 = int(round(box[0])), int(round(box[1]))
    # a soft shadow on the road under the car
    sy = int(round(bottom))
    sh = max(1, int(0.08 * hi))
    cv2.ellipse(out, (int(round(cx)), sy), (int(0.55 * wi), sh), 0, 0, 360, (0, 0, 0), -1)
    out = cv2.addWeighted(out, 0.55, background.astype(np.float32), 0.45, 0) if sh else out
    X0, Y0 = max(0, x0), max(0, y0)
    X1, Y1 = min(out.shape[1], x0 + wi), min(out.shape[0], y0 + hi)
    if X1 > X0 and Y1 > Y0:
        a = _alpha(hi, wi)[Y0 - y0:Y1 - y0, X0 - x0:X1 - x0, None]
        out[Y0:Y1, X0:X1] = a * sprite[Y0 - y0:Y1 - y0, X0 - x0:X1 - x0] + (1 - a) * out[Y0:Y1, X0:X1]
    return np.clip(out, 0, 255).astype(np.uint8), box


def generate(sc: Scenario, out_dir: Path | str | None = None, model=None, seed: int = 0,
             progress=None) -> tuple[Path, Path]:
    """Write ``<name>.mp4`` and ``<name>.json`` for one scenario; returns their paths."""
    import cv2

    from vehicle_assist import models

    out_dir = Path(out_dir) if out_dir else paths.sim() / "generated" / "approach"
    out_dir.mkdir(parents=True, exist_ok=True)
    crop_img = cv2.imread(str(fetch.data_path("frames", sc.crop)))
    bg = cv2.imread(str(fetch.data_path("frames", sc.background)))
    if crop_img is None or bg is None:
        raise FileNotFoundError(f"frames {sc.crop} / {sc.background} missing: run `vehicle-assist fetch frames`")
    box = CROP_BOXES.get((sc.crop, sc.crop_index))
    if box is None:
        box = find_car(crop_img, model if model is not None else models.load_detector(), sc.crop_index)
    x1, y1, x2, y2 = box
    car = crop_img[y1:y2, x1:x2].copy()
    cal = ROAD_CALIBRATION
    t_c = collision_time(sc)
    rng = np.random.default_rng(seed)
    mp4 = out_dir / f"{sc.name}.mp4"
    writer = cv2.VideoWriter(str(mp4), cv2.VideoWriter_fourcc(*"mp4v"), sc.fps, (bg.shape[1], bg.shape[0]))
    frames = []
    i = 0
    while True:
        t = i / sc.fps
        gap = gap_at(sc, t)
        if gap < sc.stop_gap_m or t > sc.max_s:
            break
        jitter = (float(rng.normal(0, 0.4)), float(rng.normal(0, 0.6)))  # camera shake, pixels
        frame, box = composite(bg, car, gap, cal, jitter)
        noise = rng.normal(0, 2.0, frame.shape[:2])[..., None]  # sensor noise, same on all channels
        frame = np.clip(frame.astype(np.float32) + noise, 0, 255).astype(np.uint8)
        writer.write(frame)
        frames.append({"i": i, "t_s": round(t, 4), "gap_m": round(gap, 3), "ttc_true_s": round(t_c - t, 3),
                       "box": [round(v, 2) for v in box]})
        i += 1
        if progress:
            progress(1)
    writer.release()
    doc = {
        "scenario": asdict(sc),
        "calibration": cal.model_dump(),
        "car_height_m": CAR_HEIGHT_M,
        "crop_box": [x1, y1, x2, y2],
        "collision_t_s": round(t_c, 4),
        "warn_deadline_t_s": round(t_c - sc.required_ttc_s, 4),
        "ego_speed_mps": sc.ego_speed_mps,
        "fps": sc.fps,
        "seed": seed,
        "frames": frames,
    }
    js = out_dir / f"{sc.name}.json"
    js.write_text(json.dumps(doc, indent=1))
    return mp4, js


DEV_CROPS = (("highway_test6.jpg", 0), ("highway_test5.jpg", 1), ("highway_test6.jpg", 1), ("highway_test4.jpg", 0))
"""Cars used by the dev split (tuning); the test split uses each scenario's own crop."""


def split(name: str) -> list[tuple[Scenario, int]]:
    """The scenarios of a split with their seeds: ``test`` (the canonical ones, seed 0) or ``dev``
    (the same kinematics with other cars and noise, seed 100+i), fixed before any tuning."""
    if name == "test":
        return [(sc, 0) for sc in SCENARIOS.values()]
    if name == "dev":
        return [(replace(sc, name=f"{sc.name}-dev", crop=c, crop_index=k), 100 + i)
                for i, (sc, (c, k)) in enumerate(zip(SCENARIOS.values(), DEV_CROPS))]
    raise ValueError(f"unknown split {name!r}; expected dev or test")


def ensure(split_name: str, out_dir: Path | str | None = None, model=None, progress=None,
           names: Iterable[str] | None = None) -> list[tuple[Path, Path]]:
    """Generate the split's sequences (only ``names``, when given) that are missing or stale;
    returns (mp4, json) pairs."""
    out_dir = Path(out_dir) if out_dir else paths.sim() / "generated" / "approach"
    wanted = set(names) if names is not None else None
    out = []
    for sc, seed in split(split_name):
        if wanted is not None and sc.name not in wanted:
            continue
        mp4, js = out_dir / f"{sc.name}.mp4", out_dir / f"{sc.name}.json"
        if not is_fresh(sc, seed, out_dir):
            mp4, js = generate(sc, out_dir, model=model, seed=seed, progress=progress)
        out.append((mp4, js))
    return out


def is_fresh(sc: Scenario, seed: int, out_dir: Path | str | None = None) -> bool:
    """Whether ``out_dir`` holds ``sc``'s sequence as :func:`generate` makes it now (same scenario
    and seed; the JSON is written last, so a torn run is not fresh)."""
    out_dir = Path(out_dir) if out_dir else paths.sim() / "generated" / "approach"
    mp4, js = out_dir / f"{sc.name}.mp4", out_dir / f"{sc.name}.json"
    if not (mp4.is_file() and js.is_file()):
        return False
    try:
        truth = load_truth(js)
    except ValueError:
        return False
    return isinstance(truth, dict) and truth.get("scenario") == asdict(sc) and truth.get("seed") == seed


def frame_count(sc: Scenario) -> int:
    """How many frames ``generate`` writes for ``sc``."""
    n = 0
    while gap_at(sc, n / sc.fps) >= sc.stop_gap_m and n / sc.fps <= sc.max_s:
        n += 1
    return n


def load_truth(path: Path | str) -> dict:
    """Read a ground-truth JSON written by :func:`generate`."""
    return json.loads(Path(path).read_text())


def ttc_at(truth: dict, t_s: float) -> float:
    """True time to collision (s) at media time ``t_s`` of a generated sequence."""
    return truth["collision_t_s"] - t_s


__all__ = ["Scenario", "SCENARIOS", "CROP_BOXES", "ROAD_CALIBRATION", "gap_at", "collision_time", "generate", "composite",
           "find_car", "frame_count", "load_truth", "ttc_at", "split", "ensure", "is_fresh", "DEV_CROPS", "MPH", "G"]
