"""Text -> PCM: a Piper neural voice (default) or pyttsx3 over espeak-ng (the fallback).

Rendering only: this module never plays audio. Both engines are renderers with one interface,
``render(text, rate=None) -> Rendered`` and ``render_sentences``; :func:`load_renderer` picks the
engine from the config (``speech.tts.engine``) and falls back to pyttsx3/espeak-ng, saying so once
in the log, when the Piper runtime or its voice is missing. ``rate`` is words per minute for both
(175 = the voice's own pace; Piper turns it into ``length_scale``).

Audio reaches the speaker only through :mod:`vehicle_assist.audio_out` (the arbiter). pyttsx3's
espeak driver initialises espeak-ng in retrieval mode; we take the samples from pyttsx3's espeak
binding with a synth callback of our own and wait with ``espeak_Synchronize``. We do not use the
driver's ``save_to_file``: it writes the WAV *before* appending the samples delivered with the
final event, so the end of an utterance (sometimes all of a short one) was lost, and its polling
loop adds up to 10 ms. One engine per process, guarded by a lock, so repeated calls never hang.

Piper (``piper-tts``, ONNX Runtime) runs its voice through :func:`vehicle_assist.models.onnx_session`
(fixed threads, no spinning) rather than its own loader, which takes every core.
"""

from __future__ import annotations

import ctypes
import io
import json
import os
import re
import threading
import logging
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vehicle_assist import clock
from vehicle_assist.speech.spoken import speakable

log = logging.getLogger(__name__)

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?![a-z])|(?<=;)\s+")
"""A sentence ends at . ! ? before a word that is not lower case (not "e.g. where"), and at ;."""
_CLAUSE_END = re.compile(r"[,;:]$|^[-\u2013\u2014]$")
BREAK_BEFORE = frozenset(
    "to on in at for with when if unless until while before after because and or but so than as where which who "
    "that from into onto over under behind ahead you".split())
"""Words a spoken phrase may start with: a long first sentence is cut just before one (no clause mark in reach)."""


@dataclass(frozen=True, eq=False)
class Rendered:
    """PCM of one rendered text: float32 mono in [-1, 1]."""

    text: str
    pcm: np.ndarray
    sample_rate: int
    render_ms: float
    said: str = ""
    """The words the voice was given (:func:`vehicle_assist.speech.spoken.speakable` of ``text``); ``text`` stays as written."""

    @property
    def duration_s(self) -> float:
        return len(self.pcm) / self.sample_rate if self.sample_rate else 0.0

    def wav_bytes(self) -> bytes:
        return pcm_to_wav(self.pcm, self.sample_rate)


class TTSError(Exception):
    """Speech could not be rendered (engine missing or failed)."""


SAMPLE_RATE = 22050
"""espeak-ng's output rate."""
BASE_RATE = 175
"""Words per minute that mean "the voice's own pace" (pyttsx3's default rate; VoiceControls.rate starts here)."""
ENGINES = ("piper", "pyttsx3")


class TTSRenderer:
    """Render text to PCM with pyttsx3 + espeak-ng."""

    engine = "pyttsx3"
    split_first_phrase = False
    """espeak-ng renders a sentence in ~20 ms: nothing to gain from cutting it (see :func:`first_chunk`)."""

    _lock = threading.Lock()
    _engine = None
    _espeak = None
    _chunks: list[bytes] = []
    _done = threading.Event()
    _timeout_s = 20.0

    normalise = True
    """Say what a person would say ("1.5 m" -> "1.5 metres", :mod:`vehicle_assist.speech.spoken`); False: the text as written."""

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
        said = speakable(text) if self.normalise else text
        with self._lock:
            self._get_engine()
            self._apply_settings(rate or self.rate)
            cls = type(self)
            cls._chunks = []
            cls._done.clear()
            es = self._espeak
            es.Synth(said.encode("utf-8"), flags=es.ENDPAUSE | es.CHARS_UTF8)
            es.Synchronize()
            if not cls._done.wait(self._timeout_s):
                es.Cancel()
                raise TTSError(f"espeak-ng did not finish {text[:40]!r} within {self._timeout_s:.0f} s")
            raw = b"".join(cls._chunks)
        if not raw:
            raise TTSError(f"espeak-ng produced no audio for {text[:40]!r}")
        pcm = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
        return Rendered(text, pcm, SAMPLE_RATE, (clock.perf_ns() - start) / 1e6, said)

    def render_sentences(self, text: str, rate: int | None = None):
        """Yield one :class:`Rendered` per sentence, so playback can start before the rest is ready."""
        for sentence in split_sentences(text):
            yield self.render(sentence, rate)


