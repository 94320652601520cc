"""The single owner of the speaker: one PCM stream written in small blocks by a writer thread.

Everything that wants to speak hands a rendered :class:`~vehicle_assist.messages.SpeechRequest`
to :meth:`AudioArbiter.say`. Requests wait in a ``(tier, seq)`` priority queue. The writer thread
plays one request at a time, ``block_ms`` of PCM per write, and checks between blocks whether it
must stop: an ALERT-tier request pre-empts ADVISORY playback before the next block, flushes the
queued advisories and sets :attr:`AudioArbiter.cancel_event` (the SLM's stop hook checks it). It
also stops an alert of lower ``priority`` (the alert table's) that is playing or queued: "Brake!"
never waits behind "Hazard detection is running slow."

Sinks say where the blocks go: :class:`NullSink` (discard), :class:`WavSink` (one WAV file plus
per-request segments, for CI and replay) and :class:`SoundDeviceSink` (a real output device).
Null and WAV sinks are paced in real time by default, so latencies measured through them are the
ones a device would show; ``realtime=False`` writes as fast as possible (lockstep replay).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from vehicle_assist import clock, private
from vehicle_assist.errors import CodedError
from vehicle_assist.messages import SpeechRequest, Tier

log = logging.getLogger(__name__)

Listener = Callable[[str, SpeechRequest, int], None]
"""``fn(kind, request, t_perf_ns)`` with kind in "start", "end", "preempted", "dropped"."""

LISTENER_KINDS = ("start", "end", "preempted", "dropped")


class AudioOutError(CodedError):
    """The speaker could not be opened or written (code names the failure)."""


class Sink(Protocol):
    """Where the arbiter's PCM blocks go."""

    sample_rate: int
    realtime: bool
    """True when the arbiter must pace writes itself (the sink does not block like a device)."""

    def write(self, block: np.ndarray) -> None:
        """Write one block of float32 mono PCM at ``sample_rate``."""

    def begin(self, req: SpeechRequest) -> None:
        """A request starts playing (its first block follows)."""

    def finish(self, req: SpeechRequest, completed: bool) -> None:
        """A request stopped playing: completed, or pre-empted part-way."""

    def close(self) -> None:
        """Flush and release the output."""


class NullSink:
    """Discards the audio (still paced in real time unless ``realtime=False``)."""

    def __init__(self, sample_rate: int = 22050, realtime: bool = True) -> None:
        self.sample_rate, self.realtime = sample_rate, realtime
        self.samples_written = 0

    def write(self, block: np.ndarray) -> None:
        self.samples_written += len(block)

    def begin(self, req: SpeechRequest) -> None:
        pass

    def finish(self, req: SpeechRequest, completed: bool) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass
class Segment:
    """What one request actually put on the stream (truncated when pre-empted)."""

    request: SpeechRequest
    start_sample: int
    pcm: np.ndarray
    completed: bool
    t_ns: int | None = None
    """The clock's time when it began (``WavSink(now_ns=...)``; None without a clock)."""


class WavSink:
    """Everything written, in order, to one 16-bit WAV; also keeps per-request :class:`Segment` s.

    ``now_ns`` (a clock's ``now_ns``) stamps each segment with the time it began, so a replay can
    place what was played on the drive clock (the WAV itself has no gaps between requests)."""

    def __init__(self, path: Path | str, sample_rate: int = 22050, realtime: bool = True,
                 now_ns: Callable[[], int] | None = None) -> None:
        self.path = Path(path)
        self.now_ns = now_ns
        self.sample_rate, self.realtime = sample_rate, realtime
        self.segments: list[Segment] = []
        try:  # opened here (owner-only: what was said in the car), so a path we cannot write is one clear error
            self._file = private.open_file(self.path, "wb")
        except OSError as err:
            raise AudioOutError("wav-open-failed", f"cannot write {self.path}: {err.strerror or err}") from err
        self._wav = wave.open(self._file, "wb")
        self._wav.setnchannels(1)
        self._wav.setsampwidth(2)
        self._wav.setframerate(sample_rate)
        self._samples = 0
        self._current: list[np.ndarray] = []
        self._start = 0
        self._start_t: int | None = None
        self._lock = threading.Lock()

    def write(self, block: np.ndarray) -> None:
        with self._lock:
            self._wav.writeframes((np.clip(block, -1, 1) * 32767).astype("<i2").tobytes())
            self._current.append(block.copy())
            self._samples += len(block)

    def begin(self, req: SpeechRequest) -> None:
        with self._lock:
            self._current, self._start = [], self._samples
            self._start_t = self.now_ns() if self.now_ns else None

    def finish(self, req: SpeechRequest, completed: bool) -> None:
        with self._lock:
            pcm = np.concatenate(self._current) if self._current else np.zeros(0, np.float32)
            self.segments.append(Segment(req, self._start, pcm, completed, self._start_t))
            self._current = []

    def close(self) -> None:
        with self._lock:
            if self._wav is not None:
                self._wav.close()
                self._file.close()  # wave leaves a file object it was handed open
                self._wav = None


