"""What the speaker played during a replay, on the drive clock: the annotated video's audio track and
the timing of its spoken captions.

The replay's ``WavSink`` writes everything the audio arbiter played into ``speaker.wav`` back to
back (no gaps) and stamps each request with the drive time it began. :func:`write_log` keeps those
facts in ``speaker.json`` beside it; :func:`place` (pure) puts each request on the drive clock and
:func:`render` (pure) lays the PCM out as one track starting at the replay's first drive time.

In realtime replay the stamps are when the speaker really played each request. In lockstep replay
the arbiter writes without pacing while drive time stands still (the feeder waits for the runtime),
so the sentences of an answer are all stamped at about the same drive time; :func:`place` then plays
them one after another, as a speaker would: a request starts at its stamp or when the one before it
ends, whichever is later; an alert starts at its stamp and cuts the advisory speech playing at that
moment, and advisory speech still waiting behind it is dropped (the arbiter's pre-emption rule).
"""

from __future__ import annotations

import json
import logging
import wave
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from vehicle_assist import private

log = logging.getLogger(__name__)

LOG_NAME = "speaker.json"


@dataclass(frozen=True)
class Played:
    """One request as the arbiter played it (a ``speaker.json`` entry)."""

    t_s: float
    """Drive time the speaker began it (the stamp)."""
    offset: int
    """Its first sample in ``speaker.wav``."""
    samples: int
    text: str
    tier: str
    """``alert`` or ``advisory``."""
    source: str = ""
    completed: bool = True


@dataclass(frozen=True)
class Spoken:
    """One request on the drive clock: heard from ``start_s`` to ``end_s``."""

    start_s: float
    end_s: float
    text: str
    tier: str
    source: str = ""
    offset: int = 0
    samples: int = 0
    """Samples of it in the track (fewer than played when cut by an alert); 0 without audio."""
    completed: bool = True


@dataclass(frozen=True)
class Soundtrack:
    """The speaker's output of one replay: what was spoken when, and the PCM it came from."""

    spoken: tuple[Spoken, ...]
    pcm: np.ndarray
    """``speaker.wav`` as float32 mono (requests back to back)."""
    sample_rate: int

    def end_s(self) -> float:
        """Drive time the last spoken request ends (0 when nothing was spoken)."""
        return max((s.end_s for s in self.spoken), default=0.0)


def write_log(path: Path, segments: Iterable[Any], sample_rate: int, wav_name: str = "speaker.wav") -> None:
    """``speaker.json``: the stamp, position in the WAV, text and tier of each ``WavSink`` segment."""
    played = []
    for seg in segments:
        if not len(seg.pcm) or seg.t_ns is None:
            continue
        req = seg.request
        played.append({"t_s": round(seg.t_ns / 1e9, 6), "offset": int(seg.start_sample), "samples": int(len(seg.pcm)),
                       "text": req.text, "tier": "alert" if int(req.tier) == 0 else "advisory",
                       "source": req.source, "completed": bool(seg.completed)})
    private.write_text(path, json.dumps({"wav": wav_name, "sample_rate": int(sample_rate), "played": played}, indent=1))


def place(played: Sequence[Played], sample_rate: int) -> list[Spoken]:
    """The requests on the drive clock, one at a time (see the module text). Pure."""
    out: list[Spoken] = []
    for p in sorted(played, key=lambda p: (p.t_s, p.offset)):
        dur = p.samples / sample_rate
        if p.tier == "alert":
            kept = []
            for s in out:
                if s.tier == "alert" or s.end_s <= p.t_s:
                    kept.append(s)
                elif s.start_s < p.t_s:  # playing when the alert came: cut there
                    n = int(round((p.t_s - s.start_s) * sample_rate))
                    kept.append(replace(s, end_s=p.t_s, samples=min(s.samples, n), completed=False))
                # else: waiting behind it when the alert came: flushed
            out = kept
            start = max([p.t_s] + [s.end_s for s in out if s.tier == "alert"])  # alerts queue behind alerts
        else:
            start = max([p.t_s] + [s.end_s for s in out])
        out.append(Spoken(start, start + dur, p.text, p.tier, p.source, p.offset, p.samples, p.completed))
    return sorted(out, key=lambda s: s.start_s)


