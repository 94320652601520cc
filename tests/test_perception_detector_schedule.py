"""Issue 16: the any-size detector copy, rectangular full pass, group NMS, rider folding, the detection bench's scoring."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from vehicle_assist import models
from vehicle_assist.config import PerceptionSettings, RoiSettings
from vehicle_assist.messages import CameraFrame, Detection
from vehicle_assist.perception import yolo_export
from vehicle_assist.perception.detector import Detector, OnnxYolo, ride

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_detection", ROOT / "bench" / "detection.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def det(label, box, conf=0.5):
    return Detection(box=box, label=label, class_id=0, confidence=conf, source="full")


# --- pure: rider folding ---------------------------------------------------------------------------

def test_a_person_on_a_bicycle_is_one_cyclist_box():
    items = (det("person", (100, 50, 140, 150), 0.6), det("bicycle", (95, 100, 150, 170), 0.2), det("car", (300, 80, 400, 160)))
    out = ride(items)
    labels = sorted(d.label for d in out)
    assert labels == ["car", "cyclist"]
    cyc = next(d for d in out if d.label == "cyclist")
    assert cyc.box == (95, 50, 150, 170) and cyc.confidence == 0.6


def test_a_two_up_scooter_is_one_motorcyclist_and_a_parked_bike_stays_a_bicycle():
    items = (det("person", (100, 40, 140, 140)), det("person", (120, 45, 160, 150)), det("motorcycle", (95, 90, 170, 180)),
             det("bicycle", (400, 100, 460, 160)), det("person", (600, 40, 640, 160)))
    out = ride(items)
    assert sorted(d.label for d in out) == ["bicycle", "motorcyclist", "person"]
    moto = next(d for d in out if d.label == "motorcyclist")
    assert moto.box == (95, 40, 170, 180)


def test_a_pedestrian_standing_beside_a_bike_is_not_its_rider():
    # the person's centre is not over the bike, and a person whose head is below the bike's middle is not on it
    items = (det("person", (40, 40, 100, 170)), det("bicycle", (90, 100, 150, 170)))
    assert sorted(d.label for d in ride(items)) == ["bicycle", "person"]
    items = (det("person", (100, 140, 130, 200)), det("bicycle", (90, 100, 150, 170)))
    assert sorted(d.label for d in ride(items)) == ["bicycle", "person"]


# --- pure: the bench's scoring ------------------------------------------------------------------------

def test_matching_counts_tp_fn_fp_confusions_and_ignores_dontcare():
    b = _bench()
    gts = [b.Box("vehicle", (0, 0, 100, 50)), b.Box("cyclist", (200, 0, 240, 80)), b.Box("pedestrian", (300, 0, 320, 20)),
           b.Box("ignore", (500, 0, 600, 100))]
    dets = [b.Box("vehicle", (2, 0, 100, 50), 0.9), b.Box("vehicle", (4, 2, 98, 50), 0.5),  # a duplicate
            b.Box("pedestrian", (202, 0, 240, 78), 0.8),  # a rider called a pedestrian
            b.Box("vehicle", (510, 10, 560, 60), 0.7),  # inside DontCare
            b.Box("pedestrian", (700, 0, 720, 40), 0.6)]  # nothing there
    r = b.match_frame(gts, dets, 0.5)
    assert r["tp"] == [("vehicle", 50)]
    assert sorted(r["fn"]) == [("cyclist", 80), ("pedestrian", 20)]
    assert r["duplicates"] == 1 and len(r["fp"]) == 2
    assert r["confusions"] == [("pedestrian", "cyclist")]
    s = b.summarise([r], 1)
    assert s["classes"]["vehicle"]["recall"] == 1.0 and s["classes"]["vehicle"]["precision"] == 0.5
    assert s["classes"]["pedestrian"]["buckets"]["<25"]["recall"] == 0.0
    assert s["confusions"] == {"pedestrian_on_cyclist": 1}


def test_kitti_calibration_and_labels_are_read(tmp_path):
    b = _bench()
    (tmp_path / "c.txt").write_text("P0: 1 0 0 0 0 1 0 0 0 0 1 0\nP2: 721.5 0 609.6 44.9 0 721.5 172.9 0.2 0 0 1 0.003\n")
    cal = b.read_kitti_calib(tmp_path / "c.txt", 1242, 375)
    assert (cal.focal_px, cal.cx, cal.cy, cal.width) == (721.5, 609.6, 172.9, 1242)
    (tmp_path / "l.txt").write_text("Car 0 0 0 10 20 110 70 0 0 0 0 0 0 0\nDontCare -1 -1 -10 1 2 3 4 -1 -1 -1 -1 -1 -1 -1\n"
                                    "Van 0 0 0 1 1 5 5 0 0 0 0 0 0 0\n")
    boxes = b.read_kitti_labels(tmp_path / "l.txt")
    assert [x.cls for x in boxes] == ["vehicle", "ignore", "vehicle"] and boxes[0].height == 50


def test_detection_bench_names_the_weights_that_ran(data, monkeypatch):
    """A run with another detector (VA_MODEL_DETECTOR) must say so in its JSON, or tables get mixed up."""
    b = _bench()
    monkeypatch.delenv("VA_MODEL_DETECTOR", raising=False)
    own = b._detector_identity()
    assert own["origin"] != "env" and own["size_bytes"] > 1e6 and "YOLOv8n" in own["description"]
    assert own["license"].startswith("AGPL-3.0")
    monkeypatch.setenv("VA_MODEL_DETECTOR", own["path"])
    other = b._detector_identity()
    assert other["origin"] == "env" and other["path"] == own["path"]


# --- the real network -----------------------------------------------------------------------------------

@pytest.mark.slow
def test_any_size_copy_gives_the_fixed_exports_boxes_at_its_size(data, tmp_path, monkeypatch):
    w = models.load_detector_weights()
    monkeypatch.setenv("VA_CACHE", str(tmp_path))  # the any-size copy is derived afresh here
    img = cv2.imread(str(data("frames", "bdd_urban_cyclist_truck.jpg")))
    fixed = OnnxYolo(w.ckpt_path, w.names, 1)
    anysize = OnnxYolo(w.ckpt_path, w.names, 1, anysize=True)
    assert fixed.fixed == (320, 320) and anysize.fixed is None
    assert yolo_export.cached_path(Path(w.ckpt_path)).is_file()
    classes = [0, 1, 2, 3, 5, 7]
    a = fixed.predict(img, 320, 0.25, classes)
    b = anysize.predict(img, 320, 0.25, classes)
    assert [x[1] for x in a] == [x[1] for x in b] and np.allclose([x[0] for x in a], [x[0] for x in b], atol=0.01)
    # rect: a 16:9 frame at 640 runs at 640x384, boxes still in frame pixels
    assert anysize.input_shape(720, 1280, 640, True) == (384, 640)
    big = anysize.predict(img, 640, 0.25, classes, rect=True)
    assert len(big) >= len(a) and all(0 <= x[0][0] < x[0][2] <= 1280 and 0 <= x[0][1] < x[0][3] <= 720 for x in big)


@pytest.mark.slow
def test_any_size_copy_of_a_current_ultralytics_export_decodes_as_its_fixed_head(tmp_path, monkeypatch):
    """Ultralytics 8.4.190 orders the head's maps box0, box1, box2, cls0, cls1, cls2 (8.4.33: box0, cls0, ...).
    A randomly initialised YOLOv8n exported here at 320 (no weights needed): the any-size copy's maps,
    decoded in numpy, must give the fixed export's own output (boxes and class scores of every anchor)."""
    import onnx
    import onnxruntime as ort

    monkeypatch.setenv("YOLO_OFFLINE", "1")
    monkeypatch.setenv("VA_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)  # Ultralytics writes the export (yolov8n.onnx) into the working folder
    from ultralytics import YOLO

    src = Path(YOLO("yolov8n.yaml").export(format="onnx", imgsz=320, device="cpu", simplify=False, verbose=False)).resolve()
    assert src.parent == tmp_path.resolve()
    heads = yolo_export.head_outputs(onnx.load(str(src)))
    assert [h.split("/")[2] for h in heads] == ["cv2.0", "cv3.0", "cv2.1", "cv3.1", "cv2.2", "cv3.2"]
    x = np.random.default_rng(0).random((1, 3, 320, 320), dtype=np.float32)
    want = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).run(None, {"images": x})[0][0]
    sess = ort.InferenceSession(str(yolo_export.ensure(src)), providers=["CPUExecutionProvider"])
    outs = sess.run(None, {"images": x})
    names = [o.name for o in sess.get_outputs()]
    maps = [o for o, n in zip(outs, names) if n != yolo_export.DFL_OUTPUT]
    boxes, logits = yolo_export.decode(maps, 80)
    assert boxes.shape == (2100, 4) and np.allclose(boxes, want[:4].T, atol=0.05)
    assert np.allclose(1 / (1 + np.exp(-logits)), want[4:], atol=1e-4)
    # at another size the copy runs too (the fixed export refuses it)
    assert sess.run(None, {"images": np.zeros((1, 3, 256, 416), np.float32)})[0].shape[2:] == (32, 52)


