"""ByteTrack (Zhang et al., ECCV 2022) in numpy + ``lap``: multi-object tracking without torch.

The algorithm: a constant-velocity Kalman filter per track over (centre x, centre y, aspect
ratio, height); each frame, (1) confident detections are matched to the tracked and lost tracks
by IoU weighted with the detection score, (2) the tracks left over are matched to the
low-confidence detections (occluded or blurred objects, the "BYTE" step), (3) tracks born last
frame and still unconfirmed get a last chance, (4) confident leftovers start new tracks, and lost
tracks expire after ``buffer_frames``. Its behaviour is that of Ultralytics' ``BYTETracker`` with
the same settings (a test checks identical ids on real detections), but importing it does not
load torch, which keeps the onboard runtime about 0.5 GB smaller.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass

import lap
import numpy as np

_POS, _VEL = 1.0 / 20, 1.0 / 160  # process/measurement noise relative to the box height
_MOTION = np.eye(8) + np.eye(8, k=4)  # x += vx (dt = one frame)
TRACKED, LOST, REMOVED = 1, 2, 3


@dataclass(frozen=True)
class ByteTrackSettings:
    """Thresholds of the two association stages and of track birth and death."""

    high_thresh: float = 0.25
    low_thresh: float = 0.1
    new_track_thresh: float = 0.25
    match_thresh: float = 0.8
    buffer_frames: int = 30
    fuse_score: bool = True


def _xyah(tlwh: np.ndarray) -> np.ndarray:
    out = np.asarray(tlwh, dtype=np.float64).copy()
    out[:2] += out[2:] / 2
    out[2] /= out[3]
    return out


def _initiate(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h = z[3]
    std = np.array([2 * _POS * h, 2 * _POS * h, 1e-2, 2 * _POS * h, 10 * _VEL * h, 10 * _VEL * h, 1e-5, 10 * _VEL * h])
    return np.r_[z, np.zeros(4)], np.diag(std ** 2)


def _predict(means: np.ndarray, covs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h = means[:, 3]
    one = np.ones_like(h)
    std = np.stack([_POS * h, _POS * h, 1e-2 * one, _POS * h, _VEL * h, _VEL * h, 1e-5 * one, _VEL * h], axis=1)
    q = np.zeros((len(h), 8, 8))
    q[:, range(8), range(8)] = std ** 2
    means = means @ _MOTION.T
    covs = np.dot(np.dot(_MOTION, covs).transpose((1, 0, 2)), _MOTION.T) + q
    return means, covs


def _update(mean: np.ndarray, cov: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h = mean[3]
    r = np.diag(np.square([_POS * h, _POS * h, 1e-1, _POS * h]))
    s = cov[:4, :4] + r
    gain = np.linalg.solve(s, cov[:, :4].T).T
    mean = mean + (z - mean[:4]) @ gain.T
    cov = cov - np.linalg.multi_dot((gain, s, gain.T))
    return mean, cov


class _Track:
    __slots__ = ("tlwh0", "score", "det_index", "mean", "cov", "state", "activated", "track_id", "frame", "start")

    def __init__(self, tlwh: np.ndarray, score: float, det_index: int) -> None:
        self.tlwh0, self.score, self.det_index = tlwh, score, det_index
        self.mean: np.ndarray | None = None
        self.cov: np.ndarray | None = None
        self.state, self.activated, self.track_id, self.frame, self.start = 0, False, 0, 0, 0

    def xyxy(self) -> np.ndarray:
        if self.mean is None:
            t = self.tlwh0.copy()
        else:
            t = self.mean[:4].copy()
            t[2] *= t[3]
            t[:2] -= t[2:] / 2
        t[2:] += t[:2]
        return t

    def start_new(self, track_id: int, frame: int) -> None:
        self.track_id = track_id
        self.mean, self.cov = _initiate(_xyah(self.tlwh0))
        self.state, self.activated, self.frame, self.start = TRACKED, frame == 1, frame, frame

    def absorb(self, det: "_Track", frame: int) -> None:
        self.mean, self.cov = _update(self.mean, self.cov, _xyah(det.tlwh0))
        self.state, self.activated, self.frame = TRACKED, True, frame
        self.score, self.det_index = det.score, det.det_index


def _iou_cost(a: list[_Track], b: list[_Track]) -> np.ndarray:
    if not a or not b:
        return np.ones((len(a), len(b)), dtype=np.float32)
    p = np.ascontiguousarray([t.xyxy() for t in a], dtype=np.float32)
    q = np.ascontiguousarray([t.xyxy() for t in b], dtype=np.float32)
    iw = (np.minimum(p[:, None, 2], q[:, 2]) - np.maximum(p[:, None, 0], q[:, 0])).clip(0)
    ih = (np.minimum(p[:, None, 3], q[:, 3]) - np.maximum(p[:, None, 1], q[:, 1])).clip(0)
    inter = iw * ih
    area_p = (p[:, 2] - p[:, 0]) * (p[:, 3] - p[:, 1])
    area_q = (q[:, 2] - q[:, 0]) * (q[:, 3] - q[:, 1])
    return 1 - inter / (area_p[:, None] + area_q - inter + 1e-7)


def _assign(cost: np.ndarray, thresh: float) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """Minimum-cost matching with pairs costing more than ``thresh`` left unmatched."""
    if cost.size == 0:
        return [], list(range(cost.shape[0])), list(range(cost.shape[1]))
    _, x, y = lap.lapjv(cost, extend_cost=True, cost_limit=thresh)
    matches = [(i, int(j)) for i, j in enumerate(x) if j >= 0]
    return matches, [int(i) for i in np.where(x < 0)[0]], [int(j) for j in np.where(y < 0)[0]]


def _union(a: list[_Track], b: list[_Track]) -> list[_Track]:
    ids = {t.track_id for t in a}
    return a + [t for t in b if t.track_id not in ids]


def _minus(a: list[_Track], b: list[_Track]) -> list[_Track]:
    ids = {t.track_id for t in b}
    return [t for t in a if t.track_id not in ids]


class ByteTracker:
    """``update(xyxy, scores) -> [(track_id, detection_index)]`` for the confirmed tracks of this frame."""

    def __init__(self, settings: ByteTrackSettings | None = None) -> None:
        self.s = settings or ByteTrackSettings()
        self.tracked: list[_Track] = []
        self.lost: list[_Track] = []
        self.frame = 0
        self._ids = itertools.count(1)
        self._removed: deque[int] = deque(maxlen=1000)  # ids removed in earlier frames (as the reference does)

    def alive_ids(self) -> set[int]:
        """Ids of the tracks still held (tracked or lost)."""
        return {t.track_id for t in self.tracked} | {t.track_id for t in self.lost}

    def _cost(self, tracks: list[_Track], dets: list[_Track]) -> np.ndarray:
        cost = _iou_cost(tracks, dets)
        if self.s.fuse_score and cost.size:
            cost = 1 - (1 - cost) * np.array([d.score for d in dets])[None]
        return cost

    def update(self, xyxy: np.ndarray, scores: np.ndarray,
               looked_at: tuple[int, int, int, int] | None = None) -> list[tuple[int, int]]:
        """Associate one frame's boxes (N x 4, pixels) and confidences with the tracks.

        ``looked_at``: the region this frame's detector passes covered, when not the whole frame.
        New (unconfirmed) tracks outside it sit this frame out instead of being removed for not
        being seen: not looking is no evidence that an object is gone.
        """
        held = self._hold_unseen(looked_at)
        out = self._update(xyxy, scores)
        self.tracked.extend(held)
        return out

    def _hold_unseen(self, region: tuple[int, int, int, int] | None) -> list[_Track]:
        if region is None:
            return []
        x1, y1, x2, y2 = region
        held = []
        for t in self.tracked:
            if not t.activated:
                bx1, by1, bx2, by2 = (float(v) for v in t.xyxy())
                if not (bx1 >= x1 and by1 >= y1 and bx2 <= x2 and by2 <= y2):
                    held.append(t)
        self.tracked = [t for t in self.tracked if t not in held]
        return held

    def _update(self, xyxy: np.ndarray, scores: np.ndarray) -> list[tuple[int, int]]:
        s = self.s
        self.frame += 1
        frame = self.frame
        xyxy = np.asarray(xyxy, dtype=np.float32).reshape(-1, 4)
        scores = np.asarray(scores, dtype=np.float32).reshape(-1)
        w, h = xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1]
        valid = (w > 0) & (h > 0)
        tlwh = np.column_stack([xyxy[:, :2], w, h])

        def make(mask: np.ndarray) -> list[_Track]:
            return [_Track(tlwh[i].copy(), float(scores[i]), int(i)) for i in np.flatnonzero(mask)]

        high = make(valid & (scores >= s.high_thresh))
        low = make(valid & (scores > s.low_thresh) & (scores < s.high_thresh))
        activated: list[_Track] = []
        refound: list[_Track] = []
        newly_lost: list[_Track] = []
        removed: list[_Track] = []
        unconfirmed = [t for t in self.tracked if not t.activated]
        pool = _union([t for t in self.tracked if t.activated], self.lost)
        if pool:
            means, covs = np.asarray([t.mean for t in pool]), np.asarray([t.cov for t in pool])
            for i, t in enumerate(pool):
                if t.state != TRACKED:
                    means[i][7] = 0  # a lost track's height stops changing
            means, covs = _predict(means, covs)
            for t, m, c in zip(pool, means, covs):
                t.mean, t.cov = m, c

        def apply(pairs: list[tuple[int, int]], tracks: list[_Track], dets: list[_Track]) -> None:
            for i, j in pairs:
                track = tracks[i]
                (activated if track.state == TRACKED else refound).append(track)
                track.absorb(dets[j], frame)

        # 1. confident detections against every track
        pairs, u_track, u_det = _assign(self._cost(pool, high), s.match_thresh)
        apply(pairs, pool, high)
        # 2. tracks left over against the low-confidence detections (plain IoU)
        rest = [pool[i] for i in u_track if pool[i].state == TRACKED]
        if rest and low:
            pairs, u_rest, _ = _assign(_iou_cost(rest, low), 0.5)
            apply(pairs, rest, low)
        else:
            u_rest = list(range(len(rest)))
        for i in u_rest:
            rest[i].state = LOST
            newly_lost.append(rest[i])
        # 3. last frame's newborn tracks against the confident leftovers
        leftovers = [high[j] for j in u_det]
        pairs, u_unconf, u_left = _assign(self._cost(unconfirmed, leftovers), 0.7)
        for i, j in pairs:
            unconfirmed[i].absorb(leftovers[j], frame)
            activated.append(unconfirmed[i])
        for i in u_unconf:
            unconfirmed[i].state = REMOVED
            removed.append(unconfirmed[i])
        # 4. births and deaths
        for j in u_left:
            det = leftovers[j]
            if det.score >= s.new_track_thresh:
                det.start_new(next(self._ids), frame)
                activated.append(det)
        for t in self.lost:
            if frame - t.frame > s.buffer_frames:
                t.state = REMOVED
                removed.append(t)
        self.tracked = _union(_union([t for t in self.tracked if t.state == TRACKED], activated), refound)
        removed_before = set(self._removed)
        self.lost = [t for t in _minus(self.lost, self.tracked) + newly_lost if t.track_id not in removed_before]
        self._drop_duplicates()
        self._removed.extend(t.track_id for t in removed)
        return [(t.track_id, t.det_index) for t in self.tracked if t.activated]

    def _drop_duplicates(self) -> None:
        """A lost track that overlaps a tracked one almost entirely: keep the older of the two."""
        cost = _iou_cost(self.tracked, self.lost)
        drop_a, drop_b = set(), set()
        for p, q in zip(*np.where(cost < 0.15)):
            if self.tracked[p].frame - self.tracked[p].start > self.lost[q].frame - self.lost[q].start:
                drop_b.add(q)
            else:
                drop_a.add(p)
        self.tracked = [t for i, t in enumerate(self.tracked) if i not in drop_a]
        self.lost = [t for i, t in enumerate(self.lost) if i not in drop_b]


__all__ = ["ByteTrackSettings", "ByteTracker"]