def from_records(records: Iterable[dict[str, Any]], min_s: float = 1.5) -> list[Spoken]:
    """Spoken requests from a trip log's ``speech`` events alone (no PCM; at least ``min_s`` long), for a
    replay without ``speaker.json``. Pure."""
    out: list[Spoken] = []
    open_: dict[tuple[str, str], float] = {}
    end = 0.0
    for r in records:
        msg, t = r.get("msg"), int(r.get("t_ns", 0)) / 1e9
        end = max(end, t)
        if r.get("topic") != "speech" or not isinstance(msg, dict):
            continue
        key = (str(msg.get("text", "")), "alert" if msg.get("tier") == "alert" else "advisory")
        if msg.get("kind") == "start":
            open_[key] = t
        elif key in open_ and msg.get("kind") in ("end", "preempted"):
            t0 = open_.pop(key)
            out.append(Spoken(t0, max(t, t0 + min_s), key[0], key[1], str(msg.get("source") or ""),
                              completed=msg.get("kind") == "end"))
    out += [Spoken(t0, max(end, t0 + min_s), k[0], k[1]) for k, t0 in open_.items()]
    return sorted(out, key=lambda s: s.start_s)


def render(spoken: Sequence[Spoken], pcm: np.ndarray, sample_rate: int, t0_s: float, duration_s: float) -> np.ndarray:
    """One float32 mono track of ``duration_s`` starting at drive time ``t0_s``: each spoken request's
    samples from ``pcm`` at its place, silence elsewhere. Pure."""
    return window(spoken, pcm, sample_rate, t0_s, 0, int(round(duration_s * sample_rate)))


def window(spoken: Sequence[Spoken], pcm: np.ndarray, sample_rate: int, t0_s: float, first: int, stop: int) -> np.ndarray:
    """Samples ``first`` to ``stop`` of the track that starts at drive time ``t0_s`` (see :func:`render`). Pure."""
    track = np.zeros(max(0, stop - first), np.float32)
    for s in spoken:
        a = int(round((s.start_s - t0_s) * sample_rate)) - first
        src = np.asarray(pcm[s.offset:s.offset + s.samples], np.float32)
        lo, hi = max(a, 0), min(a + len(src), len(track))
        if hi > lo:
            track[lo:hi] += src[lo - a:hi - a]
    return np.clip(track, -1.0, 1.0)


def load(out_dir: Path) -> Soundtrack | None:
    """The soundtrack a replay left in ``out_dir`` (``speaker.json`` + its WAV); None when it has none."""
    log_path = out_dir / LOG_NAME
    if not log_path.is_file():
        return None
    try:
        info = json.loads(log_path.read_text())
        played = [Played(float(p["t_s"]), int(p["offset"]), int(p["samples"]), str(p["text"]), str(p["tier"]),
                         str(p.get("source", "")), bool(p.get("completed", True))) for p in info["played"]]
        sr = int(info["sample_rate"])
        pcm = read_wav(out_dir / str(info.get("wav", "speaker.wav")))
    except (OSError, ValueError, KeyError, TypeError, wave.Error, EOFError) as err:
        log.warning("%s or its WAV is unreadable (%s): the video gets no sound", log_path, err)
        return None
    return Soundtrack(tuple(place(played, sr)), pcm, sr)


def read_wav(path: Path) -> np.ndarray:
    """A 16-bit mono WAV as float32 in [-1, 1]."""
    with wave.open(str(path), "rb") as w:
        data = w.readframes(w.getnframes())
    return np.frombuffer(data, "<i2").astype(np.float32) / 32767.0


def write_wav(path: Path, pcm: np.ndarray, sample_rate: int) -> None:
    """float32 mono -> 16-bit WAV."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes((np.clip(pcm, -1, 1) * 32767).astype("<i2").tobytes())


__all__ = ["Played", "Spoken", "Soundtrack", "write_log", "place", "from_records", "render", "window", "load", "read_wav", "write_wav"]
