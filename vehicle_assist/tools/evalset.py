"""The speech evaluation set: driver utterances spoken by a natural voice, real recordings, noise.

``bench/data/utterances.jsonl`` lists the driver's questions, commands and wake-phrase
utterances (split dev/test before any tuning). Each is synthesised deterministically into
``sim/generated/speech/``: by the Piper voice en_US-joe-medium (``voice="piper"``, the main
condition; speaking pace varied per utterance, length_scale 0.9 / 1.0 / 1.12, since only one Piper
voice is available offline) or by espeak-ng (``voice="espeak"``, six voices and three speeds, a
stress condition reported apart). ``pause_ms`` inserts a mid-sentence pause at a word boundary (the
two halves are rendered separately, as a driver who stops and goes on). Any of these can be mixed
with the recorded road noise at a given SNR. ``bench/data/speech_refs.jsonl`` holds the reference
transcripts of the real recordings in ``sim/speech``. Used by ``bench/speech.py`` and the tests.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from vehicle_assist import fetch, paths
from vehicle_assist.speech.audio import AudioError, load_audio, mix_at_snr

VOICES = ("en-gb", "en-us", "en-gb-x-rp", "en-us+f3", "en-gb+f4", "en-us+m3")
"""Standard-accent espeak-ng voices and variants. The regional-accent voices (en-gb-scotland,
en-gb-x-gbclan, en-gb-x-gbcwmd, en-029) are left out: Whisper tiny.en reaches 36-53% WER on them
(dev, 150 wpm; docs/speech.md), a synthesiser artefact more than a driver's accent."""
SPEEDS = (140, 160, 180)
PIPER_SCALES = (0.9, 1.0, 1.12)
"""Piper length_scale per utterance (pace varied; the only offline Piper voice is en_US-joe-medium)."""
PAUSES_MS = (300, 400, 500, 600, 700, 800)
"""Mid-sentence pauses inserted for the end-of-speech measurement (one per utterance, by its id)."""
VOICE_KINDS = ("piper", "espeak")
NOISES = ("car_interior_rumble_1.wav", "car_interior_rumble_2.wav", "noisex92_leopard_military_vehicle_8k.wav")
LEAD_S, TAIL_S = 0.6, 1.0


@dataclass(frozen=True)
class EvalUtterance:
    """One line of bench/data/utterances.jsonl."""

    id: str
    text: str
    kind: str  # question | command | wake
    intent: str
    split: str  # dev | test
    slots: dict = field(default_factory=dict)


def data_dir() -> Path:
    """bench/data under VA_HOME."""
    return paths.home() / "bench" / "data"


def load_utterances(split: str | None = None, kind: str | None = None) -> list[EvalUtterance]:
    """The evaluation utterances, optionally one split and/or kind."""
    out = []
    for line in (data_dir() / "utterances.jsonl").read_text().splitlines():
        if line.strip():
            u = EvalUtterance(**json.loads(line))
            if (split is None or u.split == split) and (kind is None or u.kind == kind):
                out.append(u)
    return out


def load_refs() -> dict[str, str | None]:
    """Reference transcripts of the real recordings, keyed by file name (None: source gives none)."""
    rows = [json.loads(x) for x in (data_dir() / "speech_refs.jsonl").read_text().splitlines() if x.strip()]
    return {r["file"]: r["transcript"] for r in rows}