class SoundDeviceSink:
    """A real output device through sounddevice (blocking writes pace the stream)."""

    realtime = False

    def __init__(self, sample_rate: int = 22050, device: int | str | None = None) -> None:
        try:
            import sounddevice as sd

            self._stream = sd.OutputStream(samplerate=sample_rate, channels=1, dtype="float32",
                                           device=device, latency="low")
            self._stream.start()
        except Exception as err:  # PortAudio raises its own error types, or OSError without a library
            raise AudioOutError("no-audio-device", f"cannot open an output device ({err})") from err
        self.sample_rate = sample_rate

    def write(self, block: np.ndarray) -> None:
        self._stream.write(block.astype(np.float32).reshape(-1, 1))

    def begin(self, req: SpeechRequest) -> None:
        pass

    def finish(self, req: SpeechRequest, completed: bool) -> None:
        pass

    def close(self) -> None:
        self._stream.stop()
        self._stream.close()


def open_sink(spec: str, sample_rate: int = 22050) -> Sink:
    """``"null"`` | ``"wav:PATH"`` | ``"device"`` (or ``"device:NAME"``) -> a sink."""
    if spec == "null":
        return NullSink(sample_rate)
    if spec.startswith("wav:") and len(spec) > 4:
        return WavSink(spec[4:], sample_rate)
    if spec == "device" or spec.startswith("device:"):
        name = spec.partition(":")[2] or None
        return SoundDeviceSink(sample_rate, int(name) if name and name.isdigit() else name)
    raise AudioOutError("bad-sink", f"unknown audio sink {spec!r}; expected null, wav:PATH or device")


