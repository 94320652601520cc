"""``vehicle-assist detect`` end to end on a real clip: annotated MP4, JSONL of hazards and alerts, summary."""

from __future__ import annotations

import json

import cv2
import pytest
from typer.testing import CliRunner

from vehicle_assist.cli import app

pytestmark = pytest.mark.slow


def test_detect_writes_video_jsonl_and_summary(tmp_path, data):
    clip = data("drives", "highway_cars_1s.mp4")
    res = CliRunner().invoke(app, ["detect", str(clip), "--out", str(tmp_path), "--max-frames", "12", "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["frames"] == 12 and summary["ego_speed_mps"] is None
    lines = (tmp_path / "hazards.jsonl").read_text().splitlines()
    assert len(lines) == 12
    recs = [json.loads(x) for x in lines]
    assert [r["frame"] for r in recs] == list(range(12))
    assert any(h["label"] == "car" and h["distance_m"] for r in recs for h in r["hazards"])
    # no --speed: each frame after the first carries the ego motion read from the image (motorway traffic)
    assert recs[0]["ego_motion"] is None and recs[-1]["ego_motion"]["speed_mps"] > 5
    cap = cv2.VideoCapture(str(tmp_path / "annotated.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 12 and int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) == 1280
    cap.release()
    assert json.loads((tmp_path / "summary.json").read_text())["frames"] == 12


def test_detect_missing_video_is_a_clear_error(tmp_path):
    res = CliRunner().invoke(app, ["detect", str(tmp_path / "none.mp4"), "--json"])
    assert res.exit_code == 2
    assert "no such video" in res.output


def test_detect_writes_every_frames_detections_with_track_ids(tmp_path, data):
    clip = data("drives", "highway_cars_1s.mp4")
    res = CliRunner().invoke(app, ["detect", str(clip), "--out", str(tmp_path), "--max-frames", "8", "--no-video", "--json"])
    assert res.exit_code == 0, res.output
    recs = [json.loads(x) for x in (tmp_path / "hazards.jsonl").read_text().splitlines()]
    dets = [d for r in recs for d in r["detections"]]
    assert dets and all(len(d["box"]) == 4 and d["label"] and 0 < d["score"] <= 1 and d["pass"] for d in dets)
    # the cars ahead are tracked: the same id on several frames (odd frames may get only the road-ahead pass)
    ids = [d["track_id"] for r in recs for d in r["detections"] if d["track_id"] is not None]
    assert ids and max(ids.count(i) for i in set(ids)) >= 3
    assert "file" not in recs[0]


def test_detect_stills_are_independent_frames_with_file_names(tmp_path, data):
    import shutil

    folder = tmp_path / "stills"
    folder.mkdir()
    for name in ("highway_test1.jpg", "bdd_urban_cyclist_truck.jpg"):
        shutil.copy(data("frames", name), folder / name)
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["detect", str(folder), "--stills", "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    recs = [json.loads(x) for x in (out / "hazards.jsonl").read_text().splitlines()]
    assert [r["file"] for r in recs] == ["bdd_urban_cyclist_truck.jpg", "highway_test1.jpg"]
    assert all(r["detections"] and r["hazards"] == [] and r["alerts"] == [] for r in recs)
    assert all(d["track_id"] is None for r in recs for d in r["detections"])
    assert {d["pass"] for r in recs for d in r["detections"]} <= {"full", "roi"}
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["stills"] and summary["outputs"]["video"] is None
    bad = CliRunner().invoke(app, ["detect", str(data("drives", "highway_cars_1s.mp4")), "--stills", "--json"])
    assert bad.exit_code == 2 and "folder" in bad.output
