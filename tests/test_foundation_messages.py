"""Messages: frozen, and one generic codec to log records and back."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from vehicle_assist import messages as m


def test_messages_are_frozen():
    hz = m.Hazard(t_ns=1, kind="forward-collision", level=m.HazardLevel.WARNING, label="car")
    with pytest.raises(dataclasses.FrozenInstanceError):
        hz.level = m.HazardLevel.INFO  # type: ignore[misc]


@pytest.mark.parametrize("msg", [
    m.Hazard(t_ns=5, kind="forward-collision", level=m.HazardLevel.CRITICAL, label="car", track_id=3,
             distance_m=12.5, ttc_s=1.1, in_corridor=True),
    m.Detections(t_ns=7, frame_seq=2, width=640, height=360,
                 items=(m.Detection(box=(1.0, 2.0, 3.0, 4.0), label="person", class_id=0, confidence=0.9),)),
    m.Track(track_id=1, label="car", box=(0, 0, 10, 20), confidence=0.8, t_ns=9, first_t_ns=1,
            history=((1, 18.0), (9, 20.0))),
    m.VehicleState(t_ns=3, speed_mps=None, road_type="motorway"),
    m.Advisory(t_ns=1, text="Keep a two-second gap.", route="extractive", cited=("126",)),
    m.Intent(t_ns=1, name="mute", text="mute alerts for ten minutes", slots=(("minutes", "10"),)),
    m.AlertEvent(t_ns=2, name="forward-collision", priority=5, text="Brake!", audible=True),
])
def test_round_trip_through_json(msg):
    rec = json.loads(json.dumps(m.to_record(msg)))
    assert rec["type"] == type(msg).__name__
    assert m.from_record(rec) == msg


def test_arrays_are_summarised_not_logged():
    frame = m.CameraFrame(t_ns=1, seq=0, image=np.zeros((720, 1280, 3), np.uint8))
    rec = m.to_record(frame)
    assert rec["image"] == {"ndarray": [720, 1280, 3], "dtype": "uint8"}
    assert len(json.dumps(rec)) < 200


def test_envelope_record_carries_both_times():
    env = m.Envelope(topic="hazards", t_ns=10, seq=4, msg=m.Query(t_ns=10, text="q"), proc_ns=99)
    rec = m.envelope_record(env)
    assert (rec["seq"], rec["topic"], rec["t_ns"], rec["proc_ns"]) == (4, "hazards", 10, 99)


def test_unknown_speed_stays_unknown():
    rec = m.to_record(m.VehicleState(t_ns=0))
    assert rec["speed_mps"] is None


def test_vehicle_yaw_rate_round_trips_and_old_logs_read_as_unknown():
    st = m.VehicleState(t_ns=1, speed_mps=9.0, heading_deg=90.0, yaw_rate_dps=-2.5, source="x")
    assert m.decode(json.loads(json.dumps(m.to_record(st))), m.VehicleState) == st
    old = {"type": "VehicleState", "t_ns": 1, "speed_mps": 9.0, "heading_deg": 90.0, "source": "x"}  # before the field
    assert m.decode(old, m.VehicleState).yaw_rate_dps is None


def test_the_module_exports_its_vocabulary_only():
    import vehicle_assist.messages as m

    assert all(hasattr(m, name) for name in m.__all__)
    assert not {"np", "typing", "dataclasses", "field", "enum", "types", "Any"} & set(m.__all__)
    ours = {n for n, v in vars(m).items() if isinstance(v, type) and v.__module__ == m.__name__}
    assert ours <= set(m.__all__)  # every message type is exported
    assert m.AlertState.START == "start" and m.to_record(m.AlertState.END) == "end"  # logs keep their strings


def test_decode_checks_the_types_of_a_logged_message():
    car = m.Detection((1.0, 2.0, 3.0, 4.0), "car", 2, 0.9)
    rec = m.to_record(m.Detections(5, 1, 1280, 720, (car,)))
    assert m.decode(json.loads(json.dumps(rec)), m.Detections).items[0].label == "car"
    for bad, why in ((dict(rec, items="oops"), "items is str"), (dict(rec, width="wide"), "width is str"),
                     (dict(rec, items=[dict(rec["items"][0], box=[1, 2, 3])]), "items[0].box has 3 items"),
                     ({"type": "Detections"}, "cannot decode"), ("text", "expected Detections")):
        with pytest.raises(m.MessageError) as err:
            m.decode(bad, m.Detections)
        assert why in err.value.message and err.value.code == "bad-message"
    assert m.decode({"type": "VehicleState", "t_ns": 1, "speed_mps": 3}, m.VehicleState).speed_mps == 3  # int for float