@pytest.mark.slow
def test_vehicle_classes_suppress_each_other_and_riders_become_cyclists(data):
    img = cv2.imread(str(data("frames", "bdd_urban_cyclist_truck.jpg")))
    frame = CameraFrame(t_ns=0, seq=0, image=img)
    per_class = Detector(None, PerceptionSettings(imgsz=640, rect=True, full_every=1, conf=0.1, nms_groups=[], riders=False,
                                                  roi=RoiSettings(every=0))).detect(frame).items
    grouped = Detector(None, PerceptionSettings(imgsz=640, rect=True, full_every=1, conf=0.1, riders=True,
                                                nms_groups=[["car", "truck", "bus"], ["bicycle", "motorcycle"]],
                                                roi=RoiSettings(every=0))).detect(frame).items

    def overlapping_vehicle_pairs(items):
        from vehicle_assist.perception.detector import iou

        v = [d for d in items if d.label in ("car", "truck", "bus")]
        return sum(1 for i, a in enumerate(v) for b in v[i + 1:] if a.label != b.label and iou(a.box, b.box) > 0.7)

    assert overlapping_vehicle_pairs(grouped) == 0
    assert overlapping_vehicle_pairs(per_class) >= overlapping_vehicle_pairs(grouped)
    # the scooter rider on this frame is one motorcyclist/cyclist, not a pedestrian on top of a bike
    riders = [d for d in grouped if d.label in ("cyclist", "motorcyclist")]
    assert riders
    assert len([d for d in grouped if d.label == "person"]) < len([d for d in per_class if d.label == "person"])