def voice_for(u: EvalUtterance, voice: str = "espeak") -> tuple[str, int]:
    """The (voice, words-per-minute) an utterance is synthesised with (deterministic)."""
    if voice == "piper":
        scale = PIPER_SCALES[zlib.crc32(u.id.encode()) % len(PIPER_SCALES)]
        return f"piper-joe-x{scale:g}", round(175 / scale)
    n = zlib.crc32(u.id.encode())
    return VOICES[n % len(VOICES)], SPEEDS[(n // len(VOICES)) % len(SPEEDS)]


def pause_for(u: EvalUtterance, variant: int = 0) -> tuple[int, int] | None:
    """(word index the pause comes before, pause ms) for an utterance of two words or more, else None.
    ``variant`` k > 0: another place and length drawn for the same utterance (more dev items with pauses;
    variant 0 is the evaluation set as reported)."""
    words = u.text.split()
    if len(words) < 2:
        return None
    n = zlib.crc32((f"{u.id}#pause{variant}" if variant else u.id).encode()) // 11
    lo, hi = max(1, len(words) // 3), max(1, (2 * len(words)) // 3)
    return lo + n % (hi - lo + 1), PAUSES_MS[n % len(PAUSES_MS)]


_piper = None


def _piper_renderer():
    global _piper
    if _piper is None:
        from vehicle_assist import models
        from vehicle_assist.speech.tts import renderer_for

        _piper = renderer_for(models.resolve("tts_piper"))
    return _piper


def synth_piper(u: EvalUtterance, pause: bool = False, out_dir: Path | None = None, pause_variant: int = 0) -> Path:
    """The utterance spoken by the Piper voice (cached 16-bit WAV at 22.05 kHz); with ``pause``, the
    mid-sentence pause of :func:`pause_for` inserted."""
    from vehicle_assist.speech.tts import write_wav

    scale = PIPER_SCALES[zlib.crc32(u.id.encode()) % len(PIPER_SCALES)]
    where = pause_for(u, pause_variant) if pause else None
    out_dir = out_dir or paths.sim() / "generated" / "speech"
    suffix = f"_p{where[0]}_{where[1]}" if where else ""
    path = out_dir / f"{u.id}_piper_joe_{scale:g}{suffix}.wav"
    if path.is_file():
        return path
    import onnxruntime

    r = _piper_renderer()
    onnxruntime.set_seed(zlib.crc32(u.id.encode()) % 2**31)  # Piper samples noise: the same audio on any machine
    rate = round(175 / scale)
    if where is None:
        rendered = r.render(u.text, rate)
        pcm = rendered.pcm
    else:
        words = u.text.split()
        a, b = r.render(" ".join(words[:where[0]]), rate), r.render(" ".join(words[where[0]:]), rate)
        pcm = np.concatenate([_trim(a.pcm), np.zeros(int(where[1] / 1000 * r.sample_rate), np.float32), _trim(b.pcm)])
    tmp = path.with_suffix(".partial.wav")
    write_wav(tmp, pcm, r.sample_rate)
    tmp.replace(path)
    return path


def _trim(pcm: np.ndarray, level: float = 0.01) -> np.ndarray:
    """The rendering without its leading/trailing silence, so an inserted pause is the pause heard."""
    loud = np.flatnonzero(np.abs(pcm) > level)
    return pcm[loud[0]:loud[-1] + 1] if loud.size else pcm


def synth(u: EvalUtterance, out_dir: Path | None = None) -> Path:
    """The utterance spoken by espeak-ng (cached WAV)."""
    voice, speed = voice_for(u)
    out_dir = out_dir or paths.sim() / "generated" / "speech"
    path = out_dir / f"{u.id}_{voice.replace('+', '_')}_{speed}.wav"
    if path.is_file():
        return path
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise AudioError("audio-missing", "espeak-ng is not installed (apt-get install espeak-ng)")
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".partial.wav")
    subprocess.run([exe, "-v", voice, "-s", str(speed), "-w", str(tmp), u.text], check=True, capture_output=True)
    tmp.replace(path)
    return path


@lru_cache(maxsize=8)
def noise(name: str) -> np.ndarray:
    """A road-noise recording (16 kHz mono)."""
    return load_audio(fetch.data_path("noise", name))[0]


def audio_for(u: EvalUtterance, snr_db: float | None = None, lead_s: float = LEAD_S, tail_s: float = TAIL_S,
              voice: str = "espeak", pause: bool = False, noise_variant: int = 0, pause_variant: int = 0) -> np.ndarray:
    """16 kHz PCM of the utterance (``voice`` piper | espeak; ``pause``: with its mid-sentence pause,
    Piper only) with silence before/after, and road noise at ``snr_db`` (None: clean). ``noise_variant`` k > 0:
    the next recording (k steps on) at another place in it, for more noisy dev items from the same speech
    (variant 0 is the evaluation set as split and reported); ``pause_variant``: see :func:`pause_for`."""
    if voice not in VOICE_KINDS:
        raise ValueError(f"voice must be one of {VOICE_KINDS}, got {voice!r}")
    pcm, sr = load_audio(synth_piper(u, pause, pause_variant=pause_variant) if voice == "piper" else synth(u))
    pcm = np.concatenate([np.zeros(int(lead_s * sr), np.float32), pcm, np.zeros(int(tail_s * sr), np.float32)])
    if snr_db is None:
        return pcm
    n = zlib.crc32(u.id.encode()) // 7
    noise_pcm = noise(NOISES[(n + noise_variant) % len(NOISES)])
    return mix_at_snr(pcm, noise_pcm, snr_db, offset=(n * 7919 + noise_variant * 104729) % len(noise_pcm))


@lru_cache(maxsize=1)
def _normaliser():
    from whisper.normalizers import EnglishTextNormalizer

    return EnglishTextNormalizer()


def normalise(text: str) -> str:
    """Whisper's English normaliser (numbers, spelling), then any punctuation it leaves removed."""
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", _normaliser()(text).lower()).split())


def word_errors(ref: str, hyp: str) -> tuple[int, int]:
    """(edit distance in words, reference length) after normalisation."""
    r, h = normalise(ref).split(), normalise(hyp).split()
    d = list(range(len(h) + 1))
    for i in range(1, len(r) + 1):
        prev, d[0] = d[0], i
        for j in range(1, len(h) + 1):
            cur = min(d[j] + 1, d[j - 1] + 1, prev + (r[i - 1] != h[j - 1]))
            prev, d[j] = d[j], cur
    return d[len(h)], len(r)


def wer(pairs: list[tuple[str, str]]) -> float:
    """Corpus word error rate over (reference, hypothesis) pairs."""
    errs = [word_errors(r, h) for r, h in pairs]
    total = sum(n for _, n in errs)
    return sum(e for e, _ in errs) / total if total else 0.0
