"""Audio in: files (WAV/FLAC/MP3, the audio track of a recorded drive) and the microphone.

Everything leaves this module as float32 mono PCM at 16 kHz. Files are read with soundfile and,
when libsndfile cannot (video containers, unusual codecs), decoded by ffmpeg. The microphone is
read through sounddevice/PortAudio; a machine without one gets :class:`AudioError` with code
``no-microphone`` and a message that says so, never a traceback.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from math import gcd
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from vehicle_assist.errors import CodedError
from vehicle_assist.messages import AudioChunk

SAMPLE_RATE = 16000


class AudioError(CodedError):
    """Audio could not be read. ``code`` is one of: audio-missing, audio-unreadable, audio-empty,
    no-microphone, mic-failed."""

    bracketed = True


def resample(pcm: np.ndarray, sr_in: int, sr_out: int = SAMPLE_RATE) -> np.ndarray:
    """Polyphase resampling of mono float PCM (identity when the rates match)."""
    if sr_in == sr_out or len(pcm) == 0:
        return pcm.astype(np.float32, copy=False)
    from scipy.signal import resample_poly

    g = gcd(sr_in, sr_out)
    return resample_poly(pcm, sr_out // g, sr_in // g).astype(np.float32)


def to_mono(data: np.ndarray) -> np.ndarray:
    """Average channels of a (frames, channels) array; 1-D stays."""
    return data.mean(axis=1) if data.ndim == 2 else data


def load_audio(path: Path | str, sample_rate: int = SAMPLE_RATE) -> tuple[np.ndarray, int]:
    """Read any audio file (or a video's audio track) as float32 mono PCM at ``sample_rate``."""
    path = Path(path)
    if not path.is_file():
        raise AudioError("audio-missing", f"{path}: no such file")
    try:
        import soundfile as sf

        data, sr = sf.read(str(path), dtype="float32", always_2d=False)
        pcm = resample(to_mono(np.asarray(data, dtype=np.float32)), int(sr), sample_rate)
    except Exception as sf_err:  # libsndfile cannot read it: try ffmpeg (MP4 tracks, odd codecs)
        pcm = _ffmpeg_decode(path, sample_rate, sf_err)
    if pcm.size == 0:
        raise AudioError("audio-empty", f"{path}: the file holds no audio samples")
    if not np.all(np.isfinite(pcm)):
        raise AudioError("audio-unreadable", f"{path}: the audio holds non-finite samples")
    return pcm, sample_rate


def _ffmpeg_decode(path: Path, sample_rate: int, first_err: Exception, max_s: float | None = None) -> np.ndarray:
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise AudioError("audio-unreadable", f"{path}: soundfile could not read it ({first_err}) and ffmpeg is not installed")
    cmd = [exe, "-nostdin", "-v", "error", "-i", str(path), "-vn", "-ac", "1", "-ar", str(sample_rate),
           *(["-t", str(max_s)] if max_s else []), "-f", "f32le", "-"]
    proc = subprocess.run(cmd, capture_output=True, timeout=120, check=False)
    if proc.returncode != 0:
        msg = proc.stderr.decode(errors="replace").strip().splitlines()
        raise AudioError("audio-unreadable", f"{path}: not a readable audio file ({msg[-1] if msg else first_err})")
    return np.frombuffer(proc.stdout, dtype="<f4").astype(np.float32)


AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac", ".wma", ".aiff", ".aif",
                  ".mp4", ".mkv", ".mov", ".avi", ".webm")
"""File name endings taken as a file (not a sound-device name) wherever either may be given."""


def looks_like_file(spec: str) -> bool:
    """Whether a ``--mic`` style value names a file rather than a device: it exists as a file, has a
    path separator, or ends like an audio or video file."""
    p = Path(spec).expanduser()
    return p.is_file() or "/" in spec or p.suffix.lower() in AUDIO_SUFFIXES


def probe(path: Path | str) -> None:
    """Raise :class:`AudioError` now if ``path`` cannot give audio (missing, unreadable, no samples),
    reading only its header, or its first second through ffmpeg; the whole file is not decoded."""
    path = Path(path)
    if not path.is_file():
        raise AudioError("audio-missing", f"{path}: no such file")
    try:
        import soundfile as sf

        frames = sf.info(str(path)).frames
    except Exception as sf_err:  # libsndfile cannot read it: ask ffmpeg for its first second
        pcm = _ffmpeg_decode(path, SAMPLE_RATE, sf_err, max_s=1.0)
        frames = len(pcm)
    if frames <= 0:
        raise AudioError("audio-empty", f"{path}: the file holds no audio samples")