@pytest.mark.slow
def test_a_schedule_that_alternates_the_road_ahead_pass_still_runs_the_full_pass_on_every_frame(data):
    img = cv2.imread(str(data("frames", "bdd_urban_cyclist_truck.jpg")))
    d = Detector(None, PerceptionSettings(imgsz=384, rect=True, full_every=1, roi=RoiSettings(every=2, imgsz=256)))
    seen = []
    for i in range(4):
        out = d.detect(CameraFrame(t_ns=i * 40_000_000, seq=i, image=img))
        seen.append(d.last_passes)
        assert out.region is None and out.items  # never blind outside the square
    assert seen == [("roi", "full"), ("full",), ("roi", "full"), ("full",)]
    assert _bench().cycle_of(d.settings) == 2
    # the default: both passes on every frame, full at 416 rect, road-ahead at 320, side by side
    from vehicle_assist import config

    s = config.load_app(only=("perception",)).perception
    assert (s.imgsz, s.rect, s.full_every, s.roi.every, s.roi.imgsz, s.parallel_passes) == (416, True, 1, 1, 320, True)
    d = Detector(None, s)
    assert [d.detect(CameraFrame(t_ns=i, seq=i, image=img)) and d.last_passes for i in range(2)] == [("roi", "full")] * 2


@pytest.mark.slow
def test_parallel_passes_give_the_same_boxes_as_one_after_the_other(data):
    img = cv2.imread(str(data("frames", "bdd_urban_cyclist_truck.jpg")))
    from vehicle_assist import config

    s = config.load_app(only=("perception",)).perception
    serial = Detector(None, s.model_copy(update={"parallel_passes": False}))
    parallel = Detector(None, s.model_copy(update={"parallel_passes": True}))
    for i in range(3):
        frame = CameraFrame(t_ns=i, seq=i, image=img)
        a, b = serial.detect(frame), parallel.detect(frame)
        assert parallel.last_passes == serial.last_passes == ("roi", "full")
        assert [(d.box, d.label, d.confidence, d.source) for d in a.items] == \
               [(d.box, d.label, d.confidence, d.source) for d in b.items] and a.items
    assert parallel._pool is not None and serial._pool is None  # noqa: SLF001
