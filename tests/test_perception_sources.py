"""Frame sources: lockstep and latest-frame delivery, drop/corrupt counters, lost camera retried with backoff."""

from __future__ import annotations

import shutil
import threading

import numpy as np
import pytest

from vehicle_assist.perception.sources import FrameSource, SourceError, _Reader, open_source


def test_video_file_lockstep_delivers_every_frame_in_media_time(data):
    src = open_source(str(data("drives", "highway_cars_1s.mp4")), realtime=False)
    frames = list(src)
    src.close()
    assert len(frames) == 38 == src.frame_count
    assert [f.seq for f in frames] == list(range(38))
    assert frames[0].image.shape == (720, 1280, 3)
    steps = np.diff([f.t_ns for f in frames])
    assert np.allclose(steps, 40e6, atol=1e6)  # 25 fps media time
    assert src.stats.dropped == 0 and src.stats.corrupt == 0 and all(f.perf_ns for f in frames)


def test_realtime_source_gives_a_slow_consumer_the_newest_frame_and_counts_drops(data):
    src = open_source(str(data("drives", "highway_cars_1s.mp4")), realtime=True)
    got = []
    wait = threading.Event()
    while True:
        f = src.read(timeout_s=2.0)
        if f is None:
            break
        got.append(f.seq)
        wait.wait(0.12)  # a consumer three frames slower than the camera
    src.close()
    assert src.stats.ended
    assert src.stats.dropped > 10
    assert src.stats.delivered == len(got) and src.stats.delivered + src.stats.dropped == src.stats.captured
    assert got == sorted(got) and got[-1] >= 30  # never an old frame, and it keeps up with the newest


def test_image_folder_skips_and_counts_a_corrupt_image(tmp_path, data):
    for i, name in enumerate(("highway_test1.jpg", "highway_test3.jpg", "highway_test4.jpg")):
        shutil.copy(data("frames", name), tmp_path / f"{i:03d}.jpg")
    (tmp_path / "001b.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    (tmp_path / "notes.txt").write_text("ignored")
    src = open_source(str(tmp_path), realtime=False, fps=10)
    frames = list(src)
    src.close()
    assert len(frames) == 3 and src.stats.corrupt == 1
    assert [f.t_ns for f in frames] == [0, 100_000_000, 300_000_000]  # 000, 001, (001b corrupt), 002


def test_bad_specs_raise_clear_errors(tmp_path):
    with pytest.raises(SourceError) as err:
        open_source(str(tmp_path / "nope.mp4"))
    assert err.value.code == "source-missing"
    with pytest.raises(SourceError) as err:
        open_source(str(tmp_path))
    assert err.value.code == "source-empty"
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00" * 1000)
    with pytest.raises(SourceError) as err:
        open_source(str(garbage))
    assert err.value.code == "source-unavailable"


class FlakyCamera(_Reader):
    """A live camera that gives 5 frames, dies, refuses 3 reopen attempts, then works again."""

    live = True

    def __init__(self) -> None:
        self.opens = 0
        self.frames = 0
        self.failed_opens = 0

    def open(self) -> bool:
        self.opens += 1
        if self.opens == 1:
            return True
        if self.failed_opens < 3:
            self.failed_opens += 1
            return False
        return True

    def read(self):
        self.frames += 1
        if self.frames == 6:
            return False, None, None
        if self.frames == 8:
            return True, np.zeros((4, 4), np.uint8), None  # corrupt: not HxWx3
        return True, np.full((8, 8, 3), self.frames, np.uint8), None

    def close(self) -> None:
        pass


def test_lost_camera_is_retried_with_exponential_backoff():
    delays = []
    src = FrameSource(FlakyCamera(), "cam0", realtime=False, retry_initial_s=0.5, retry_max_s=1.5,
                      sleep=lambda d: delays.append(d))
    src.start()
    got = []
    while len(got) < 8:
        f = src.read(timeout_s=2.0)
        assert f is not None
        got.append(int(f.image[0, 0, 0]))
    src.close()
    assert delays[:4] == [0.5, 1.0, 1.5, 1.5]  # doubling, capped at retry_max_s
    assert src.stats.reconnects == 1 and src.stats.corrupt == 1
    assert got[:5] == [1, 2, 3, 4, 5] and 8 not in got
