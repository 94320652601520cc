"""Voice-activity detection: a pure state machine over audio and elapsed time.

Each 20 ms frame gets its energy in the speech band (300-4000 Hz), which ignores most of the
low-frequency rumble of a car. A noise floor is tracked (falls fast, rises slowly while no one
speaks); a frame is speech when it stands ``threshold_db`` above the floor. When the road is loud (the floor
above ``subtract_engage_dbfs``, with hysteresis) and ``subtract`` is on, a frame is judged instead on its spectrally
subtracted band energy (a per-bin noise spectrum tracked on non-speech frames); quieter audio keeps the plain rule
exactly. An utterance opens
when enough speech falls within a short window, ends after ``trailing_silence_s`` of non-speech or
at ``max_utterance_s``, and is dropped when shorter than ``min_utterance_s``. Time comes in as an
argument (``elapsed_s``, seconds of stream time), so results are the same live, in replay and in
tests.

Audio the self-hearing gate mutes (the car is speaking) is not fed; :meth:`VadSegmenter.gated` says
how long it was. An utterance open at that moment is held across it: the muted span counts neither
as speech nor as silence, so the utterance neither ends nor takes in the car's voice, and the
driver's words after the playback continue it. If they do not come, the usual trailing silence,
counted afresh from the first audio heard after the playback, ends it with what was heard.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace

import numpy as np

from vehicle_assist.messages import Utterance

BAND_HZ = (300.0, 4000.0)
FLOOR_RISE_DB_S = 3.0
"""How fast the noise floor may rise while no one speaks (dB per second)."""
FLOOR_RISE_SPEECH_DB_S = 0.5
"""How fast it rises while frames look like speech (lets it escape a jump in road noise)."""


@dataclass(frozen=True)
class VadOptions:
    """VAD thresholds; the defaults match ``configs/default.yaml`` (speech.vad)."""

    frame_ms: int = 20
    threshold_db: float = 7.0
    min_energy_dbfs: float = -55.0
    start_s: float = 0.12
    min_utterance_s: float = 0.16
    max_utterance_s: float = 12.0
    trailing_silence_s: float = 0.5
    pre_roll_s: float = 0.25
    subtract: bool = True
    """Noise-adaptive front end: when the tracked noise floor stands above ``subtract_engage_dbfs``, a frame is
    judged on its spectrally subtracted band energy instead (see :class:`VadSegmenter`)."""
    subtract_factor: float = 2.0
    subtract_threshold_db: float = 5.0
    subtract_engage_dbfs: float = -50.0
    subtract_release_db: float = 3.0

    @classmethod
    def from_settings(cls, settings) -> "VadOptions":
        """Build from a :class:`~vehicle_assist.config.VadSettings`."""
        return cls(**settings.model_dump())


@dataclass(frozen=True)
class VadEvent:
    """``start`` (speech began), ``end`` (utterance ready) or ``discard`` (too short), at stream time ``t_s``.
    ``onset_s`` (start): when the first speech frame began (``t_s`` is that minus the pre-roll; the event is
    emitted up to ``2 * start_s`` later). ``short`` (discard): the audio of the span too short to be an
    utterance on its own (a ``short`` :class:`Utterance`; the end of speech may join it to a neighbour).
    ``pause`` (only from a segmenter made with ``candidates=True``): the open utterance's speech stopped 0.2 s ago;
    ``candidate`` is the utterance its ``end`` event will carry if no more speech comes (the same audio and times),
    so that it can be transcribed while the trailing silence runs."""

    kind: str
    t_s: float
    utterance: Utterance | None = None
    reason: str = ""
    onset_s: float | None = None
    short: Utterance | None = None
    candidate: Utterance | None = None


def _band_spectrum(frames: np.ndarray, sample_rate: int) -> tuple[np.ndarray, float]:
    """The speech-band bins of each row's windowed power spectrum, and the divisor that (after x 2) makes their sum a power."""
    n = frames.shape[1]
    window = np.hanning(n).astype(np.float32)
    spec = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
    freqs = np.fft.rfftfreq(n, 1.0 / sample_rate)
    band = (freqs >= BAND_HZ[0]) & (freqs <= BAND_HZ[1])
    return spec[:, band], np.sum(window ** 2) * n


