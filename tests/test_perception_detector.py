"""The real YOLO detector (320 px ONNX) and ByteTrack on real frames: our types, class filter, ROI pass, stable ids."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vehicle_assist import models
from vehicle_assist.config import PerceptionSettings, RoiSettings
from vehicle_assist.messages import CameraFrame, Detection, Detections
from vehicle_assist.tools import approach
from vehicle_assist.perception.detector import Detector, DetectorError, road_ahead_region
from vehicle_assist.perception.sources import open_source
from vehicle_assist.perception.tracker import Tracker

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model():
    return models.load_detector()


def frame_of(path, seq=0) -> CameraFrame:
    return CameraFrame(t_ns=0, seq=seq, image=cv2.imread(str(path)))


def test_detections_are_our_types_and_find_the_cars(model, data):
    det = Detector(model, PerceptionSettings(roi=RoiSettings(every=0)))
    out = det.detect(frame_of(data("frames", "highway_test1.jpg")))
    assert isinstance(out, Detections) and all(isinstance(d, Detection) for d in out.items)
    cars = [d for d in out.items if d.label == "car"]
    assert len(cars) >= 2
    assert all(0 <= d.box[0] < d.box[2] <= 1280 and 0 <= d.box[1] < d.box[3] <= 720 for d in out.items)
    assert out.width == 1280 and out.height == 720 and out.infer_ms > 0


def test_only_configured_classes_leave_the_detector(model, data):
    det = Detector(model, PerceptionSettings(classes=["person"], roi=RoiSettings(every=0)))
    out = det.detect(frame_of(data("frames", "highway_test1.jpg")))
    assert all(d.label == "person" for d in out.items)
    with pytest.raises(DetectorError) as err:
        Detector(model, PerceptionSettings(classes=["unicorn"]))
    assert err.value.code == "unknown-class"


def test_bad_frame_is_a_clear_error(model):
    det = Detector(model, PerceptionSettings())
    with pytest.raises(DetectorError) as err:
        det.detect(CameraFrame(t_ns=0, seq=0, image=np.zeros((10, 10), np.uint8)))
    assert err.value.code == "bad-frame"


def test_road_ahead_pass_sees_a_car_70m_away_that_320px_full_frame_misses(model):
    """A real car crop composited at 70 m (h = f*H/d = 24.6 px at 720p): the ROI pass measures it."""
    sc = approach.SCENARIOS["lead-stopped"]
    from vehicle_assist import fetch

    crop_img = cv2.imread(str(fetch.data_path("frames", sc.crop)))
    x1, y1, x2, y2 = approach.find_car(crop_img, model, sc.crop_index)
    bg = cv2.imread(str(fetch.data_path("frames", sc.background)))
    img, box = approach.composite(bg, crop_img[y1:y2, x1:x2], 70.0, approach.ROAD_CALIBRATION)
    cal = approach.ROAD_CALIBRATION

    def found(settings):
        det = Detector(model, settings, cal)
        items = det.detect(CameraFrame(t_ns=0, seq=0, image=img)).items
        return [d for d in items if abs((d.box[0] + d.box[2]) / 2 - (box[0] + box[2]) / 2) < 15 and abs(d.box[3] - box[3]) < 8]

    full_only = found(PerceptionSettings(roi=RoiSettings(every=0)))
    with_roi = found(PerceptionSettings(full_every=1))
    assert with_roi, "road-ahead pass missed the car at 70 m"
    h = with_roi[0].box[3] - with_roi[0].box[1]
    assert h == pytest.approx(box[3] - box[1], rel=0.15)
    assert len(full_only) <= len(with_roi)
    reg = road_ahead_region(1280, 720, cal, 0.25, 0.1)
    assert reg.x2 - reg.x1 == 320 and reg.x1 <= box[0] and box[2] <= reg.x2


def test_tracker_keeps_stable_ids_on_a_real_clip(model, data):
    det = Detector(model, PerceptionSettings())
    trk = Tracker()
    ids_per_frame = []
    src = open_source(str(data("drives", "highway_cars_1s.mp4")), realtime=False)
    for frame in src:
        tracks = trk.update(det.detect(frame))
        ids_per_frame.append({t.track_id: t for t in tracks})
    src.close()
    # the two cars ahead are present from start to end: the most frequent ids cover most frames
    counts: dict[int, int] = {}
    for ids in ids_per_frame:
        for tid in ids:
            counts[tid] = counts.get(tid, 0) + 1
    top = sorted(counts.values(), reverse=True)[:2]
    assert top[0] >= 0.4 * len(ids_per_frame) and top[1] >= 0.4 * len(ids_per_frame)
    last = max(counts, key=counts.get)
    tr = next(ids[last] for ids in reversed(ids_per_frame) if last in ids)
    assert tr.hits == counts[last] and len(tr.history) >= 10
    assert [t for t, _ in tr.history] == sorted(t for t, _ in tr.history)


def test_onnxruntime_path_gives_the_same_boxes_as_ultralytics(model, data):
    plain = Detector(model, PerceptionSettings(backend="ultralytics", roi=RoiSettings(every=0)))
    lean = Detector(model, PerceptionSettings(backend="onnxruntime", roi=RoiSettings(every=0)))
    assert plain.backend == "ultralytics" and lean.backend == "onnxruntime"
    assert Detector(model, PerceptionSettings()).backend == "onnxruntime"  # auto picks it for .onnx weights
    for name in ("highway_test1.jpg", "bdd_urban_cyclist_truck.jpg", "pedestrians_on_crosswalk_streetlevel.jpg"):
        f = frame_of(data("frames", name))
        a = sorted((d.label, d.box) for d in plain.detect(f).items)
        b = sorted((d.label, d.box) for d in lean.detect(f).items)
        assert [x[0] for x in a] == [x[0] for x in b]
        assert np.allclose([x[1] for x in a], [x[1] for x in b], atol=1.0)
