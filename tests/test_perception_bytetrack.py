"""Our numpy ByteTrack against Ultralytics' BYTETracker (the reference): same ids, same matches."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from vehicle_assist.perception.bytetrack import ByteTracker, ByteTrackSettings


class _Boxes:
    """The results view Ultralytics' tracker reads."""

    def __init__(self, xyxy, conf):
        self.xyxy, self.conf = xyxy, conf
        self.cls = np.zeros(len(conf), dtype=np.float32)
        self.xywh = np.column_stack([(xyxy[:, 0] + xyxy[:, 2]) / 2, (xyxy[:, 1] + xyxy[:, 3]) / 2,
                                     xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1]]) if len(xyxy) else np.zeros((0, 4))

    def __len__(self):
        return len(self.conf)

    def __getitem__(self, idx):
        return _Boxes(self.xyxy[idx], self.conf[idx])


def reference(settings: ByteTrackSettings):
    from ultralytics.trackers.byte_tracker import BYTETracker

    return BYTETracker(SimpleNamespace(tracker_type="bytetrack", track_high_thresh=settings.high_thresh,
                                       track_low_thresh=settings.low_thresh, new_track_thresh=settings.new_track_thresh,
                                       track_buffer=settings.buffer_frames, match_thresh=settings.match_thresh,
                                       fuse_score=settings.fuse_score))


def scene(seed: int, frames: int = 120) -> list[tuple[np.ndarray, np.ndarray]]:
    """Objects that move, grow, cross, vanish for a while and come back, with noisy scores and false boxes."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 7))
    pos = rng.uniform([50, 100], [1100, 500], size=(n, 2))
    vel = rng.normal(0, 6, size=(n, 2))
    size = rng.uniform([20, 20], [160, 140], size=(n, 2))
    grow = rng.uniform(0.99, 1.03, size=n)
    gone = [(int(a), int(a + rng.integers(1, 40))) for a in rng.integers(0, frames, size=n)]
    out = []
    for f in range(frames):
        boxes, scores = [], []
        for i in range(n):
            pos[i] += vel[i] + rng.normal(0, 1.5, 2)
            size[i] *= grow[i]
            if gone[i][0] <= f < gone[i][1] or rng.random() < 0.05:
                continue
            c, (w, h) = pos[i], size[i] * rng.normal(1, 0.03, 2)
            boxes.append([c[0] - w / 2, c[1] - h / 2, c[0] + w / 2, c[1] + h / 2])
            scores.append(float(np.clip(rng.normal(0.55, 0.25), 0.05, 0.99)))
        for _ in range(int(rng.poisson(0.5))):  # clutter
            x, y = rng.uniform(0, 1200, 2)
            boxes.append([x, y, x + rng.uniform(5, 60), y + rng.uniform(5, 60)])
            scores.append(float(rng.uniform(0.1, 0.5)))
        order = rng.permutation(len(boxes))
        out.append((np.asarray(boxes, dtype=np.float32).reshape(-1, 4)[order],
                    np.asarray(scores, dtype=np.float32)[order]))
    return out


def hide_unseen(ref, region):
    """The reference's counterpart of ``looked_at``: unconfirmed tracks outside the region sit out."""
    if region is None:
        return []
    x1, y1, x2, y2 = region
    hidden = [t for t in ref.tracked_stracks if not t.is_activated
              and not (t.xyxy[0] >= x1 and t.xyxy[1] >= y1 and t.xyxy[2] <= x2 and t.xyxy[3] <= y2)]
    for t in hidden:
        ref.tracked_stracks.remove(t)
    return hidden


def run_both(frames, settings: ByteTrackSettings, regions=None) -> tuple[list, list]:
    ours, ref = ByteTracker(settings), reference(settings)
    a, b = [], []
    for i, (xyxy, conf) in enumerate(frames):
        region = regions[i] if regions else None
        a.append(sorted(ours.update(xyxy, conf, region)))
        hidden = hide_unseen(ref, region)
        rows = np.asarray(ref.update(_Boxes(xyxy, conf))).reshape(-1, 8)
        ref.tracked_stracks.extend(hidden)
        b.append(sorted((int(r[4]), int(r[7])) for r in rows))
    return a, b


@pytest.mark.parametrize("seed", range(12))
def test_same_tracks_as_the_reference_on_hard_synthetic_scenes(seed):
    frames = scene(seed)
    ours, ref = run_both(frames, ByteTrackSettings(buffer_frames=int(seed % 3) * 10 + 5))
    assert sum(len(x) for x in ref) > 50  # the scene really has tracks
    assert ours == ref


@pytest.mark.parametrize("seed", range(4))
def test_new_tracks_outside_the_looked_at_region_wait_as_in_the_reference(seed):
    frames = scene(seed + 100)
    regions = [(400, 150, 800, 450) if i % 2 else None for i in range(len(frames))]  # road-ahead-only frames
    frames = [(xyxy, conf) if i % 2 == 0 else
              (xyxy[(xyxy[:, 0] >= 400) & (xyxy[:, 2] <= 800) & (xyxy[:, 1] >= 150) & (xyxy[:, 3] <= 450)],
               conf[(xyxy[:, 0] >= 400) & (xyxy[:, 2] <= 800) & (xyxy[:, 1] >= 150) & (xyxy[:, 3] <= 450)])
              for i, (xyxy, conf) in enumerate(frames)]
    ours, ref = run_both(frames, ByteTrackSettings(), regions)
    plain, _ = run_both(frames, ByteTrackSettings())
    assert ours == ref
    assert ours != plain  # holding unseen newborns out changes which tracks survive


@pytest.mark.slow
def test_same_tracks_as_the_reference_on_real_detections(data):
    from vehicle_assist import models
    from vehicle_assist.config import PerceptionSettings
    from vehicle_assist.perception.detector import Detector
    from vehicle_assist.perception.sources import open_source

    det = Detector(models.load_detector_weights(), PerceptionSettings())
    frames, regions = [], []
    for name in ("urban_busy_street_pedestrians_scooters_dad000487.mp4", "highway_cars_1s.mp4"):
        src = open_source(str(data("drives", name)), realtime=False)
        for frame, _ in zip(src, range(150)):
            dets = det.detect(frame)
            frames.append((np.array([d.box for d in dets.items], dtype=np.float32).reshape(-1, 4),
                           np.array([d.confidence for d in dets.items], dtype=np.float32)))
            regions.append(dets.region)
        src.close()
    assert any(r is not None for r in regions) and any(r is None for r in regions)
    ours, ref = run_both(frames, ByteTrackSettings(), regions)
    assert len({tid for f in ref for tid, _ in f}) >= 5
    assert ours == ref


@pytest.mark.slow
def test_the_default_safety_lane_never_loads_torch(data):
    """ONNX weights + our ByteTrack: the onboard safety lane runs without torch or Ultralytics in memory."""
    code = ("import sys, cv2; from vehicle_assist import config; from vehicle_assist.safety import lane; "
            "from vehicle_assist.messages import CameraFrame; "
            "lane = lane.load(config.PerceptionSettings(), 2); "
            f"img = cv2.imread({str(data('frames', 'highway_test1.jpg'))!r}); "
            "n = sum(len(lane.step(CameraFrame(t_ns=i, seq=i, image=img), i).result.detections.items) for i in range(2)); "
            "print(lane.pipeline.detector.backend, n > 0, 'torch' in sys.modules, 'ultralytics' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["onnxruntime", "True", "False", "False"]
