"""Text -> PCM through pyttsx3 over espeak-ng. Rendering only: this module never plays audio.

Audio reaches the speaker only through :mod:`vehicle_assist.audio_out` (the arbiter). pyttsx3's
espeak driver writes the synthesised samples to a WAV file (``save_to_file``); we read them back
as float32 PCM. One engine per process, guarded by a lock, so repeated calls do not hang
(pyttsx3 engines are process-wide singletons and are not re-entrant).
"""

from __future__ import annotations

import contextlib
import io
import re
import tempfile
import threading
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vehicle_assist import clock

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


class TTSRenderer:
    """Render text to PCM with pyttsx3 + espeak-ng."""

    _lock = threading.Lock()
    _engine = None

    def __init__(self, voice: str | None = "en-gb", rate: int = 175, volume: float = 1.0) -> None:
        self.voice, self.rate, self.volume = voice, rate, volume
        self._tmpdir = Path(tempfile.mkdtemp(prefix="va-tts-"))

    @classmethod
    def _get_engine(cls):
        if cls._engine is None:
            try:
                import pyttsx3

                cls._engine = pyttsx3.init("espeak")
            except Exception as err:  # pyttsx3 raises bare RuntimeError/OSError when espeak-ng is missing
                raise TTSError(f"pyttsx3/espeak-ng unavailable: {err}. Install espeak-ng (apt-get install espeak-ng).") from err
        return cls._engine

    def render(self, text: str, rate: int | None = None) -> Rendered:
        """Render ``text`` (any length) to PCM. Empty text gives empty PCM."""
        start = clock.perf_ns()
        text = " ".join(text.split())
        if not text:
            return Rendered(text, np.zeros(0, np.float32), 22050, 0.0)
        with self._lock:
            engine = self._get_engine()
            if self.voice:
                with contextlib.suppress(Exception):
                    engine.setProperty("voice", self.voice)
            engine.setProperty("rate", rate or self.rate)
            engine.setProperty("volume", self.volume)
            out = self._tmpdir / "render.wav"
            out.unlink(missing_ok=True)
            with contextlib.redirect_stdout(io.StringIO()):  # the driver prints "Audio saved to ..."
                engine.save_to_file(text, str(out))
                engine.runAndWait()
            if not out.is_file():
                raise TTSError(f"espeak-ng produced no audio for {text[:40]!r}")
            pcm, sr = read_wav(out)
        return Rendered(text, pcm, sr, (clock.perf_ns() - start) / 1e6)

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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pcm_to_wav(pcm, sample_rate))
    return path
