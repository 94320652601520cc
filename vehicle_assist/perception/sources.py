"""Frame sources behind one interface: camera index, video file, RTSP/HTTP URL, image folder.

A capture thread reads frames into a one-frame slot: a slow consumer always gets the newest frame,
and every frame overwritten before it was read is counted as dropped (never queued). Corrupt frames
are skipped and counted. A live source that stops delivering is reopened with exponential backoff;
the safety lane raises ``camera-lost`` when no frame has come for a while.

``realtime=False`` (lockstep replay of files and folders) delivers every frame in order, no drops.
Files and folders are stamped with media time; live sources with the run's clock.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from vehicle_assist import clock as clock_mod
from vehicle_assist.clock import Clock, WallClock
from vehicle_assist.errors import CodedError
from vehicle_assist.messages import CameraFrame

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


class SourceError(CodedError):
    """A frame source could not be opened (code names the failure)."""


@dataclass
class SourceStats:
    """Counters a source keeps while it runs."""

    captured: int = 0
    delivered: int = 0
    dropped: int = 0
    corrupt: int = 0
    reconnects: int = 0
    lost: bool = False
    ended: bool = False
    extra: dict = field(default_factory=dict)


class _Reader:
    """Reads raw frames from one kind of origin; returns (ok, image, media_ms) per call."""

    live = False
    fps = 0.0
    frame_count = 0

    def open(self) -> bool: ...
    def read(self) -> tuple[bool, np.ndarray | None, float | None]: ...
    def close(self) -> None: ...

    def position(self) -> int:
        """Index of the next frame (files and folders)."""
        return self.frame_count


class _CvReader(_Reader):
    """cv2.VideoCapture over a camera index, a file or a stream URL."""

    def __init__(self, target: int | str, live: bool) -> None:
        self.target, self.live = target, live
        self.cap = None

    def open(self) -> bool:
        import cv2

        self.close()
        cap = cv2.VideoCapture(self.target)
        if not cap.isOpened():
            cap.release()
            return False
        self.cap = cap
        self.fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.frame_count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        return True

    def read(self):
        import cv2

        if self.cap is None:
            return False, None, None
        ok, img = self.cap.read()
        ms = None if self.live else float(self.cap.get(cv2.CAP_PROP_POS_MSEC))
        return ok, img, ms

    def position(self) -> int:
        import cv2

        return int(self.cap.get(cv2.CAP_PROP_POS_FRAMES)) if self.cap is not None else 0

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None


class _FolderReader(_Reader):
    """Images of a folder in name order, at a fixed frame rate."""

    def __init__(self, folder: Path, fps: float) -> None:
        self.files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        self.fps, self.frame_count, self.i = fps, len(self.files), 0

    def open(self) -> bool:
        return bool(self.files)

    def read(self):
        import cv2

        if self.i >= len(self.files):
            return False, None, None
        path = self.files[self.i]
        self.i += 1
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        return True, img, (self.i - 1) * 1000.0 / self.fps

    def position(self) -> int:
        return self.i

    def close(self) -> None:
        pass


def _valid(img: np.ndarray | None) -> bool:
    return img is not None and img.ndim == 3 and img.shape[2] == 3 and img.size > 0


class FrameSource:
    """Latest-frame delivery from a capture thread: ``read(timeout_s)`` or iterate."""

    def __init__(self, reader: _Reader, name: str, clock: Clock | None = None, realtime: bool = True,
                 retry_initial_s: float = 0.5, retry_max_s: float = 8.0, max_retries: int | None = None,
                 sleep: Callable[[float], None] | None = None) -> None:
        self.reader, self.name = reader, name
        self.clock = clock or WallClock()
        self.realtime = realtime
        self.retry_initial_s, self.retry_max_s, self.max_retries = retry_initial_s, retry_max_s, max_retries
        self.stats = SourceStats()
        self._slot: CameraFrame | None = None
        self._cv = threading.Condition()
        self._stop = threading.Event()
        self._sleep = sleep or self._stop.wait
        self._seq = 0
        self._thread: threading.Thread | None = None

    @property
    def fps(self) -> float:
        return self.reader.fps

    @property
    def frame_count(self) -> int:
        return self.reader.frame_count

    def start(self) -> "FrameSource":
        """Open the origin and start capturing; raises SourceError if a file/folder cannot be opened."""
        if not self.reader.open():
            if not self.reader.live:
                raise SourceError("source-unavailable", f"cannot open {self.name}")
            self.stats.lost = True  # a live camera may come later: keep retrying
        self._thread = threading.Thread(target=self._run, name=f"frames:{self.name}", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop capturing and release the origin."""
        self._stop.set()
        with self._cv:
            self._cv.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        self.reader.close()

    def __enter__(self) -> "FrameSource":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def read(self, timeout_s: float = 1.0) -> CameraFrame | None:
        """The newest frame not yet read; None on timeout or once the source has ended."""
        with self._cv:
            if not self._cv.wait_for(lambda: self._slot is not None or self.stats.ended, timeout_s):
                return None
            frame, self._slot = self._slot, None
            if frame is not None:
                self.stats.delivered += 1
            self._cv.notify_all()
            return frame

    def __iter__(self) -> Iterator[CameraFrame]:
        while True:
            frame = self.read(timeout_s=1.0)
            if frame is not None:
                yield frame
            elif self.stats.ended:
                return

    # --- capture thread -------------------------------------------------------------------------

    def _publish(self, img: np.ndarray, media_ms: float | None) -> None:
        t_ns = int(round(media_ms * 1e6)) if media_ms is not None else self.clock.now_ns()
        frame = CameraFrame(t_ns=t_ns, seq=self._seq, image=img, source=self.name, perf_ns=clock_mod.perf_ns())
        self._seq += 1
        with self._cv:
            if not self.realtime:
                self._cv.wait_for(lambda: self._slot is None or self._stop.is_set())
            if self._slot is not None:
                self.stats.dropped += 1
            self._slot = frame
            self.stats.captured += 1
            self._cv.notify_all()

    def _run(self) -> None:
        start_perf = clock_mod.perf_ns()
        first_ms: float | None = None
        failures = 0
        while not self._stop.is_set():
            if self.stats.lost:
                if not self._reconnect():
                    break
                continue
            ok, img, media_ms = self.reader.read()
            if not ok:
                if self.reader.live:
                    log.warning("%s: no frame; reconnecting", self.name)
                    self.stats.lost = True
                    continue
                # a file: a failed read before the last frame is a corrupt frame, else the end
                pos = self.reader.position()
                failures += 1
                if self.reader.frame_count and pos < self.reader.frame_count - 1 and failures < 10:
                    self.stats.corrupt += 1
                    continue
                break
            failures = 0
            if not _valid(img):
                self.stats.corrupt += 1
                continue
            if self.realtime and media_ms is not None and not self.reader.live:
                first_ms = media_ms if first_ms is None else first_ms
                due = start_perf + int((media_ms - first_ms) * 1e6)
                delay = (due - clock_mod.perf_ns()) / 1e9
                if delay > 0:
                    self._sleep(delay)
            self._publish(img, media_ms)
        with self._cv:
            self.stats.ended = True
            self._cv.notify_all()

    def _reconnect(self) -> bool:
        """Reopen a lost live source with exponential backoff; False when retries are exhausted or stopping."""
        delay, tries = self.retry_initial_s, 0
        while not self._stop.is_set():
            if self.max_retries is not None and tries >= self.max_retries:
                return False
            self._sleep(delay)
            tries += 1
            if self.reader.open():
                self.stats.reconnects += 1
                self.stats.lost = False
                log.warning("%s: reconnected after %d tries", self.name, tries)
                return True
            delay = min(delay * 2, self.retry_max_s)
        return False