class PiperRenderer:
    """Render text to PCM with a Piper ONNX voice (``piper-tts``): a natural neural voice.

    ``rate`` (words per minute, :data:`BASE_RATE` = the voice's pace) becomes Piper's
    ``length_scale``; ``volume`` is the peak level of each rendered sentence (Piper normalises every
    sentence to full scale; 0.8 matches espeak-ng's loudness). Short texts (command replies, the
    ask-back) are kept once rendered, so a repeated reply costs no second rendering.
    """

    CACHE_WORDS, CACHE_SIZE = 8, 64
    normalise = True
    """Say what a person would say ("1.5 m" -> "1.5 metres", :mod:`vehicle_assist.speech.spoken`); False: the text as
    written. Both caches are keyed by the words said, so a rendering of the written text is never reused for them."""

    engine = "piper"
    split_first_phrase = True
    """Render time grows with the text: the speaker renders a long sentence's first phrase on its own."""

    def __init__(self, model_path: Path | str, config_path: Path | str | None = None, rate: int = BASE_RATE,
                 volume: float = 0.8, threads: int = 1, disk_cache: "DiskCache | None" = None) -> None:
        try:
            from piper import PiperConfig, SynthesisConfig
            from piper.voice import PiperVoice
        except ImportError as err:
            raise TTSError(f"the Piper runtime is not installed ({err}): pip install piper-tts") from err
        from vehicle_assist.models import onnx_session

        model_path = Path(model_path)
        config_path = Path(config_path or f"{model_path}.json")
        if not model_path.is_file() or not config_path.is_file():
            raise TTSError(f"Piper voice incomplete: need {model_path.name} and {config_path.name} in {model_path.parent}")
        try:
            cfg = PiperConfig.from_dict(json.loads(config_path.read_text()))
            self._voice = PiperVoice(session=onnx_session(model_path, threads), config=cfg)
        except Exception as err:  # a corrupt ONNX file or JSON: say which voice, fall back upstream
            raise TTSError(f"Piper voice {model_path.name} could not be loaded: {err}") from err
        self._syn = SynthesisConfig
        self.voice, self.rate, self.volume = model_path.stem, rate, volume
        self.sample_rate = cfg.sample_rate
        self.length_scale = float(cfg.length_scale or 1.0)
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, float], np.ndarray] = {}
        self.disk_cache = disk_cache

    def length_scale_for(self, rate: int | None) -> float:
        """Piper's length_scale for a speaking rate in words per minute (slower -> longer)."""
        return self.length_scale * BASE_RATE / max(1, int(rate or self.rate))

    def cache_key(self, text: str, rate: int | None = None) -> tuple[str, str, str]:
        """The :class:`DiskCache` key of ``text`` said at ``rate``: (voice, length scale/volume, the words said).
        The one place the key is made: :meth:`render` and the pre-rendering (:mod:`vehicle_assist.speech.warm`) use it."""
        text = " ".join(text.split())
        said = speakable(text) if self.normalise else text
        return self.voice, f"{round(self.length_scale_for(rate), 3):.3f}/{self.volume:g}", said

    def prerender(self, text: str, rate: int | None = None) -> bool | None:
        """Put ``text`` at ``rate`` into the disk cache as a kept (pinned) entry, rendering it only if it is not
        there yet. True: rendered now; False: already cached (now kept); None: no disk cache, or it is full."""
        if self.disk_cache is None or not " ".join(text.split()):
            return None
        key = self.cache_key(text, rate)
        if self.disk_cache.pin(*key):
            return False
        if not self.disk_cache.room_for_pinned():
            return None
        with self._lock:
            pcm = self._synthesize(key[2], round(self.length_scale_for(rate), 3))
        return True if self.disk_cache.put(*key, pcm, self.sample_rate, pinned=True) else None

    def render(self, text: str, rate: int | None = None) -> Rendered:
        """Render ``text`` (any length) to PCM. Empty text gives empty PCM."""
        start = clock.perf_ns()
        text = " ".join(text.split())
        if not text:
            return Rendered(text, np.zeros(0, np.float32), self.sample_rate, 0.0)
        disk_key = self.cache_key(text, rate)
        said = disk_key[2]
        key = (said, round(self.length_scale_for(rate), 3))
        with self._lock:
            pcm = self._cache.get(key)
            if pcm is None and self.disk_cache is not None:
                pcm = self.disk_cache.get(*disk_key)
            if pcm is None:
                pcm = self._synthesize(said, key[1])
                if self.disk_cache is not None:
                    self.disk_cache.put(*disk_key, pcm, self.sample_rate)
                if len(said.split()) <= self.CACHE_WORDS:
                    if len(self._cache) >= self.CACHE_SIZE:
                        self._cache.pop(next(iter(self._cache)))
                    self._cache[key] = pcm
        return Rendered(text, pcm, self.sample_rate, (clock.perf_ns() - start) / 1e6, said)

    def _synthesize(self, text: str, length_scale: float) -> np.ndarray:
        syn = self._syn(length_scale=length_scale, volume=self.volume, normalize_audio=True)
        try:
            chunks = [c.audio_float_array for c in self._voice.synthesize(text, syn)]
        except Exception as err:  # onnxruntime / the phonemiser raise their own types
            raise TTSError(f"Piper failed on {text[:40]!r}: {err}") from err
        pcm = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
        if pcm.size == 0:
            raise TTSError(f"Piper produced no audio for {text[:40]!r}")
        return pcm

    def render_sentences(self, text: str, rate: int | None = None):
        """Yield one :class:`Rendered` per sentence, so playback can start before the rest is ready."""
        for sentence in split_sentences(text):
            yield self.render(sentence, rate)


