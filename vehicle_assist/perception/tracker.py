"""Tracking: ByteTrack over our Detections, giving stable ids and box-height histories.

ByteTrack (:mod:`vehicle_assist.perception.bytetrack`, numpy only: no torch on the onboard path)
associates boxes across frames (a Kalman filter plus two-stage IoU matching). Each
track's history keeps the *measured* box height of its matched detection (not the Kalman
estimate), because the TTC fit in :mod:`vehicle_assist.perception.hazards` does its own smoothing
and must not inherit the filter's lag. When a track's boxes start coming from another detector
pass (it grew out of the road-ahead region) and keep coming from it (``switch_frames`` matches in a row),
its history restarts: the two passes measure a box slightly differently, and a step in height would
read as sudden growth. Boxes from the other pass on fewer frames than that are left out of the history,
which keeps its growth (an object near the region's border flips between the passes). On a frame where only the
road-ahead pass ran (``Detections.region``), new tracks outside that region sit the update out:
ByteTrack would otherwise remove them for not being seen, and a close object seen only by the
full pass (every 2nd frame) would never become a track.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from vehicle_assist.config import TrackerSettings
from vehicle_assist.messages import Detections, Track
from vehicle_assist.perception.bytetrack import ByteTracker, ByteTrackSettings


@dataclass
class _State:
    first_t_ns: int
    hits: int = 0
    history: deque = field(default_factory=deque)
    edges: deque = field(default_factory=deque)
    source: str = ""
    pending: list = field(default_factory=list)
    """Samples ``(t_ns, height, x1, x2)`` from another pass than ``source``, not yet persistent."""


class Tracker:
    """``update(dets) -> list[Track]``: the tracks matched on this frame, ids stable across frames."""

    def __init__(self, settings: TrackerSettings | None = None) -> None:
        self.settings = settings or TrackerSettings()
        self.reset()

    def reset(self) -> None:
        """Forget every track (a new run starts; ids count from the start again)."""
        s = self.settings
        self._bt = ByteTracker(ByteTrackSettings(s.high_thresh, s.low_thresh, s.new_track_thresh, s.match_thresh,
                                                 s.buffer_frames))
        self._states: dict[int, _State] = {}

    def update(self, dets: Detections) -> list[Track]:
        """Associate this frame's detections with the existing tracks."""
        items = dets.items
        xyxy = np.array([d.box for d in items], dtype=np.float32).reshape(-1, 4)
        conf = np.array([d.confidence for d in items], dtype=np.float32)
        pairs = self._bt.update(xyxy, conf, dets.region)  # a region-only frame: new tracks outside it wait
        out: list[Track] = []
        keep_ns = self.settings.history_s * 1e9
        seen = set()
        for tid, idx in pairs:
            if not 0 <= idx < len(items):
                continue
            det = items[idx]
            st = self._states.setdefault(tid, _State(first_t_ns=dets.t_ns))
            st.hits += 1
            sample = (dets.t_ns, float(det.box[3] - det.box[1]), float(det.box[0]), float(det.box[2]))
            if det.source == st.source or not st.history:
                st.pending.clear()
                st.source = det.source
                self._append(st, [sample])
            else:  # another detector pass: its box scale differs; growth restarts once that pass persists
                st.pending.append(sample)
                if len(st.pending) >= self.settings.switch_frames:
                    st.history.clear()
                    st.edges.clear()
                    st.source = det.source
                    self._append(st, st.pending)
                    st.pending = []
            while st.history and dets.t_ns - st.history[0][0] > keep_ns:
                st.history.popleft()
                st.edges.popleft()
            seen.add(tid)
            out.append(Track(track_id=tid, label=det.label, box=det.box, confidence=det.confidence, t_ns=dets.t_ns,
                             first_t_ns=st.first_t_ns, hits=st.hits, history=tuple(st.history),
                             edges=tuple(st.edges)))
        self._forget(dets.t_ns)
        return out

    @staticmethod
    def _append(st: _State, samples: list) -> None:
        for t, h, x1, x2 in samples:
            st.history.append((t, h))
            st.edges.append((t, x1, x2))

    def _forget(self, now_ns: int) -> None:
        """Drop the state of tracks ByteTrack has removed (bounded memory on long drives)."""
        alive = self._bt.alive_ids()
        for tid in [t for t in self._states if t not in alive]:
            del self._states[tid]


__all__ = ["Tracker"]
