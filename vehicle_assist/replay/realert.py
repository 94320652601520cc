"""Re-run the alert logic on a trip log's logged detections or tracks, without the detector (fast
iteration on ``configs/hazards.yaml``, ``configs/alerts.yaml`` and the tracker settings).

The decisions are the car's own: a :class:`~vehicle_assist.safety.lane.SafetyLane` is built over the
logged perception (:class:`Logged` stands in for the detector, and for the tracker when tracks are
not rebuilt) and fed the log in order, as the runtime feeds it on the bus: each ``detections`` (or
``tracks``) record is a frame through :meth:`SafetyLane.perceive` and :meth:`SafetyLane.decide`
(with the latest logged ``vehicle`` state and the topics the log's ``health`` records say are
stale), each ``health`` record a :meth:`SafetyLane.decide` without a frame. So hazards, alerts
from hazards and the system alerts of stale topics (camera lost, perception lagging) all come from
the one lane, with the current tables.

With ``retrack`` (the default when the log holds ``detections``), tracks are rebuilt from each
logged ``detections`` record with a fresh :class:`Tracker`; otherwise the logged ``tracks`` are
used. Alerts the safety lane does not decide (another lane's: the route's ``speeding``) are kept as
logged. Not replayed: the driver's mute (re-run alerts are as if unmuted) and a perception-lagging
alert raised from the measured frame rate in a realtime run (every logged frame is processed here).
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from vehicle_assist.messages import (CameraFrame, Detections, Envelope, MessageError, TopicStale, Track, VehicleState,
                                     decode, envelope_record)


class Logged:
    """The logged perception as the lane's detector (the record's detections) and, for logs of
    tracks only, its tracker (the record's tracks)."""

    def __init__(self) -> None:
        self.detections: Detections | None = None
        self.tracks: tuple[Track, ...] = ()

    def detect(self, frame: CameraFrame) -> Detections:
        return self.detections or Detections(t_ns=frame.t_ns, frame_seq=frame.seq, width=frame.width,
                                             height=frame.height, items=())

    def update(self, dets: Detections) -> list[Track]:
        return list(self.tracks)

    def reset(self, calib=None) -> None:
        self.detections, self.tracks = None, ()


def _frame(t_ns: int, seq: int, width: int, height: int) -> CameraFrame:
    """A frame of the logged size without pixels (the lane reads only its time, number and size)."""
    return CameraFrame(t_ns=t_ns, seq=seq, image=np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (height, width, 3)),
                       source="trip-log")


def _decode(rec: dict[str, Any], cls):
    try:
        return decode(rec["msg"], cls)
    except MessageError as err:  # a record the logger never wrote: say which, do not guess
        raise MessageError(f"seq {rec.get('seq')} ({rec.get('topic')}): {err.message}") from None


def rerun(records: Iterable[dict[str, Any]], calib, hazard_table=None, alert_table=None,
          retrack: bool | None = None, tracker_settings=None) -> list[dict[str, Any]]:
    """The records with ``hazards`` and the safety lane's ``alerts`` (and, retracking, ``tracks``)
    decided again by a :class:`SafetyLane`. A vehicle, detections, tracks or health record whose
    message is not of its type raises :class:`~vehicle_assist.messages.MessageError` naming its seq.

    ``retrack`` None: rebuild tracks when the log has detections. ``tracker_settings``: the
    perception tracker settings to rebuild them with (default: the onboard config's).
    """
    from vehicle_assist.perception import hazards as hz
    from vehicle_assist.perception.pipeline import PerceptionPipeline
    from vehicle_assist.safety.alert_manager import AlertManager
    from vehicle_assist.safety.alerts import load_table as load_alerts
    from vehicle_assist.safety.lane import STALE_HAZARDS, SafetyLane

    records = list(records)
    if retrack is None:
        retrack = any(r.get("topic") == "detections" for r in records)
    logged = Logged()
    tracker: Any = logged
    if retrack:
        from vehicle_assist import config
        from vehicle_assist.perception.tracker import Tracker

        tracker = Tracker(tracker_settings or config.load_app(only=("perception",)).perception.tracker)
    hazard_table = hazard_table or hz.load_table()
    alert_table = alert_table or load_alerts()
    lane = SafetyLane(PerceptionPipeline(logged, tracker, calib, hazard_table), AlertManager(alert_table))
    lane_kinds = ({c.kind for c in hazard_table.classes.values()} | {hz.FOLLOWING_TOO_CLOSE}
                  | set(STALE_HAZARDS.values()))
    decided = {name for name, spec in alert_table.items() if spec.trigger.kind in lane_kinds}
    checks: dict[int, list[TopicStale]] = {}  # one staleness check publishes all its changes at one time
    for rec in records:
        if rec.get("topic") == "health":
            checks.setdefault(int(rec["t_ns"]), []).append(_decode(rec, TopicStale))
    ego: VehicleState | None = None
    stale: set[str] = set()
    out: list[dict[str, Any]] = []

    def alerts(decision) -> None:
        out.extend(envelope_record(Envelope("alerts", decision.t_ns, 0, ev)) for ev in decision.events)

    for rec in records:
        topic = rec.get("topic")
        msg = rec.get("msg") if isinstance(rec.get("msg"), dict) else {}
        if topic == "hazards" or (topic == "alerts" and msg.get("name") in decided):
            continue
        if retrack and topic == "tracks":
            continue
        out.append(rec)
        t = int(rec.get("t_ns") or 0)
        if topic == "vehicle":
            ego = _decode(rec, VehicleState)
            continue
        if topic == "health":  # as the lane's health stage: no frame, the bus's staleness after the check
            for change in checks[t]:
                (stale.add if change.stale else stale.discard)(change.topic)
            alerts(lane.decide(t, None, stale))
            continue
        if retrack and topic == "detections":
            dets = logged.detections = _decode(rec, Detections)
            frame = _frame(dets.t_ns, dets.frame_seq, dets.width, dets.height)
        elif not retrack and topic == "tracks":
            logged.tracks = tuple(_decode({**rec, "msg": m}, Track) for m in rec["msg"]) if isinstance(rec["msg"], list) else ()
            frame = _frame(t, len(out), calib.width, calib.height)
        else:
            continue
        result = lane.perceive(frame, ego)
        if retrack:
            out.append(envelope_record(Envelope("tracks", t, 0, result.tracks)))
        out.append(envelope_record(Envelope("hazards", t, 0, result.hazards)))
        alerts(lane.decide(t, result, stale))
    return [{**r, "seq": i} for i, r in enumerate(out, start=1)]  # renumbered: strictly increasing again


__all__ = ["rerun", "Logged"]