_fallback_said = False


def _say_fallback_once(reason: str) -> None:
    global _fallback_said
    if not _fallback_said:
        _fallback_said = True
        log.warning("Piper voice unavailable (%s); speaking with pyttsx3/espeak-ng instead", reason)


def load_tts(res=None):
    """A TTS renderer (PCM only). With ``res`` (a ``models.Resolved``): that role's engine (Piper for
    ``tts_piper``, pyttsx3 + espeak-ng for ``tts``); without: the configured engine, falling back to
    pyttsx3 when Piper is missing."""
    return renderer_for(res) if res is not None else load_renderer()


def load_renderer(engine: str | None = None, models_cfg=None, cache_mb: float | None = None):
    """The configured TTS renderer: Piper (``tts_piper`` role) unless ``engine`` is "pyttsx3" or
    Piper/its voice is missing, then pyttsx3 over espeak-ng (``tts`` role). ``engine`` None reads
    ``speech.tts.engine`` from the onboard config; ``cache_mb`` sizes Piper's :class:`DiskCache`
    (None: ``speech.tts.cache_mb``, 0: none)."""
    from vehicle_assist import config, models

    if engine is None:
        engine = config.load_app().speech.tts.engine
    if engine not in ENGINES:
        raise TTSError(f"unknown TTS engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if engine == "piper":
        try:
            return renderer_for(models.resolve("tts_piper", models_cfg), cache_mb)
        except models.ModelNotFound as err:
            _say_fallback_once(f"voice not found: {err.looked[0] if err.looked else err}")
        except TTSError as err:
            _say_fallback_once(str(err))
    return renderer_for(models.resolve("tts", models_cfg))


def renderer_for(res, cache_mb: float | None = None) -> "TTSRenderer | PiperRenderer":
    """The renderer for one resolved TTS role (kind ``piper`` or ``pyttsx3``). Piper keeps rendered
    sentences in a :class:`DiskCache` of ``cache_mb`` (None: ``speech.tts.cache_mb``; 0: none) under
    ``$VA_CACHE/tts``; espeak-ng renders in ~20 ms and needs none."""
    opts = res.options
    if res.kind == "piper":
        if cache_mb is None:
            from vehicle_assist import config

            cache_mb = config.load_app().speech.tts.cache_mb
        disk = None
        if cache_mb > 0:
            from vehicle_assist import paths

            disk = DiskCache(paths.cache() / "tts", int(cache_mb * 1e6))
        return PiperRenderer(res.path, rate=int(opts.get("rate", BASE_RATE)), volume=float(opts.get("volume", 0.8)),
                             threads=int(opts.get("threads", 1)), disk_cache=disk)
    return TTSRenderer(voice=opts.get("voice"), rate=int(opts.get("rate", BASE_RATE)))


class DiskCache:
    """Rendered sentences on disk, keyed by (text, voice, rate), bounded to ``max_bytes`` (least recently
    used first out). The extractive route speaks Highway Code sentences verbatim, so a sentence said
    once is ready the next time. Files are 16-bit FLAC (lossless, about half a WAV's size; read back in
    under a millisecond) named by a hash of the key, owner-only (a spoken answer can echo the driver's
    question). A missing or broken entry is rendered again.

    Pinned entries (``put(..., pinned=True)``, :meth:`pin`: the answer openings pre-rendered by
    ``vehicle-assist index``, :mod:`vehicle_assist.speech.warm`) live in ``pinned/`` and count against the
    same bound, but are evicted only when nothing else is left; :meth:`room_for_pinned` keeps a quarter of the
    bound for what the runtime renders."""

    SUFFIX = ".flac"
    LEGACY = ".wav"
    """Entries written as WAV before the cache turned to FLAC: still read, and evicted like the others."""
    PINNED = "pinned"
    PINNED_SHARE = 0.75

    def __init__(self, folder: Path | str, max_bytes: int) -> None:
        self.folder, self.max_bytes = Path(folder), int(max_bytes)
        self.pinned_folder = self.folder / self.PINNED
        self.hits = self.misses = 0
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._size = sum(f.stat().st_size for f in self._files())
            self.pinned_bytes = sum(f.stat().st_size for f in self._files(pinned=True))
        except OSError as err:
            log.warning("TTS cache %s unusable (%s); rendering every sentence", self.folder, err)
            self.max_bytes = 0
            self._size = self.pinned_bytes = 0

    def _files(self, pinned: bool | None = None) -> list[Path]:
        """Cache files: all (None), the pinned ones (True) or the others (False)."""
        out: list[Path] = []
        if pinned is not True:
            out += self.folder.glob("*" + self.SUFFIX)
            out += self.folder.glob("*" + self.LEGACY)
        if pinned is not False and self.pinned_folder.is_dir():
            out += self.pinned_folder.glob("*" + self.SUFFIX)
        return out

    def path(self, voice: str, rate: str, text: str, pinned: bool = False) -> Path:
        import hashlib

        name = hashlib.sha256(f"{voice}\n{rate}\n{text}".encode()).hexdigest()[:32] + self.SUFFIX
        return (self.pinned_folder if pinned else self.folder) / name

    def get(self, voice: str, rate: str, text: str) -> np.ndarray | None:
        """The cached PCM, or None (never cached, evicted, unreadable)."""
        if self.max_bytes <= 0:
            return None
        main = self.path(voice, rate, text)
        for pinned, p in ((False, main), (False, main.with_suffix(self.LEGACY)), (True, self.path(voice, rate, text, True))):
            if not p.is_file():
                continue
            try:
                pcm = read_audio(p)
                if not pinned:
                    os.utime(p)  # recently used: evicted last
            except Exception:  # noqa: BLE001 - libsndfile's errors, a truncated or foreign file: a miss
                continue
            self.hits += 1
            return pcm
        self.misses += 1
        return None

    def pin(self, voice: str, rate: str, text: str) -> bool:
        """Keep an entry already on disk as pinned (moved into ``pinned/``); False when there is none."""
        if self.max_bytes <= 0:
            return False
        dst = self.path(voice, rate, text, pinned=True)
        if dst.is_file():
            return True
        src = self.path(voice, rate, text)
        try:
            size = src.stat().st_size
            self.pinned_folder.mkdir(mode=0o700, exist_ok=True)
            src.replace(dst)
        except OSError:
            return False
        self.pinned_bytes += size
        return True

    def room_for_pinned(self) -> bool:
        """Whether pinned entries fill less than :attr:`PINNED_SHARE` of the bound."""
        return self.max_bytes > 0 and self.pinned_bytes < self.PINNED_SHARE * self.max_bytes

    def unpin_except(self, keep: set[Path]) -> int:
        """Drop the pinned files not in ``keep`` (openings of an older Code, voice or setting); bytes freed."""
        freed = 0
        for f in self._files(pinned=True):
            if f not in keep:
                try:
                    size = f.stat().st_size
                    f.unlink()
                except OSError:
                    continue
                freed += size
        self.pinned_bytes -= freed
        self._size -= freed
        return freed

    def put(self, voice: str, rate: str, text: str, pcm: np.ndarray, sample_rate: int, pinned: bool = False) -> bool:
        """Store one rendering; evict the least recently used files past ``max_bytes``. Never raises;
        False when nothing was stored."""
        data = pcm_to_flac(pcm, sample_rate)
        if self.max_bytes <= 0 or len(data) > self.max_bytes:
            return False
        try:
            from vehicle_assist import private

            p = self.path(voice, rate, text, pinned)
            if pinned:
                self.pinned_folder.mkdir(mode=0o700, exist_ok=True)
            old = p.stat().st_size if p.exists() else 0  # an overwrite replaces, it does not add
            tmp = p.with_suffix(".tmp")
            private.write_bytes(tmp, data)
            tmp.replace(p)
            self._size += len(data) - old
            if pinned:
                self.pinned_bytes += len(data) - old
            if self._size > self.max_bytes:
                self._evict()
        except OSError as err:
            log.warning("TTS cache write failed (%s)", err)
            return False
        return True

    def _evict(self) -> None:
        """Least recently used out, down to 90% of the bound: the others first, pinned entries last."""
        others = sorted(self._files(pinned=False), key=lambda f: f.stat().st_mtime)
        pinned = sorted(self._files(pinned=True), key=lambda f: f.stat().st_mtime)
        self._size = sum(f.stat().st_size for f in others + pinned)
        for f in others + pinned:
            if self._size <= self.max_bytes * 0.9:
                break
            size = f.stat().st_size
            f.unlink(missing_ok=True)
            self._size -= size
            if f.parent == self.pinned_folder:
                self.pinned_bytes -= size

    @property
    def size(self) -> int:
        """Bytes on disk, pinned entries included."""
        return self._size


def first_chunk(sentence: str, max_words: int = 6, min_words: int = 2) -> tuple[str, str]:
    """Cut a long sentence into (first phrase, rest) so that speech starts after rendering a few words.

    Pure. A sentence of at most ``max_words + 2`` words stays whole (rest ""). Otherwise the cut
    goes after the last clause mark (, ; : or a dash) within the first ``max_words`` words (two at least), else
    just before the last phrase-starting word (:data:`BREAK_BEFORE`: "to", "when", "on", ...) at
    word ``min_words`` .. ``max_words``; with neither, the sentence stays whole (a cut inside a
    phrase would sound broken). ``max_words`` 0 never cuts."""
    words = sentence.split()
    if max_words <= 0 or len(words) <= max_words + 2:
        return sentence, ""
    for i in range(min(max_words, len(words) - 1), 1, -1):  # "Be patient," is a phrase of its own
        if (_CLAUSE_END.search(words[i - 1]) and not re.fullmatch(r"[\d.,]+", words[i - 1])
                and sum(bool(re.search(r"[A-Za-z]{2}", w)) for w in words[:i]) >= 2):
            return " ".join(words[:i]), " ".join(words[i:])
    for i in range(min(max_words, len(words) - 1), min_words - 1, -1):
        if words[i].lower().strip(",;:") in BREAK_BEFORE:
            return " ".join(words[:i]), " ".join(words[i:])
    return sentence, ""


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


def pcm_to_flac(pcm: np.ndarray, sample_rate: int) -> bytes:
    """float32 mono PCM -> 16-bit FLAC bytes (lossless; the disk cache's format)."""
    import soundfile

    buf = io.BytesIO()
    soundfile.write(buf, (np.clip(pcm, -1, 1) * 32767).astype("<i2"), sample_rate, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def read_audio(path: Path | str) -> np.ndarray:
    """A 16-bit FLAC or WAV file as float32 mono PCM (the samples :func:`read_wav` gives)."""
    import soundfile

    pcm, _ = soundfile.read(str(path), dtype="int16", always_2d=True)
    return pcm.mean(axis=1).astype(np.float32) / 32768.0 if pcm.shape[1] > 1 else pcm[:, 0].astype(np.float32) / 32768.0


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