_URL = re.compile(r"^(rtsp|rtsps|rtmp|http|https|udp|tcp)://", re.I)


def open_source(spec: str, clock: Clock | None = None, realtime: bool = True, fps: float = 10.0,
                retry_initial_s: float = 0.5, retry_max_s: float = 8.0, max_retries: int | None = None) -> FrameSource:
    """``"0"`` (camera index) | video file | ``rtsp://``/``http(s)://`` URL | image folder -> started FrameSource.

    ``fps`` is the rate of an image folder. Raises SourceError for a file or folder that cannot be read.
    """
    spec = str(spec).strip()
    if spec.isdigit():
        reader: _Reader = _CvReader(int(spec), live=True)
    elif _URL.match(spec):
        reader = _CvReader(spec, live=True)
    else:
        path = Path(spec).expanduser()
        if path.is_dir():
            reader = _FolderReader(path, fps)
            if not reader.files:
                raise SourceError("source-empty", f"no images ({', '.join(IMAGE_SUFFIXES)}) in {path}")
        elif path.is_file():
            reader = _CvReader(str(path), live=False)
        else:
            raise SourceError("source-missing", f"{spec} is not a camera index, URL, video file or image folder")
    src = FrameSource(reader, spec, clock=clock, realtime=realtime, retry_initial_s=retry_initial_s,
                      retry_max_s=retry_max_s, max_retries=max_retries)
    return src.start()


__all__ = ["FrameSource", "SourceError", "SourceStats", "open_source", "IMAGE_SUFFIXES"]
