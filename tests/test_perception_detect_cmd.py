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
    cap = cv2.VideoCapture(str(tmp_path / "annotated.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 12 and int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) == 1280
    cap.release()
    assert json.loads((tmp_path / "summary.json").read_text())["frames"] == 12


def test_detect_missing_video_is_a_clear_error(tmp_path):
    res = CliRunner().invoke(app, ["detect", str(tmp_path / "none.mp4"), "--json"])
    assert res.exit_code == 2
    assert "no such video" in res.output