def chunks(pcm: np.ndarray, sample_rate: int, block_ms: int, t0_ns: int = 0) -> Iterator[AudioChunk]:
    """Cut PCM into blocks of ``block_ms``; each chunk is stamped with its start time."""
    step = max(1, sample_rate * block_ms // 1000)
    for i in range(0, len(pcm), step):
        yield AudioChunk(t0_ns + i * 1_000_000_000 // sample_rate, pcm[i:i + step], sample_rate)


@dataclass
class FileSource:
    """Replay a file as a stream of chunks stamped in file time (from ``t0_ns``)."""

    path: Path | str
    block_ms: int = 100
    t0_ns: int = 0
    sample_rate: int = SAMPLE_RATE

    def check(self) -> None:
        """Raise :class:`AudioError` now if the file cannot give audio (see :func:`probe`)."""
        probe(self.path)

    def __iter__(self) -> Iterator[AudioChunk]:
        pcm, sr = load_audio(self.path, self.sample_rate)
        return chunks(pcm, sr, self.block_ms, self.t0_ns)


def input_devices() -> list[dict]:
    """Input-capable sound devices known to PortAudio (empty when none or PortAudio is missing)."""
    try:
        import sounddevice as sd

        return [d for d in sd.query_devices() if d.get("max_input_channels", 0) > 0]
    except Exception:  # PortAudio missing or no audio subsystem at all
        return []


class MicSource:
    """The live microphone through sounddevice; yields 16 kHz mono chunks stamped by ``now_ns``."""

    def __init__(self, now_ns: Callable[[], int], device: str | int | None = None, block_ms: int = 100,
                 sample_rate: int = SAMPLE_RATE) -> None:
        self.now_ns, self.device, self.block_ms, self.sample_rate = now_ns, device, block_ms, sample_rate

    def check(self) -> dict:
        """The input device that will be used; raises AudioError('no-microphone') when there is none."""
        devices = input_devices()
        if not devices:
            raise AudioError("no-microphone", "no microphone found: PortAudio reports no input device on this "
                             "machine. Pass an audio file instead (vehicle-assist listen FILE).")
        if self.device is None:
            return devices[0]
        for d in devices:
            if self.device == d.get("index") or (isinstance(self.device, str) and self.device in d.get("name", "")):
                return d
        raise AudioError("no-microphone", f"input device {self.device!r} not found; present: "
                         + ", ".join(d.get("name", "?") for d in devices))

    def __iter__(self) -> Iterator[AudioChunk]:
        self.check()
        import queue

        import sounddevice as sd

        blocks: queue.Queue[np.ndarray] = queue.Queue(maxsize=100)

        def on_audio(indata, frames, time_info, status) -> None:  # PortAudio's thread
            if not blocks.full():
                blocks.put(indata[:, 0].copy())

        try:
            stream = sd.InputStream(device=self.device, channels=1, samplerate=self.sample_rate, dtype="float32",
                                    blocksize=self.sample_rate * self.block_ms // 1000, callback=on_audio)
        except Exception as err:
            raise AudioError("mic-failed", f"could not open the microphone: {err}") from err
        with stream:
            while True:
                pcm = blocks.get()
                yield AudioChunk(self.now_ns() - len(pcm) * 1_000_000_000 // self.sample_rate, pcm, self.sample_rate)


def rms_db(pcm: np.ndarray) -> float:
    """RMS level in dBFS (-120 for silence)."""
    return float(10 * np.log10(np.mean(np.square(pcm, dtype=np.float64)) + 1e-12)) if len(pcm) else -120.0


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float, offset: int = 0) -> np.ndarray:
    """Add ``noise`` (looped, starting at ``offset``) to ``speech`` at ``snr_db`` over the speech's active part."""
    if len(noise) == 0:
        raise AudioError("audio-empty", "noise recording is empty")
    idx = (np.arange(len(speech)) + offset) % len(noise)
    n = noise[idx].astype(np.float64)
    active = speech[np.abs(speech) > 0.02 * (np.abs(speech).max() + 1e-9)]
    p_speech = np.mean(np.square(active, dtype=np.float64)) if len(active) else 0.0
    p_noise = np.mean(np.square(n)) + 1e-12
    gain = np.sqrt(p_speech / (p_noise * 10 ** (snr_db / 10)))
    out = speech.astype(np.float64) + gain * n
    peak = np.abs(out).max()
    return (out / peak * 0.95 if peak > 0.99 else out).astype(np.float32)
