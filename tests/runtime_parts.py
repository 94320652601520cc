"""Stand-ins that isolate the runtime loop in tests (not a test module).

The detector and tracker are replaced by a scripted tracker that produces a car closing on the ego
vehicle on cue (box heights follow h = f*H/d(t), as in tests/test_perception_hazards.py), so the
loop's wiring (hazards.assess, the real alert table and manager, pre-rendered alert voice, the real
audio arbiter, the trip log) is exercised with a hazard at a known moment. The frames are real
dashcam pixels; the advisor speaks a long real TTS answer through the real arbiter.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import cv2

from vehicle_assist import fetch
from vehicle_assist.messages import Advisory, AdvisoryEvent, CameraFrame, Detections, Track, Transcript
from vehicle_assist.perception import hazards
from vehicle_assist.runtime import Parts
from vehicle_assist.safety import alerts
from vehicle_assist.speech.tts import TTSRenderer

LONG_ANSWER = ("Keep at least a two-second gap to the vehicle in front on roads carrying faster-moving traffic. "
               "The gap should be at least doubled on wet roads and increased still further on icy roads. "
               "Large vehicles need more room, so drop back further when you follow a lorry or a bus.")


class EmptyDetector:
    """Finds nothing (the scripted tracker supplies the tracks)."""

    def __init__(self, fail_on: set[int] | None = None) -> None:
        self.fail_on = set(fail_on or ())

    def reset(self, calib=None) -> None:
        """Nothing carries across frames."""

    def detect(self, frame: CameraFrame) -> Detections:
        if frame.seq in self.fail_on:
            self.fail_on.discard(frame.seq)
            raise RuntimeError(f"detector fault on frame {frame.seq}")
        return Detections(frame.t_ns, frame.seq, frame.width, frame.height)


class ClosingCarTracker:
    """Once ``go`` is set: a car dead ahead closing at 15 m/s, TTC ``ttc_s`` (critical below 1.6 s)."""

    def __init__(self, ttc_s: float = 1.0, speed_mps: float = 15.0) -> None:
        self.go = threading.Event()
        self.ttc_s, self.v = ttc_s, speed_mps
        self.calib = hazards.CameraCalibration()
        self.height_m = hazards.load_table().classes["car"].height_m

    def reset(self) -> None:
        """The script has no state but its cue."""

    def update(self, dets: Detections) -> list[Track]:
        if not self.go.is_set():
            return []
        now = dets.t_ns
        hist = []
        for k in range(30, -1, -1):  # 1.2 s of history at 25 fps
            t = now - k * 40_000_000
            d = self.v * (self.ttc_s + k * 0.04)
            hist.append((t, self.calib.focal_px * self.height_m / d))
        h = hist[-1][1]
        sx, sy = dets.width / self.calib.width, dets.height / self.calib.height
        box = ((self.calib.cx - 0.6 * h) * sx, (400 - h) * sy, (self.calib.cx + 0.6 * h) * sx, 400.0 * sy)
        return [Track(1, "car", box, 0.9, now, hist[0][0], hits=31, history=tuple(hist))]


class LongAdvisor:
    """Speaks LONG_ANSWER sentence by sentence through the runtime's speaker (as AdvisoryRun's speak stage)."""

    def __init__(self, speaker, on_event) -> None:
        self.speaker, self.on_event = speaker, on_event

    async def execute(self, question, scene, t_ns) -> Advisory:
        self.on_event(AdvisoryEvent("start", "speak", time.perf_counter_ns()))
        for sentence in LONG_ANSWER.split(". "):
            await asyncio.to_thread(self.speaker, sentence)
        self.on_event(AdvisoryEvent("end", "speak", time.perf_counter_ns()))
        return Advisory(t_ns, LONG_ANSWER, "extractive", cited=("126",), question=question)


class Binds:
    """An advisory lane whose advisors are ``cls(speaker, on_event)`` (as advisory.lane.AdvisoryParts binds AdvisoryRun)."""

    def __init__(self, cls) -> None:
        self.cls = cls

    def bind(self, speaker=None, on_event=None, cancel_event=None, clock=None, situation=None):
        return self.cls(speaker, on_event or (lambda e: None))


def frames(now_ns, n: int = 10_000, fps: float = 25.0, stop_after: int | None = None, name: str = "highway_test1.jpg"):
    """Real dashcam pixels at ``fps`` (paced); after ``stop_after`` frames the camera goes silent."""
    image = cv2.imread(str(fetch.data_path("frames", name)))
    assert image is not None
    for i in range(n):
        if stop_after is not None and i >= stop_after:
            time.sleep(0.05)
            continue
        yield CameraFrame(now_ns(), i, image, source=name)
        time.sleep(1.0 / fps)


def parts(tracker=None, detector=None, advisor: bool = True) -> Parts:
    """Real alert table, hazard table, TTS; scripted perception; the long advisor."""
    renderer = TTSRenderer()
    return Parts(detector=detector or EmptyDetector(), tracker=tracker or ClosingCarTracker(),
                 alert_table=alerts.load_table(), renderer=renderer,
                 hazard_table=hazards.load_table(),
                 advisory=Binds(LongAdvisor) if advisor else None,
                 model_paths={"detector": fetch.data_path("models", "yolov8n_fp32.onnx")})


def model_dir() -> Path:
    return fetch.data_path("models", "yolov8n_fp32.onnx").parent


class RecordingASR:
    """An ASR that records each utterance reaching it (the voice lane's wiring under test, not Whisper)."""

    def __init__(self):
        self.heard = []

    def transcribe(self, utt):
        self.heard.append(utt)
        return Transcript(utt.t_end_ns, "", 0.0)


class StallingDetector(EmptyDetector):
    """Takes ``stall_s`` on frame ``on`` (a detector stuck while the camera keeps delivering)."""

    def __init__(self, on: int, stall_s: float) -> None:
        super().__init__()
        self.on, self.stall_s = on, stall_s

    def detect(self, frame: CameraFrame) -> Detections:
        if frame.seq == self.on:
            time.sleep(self.stall_s)
        return super().detect(frame)
