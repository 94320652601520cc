"""Tracking: Ultralytics' ByteTrack over our Detections, giving stable ids and box-height histories.

ByteTrack associates boxes across frames (a Kalman filter plus two-stage IoU matching). Each
track's history keeps the *measured* box height of its matched detection (not the Kalman
estimate), because the TTC fit in :mod:`vehicle_assist.perception.hazards` does its own smoothing
and must not inherit the filter's lag. When a track's boxes start coming from another detector
pass (it grew out of the road-ahead region), its history restarts: the two passes measure a box
slightly differently, and a step in height would read as sudden growth.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np

from vehicle_assist.config import TrackerSettings
from vehicle_assist.messages import Detections, Track


class _Boxes:
    """The numpy view of our detections that ByteTrack reads (conf, cls, xywh, boolean indexing)."""

    def __init__(self, xyxy: np.ndarray, conf: np.ndarray, cls: np.ndarray) -> None:
        self.xyxy, self.conf, self.cls = xyxy, conf, cls
        self.xywh = np.column_stack([(xyxy[:, 0] + xyxy[:, 2]) / 2, (xyxy[:, 1] + xyxy[:, 3]) / 2,
                                     xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1]]) if len(xyxy) else np.zeros((0, 4))

    def __len__(self) -> int:
        return len(self.conf)

    def __getitem__(self, idx) -> "_Boxes":
        return _Boxes(self.xyxy[idx], self.conf[idx], self.cls[idx])


@dataclass
class _State:
    first_t_ns: int
    hits: int = 0
    history: deque = field(default_factory=deque)
    edges: deque = field(default_factory=deque)
    source: str = ""


class Tracker:
    """``update(dets) -> list[Track]``: the tracks matched on this frame, ids stable across frames."""

    def __init__(self, settings: TrackerSettings | None = None) -> None:
        from ultralytics.trackers.byte_tracker import BYTETracker

        s = settings or TrackerSettings()
        self.settings = s
        args = SimpleNamespace(tracker_type="bytetrack", track_high_thresh=s.high_thresh, track_low_thresh=s.low_thresh,
                               new_track_thresh=s.new_track_thresh, track_buffer=s.buffer_frames,
                               match_thresh=s.match_thresh, fuse_score=True)
        self._bt = BYTETracker(args)
        self._states: dict[int, _State] = {}

    def update(self, dets: Detections) -> list[Track]:
        """Associate this frame's detections with the existing tracks."""
        items = dets.items
        xyxy = np.array([d.box for d in items], dtype=np.float32).reshape(-1, 4)
        conf = np.array([d.confidence for d in items], dtype=np.float32)
        cls = np.array([d.class_id for d in items], dtype=np.float32)
        hidden = self._unseen_unconfirmed(dets.region)
        rows = self._bt.update(_Boxes(xyxy, conf, cls))
        self._bt.tracked_stracks.extend(hidden)
        out: list[Track] = []
        keep_ns = self.settings.history_s * 1e9
        seen = set()
        for row in np.asarray(rows).reshape(-1, 8):
            tid, idx = int(row[4]), int(row[7])
            if not 0 <= idx < len(items):
                continue
            det = items[idx]
            st = self._states.setdefault(tid, _State(first_t_ns=dets.t_ns))
            st.hits += 1
            if det.source != st.source:  # another detector pass: its box scale differs, so growth restarts
                st.history.clear()
                st.edges.clear()
                st.source = det.source
            st.history.append((dets.t_ns, float(det.box[3] - det.box[1])))
            st.edges.append((dets.t_ns, float(det.box[0]), float(det.box[2])))
            while st.history and dets.t_ns - st.history[0][0] > keep_ns:
                st.history.popleft()
                st.edges.popleft()
            seen.add(tid)
            out.append(Track(track_id=tid, label=det.label, box=det.box, confidence=det.confidence, t_ns=dets.t_ns,
                             first_t_ns=st.first_t_ns, hits=st.hits, history=tuple(st.history),
                             edges=tuple(st.edges)))
        self._forget(dets.t_ns)
        return out

    def _unseen_unconfirmed(self, region: tuple[int, int, int, int] | None) -> list:
        """Take out of ByteTrack the new (unconfirmed) tracks this frame's passes could not see.

        ByteTrack removes a new track at once when the next frame does not confirm it. On a frame
        where only the road-ahead pass ran, an object outside that region (the pass drops boxes cut by
        its border) was not looked at, so missing it is no evidence that it is gone: such tracks sit
        this frame out and are put back after the update.
        """
        if region is None:
            return []
        x1, y1, x2, y2 = region
        hidden = []
        for tr in list(self._bt.tracked_stracks):
            if tr.is_activated:
                continue
            bx1, by1, bx2, by2 = (float(v) for v in tr.xyxy)
            if not (bx1 >= x1 and by1 >= y1 and bx2 <= x2 and by2 <= y2):
                self._bt.tracked_stracks.remove(tr)
                hidden.append(tr)
        return hidden

    def _forget(self, now_ns: int) -> None:
        """Drop the state of tracks ByteTrack has removed (bounded memory on long drives)."""
        alive = {t.track_id for t in self._bt.tracked_stracks} | {t.track_id for t in self._bt.lost_stracks}
        for tid in [t for t in self._states if t not in alive]:
            del self._states[tid]


__all__ = ["Tracker"]
