"""Ego motion from the image, for drives without telemetry: are we stopped or moving, and roughly how fast.

Sparse optical flow (Lucas-Kanade, OpenCV) of background points on the road below the horizon, outside
the detection boxes, between two consecutive frames. A point on the ground plane at image offset
``(x, y)`` from the principal point / horizon ``(cx, cy)`` flows, when the camera moves forward at ``V``
over ``dt``, by ``(x*y, y*y) * V*dt / (f*h)`` (``h`` the camera's mount height). Camera shake, pitch
and yaw add a nearly uniform shift ``(tx, ty)``. A robust least-squares fit of ``(tx, ty, k)`` over the
tracked points gives ``V = k * f * h / dt``: a rough forward-speed proxy (points above the ground read
it high) that is near zero for a stopped car, whatever the shake.

:func:`flow_speed` is pure (two frames in, one estimate out); :class:`EgoMotion` keeps the previous
frame and the median of the last few estimates (a pedestrian crossing the sampled road is an outlier).
The hazard logic uses it only where telemetry has no speed (``hazards.assess``'s ``motion``).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace

import numpy as np

from vehicle_assist.config import CameraCalibration
from vehicle_assist.messages import Box, ImageMotion

WIDTH = 480
"""Frames are downscaled to this width before the flow (cost: ~3 ms a frame)."""


@dataclass(frozen=True)
class FlowSettings:
    stopped_mps: float = 1.5
    """Below this estimated speed: stopped (the fit's noise on a shaking stopped camera is ~0.3 m/s)."""
    moving_mps: float = 3.0
    """Above this: moving. In between: unknown (``moving`` None)."""
    min_points: int = 12
    """Fewer tracked background points (a blank road, night): no estimate."""
    below_px: float = 12.0
    """Points at least this far below the horizon row (at ``WIDTH``), where the ground flow is measurable."""
    box_margin: float = 0.1
    """Detection boxes are widened by this fraction before their points are left out."""
    max_corners: int = 150
    window: int = 5
    """Estimates (frames) the median runs over in :class:`EgoMotion`."""
    max_decel_mps2: float = 9.8
    """A car slows at most ~1 g: the estimate never falls faster (the road hidden by a vehicle that cuts in
    is no stop)."""
    every: int = 1
    """The flow runs on every ``every``-th frame (between it and the frame before: the same baseline as on
    every frame, since a longer one reads fast ground points low); the frames between only keep their
    downscaled image and repeat the last estimate. 2 halves its CPU but lost the scooter cut-in alert in
    ``sim/scenarios`` (issue 16, docs/perception.md), so every frame stays the default."""


def _gray(image: np.ndarray) -> np.ndarray:
    import cv2

    h, w = image.shape[:2]
    small = cv2.resize(image, (WIDTH, max(1, round(h * WIDTH / w))), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small


def flow_speed(prev: np.ndarray, cur: np.ndarray, dt_s: float, calib: CameraCalibration,
               boxes: tuple[Box, ...] = (), settings: FlowSettings = FlowSettings()) -> tuple[float | None, int]:
    """Forward speed (m/s, rough) of the camera between two frames (BGR or gray, the same size), and the
    number of background points it rests on; ``(None, n)`` when too few points track. ``calib`` describes
    the frames' pixels; ``boxes`` (detections, in those pixels) are left out of the sample."""
    import cv2

    if dt_s <= 0 or prev.shape[:2] != cur.shape[:2]:
        return None, 0
    scale = WIDTH / cur.shape[1]
    g0, g1 = _gray(prev), _gray(cur)
    h, w = g0.shape
    cx, cy = calib.cx * scale, calib.cy * scale
    mask = np.zeros((h, w), np.uint8)
    top = int(min(h - 1, max(0, cy + settings.below_px)))
    mask[top:int(h * 0.92), :] = 255  # not the bottom rows (a bonnet moves with the camera)
    for x1, y1, x2, y2 in boxes:
        mx, my = (x2 - x1) * settings.box_margin, (y2 - y1) * settings.box_margin
        mask[max(0, int((y1 - my) * scale)):int((y2 + my) * scale) + 1,
             max(0, int((x1 - mx) * scale)):int((x2 + mx) * scale) + 1] = 0
    p0 = cv2.goodFeaturesToTrack(g0, settings.max_corners, 0.01, 6, mask=mask, blockSize=5)
    if p0 is None or len(p0) < settings.min_points:
        return None, 0 if p0 is None else len(p0)
    p1, st, _ = cv2.calcOpticalFlowPyrLK(g0, g1, p0, None, winSize=(15, 15), maxLevel=3)
    back, st2, _ = cv2.calcOpticalFlowPyrLK(g1, g0, p1, None, winSize=(15, 15), maxLevel=3)
    ok = (st.ravel() == 1) & (st2.ravel() == 1) & (np.linalg.norm((back - p0).reshape(-1, 2), axis=1) < 0.7)
    if ok.sum() < settings.min_points:
        return None, int(ok.sum())
    a, b = p0.reshape(-1, 2)[ok], p1.reshape(-1, 2)[ok]
    x, y = a[:, 0] - cx, a[:, 1] - cy
    d = b - a
    n = len(a)
    # unknowns (tx, ty, k): u = tx + k*x*y, v = ty + k*y*y
    A = np.zeros((2 * n, 3))
    A[:n, 0], A[n:, 1] = 1.0, 1.0
    A[:n, 2], A[n:, 2] = x * y, y * y
    rhs = np.concatenate([d[:, 0], d[:, 1]])
    keep = np.ones(n, bool)
    for _ in range(3):  # drop points that move on their own (a walker, a car the detector missed)
        rows = np.concatenate([keep, keep])
        sol, *_ = np.linalg.lstsq(A[rows], rhs[rows], rcond=None)
        res = np.hypot(*(A @ sol - rhs).reshape(2, n))
        cut = max(3.0 * 1.4826 * float(np.median(res[keep])), 0.3)
        new = res <= cut
        if new.sum() < settings.min_points or (new == keep).all():
            break
        keep = new
    f_px = calib.focal_px * scale
    return float(sol[2] * f_px * calib.mount_height_m / dt_s), int(keep.sum())


def classify(speed_mps: float | None, settings: FlowSettings = FlowSettings()) -> bool | None:
    """Moving (True), stopped (False) or unknown (None) from an estimated speed (pure)."""
    if speed_mps is None:
        return None
    if abs(speed_mps) < settings.stopped_mps:
        return False
    return True if speed_mps > settings.moving_mps else None


class EgoMotion:
    """``update(image, t_ns, boxes) -> ImageMotion``: the flow from the previous frame, median over the
    last ``settings.window`` estimates."""

    def __init__(self, calib: CameraCalibration, settings: FlowSettings = FlowSettings()) -> None:
        self.calib, self.settings = calib, settings
        self.reset(calib)

    def reset(self, calib: CameraCalibration | None = None) -> None:
        self.calib = calib or self.calib
        self._prev: tuple[np.ndarray, int] | None = None
        self._speeds: deque = deque(maxlen=self.settings.window)
        self._last: tuple[int, float] | None = None
        self._scaled: dict[tuple[int, int], CameraCalibration] = {}
        self._n = 0
        self._out: ImageMotion | None = None

    def update(self, image: np.ndarray | None, t_ns: int, boxes: tuple[Box, ...] = ()) -> ImageMotion | None:
        """The motion between the previous frame and ``image`` (``boxes`` in its pixels); None for the first.
        On a frame where the flow does not run (``settings.every``) the last estimate, re-stamped."""
        if image is None:
            return None
        n, self._n = self._n, self._n + 1
        if (n + 1) % max(1, self.settings.every):  # not a flow frame: keep the image for the next one
            self._prev = (_gray(image), t_ns)
            return None if self._out is None else replace(self._out, t_ns=t_ns)
        self._out = self._estimate(image, t_ns, boxes)
        return self._out

    def _estimate(self, image: np.ndarray, t_ns: int, boxes: tuple[Box, ...]) -> ImageMotion | None:
        h, w = image.shape[:2]
        gray = _gray(image)
        key = (w, h)
        if key not in self._scaled:
            self._scaled[key] = self.calib.scaled(w, h).scaled(gray.shape[1], gray.shape[0])
        s = gray.shape[1] / w
        small_boxes = tuple((x1 * s, y1 * s, x2 * s, y2 * s) for x1, y1, x2, y2 in boxes)
        prev, self._prev = self._prev, (gray, t_ns)
        if prev is None or prev[0].shape != gray.shape:
            return None
        speed, n = flow_speed(prev[0], gray, (t_ns - prev[1]) / 1e9, self._scaled[key], small_boxes, self.settings)
        if speed is not None:
            self._speeds.append(speed)
        if not self._speeds:
            return ImageMotion(t_ns=t_ns, speed_mps=None, moving=None, points=n)
        med = float(np.median(self._speeds))
        if self._last is not None:
            med = max(med, self._last[1] - self.settings.max_decel_mps2 * (t_ns - self._last[0]) / 1e9)
        self._last = (t_ns, med)
        return ImageMotion(t_ns=t_ns, speed_mps=round(med, 2), moving=classify(med, self.settings), points=n)


__all__ = ["EgoMotion", "FlowSettings", "flow_speed", "classify", "WIDTH"]
