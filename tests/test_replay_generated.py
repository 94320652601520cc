"""Generated drives (the approach sequences): rendered on first use, so a fresh checkout replays them."""

from __future__ import annotations

import shutil
from dataclasses import replace

import pytest

from vehicle_assist import paths
from vehicle_assist.tools import approach
from vehicle_assist.replay import generated
from vehicle_assist.replay.drive import ensure_drive, open_drive
from vehicle_assist.replay.errors import DriveError

REPO_SIM = paths.sim()


def test_buildable_names_only_the_generators_media():
    folder = generated.folder()
    assert generated.buildable(folder / "lead-braking.mp4") == ("approach", "lead-braking")
    assert generated.buildable(folder / "lead-braking-dev.mp4") is None  # dev split: bench only
    assert generated.buildable(paths.sim() / "drives" / "lead-braking.mp4") is None
    assert generated.buildable(folder / "lead-braking.txt") is None
    route = generated.folder("route")
    assert generated.buildable(route / "leeds_motorway" / "telemetry.csv") == ("route", "leeds_motorway")
    assert generated.buildable(route / "no_such_drive" / "telemetry.csv") is None


@pytest.fixture
def short_stopped(monkeypatch):
    """lead-stopped cut to its first 10 m of approach (13 frames), so rendering takes a second."""
    short = replace(approach.SCENARIOS["lead-stopped"], stop_gap_m=90.0)
    real_split = approach.split
    monkeypatch.setattr(approach, "split", lambda name: [(short if sc.name == short.name else sc, seed)
                                                        for sc, seed in real_split(name)])
    return short


def test_a_missing_approach_drive_is_rendered_on_first_use(va_home, short_stopped, capsys):
    (va_home / "sim" / "manifests").mkdir(parents=True)
    shutil.copy(REPO_SIM / "manifests" / "approach_lead_stopped.yaml", va_home / "sim" / "manifests")
    (va_home / "sim" / "frames").symlink_to(REPO_SIM / "frames")  # the fetched frames it composites
    mp4 = va_home / "sim" / "generated" / "approach" / "lead-stopped.mp4"
    assert not mp4.exists()
    drive = open_drive("approach_lead_stopped")  # what replay does: no instruction to run anything first
    assert mp4.is_file() and drive.info.frame_count == 13
    assert "rendering generated drive lead-stopped (first use): 13 frames" in capsys.readouterr().err
    assert approach.is_fresh(short_stopped, 0, mp4.parent)
    assert generated.ensure([mp4]) == []  # made once; a second replay renders nothing
    (mp4.parent / "lead-stopped.json").write_text("{torn")  # an interrupted render is made again
    assert generated.ensure([mp4]) == [mp4]


def test_rendering_without_the_fetched_frames_is_one_clear_error(va_home, short_stopped):
    (va_home / "sim" / "manifests").mkdir(parents=True)
    shutil.copy(REPO_SIM / "manifests" / "approach_lead_stopped.yaml", va_home / "sim" / "manifests")
    with pytest.raises(DriveError, match=r"\[drive-media-unbuilt\] .*lead-stopped.mp4: \(render\): expected a generated "
                                         r"approach drive \(frames .* missing: run `vehicle-assist fetch frames`\)"):
        open_drive("approach_lead_stopped")


@pytest.mark.slow
def test_pinned_crop_boxes_are_what_the_detector_finds(data):
    """The table that keeps the sequences detector-free (and the same on every CPU) matches the weights."""
    import cv2

    from vehicle_assist import models

    model = models.load_detector()
    for (crop, index), box in approach.CROP_BOXES.items():
        assert approach.find_car(cv2.imread(str(data("frames", crop))), model, index) == box, (crop, index)


def test_a_missing_route_drive_is_generated_on_first_use(va_home, capsys):
    (va_home / "sim" / "manifests").mkdir(parents=True)
    shutil.copy(REPO_SIM / "manifests" / "leeds_motorway.yaml", va_home / "sim" / "manifests")
    shutil.copy(REPO_SIM / "route_drives.yaml", va_home / "sim")
    (va_home / "sim" / "maps").symlink_to(REPO_SIM / "maps")  # the fetched map it drives on
    drive = open_drive("leeds_motorway")
    assert (va_home / "sim" / "generated" / "route" / "leeds_motorway" / "telemetry.csv").is_file()
    assert drive.info.has_telemetry and drive.info.duration_s > 30 and "generating route drive leeds_motorway (first use)" in capsys.readouterr().err
    assert ensure_drive("leeds_motorway") == []
