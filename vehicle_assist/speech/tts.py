"""Text -> PCM through pyttsx3 over espeak-ng. Rendering only: this module never plays audio.

Audio reaches the speaker only through :mod:`vehicle_assist.audio_out` (the arbiter). pyttsx3's
espeak driver initialises espeak-ng in retrieval mode; we take the samples from pyttsx3's espeak
binding with a synth callback of our own and wait with ``espeak_Synchronize``. We do not use the
driver's ``save_to_file``: it writes the WAV *before* appending the samples delivered with the
final event, so the end of an utterance (sometimes all of a short one) was lost, and its polling
loop adds up to 10 ms. One engine per process, guarded by a lock, so repeated calls never hang.
"""

from __future__ import annotations

import ctypes
import io
import re
import threading
import logging
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vehicle_assist import clock

log = logging.getLogger(__name__)

_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+")


@dataclass(frozen=True, eq=False)
class Rendered:
    """PCM of one rendered text: float32 mono in [-1, 1]."""

    text: str
    pcm: np.ndarray
    sample_rate: int
    render_ms: float

    @property
    def duration_s(self) -> float:
        return len(self.pcm) / self.sample_rate if self.sample_rate else 0.0

    def wav_bytes(self) -> bytes:
        return pcm_to_wav(self.pcm, self.sample_rate)


class TTSError(Exception):
    """Speech could not be rendered (engine missing or failed)."""


SAMPLE_RATE = 22050
"""espeak-ng's output rate."""


class TTSRenderer:
    """Render text to PCM with pyttsx3 + espeak-ng."""

    _lock = threading.Lock()
    _engine = None
    _espeak = None
    _chunks: list[bytes] = []
    _done = threading.Event()
    _timeout_s = 20.0

    def __init__(self, voice: str | None = "gmw/en", rate: int = 175, volume: float = 1.0) -> None:
        self.voice, self.rate, self.volume = voice, rate, volume

    @classmethod
    def _get_engine(cls):
        if cls._engine is None:
            try:
                import pyttsx3
                from pyttsx3.drivers import _espeak

                cls._engine = pyttsx3.init("espeak")  # initialises espeak-ng (retrieval mode) once per process
            except Exception as err:  # pyttsx3 raises bare RuntimeError/OSError when espeak-ng is missing
                raise TTSError(f"pyttsx3/espeak-ng unavailable: {err}. Install espeak-ng (apt-get install espeak-ng).") from err
            cls._espeak = _espeak
            _espeak.SetSynthCallback(cls._on_synth)
        return cls._engine

    @classmethod
    def _on_synth(cls, wav, numsamples, events) -> int:
        """espeak-ng's callback: keep every buffer, then note the end of the message."""
        if numsamples > 0:
            cls._chunks.append(ctypes.string_at(wav, numsamples * ctypes.sizeof(ctypes.c_short)))
        i = 0
        while events[i].type != cls._espeak.EVENT_LIST_TERMINATED:
            if events[i].type == cls._espeak.EVENT_MSG_TERMINATED:
                cls._done.set()
            i += 1
        return 0

    def _apply_settings(self, rate: int) -> None:
        es = self._espeak
        if self.voice and es.SetVoiceByName(self.voice.encode("utf-8")) != 0:
            log.warning("espeak-ng has no voice %r (see `espeak-ng --voices`, column File); using its default", self.voice)
            self.voice = None  # keep espeak-ng's default rather than fail every call
        es.SetParameter(es.RATE, int(rate), 0)
        es.SetParameter(es.VOLUME, int(round(self.volume * 100)), 0)

    def render(self, text: str, rate: int | None = None) -> Rendered:
        """Render ``text`` (any length) to PCM. Empty text gives empty PCM."""
        start = clock.perf_ns()
        text = " ".join(text.split())
        if not text:
            return Rendered(text, np.zeros(0, np.float32), SAMPLE_RATE, 0.0)
        with self._lock:
            self._get_engine()
            self._apply_settings(rate or self.rate)
            cls = type(self)
            cls._chunks = []
            cls._done.clear()
            es = self._espeak
            es.Synth(text.encode("utf-8"), flags=es.ENDPAUSE | es.CHARS_UTF8)
            es.Synchronize()
            if not cls._done.wait(self._timeout_s):
                es.Cancel()
                raise TTSError(f"espeak-ng did not finish {text[:40]!r} within {self._timeout_s:.0f} s")
            raw = b"".join(cls._chunks)
        if not raw:
            raise TTSError(f"espeak-ng produced no audio for {text[:40]!r}")
        pcm = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
        return Rendered(text, pcm, SAMPLE_RATE, (clock.perf_ns() - start) / 1e6)

    def render_sentences(self, text: str, rate: int | None = None):
        """Yield one :class:`Rendered` per sentence, so playback can start before the rest is ready."""
        for sentence in split_sentences(text):
            yield self.render(sentence, rate)


def split_sentences(text: str) -> list[str]:
    """Split text at sentence ends; keeps each sentence's punctuation."""
    return [s.strip() for s in _SENTENCE_END.split(" ".join(text.split())) if s.strip()]


def read_wav(path: Path | str) -> tuple[np.ndarray, int]:
    """Read a 16-bit PCM WAV as float32 mono."""
    with wave.open(str(path), "rb") as w:
        sr, ch, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
        raw = w.readframes(w.getnframes())
    if width != 2:
        raise TTSError(f"{path}: expected 16-bit PCM, got {8 * width}-bit")
    pcm = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    if ch > 1:
        pcm = pcm.reshape(-1, ch).mean(axis=1)
    return pcm, sr


def pcm_to_wav(pcm: np.ndarray, sample_rate: int) -> bytes:
    """float32 mono PCM -> 16-bit WAV bytes."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes((np.clip(pcm, -1, 1) * 32767).astype("<i2").tobytes())
    return buf.getvalue()


def write_wav(path: Path | str, pcm: np.ndarray, sample_rate: int) -> Path:
    """Write PCM as a 16-bit WAV, owner-only (spoken answers and questions are trip data)."""
    from vehicle_assist import private

    return private.write_bytes(path, pcm_to_wav(pcm, sample_rate))
