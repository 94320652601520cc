"""Audio in: files (WAV/FLAC/MP3, the audio track of a recorded drive) and the microphone.

Everything leaves this module as float32 mono PCM at 16 kHz. Files are read block by block
(:func:`stream_audio`) with soundfile and resampled per block, or, when libsndfile cannot read them
(video containers, unusual codecs), decoded through an ffmpeg pipe: any length of file in bounded
memory. :func:`load_audio` holds a whole file and takes a length limit for whole-file modes. The microphone is
read through sounddevice/PortAudio; a machine without one gets :class:`AudioError` with code
``no-microphone`` and a message that says so, never a traceback.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from math import gcd
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from vehicle_assist.errors import CodedError
from vehicle_assist.messages import AudioChunk

SAMPLE_RATE = 16000


class AudioError(CodedError):
    """Audio could not be read. ``code`` is one of: audio-missing, audio-unreadable, audio-empty,
    audio-too-long, no-microphone, mic-failed."""

    bracketed = True


def resample(pcm: np.ndarray, sr_in: int, sr_out: int = SAMPLE_RATE) -> np.ndarray:
    """Polyphase resampling of mono float PCM (identity when the rates match)."""
    if sr_in == sr_out or len(pcm) == 0:
        return pcm.astype(np.float32, copy=False)
    from scipy.signal import resample_poly

    g = gcd(sr_in, sr_out)
    return resample_poly(pcm, sr_out // g, sr_in // g).astype(np.float32)


class StreamResampler:
    """:func:`resample` of a stream, block by block, with the same samples as resampling it whole.

    Each stretch is filtered together with ``context`` input samples on either side (more than
    the polyphase filter reaches), and stretches start on input samples that fall exactly on an
    output sample, so every output sample sees the same input it would in one call. Memory is the
    block plus twice the context, whatever the length of the stream.
    """

    def __init__(self, sr_in: int, sr_out: int = SAMPLE_RATE) -> None:
        g = gcd(sr_in, sr_out)
        self.up, self.down = sr_out // g, sr_in // g
        reach = -(-10 * max(self.up, self.down) // self.up) + 1  # resample_poly's filter half-length, in input samples
        self.context = -(-reach // self.down) * self.down
        self._buf = np.zeros(0, np.float32)
        self._buf_start = 0  # input index of _buf[0]
        self._next = 0  # input index of the next output sample (a multiple of down)

    def _out(self, upto: int | None) -> np.ndarray:
        from scipy.signal import resample_poly

        stop = len(self._buf) if upto is None else upto + self.context - self._buf_start
        y = resample_poly(self._buf[:stop], self.up, self.down)
        lead = (self._next - self._buf_start) * self.up // self.down
        return y[lead:] if upto is None else y[lead:lead + (upto - self._next) * self.up // self.down]

    def feed(self, pcm: np.ndarray) -> np.ndarray:
        """Resampled output for as much input as is final (the rest waits for its right context)."""
        if self.up == self.down:
            return pcm.astype(np.float32, copy=False)
        self._buf = np.concatenate([self._buf, pcm.astype(np.float32, copy=False)])
        upto = (self._buf_start + len(self._buf) - self.context) // self.down * self.down
        if upto <= self._next:
            return np.zeros(0, np.float32)
        out = self._out(upto)
        self._next = upto
        start = max(0, upto - self.context)
        self._buf, self._buf_start = self._buf[start - self._buf_start:], start
        return out.astype(np.float32)

    def flush(self) -> np.ndarray:
        """The output still held back (the end of the stream)."""
        if self.up == self.down or len(self._buf) == 0:
            return np.zeros(0, np.float32)
        out = self._out(None).astype(np.float32)
        self._buf, self._buf_start, self._next = np.zeros(0, np.float32), 0, 0
        return out


def to_mono(data: np.ndarray) -> np.ndarray:
    """Average channels of a (frames, channels) array; 1-D stays."""
    return data.mean(axis=1) if data.ndim == 2 else data


READ_BLOCK_S = 1.0
"""How much of a file is decoded at a time (seconds of the file's own audio)."""


def duration_s(path: Path | str) -> float | None:
    """The length of an audio file from its header (None when soundfile cannot tell: MP4 tracks, odd codecs)."""
    try:
        import soundfile as sf

        info = sf.info(str(path))
        return float(info.frames) / info.samplerate if info.frames > 0 else None
    except Exception:
        return None


def stream_audio(path: Path | str, sample_rate: int = SAMPLE_RATE, block_s: float = READ_BLOCK_S) -> Iterator[np.ndarray]:
    """Read any audio file (or a video's audio track) block by block as float32 mono PCM at ``sample_rate``.

    soundfile reads what libsndfile can and each block is resampled as it comes
    (:class:`StreamResampler`); anything else is decoded by an ffmpeg pipe, which resamples itself.
    Memory stays at a few blocks however long the file. Raises :class:`AudioError` (audio-missing,
    audio-unreadable, audio-empty) as soon as it knows.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError("audio-missing", f"{path}: no such file")
    try:
        import soundfile as sf

        handle = sf.SoundFile(str(path))
    except Exception as sf_err:  # libsndfile cannot read it: ffmpeg (MP4 tracks, odd codecs)
        blocks = _ffmpeg_blocks(path, sample_rate, block_s, sf_err)
    else:
        blocks = _soundfile_blocks(handle, path, sample_rate, block_s)
    total = 0
    for pcm in blocks:
        if not np.all(np.isfinite(pcm)):
            raise AudioError("audio-unreadable", f"{path}: the audio holds non-finite samples")
        total += len(pcm)
        if len(pcm):
            yield pcm
    if total == 0:
        raise AudioError("audio-empty", f"{path}: the file holds no audio samples")


def _soundfile_blocks(handle, path: Path, sample_rate: int, block_s: float) -> Iterator[np.ndarray]:
    with handle:
        rs = StreamResampler(int(handle.samplerate), sample_rate)
        frames = max(1, int(handle.samplerate * block_s))
        while True:
            try:
                data = handle.read(frames, dtype="float32", always_2d=False)
            except Exception as err:
                raise AudioError("audio-unreadable", f"{path}: reading failed after {handle.tell()} frames ({err})") from err
            if len(data) == 0:
                break
            yield rs.feed(to_mono(np.asarray(data, dtype=np.float32)))
        yield rs.flush()


def _ffmpeg_blocks(path: Path, sample_rate: int, block_s: float, first_err: Exception) -> Iterator[np.ndarray]:
    import tempfile

    exe = shutil.which("ffmpeg")
    if exe is None:
        raise AudioError("audio-unreadable", f"{path}: soundfile could not read it ({first_err}) and ffmpeg is not installed")
    cmd = [exe, "-nostdin", "-v", "error", "-i", str(path), "-vn", "-ac", "1", "-ar", str(sample_rate),
           "-f", "f32le", "-"]
    nbytes = max(1, int(sample_rate * block_s)) * 4
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errors)
        try:
            while True:
                raw = proc.stdout.read(nbytes)
                if not raw:
                    break
                yield np.frombuffer(raw[: len(raw) // 4 * 4], dtype="<f4").astype(np.float32)
            if proc.wait() != 0:
                errors.seek(0)
                msg = errors.read().decode(errors="replace").strip().splitlines()
                raise AudioError("audio-unreadable", f"{path}: not a readable audio file ({msg[-1] if msg else first_err})")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()


def load_audio(path: Path | str, sample_rate: int = SAMPLE_RATE, max_s: float | None = None,
               limit_name: str = "") -> tuple[np.ndarray, int]:
    """Read a whole audio file into memory as float32 mono PCM at ``sample_rate``.

    ``max_s`` bounds what a whole-file mode will hold: a longer file is refused with
    ``audio-too-long`` as soon as reading passes the limit (``limit_name`` names the setting).
    """
    limit = None if max_s is None else int(max_s * sample_rate)
    blocks, n = [], 0
    for pcm in stream_audio(path, sample_rate):
        n += len(pcm)
        if limit is not None and n > limit:
            what = f" (the limit set by {limit_name})" if limit_name else ""
            raise AudioError("audio-too-long", f"{path}: longer than {max_s:g} s{what}; a whole-file mode "
                             "holds the file in memory")
        blocks.append(pcm)
    return np.concatenate(blocks), sample_rate


AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac", ".wma", ".aiff", ".aif",
                  ".mp4", ".mkv", ".mov", ".avi", ".webm")
"""File name endings taken as a file (not a sound-device name) wherever either may be given."""


def looks_like_file(spec: str) -> bool:
    """Whether a ``--mic`` style value names a file rather than a device: it exists as a file, has a
    path separator, or ends like an audio or video file."""
    p = Path(spec).expanduser()
    return p.is_file() or "/" in spec or p.suffix.lower() in AUDIO_SUFFIXES


def probe(path: Path | str) -> None:
    """Raise :class:`AudioError` now if ``path`` cannot give audio (missing, unreadable, no samples):
    decodes its first block only (:func:`stream_audio`), not the whole file."""
    blocks = stream_audio(path)
    try:
        next(blocks)  # an empty file raises audio-empty here, an unreadable one audio-unreadable
    finally:
        blocks.close()  # stops an ffmpeg decoder at once


def chunks(pcm: np.ndarray, sample_rate: int, block_ms: int, t0_ns: int = 0) -> Iterator[AudioChunk]:
    """Cut PCM into blocks of ``block_ms``; each chunk is stamped with its start time."""
    step = max(1, sample_rate * block_ms // 1000)
    for i in range(0, len(pcm), step):
        yield AudioChunk(t0_ns + i * 1_000_000_000 // sample_rate, pcm[i:i + step], sample_rate)


def rechunk(blocks: Iterable[np.ndarray], sample_rate: int, block_ms: int, t0_ns: int = 0) -> Iterator[AudioChunk]:
    """Cut a stream of PCM blocks of any size into chunks of ``block_ms`` stamped with their start
    time (the last one may be shorter): the same chunks :func:`chunks` cuts from the whole."""
    step = max(1, sample_rate * block_ms // 1000)
    pending, done = np.zeros(0, np.float32), 0
    for pcm in blocks:
        pending = np.concatenate([pending, pcm]) if len(pending) else pcm
        n = len(pending) // step * step
        for i in range(0, n, step):
            yield AudioChunk(t0_ns + (done + i) * 1_000_000_000 // sample_rate, pending[i:i + step], sample_rate)
        done += n
        pending = pending[n:]
    if len(pending):
        yield AudioChunk(t0_ns + done * 1_000_000_000 // sample_rate, pending, sample_rate)


@dataclass
class FileSource:
    """Replay a file as a stream of chunks stamped in file time (from ``t0_ns``), read block by
    block (any length of file in bounded memory).

    With ``now_ns`` (a clock), the file stands in for a live microphone: each block is handed out
    when a microphone would have delivered it (once its span has passed, counted from the first
    block), stamped on that clock, so the file takes its own length to read and the self-hearing
    gate mutes only what was spoken while the car spoke, never the whole file at once."""

    path: Path | str
    block_ms: int = 100
    t0_ns: int = 0
    sample_rate: int = SAMPLE_RATE
    now_ns: Callable[[], int] | None = None

    def check(self) -> None:
        """Raise :class:`AudioError` now if the file cannot give audio (see :func:`probe`)."""
        probe(self.path)

    def __iter__(self) -> Iterator[AudioChunk]:
        chunks = rechunk(stream_audio(self.path, self.sample_rate), self.sample_rate, self.block_ms, self.t0_ns)
        return chunks if self.now_ns is None else self._paced(chunks)

    def _paced(self, chunks: Iterator[AudioChunk]) -> Iterator[AudioChunk]:
        import time

        from vehicle_assist import clock

        start_perf, start_ns = clock.perf_ns(), self.now_ns()
        for c in chunks:
            offset_ns = c.t_ns - self.t0_ns
            delay = (start_perf + offset_ns + int(c.duration_s * 1e9) - clock.perf_ns()) / 1e9
            if delay > 0:
                time.sleep(delay)
            yield AudioChunk(start_ns + offset_ns, c.pcm, c.sample_rate)


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
