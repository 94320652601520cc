"""Re-run the alert logic on a trip log's logged detections or tracks, without the detector (fast
iteration on ``configs/hazards.yaml``, ``configs/alerts.yaml`` and the tracker settings).

With ``retrack`` (the default when the log holds ``detections``), tracks are rebuilt from each
logged ``detections`` record with a fresh :class:`Tracker`, exactly as the lane builds them;
otherwise the logged ``tracks`` are used. Hazards are recomputed with
:func:`perception.hazards.assess` and the latest logged ``vehicle`` state; alerts with a fresh
:class:`AlertManager`. Alerts whose trigger is not a hazard kind (system signals such as
``camera-lost``) are kept as logged. The driver's mute is not replayed (re-run alerts are as if
unmuted).
"""

from __future__ import annotations

from typing import Any, Iterable

from vehicle_assist.messages import (Detections, Envelope, MessageError, Track, VehicleState, decode,
                                     envelope_record)


def rerun(records: Iterable[dict[str, Any]], calib, hazard_table=None, alert_table=None,
          retrack: bool | None = None, tracker_settings=None) -> list[dict[str, Any]]:
    """The records with ``hazards`` and hazard-driven ``alerts`` (and, retracking, ``tracks``) recomputed.
    A vehicle, detections or tracks record whose message is not of its type raises
    :class:`~vehicle_assist.messages.MessageError` naming its seq.

    ``retrack`` None: rebuild tracks when the log has detections. ``tracker_settings``: the
    perception tracker settings to rebuild them with (default: the onboard config's).
    """
    from vehicle_assist.perception import hazards as hz
    from vehicle_assist.safety.alert_manager import AlertManager
    from vehicle_assist.safety.alerts import load_table as load_alerts

    records = list(records)
    if retrack is None:
        retrack = any(r.get("topic") == "detections" for r in records)
    tracker = None
    if retrack:
        from vehicle_assist import config
        from vehicle_assist.perception.tracker import Tracker

        tracker = Tracker(tracker_settings or config.load_app(only=("perception",)).perception.tracker)
    hazard_table = hazard_table or hz.load_table()
    alert_table = alert_table or load_alerts()
    hazard_kinds = {c.kind for c in hazard_table.classes.values()} | {hz.FOLLOWING_TOO_CLOSE}
    driven = {name for name, spec in alert_table.items() if spec.trigger.kind in hazard_kinds}
    manager = AlertManager(alert_table)
    prev: dict = {}
    ego = None
    motion = None
    out: list[dict[str, Any]] = []
    for rec in records:
        topic = rec.get("topic")
        msg = rec.get("msg") if isinstance(rec.get("msg"), dict) else {}
        if topic == "hazards" or (topic == "alerts" and msg.get("name") in driven):
            continue
        if retrack and topic == "tracks":
            continue
        out.append(rec)
        try:
            if topic == "vehicle":
                ego = decode(rec["msg"], VehicleState)
                continue
            if topic == "detections":  # its ego motion from the image (when telemetry had no speed)
                dets = decode(rec["msg"], Detections)
                motion = dets.motion
            if retrack and topic == "detections":
                tracks = tracker.update(dets)
                out.append(envelope_record(Envelope("tracks", int(rec["t_ns"]), 0, tuple(tracks))))
            elif not retrack and topic == "tracks":
                tracks = [decode(m, Track) for m in rec["msg"]] if isinstance(rec["msg"], list) else []
            else:
                continue
        except MessageError as err:  # a record the logger never wrote: say which, do not guess
            raise MessageError(f"seq {rec.get('seq')} ({topic}): {err.message}") from None
        t = int(rec["t_ns"])
        found = hz.assess(tracks, ego, t, calib, prev, hazard_table, motion=motion)
        prev = hz.levels_of(found)
        out.append(envelope_record(Envelope("hazards", t, 0, tuple(found))))
        out += [envelope_record(Envelope("alerts", t, 0, event)) for event in manager.update(found, t)]
    return [{**r, "seq": i} for i, r in enumerate(out, start=1)]  # renumbered: strictly increasing again


__all__ = ["rerun"]