def band_energy_and_bins(frames: np.ndarray, sample_rate: int, bins: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Speech-band energy (dBFS-like) of each row of ``frames`` (n_frames x frame_len) and, with ``bins``, its
    per-bin band power (scaled so that a row's sum is its band power), from one spectrum."""
    spec, denom = _band_spectrum(frames, sample_rate)
    power = spec.sum(axis=1) * 2.0 / denom
    return 10.0 * np.log10(power + 1e-12), (spec * 2.0 / denom if bins else None)


SUBTRACT_TAU_S = 0.4
"""Time constant of the per-bin noise spectrum on non-speech frames (ten times slower during speech)."""


def band_energy_db(frames: np.ndarray, sample_rate: int) -> np.ndarray:
    """Speech-band energy (dBFS-like) of each row of ``frames`` (n_frames x frame_len)."""
    return band_energy_and_bins(frames, sample_rate, bins=False)[0]


class VadSegmenter:
    """Cut a stream of PCM into utterances. ``process(chunk, elapsed_s)`` returns the events it caused."""

    def __init__(self, options: VadOptions = VadOptions(), sample_rate: int = 16000, origin_ns: int = 0,
                 candidates: bool = False) -> None:
        self.opt, self.sr, self.origin_ns = options, sample_rate, origin_ns
        self.candidates = candidates  # emit ``pause`` events with the utterance as it would end (speculative ASR)
        self.frame_len = sample_rate * options.frame_ms // 1000
        self.frame_s = self.frame_len / sample_rate
        self.reset()

    def reset(self) -> None:
        """Forget everything (noise floor included)."""
        self._pending = np.zeros(0, np.float32)
        self._pending_t = 0.0
        self.floor_db: float | None = None
        self._history: deque[tuple[float, np.ndarray, bool]] = deque(
            maxlen=max(1, int(round((self.opt.pre_roll_s + 2 * self.opt.start_s) / self.frame_s)) + 1))
        self._utt: list[np.ndarray] | None = None
        self._utt_start = 0.0
        self._speech_start = 0.0
        self._last_speech_end = 0.0
        self._held_s = 0.0  # muted playback the open utterance was held across (its times are shifted by it)
        self._resumed = False
        self._offered = False  # a pause candidate was given since the last speech frame
        self._noise_bins: np.ndarray | None = None  # per-bin noise spectrum (subtract front end)
        self.subtracting = False  # the subtract front end is engaged (noise floor high)
        self.subtract_frames = 0  # frames judged by it (for benches and tests)

    @property
    def in_speech(self) -> bool:
        """True while an utterance is open."""
        return self._utt is not None

    def settled_s(self) -> float | None:
        """Stream time up to which no utterance can still be announced as starting (every onset at or before
        it has been announced): the latest audio's end, or just before the earliest speech frame that may yet
        open one (one within ``2 * start_s`` of the latest audio). None while an utterance is open or before
        any audio. A start is announced up to ``2 * start_s`` after its onset; this says when waiting longer
        is pointless (no speech frame pending), so the end of speech need not wait out that lag in silence."""
        if self._utt is not None or not self._history:
            return None
        t_last = self._history[-1][0] + self.frame_s
        pending = [h[0] for h in self._history if h[2] and h[0] >= t_last - 2 * self.opt.start_s - 1e-9]
        return pending[0] - 1e-6 if pending else t_last

    def process(self, chunk: np.ndarray, elapsed_s: float) -> list[VadEvent]:
        """Feed a block of PCM that starts at stream time ``elapsed_s``; return start/end/discard events."""
        chunk = np.asarray(chunk, dtype=np.float32).reshape(-1)
        if len(self._pending) == 0:
            self._pending_t = elapsed_s
        self._pending = np.concatenate([self._pending, chunk])
        n = len(self._pending) // self.frame_len
        if n == 0:
            return []
        frames = self._pending[: n * self.frame_len].reshape(n, self.frame_len)
        t0 = self._pending_t
        self._pending = self._pending[n * self.frame_len:]
        self._pending_t = t0 + n * self.frame_s
        energies, bins = band_energy_and_bins(frames, self.sr, bins=self.opt.subtract)
        events: list[VadEvent] = []
        for i in range(n):
            events.extend(self._step(t0 + i * self.frame_s, frames[i], float(energies[i]),
                                     None if bins is None else bins[i]))
        return events

    def gated(self, duration_s: float) -> None:
        """``duration_s`` of stream time was muted (the car spoke) and not fed. An open utterance is held:
        its clock is moved on by the muted span, so the span is neither speech nor silence and the next
        audio continues it. With no utterance open, nothing changes (the start window looks at frame
        times, so audio from before the playback never joins speech after it)."""
        self._pending = np.zeros(0, np.float32)  # a part-frame from before the playback is not joined to after
        if self._utt is None or duration_s <= 0:
            return
        self._utt_start += duration_s
        self._speech_start += duration_s
        self._last_speech_end += duration_s
        self._held_s += duration_s
        self._resumed = True  # the trailing silence starts again with the first audio heard after it

    def flush(self, elapsed_s: float, reason: str = "flush") -> list[VadEvent]:
        """Close an open utterance now (end of stream, push-to-talk button released)."""
        if self._utt is None:
            return []
        return [self._close(elapsed_s, reason, end_t=max(self._last_speech_end, elapsed_s))]

    def _is_speech(self, e_db: float) -> bool:
        return e_db > self.opt.min_energy_dbfs and self.floor_db is not None and e_db > self.floor_db + self.opt.threshold_db

    def _track_floor(self, e_db: float, speech: bool) -> None:
        if self.floor_db is None:
            self.floor_db = e_db
        elif e_db < self.floor_db:
            self.floor_db += 0.5 * (e_db - self.floor_db)
        else:
            rate = FLOOR_RISE_SPEECH_DB_S if speech else FLOOR_RISE_DB_S
            self.floor_db += min(e_db - self.floor_db, rate * self.frame_s)

    def _subtracted_speech(self, e_db: float, p: np.ndarray) -> bool:
        """Spectral subtraction in the band: the energy of max(P - a N, 0) against N exp(-a) (what it leaves of
        noise alone, for exponentially distributed bin powers) plus ``subtract_threshold_db``."""
        a, n = self.opt.subtract_factor, self._noise_bins
        rest = float(np.maximum(p - a * n, 0.0).sum())
        floor = float(n.sum()) * np.exp(-a)
        return (e_db > self.opt.min_energy_dbfs and
                10.0 * np.log10(rest + 1e-12) > 10.0 * np.log10(floor + 1e-12) + self.opt.subtract_threshold_db)

    def _judge(self, e_db: float, p: np.ndarray | None) -> bool:
        """Speech or not. The shipped rule (energy over the floor) unless the noise-adaptive front end is on and
        the noise floor is high (engaged above ``subtract_engage_dbfs``, released ``subtract_release_db`` below it)."""
        if p is None:
            return self._is_speech(e_db)
        if self._noise_bins is None:
            self._noise_bins = p.astype(np.float64).copy()
        if self.subtracting:
            self.subtracting = self.floor_db > self.opt.subtract_engage_dbfs - self.opt.subtract_release_db
        else:
            self.subtracting = self.floor_db > self.opt.subtract_engage_dbfs
        if self.subtracting:
            self.subtract_frames += 1
            speech = self._subtracted_speech(e_db, p)
        else:
            speech = self._is_speech(e_db)
        k = self.frame_s / SUBTRACT_TAU_S / (10.0 if speech else 1.0)
        self._noise_bins += k * (p - self._noise_bins)
        return speech

    def _step(self, t: float, frame: np.ndarray, e_db: float, bins: np.ndarray | None = None) -> list[VadEvent]:
        if self.floor_db is None:
            self.floor_db = e_db
        speech = self._judge(e_db, bins)
        self._track_floor(e_db, speech)
        t_end = t + self.frame_s
        if self._utt is None:
            self._history.append((t, frame, speech))
            window = [h for h in self._history if h[0] >= t_end - 2 * self.opt.start_s]
            if sum(h[2] for h in window) * self.frame_s + 1e-9 < self.opt.start_s:
                return []
            first = next(h[0] for h in window if h[2])
            start = first - self.opt.pre_roll_s
            kept = [h for h in self._history if h[0] >= start - 1e-9]
            self._utt = [h[1] for h in kept]
            self._utt_start = kept[0][0]
            self._speech_start = first
            self._last_speech_end = t_end
            self._history.clear()
            return [VadEvent("start", self._utt_start, onset_s=first)]
        self._utt.append(frame)
        if self._resumed:  # the driver gets the whole trailing silence after a playback to go on
            self._resumed = False
            self._last_speech_end = max(self._last_speech_end, t)
        if speech:
            self._last_speech_end = t_end
            self._offered = False
        if t_end - self._utt_start >= self.opt.max_utterance_s - 1e-6:
            return [self._close(t_end, "max-length", end_t=t_end)]
        tail = min(0.2, self.opt.trailing_silence_s)  # an utterance's audio ends this long after its last speech
        if t_end - self._last_speech_end >= self.opt.trailing_silence_s - 1e-6:
            return [self._close(t_end, "silence", end_t=self._last_speech_end + tail)]
        if self.candidates and not self._offered and t_end - self._last_speech_end >= tail - 1e-6 \
                and self._last_speech_end - self._speech_start >= self.opt.min_utterance_s:
            self._offered = True  # its audio is complete should the trailing silence run out: hand it on to transcribe
            return [VadEvent("pause", t_end, candidate=self._utterance(self._last_speech_end + tail))]
        return []

    def _utterance(self, end_t: float, flush: bool = False) -> Utterance:
        """The open utterance's audio up to ``end_t`` (with the part-frame pending when flushed)."""
        frames, start, held = self._utt or [], self._utt_start, self._held_s
        keep = max(1, int(round((end_t - start) / self.frame_s)))
        pcm = np.concatenate(frames[:keep] + ([self._pending] if flush else [])) if frames else self._pending
        return Utterance(self.origin_ns + int((start - held) * 1e9), self.origin_ns + int((start + len(pcm) / self.sr) * 1e9),
                         pcm.astype(np.float32), self.sr, round(held, 3))

    def _close(self, t_now: float, reason: str, end_t: float) -> VadEvent:
        utt = self._utterance(end_t, reason == "flush")
        self._utt, self._held_s, self._resumed = None, 0.0, False
        if self._last_speech_end - self._speech_start < self.opt.min_utterance_s:
            return VadEvent("discard", t_now, None, "too-short", short=replace(utt, short=True))
        return VadEvent("end", t_now, utt, reason)


def segment(pcm: np.ndarray, sample_rate: int = 16000, options: VadOptions = VadOptions(),
            block_ms: int = 100, origin_ns: int = 0) -> list[Utterance]:
    """All utterances in a recording (the stream is flushed at its end)."""
    vad = VadSegmenter(options, sample_rate, origin_ns)
    step = sample_rate * block_ms // 1000
    out: list[Utterance] = []
    for i in range(0, len(pcm), step):
        out += [e.utterance for e in vad.process(pcm[i:i + step], i / sample_rate) if e.utterance is not None]
    out += [e.utterance for e in vad.flush(len(pcm) / sample_rate) if e.utterance is not None]
    return out