def resample(pcm: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Linear-interpolation resampling of mono float32 PCM (speech quality is enough here)."""
    pcm = np.asarray(pcm, dtype=np.float32).reshape(-1)
    if sr_in == sr_out or len(pcm) == 0:
        return pcm
    n_out = int(round(len(pcm) * sr_out / sr_in))
    x_out = np.arange(n_out) * (sr_in / sr_out)
    return np.interp(x_out, np.arange(len(pcm)), pcm).astype(np.float32)


class AudioArbiter:
    """The single owner of the speaker: a (tier, seq) queue played block by block by one thread."""

    def __init__(self, sink: Sink, block_ms: int = 20) -> None:
        if not 1 <= block_ms <= 200:
            raise AudioOutError("bad-block", f"block_ms must be in 1..200, got {block_ms}")
        self.sink = sink
        self.block_ms = block_ms
        self.block_samples = max(1, sink.sample_rate * block_ms // 1000)
        self.cancel_event = threading.Event()
        self.gain = 1.0
        self.stats = {"played": 0, "preempted": 0, "dropped": 0, "sink_errors": 0}
        self._queue: list[tuple[int, int, SpeechRequest]] = []
        self._seq = itertools.count()
        self._cv = threading.Condition()
        self._current: SpeechRequest | None = None
        self._stop_current = False
        self._closing = False
        self._listeners: list[Listener] = []
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> "AudioArbiter":
        """Start the writer thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="audio-arbiter", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop playback, end the writer thread and close the sink."""
        with self._cv:
            self._closing = True
            self._stop_current = True
            self._cv.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        self.sink.close()

    def __enter__(self) -> "AudioArbiter":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # --- the interface -----------------------------------------------------------------------

    def add_listener(self, fn: Listener) -> None:
        """Call ``fn(kind, req, t_perf_ns)`` on "start", "end", "preempted" and "dropped"."""
        self._listeners.append(fn)

    def begin_advisory(self) -> None:
        """A new advisory (answer) starts: an earlier pre-emption no longer applies to it."""
        self.cancel_event.clear()

    def say(self, req: SpeechRequest) -> None:
        """Queue a rendered request; an ALERT pre-empts advisory playback and flushes queued advisories.

        An advisory arriving while ``cancel_event`` is set belongs to an answer that was pre-empted
        (e.g. a sentence that was being rendered when the alert came): it is dropped, so the rest of
        a pre-empted answer never plays after the alert. A new answer calls :meth:`begin_advisory`.
        """
        if req.pcm is None or len(req.pcm) == 0:
            self._emit("dropped", req)
            return
        flushed: list[SpeechRequest] = []
        with self._cv:
            if self._closing or (req.tier != Tier.ALERT and self.cancel_event.is_set()):
                flushed.append(req)
                self.stats["dropped"] += 0 if self._closing else 1
            else:
                if req.tier == Tier.ALERT:
                    flushed = self._preempt_locked(Tier.ALERT) + self._supersede_locked(req.priority)
                heapq.heappush(self._queue, (int(req.tier), next(self._seq), req))
                self._cv.notify_all()
        for r in flushed:
            self._emit("dropped", r)

    def preempt(self, below: Tier = Tier.ALERT) -> None:
        """Stop playback of every tier lower in priority than ``below`` and flush those queued."""
        with self._cv:
            flushed = self._preempt_locked(below)
            self._cv.notify_all()
        for r in flushed:
            self._emit("dropped", r)

    def is_speaking(self) -> bool:
        """True while something is playing or queued (the self-hearing gate listens to this)."""
        with self._cv:
            return self._current is not None or bool(self._queue)

    def wait_idle(self, timeout_s: float | None = None) -> bool:
        """Block until nothing is playing or queued; False on timeout."""
        with self._cv:
            return self._cv.wait_for(lambda: self._current is None and not self._queue, timeout_s)

    def set_gain(self, gain: float) -> None:
        """Output gain (0..4), applied per block; the voice lane's louder/quieter act here."""
        self.gain = float(min(4.0, max(0.0, gain)))

    # --- internals ---------------------------------------------------------------------------

    def _preempt_locked(self, below: Tier) -> list[SpeechRequest]:
        keep = [item for item in self._queue if item[0] <= int(below)]
        flushed = [item[2] for item in sorted(self._queue) if item[0] > int(below)]
        self._queue = keep
        heapq.heapify(self._queue)
        if self._current is not None and int(self._current.tier) > int(below):
            self._stop_current = True
        if below <= Tier.ALERT:
            self.cancel_event.set()
        self.stats["dropped"] += len(flushed)
        return flushed

    def _supersede_locked(self, priority: int) -> list[SpeechRequest]:
        """Stop the alert playing and drop those queued whose priority is below ``priority``."""
        flushed = [item[2] for item in sorted(self._queue) if item[0] == int(Tier.ALERT) and item[2].priority < priority]
        if flushed:
            self._queue = [item for item in self._queue if item[2] not in flushed]
            heapq.heapify(self._queue)
            self.stats["dropped"] += len(flushed)
        cur = self._current
        if cur is not None and cur.tier == Tier.ALERT and cur.priority < priority:
            self._stop_current = True
        return flushed

    def _emit(self, kind: str, req: SpeechRequest) -> None:
        t = clock.perf_ns()
        for fn in list(self._listeners):
            try:
                fn(kind, req, t)
            except Exception:  # a listener's bug must never silence the speaker
                log.exception("audio listener failed on %s", kind)

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._queue and not self._closing:
                    self._cv.wait()
                if self._closing:
                    return
                _, _, req = heapq.heappop(self._queue)
                self._current, self._stop_current = req, False
            completed = self._play(req)
            with self._cv:
                self._current = None
                self.stats["played" if completed else "preempted"] += 1
                self._cv.notify_all()
            self._emit("end" if completed else "preempted", req)

    def _play(self, req: SpeechRequest) -> bool:
        """Write ``req`` block by block; return False if it was stopped part-way."""
        pcm = resample(req.pcm, req.sample_rate, self.sink.sample_rate)
        n, sr = self.block_samples, self.sink.sample_rate
        t0 = clock.perf_ns()
        wake = threading.Event()
        try:
            self.sink.begin(req)
        except Exception:
            log.exception("audio sink failed to begin")
        for k, i in enumerate(range(0, len(pcm), n)):
            with self._cv:
                if self._stop_current:
                    self._finish(req, False)
                    return False
            try:
                self.sink.write(pcm[i:i + n] * self.gain if self.gain != 1.0 else pcm[i:i + n])
            except Exception:  # a broken device degrades to silence, never a crash of the lane
                log.exception("audio sink write failed")
                self.stats["sink_errors"] += 1
                self._finish(req, False)
                return False
            if k == 0:
                self._emit("start", req)
            if self.sink.realtime:  # pace as a device would: block k ends at t0 + (k+1)*block
                due = t0 + int((i + n) * 1e9 / sr)
                delay = (due - clock.perf_ns()) / 1e9
                if delay > 0:
                    wake.wait(delay)
        self._finish(req, True)
        return True

    def _finish(self, req: SpeechRequest, completed: bool) -> None:
        try:
            self.sink.finish(req, completed)
        except Exception:
            log.exception("audio sink failed to finish")


__all__ = ["AudioArbiter", "AudioOutError", "NullSink", "WavSink", "SoundDeviceSink", "Segment",
           "Sink", "open_sink", "resample", "LISTENER_KINDS"]
