"""Annotated MP4 of a replay: the drive's frames with boxes from the logged detections/tracks coloured
by hazard level, captions of what the driver said and what the car said (each answer with the rules
it cites, each alert), and the speaker's output as the audio track, in sync.

The video runs on a fixed frame grid from the replay's first drive time: each output frame shows the
latest camera frame (with that frame's boxes) and the captions of its own drive time. After the last
camera frame, the last frame is held until every spoken answer or alert has finished. The caption
schedule is a pure function of the trip-log records and the speaker's timing (:func:`caption_schedule`,
:func:`captions_at`); drawing is OpenCV only; ffmpeg encodes H.264 + AAC.
"""

from __future__ import annotations

import bisect
import functools
import math
import re
import unicodedata
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from vehicle_assist import private
from vehicle_assist.replay.errors import ReplayError
from vehicle_assist.replay.report import LEVEL_RANK
from vehicle_assist.replay.soundtrack import Soundtrack, Spoken, from_records, window

# BGR colours per hazard level
LEVEL_BGR = {"none": (200, 200, 200), "info": (177, 165, 154), "caution": (76, 201, 242),
             "warning": (74, 153, 242), "critical": (87, 87, 235)}
CAPTION_BGR = {"driver": (255, 196, 110), "answer": (130, 235, 130), "alert": (90, 90, 255)}
KIND_ORDER = {"driver": 0, "answer": 1, "alert": 2}


@dataclass(frozen=True)
class Caption:
    """A line of what was said, shown from ``start_s`` to ``end_s`` of drive time."""

    start_s: float
    end_s: float
    kind: str
    """``driver`` (what ASR heard), ``answer`` (spoken advisory tier) or ``alert``."""
    text: str
    label: str
    """Drawn before the text, e.g. ``Driver``, ``Answer, rules 163, 212``, ``ALERT``."""

    def line(self) -> str:
        return f"{self.label}: {self.text}"


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", str(text).lower()).split())


def _answer_label(msg: dict[str, Any] | None) -> str:
    if msg is None:
        return "Answer"
    head = "Answer" if msg.get("question") else "Advice"
    if msg.get("refused"):
        return f"{head} (refused)"
    cited = [str(c) for c in msg.get("cited") or []]
    if not cited:
        return f"{head}, no rule cited"
    return f"{head}, rule{'s' if len(cited) > 1 else ''} {', '.join(cited)}"


def _advisory_of(s: Spoken, advisories: list[tuple[float, dict[str, Any]]]) -> int | None:
    """The logged advisory a spoken sentence belongs to: its text contains the sentence; the nearest in time."""
    words = _norm(s.text)
    found = [(abs(t - s.start_s), i) for i, (t, m) in enumerate(advisories) if words and words in _norm(m.get("text", ""))]
    return min(found)[1] if found else None


def caption_schedule(records: Iterable[dict[str, Any]], spoken: Sequence[Spoken] | None = None,
                     driver_hold_s: float = 3.0, linger_s: float = 0.6, alert_min_s: float = 1.5) -> tuple[Caption, ...]:
    """Every caption of a replay, from its trip-log records and what the speaker played (``spoken``,
    on the drive clock; None: taken from the log's ``speech`` events). Pure.

    - each spoken answer sentence while it is spoken (lingering ``linger_s``, never over the next
      sentence), labelled with the rules its answer cites;
    - each alert while it sounds (at least ``alert_min_s``); an alert the speaker did not play
      (a silent one) is shown for ``alert_min_s`` as such;
    - the driver's transcript from when it was heard until the answer to it has been spoken (at
      least ``driver_hold_s``, never past the next transcript).
    """
    records = list(records)
    spoken = list(from_records(records) if spoken is None else spoken)
    advisories = [(r["t_ns"] / 1e9, r["msg"]) for r in records if r.get("topic") == "advisories" and isinstance(r.get("msg"), dict)]
    caps: list[Caption] = []
    answer_end: dict[int, float] = {}
    talk = sorted((s for s in spoken if s.tier != "alert"), key=lambda s: s.start_s)
    for k, s in enumerate(talk):
        i = _advisory_of(s, advisories)
        end = s.end_s + linger_s
        if k + 1 < len(talk) and talk[k + 1].start_s > s.start_s:
            end = min(end, talk[k + 1].start_s)
        caps.append(Caption(s.start_s, max(end, s.end_s), "answer", s.text, _answer_label(advisories[i][1] if i is not None else None)))
        if i is not None:
            answer_end[i] = max(answer_end.get(i, 0.0), s.end_s)
    alerts_spoken = [s for s in spoken if s.tier == "alert"]
    for s in alerts_spoken:
        caps.append(Caption(s.start_s, max(s.end_s, s.start_s + alert_min_s), "alert", s.text, "ALERT"))
    for r in records:
        msg = r.get("msg")
        if r.get("topic") == "alerts" and isinstance(msg, dict) and msg.get("state") == "start":
            t, text = r["t_ns"] / 1e9, str(msg.get("text", ""))
            if not any(s.text == text and t - 0.1 <= s.start_s <= t + 2.0 for s in alerts_spoken):
                caps.append(Caption(t, t + alert_min_s, "alert", text, "ALERT" if msg.get("audible") else "Alert (silent)"))
    heard = [(r["t_ns"] / 1e9, str(r["msg"].get("text", ""))) for r in records
             if r.get("topic") == "transcripts" and isinstance(r.get("msg"), dict)]
    for k, (t, text) in enumerate(heard):
        nxt = heard[k + 1][0] if k + 1 < len(heard) else math.inf
        end = t + driver_hold_s
        answer = next((i for i, (ta, m) in enumerate(advisories) if m.get("question") and t <= ta < nxt), None)
        if answer is not None:
            end = max(end, answer_end.get(answer, 0.0))
        caps.append(Caption(t, max(t + 0.5, min(end, nxt)), "driver", text, "Driver"))
    return tuple(sorted(caps, key=lambda c: (c.start_s, KIND_ORDER.get(c.kind, 9))))


def captions_at(schedule: Sequence[Caption], t_s: float, most: int = 4) -> tuple[Caption, ...]:
    """The captions showing at drive time ``t_s``: driver first, then answers, then alerts. Pure."""
    on, seen = [], set()
    for c in schedule:
        if c.start_s <= t_s < c.end_s and (c.kind, c.text) not in seen:
            seen.add((c.kind, c.text))
            on.append(c)
    on.sort(key=lambda c: (KIND_ORDER.get(c.kind, 9), c.start_s))
    return tuple(on[-most:])


@dataclass(frozen=True)
class Overlay:
    """What to draw on one output frame."""

    t_s: float
    boxes: tuple[tuple[tuple[float, float, float, float], str, str], ...] = ()
    """(box, label text, hazard level) per object."""
    captions: tuple[Caption, ...] = ()
    status: str = ""
    predicted: frozenset[int] = frozenset()
    """Indices into ``boxes`` of tracks not measured on the shown frame: their box is predicted from their
    last two measured ones (a detector pass that did not run, or a missed detection)."""


def predict_box(samples: Sequence[tuple[int, Sequence[float]]], t_ns: int) -> tuple[float, ...]:
    """A track's box at ``t_ns`` from its measured ``(t_ns, box)`` samples (pure): the last box moved on at the
    velocity between the last two (constant velocity), or the last box itself with one sample."""
    t1, b1 = samples[-1]
    if len(samples) < 2 or t_ns <= t1:
        return tuple(float(v) for v in b1)
    t0, b0 = samples[-2]
    k = (t_ns - t1) / max(t1 - t0, 1)
    return tuple(float(v1) + (float(v1) - float(v0)) * k for v0, v1 in zip(b0, b1))


def box_label(label: str, track_id: int | None, hazard: dict[str, Any] | None, with_ttc: bool) -> str:
    """``car #12 18 m TTC 2.1 s``: class, track, distance, and the TTC when this is the hazard's track (pure)."""
    text = f"{label} #{track_id}" if track_id is not None else label
    if hazard and hazard.get("distance_m") is not None:
        text += f" {float(hazard['distance_m']):.0f} m"
    if with_ttc and hazard and hazard.get("ttc_s") is not None:
        text += f" TTC {float(hazard['ttc_s']):.1f} s"
    return text


class OverlayIndex:
    """Logged detections, tracks, hazards and the caption schedule, indexed by drive time (built once per log).

    Every track is drawn on every frame: a track that the shown frame's record lacks (a detector pass that
    did not run on it, a missed detection) is predicted from its last measured boxes for up to ``hold_s``.
    Each box is labelled with class, track id and distance; the worst hazard's track also with its TTC, and
    the status line names that hazard (the one the alerts speak of).
    """

    def __init__(self, records: Iterable[dict[str, Any]], spoken: Sequence[Spoken] | None = None,
                 hold_s: float = 0.3) -> None:
        records = list(records)
        tracks: list[tuple[int, list]] = []
        dets: list[tuple[int, list]] = []
        self._hazards: list[tuple[int, list[dict]]] = []
        for r in records:
            msg = r.get("msg")
            if r.get("topic") == "tracks" and isinstance(msg, list):
                tracks.append((r["t_ns"], [(m["box"], m["label"], m["track_id"]) for m in msg]))
            elif r.get("topic") == "detections" and isinstance(msg, dict):
                dets.append((r["t_ns"], [(m["box"], f"{m['label']} {m['confidence']:.2f}", m.get("track_id"))
                                         for m in msg.get("items") or []]))
            elif r.get("topic") == "hazards" and isinstance(msg, list):
                self._hazards.append((r["t_ns"], [h for h in msg if isinstance(h, dict)]))
        self._tracked = bool(tracks)
        self._boxes = sorted(tracks or dets, key=lambda x: x[0])  # tracks carry the ids hazards refer to
        self._hazards.sort(key=lambda x: x[0])
        self._box_t = [t for t, _ in self._boxes]
        self._hz_t = [t for t, _ in self._hazards]
        self._hold_ns = int(hold_s * 1e9)
        self.schedule = caption_schedule(records, spoken)

    def end_s(self) -> float:
        """Drive time the last caption ends."""
        return max((c.end_s for c in self.schedule), default=0.0)

    def _seen(self, f_ns: int, max_age_ns: int) -> list[tuple[tuple, str, Any, bool]]:
        """(box, label, track id, predicted) of every object to draw on the frame taken at ``f_ns``."""
        i = bisect.bisect_right(self._box_t, f_ns) - 1
        if i < 0 or f_ns - self._boxes[i][0] > max_age_ns:
            return []
        out = [(tuple(box), label, tid, False) for box, label, tid in self._boxes[i][1]]
        if not self._tracked:
            return out
        shown = {tid for _, _, tid, _ in out}
        history: dict[Any, list] = {}
        j = i - 1
        while j >= 0 and f_ns - self._boxes[j][0] <= self._hold_ns:  # tracks seen lately, not on this frame
            for box, label, tid in self._boxes[j][1]:
                if tid not in shown:
                    history.setdefault(tid, [label, []])[1].insert(0, (self._boxes[j][0], box))
            j -= 1
        for tid, (label, samples) in history.items():
            if len(samples) < 2 and j >= 0:  # one sample in the hold window: its previous one gives the velocity
                prev = next(((t, b) for t, items in reversed(self._boxes[max(0, j - 3):j + 1])
                             for b, _, k in items if k == tid), None)
                samples = ([prev] if prev else []) + samples
            out.append((predict_box(samples, f_ns), label, tid, True))
        return out

    def at(self, t_ns: int, frame_t_ns: int | None = None, max_age_s: float = 0.5, held: bool = False,
           shown_ns: int | None = None) -> Overlay:
        """The overlay at drive time ``t_ns``: boxes of the camera frame shown (taken at ``frame_t_ns``,
        default ``t_ns``: the latest logged state no older than ``max_age_s``), captions of ``t_ns``;
        the status line shows ``shown_ns`` (default ``t_ns``) and whether the frame is ``held``."""
        f_ns = t_ns if frame_t_ns is None else frame_t_ns
        t_s = t_ns / 1e9
        j = bisect.bisect_right(self._hz_t, f_ns) - 1
        hazards = self._hazards[j][1] if j >= 0 and f_ns - self._hazards[j][0] <= max_age_s * 1e9 else []
        by_track = {h.get("track_id"): h for h in hazards}
        worst = max(hazards, key=lambda h: LEVEL_RANK.get(str(h.get("level")), 0), default=None)
        if worst is not None and LEVEL_RANK.get(str(worst.get("level")), 0) == 0:
            worst = None
        boxes, predicted = [], set()
        for box, label, tid, pred in self._seen(f_ns, int(max_age_s * 1e9)):
            hz = by_track.get(tid) if self._tracked else None
            if pred:
                predicted.add(len(boxes))
            with_ttc = worst is not None and tid is not None and tid == worst.get("track_id")
            text = box_label(label, tid, hz, with_ttc) if self._tracked else label
            boxes.append((box, text, str(hz.get("level")) if hz else "none"))
        shown = (t_ns if shown_ns is None else shown_ns) / 1e9
        status = f"t={shown:5.2f}s  hazard: {worst.get('level') if worst else 'none'}"
        if worst is not None:
            status += f" {worst.get('kind')} #{worst.get('track_id')}"
            if worst.get("ttc_s") is not None:
                status += f" TTC {float(worst['ttc_s']):.1f}s"
        if held:
            status += f"  (camera frame of t={f_ns / 1e9:.2f}s held)"
        return Overlay(t_s, tuple(boxes), captions_at(self.schedule, t_s), status, frozenset(predicted))


_ASCII = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-",
                        "\u2026": "...", "\u00a0": " ", "\u00b0": " deg"})


def _ascii(text: str) -> str:
    """OpenCV's Hershey fonts draw ASCII only."""
    text = str(text).translate(_ASCII)
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


@functools.lru_cache(maxsize=512)
def wrap(text: str, max_px: int, scale: float, thick: int, max_lines: int = 3) -> tuple[str, ...]:
    """``text`` in lines no wider than ``max_px`` when drawn (at most ``max_lines``; the last ends in ... when cut)."""
    import cv2

    width = lambda s: cv2.getTextSize(s, cv2.FONT_HERSHEY_DUPLEX, scale, thick)[0][0]  # noqa: E731
    lines: list[str] = []
    cur = ""
    for word in _ascii(text).split():
        while width(word) > max_px and len(word) > 1:  # a word wider than the line: break it
            k = len(word)
            while k > 1 and width(word[:k]) > max_px:
                k -= 1
            if cur:
                lines.append(cur)
                cur = ""
            lines.append(word[:k])
            word = word[k:]
        cand = f"{cur} {word}" if cur else word
        if width(cand) <= max_px:
            cur = cand
        else:
            lines.append(cur)
            cur = word
    if cur:
        lines.append(cur)
    if len(lines) > max_lines:
        last = lines[max_lines - 1]
        while last and width(last + " ...") > max_px:
            last = last[:-1]
        lines = lines[:max_lines - 1] + [last.rstrip() + " ..."]
    return tuple(lines)


def draw(image: np.ndarray, overlay: Overlay, box_scale: float = 1.0) -> np.ndarray:
    """A copy of ``image`` with the overlay drawn: boxes by hazard level (coordinates times ``box_scale``),
    a status bar at the top, captions at the bottom (wrapped, on a dark band; readable at 720p)."""
    import cv2

    out = image.copy()
    h, w = out.shape[:2]
    scale = max(0.45, h / 720 * 0.85)
    thick = 2 if h >= 500 else 1
    small = scale * 0.7
    label_scale = max(0.5, h / 720 * 0.62)  # box labels: ~13 px capitals at 720p, on a dark plate
    label_thick = 2 if h >= 600 else 1
    # the worst hazard's box and label last (on top of any they overlap), predicted boxes first
    order = sorted(range(len(overlay.boxes)), key=lambda k: (LEVEL_RANK.get(overlay.boxes[k][2], 0), k not in overlay.predicted))
    for k in order:
        (x1, y1, x2, y2), label, level = overlay.boxes[k]
        x1, y1, x2, y2 = (int(round(v * box_scale)) for v in (x1, y1, x2, y2))
        colour = LEVEL_BGR.get(level, LEVEL_BGR["none"])
        width = 4 if LEVEL_RANK.get(level, 0) >= 3 else 2
        if k in overlay.predicted:  # not measured on this frame: a thin box
            width = 1
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, width)
        text = _ascii(f"{label} {level if level not in ('none', 'info') else ''}".strip())
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, label_scale, label_thick)
        tx = min(max(0, x1), max(0, w - tw - 6))
        ty = max(th + 4 + int(34 * scale), y1 - 4)  # below the status bar
        cv2.rectangle(out, (tx, ty - th - 4), (tx + tw + 6, ty + base - 2), (0, 0, 0), -1)
        cv2.putText(out, text, (tx + 3, ty - 2), cv2.FONT_HERSHEY_SIMPLEX, label_scale, colour, label_thick, cv2.LINE_AA)
    bar = int(34 * scale)
    cv2.rectangle(out, (0, 0), (w, bar), (0, 0, 0), -1)
    cv2.putText(out, overlay.status, (10, int(bar * 0.72)), cv2.FONT_HERSHEY_SIMPLEX, small, (255, 255, 255), 1, cv2.LINE_AA)
    if not overlay.captions:
        return out
    margin = int(14 * scale)
    line_h = int(36 * scale)
    blocks = [(c, wrap(c.line(), w - 2 * margin, round(scale, 3), thick + (c.kind == "alert"))) for c in overlay.captions]
    n_lines = sum(len(lines) for _, lines in blocks)
    top = max(bar, h - margin - n_lines * line_h - 4 * (len(blocks) - 1))
    band = out[top - margin // 2:h]
    band[:] = cv2.convertScaleAbs(band, alpha=0.35)  # darken under the captions: readable on any scene
    y = top
    for c, lines in blocks:
        colour = CAPTION_BGR.get(c.kind, (255, 255, 255))
        for line in lines:
            y += line_h
            cv2.putText(out, line, (margin, y - int(line_h * 0.28)), cv2.FONT_HERSHEY_DUPLEX, scale, colour,
                        thick + (c.kind == "alert"), cv2.LINE_AA)
        y += 4
    return out


@dataclass(frozen=True)
class Written:
    """What :func:`write_video` wrote."""

    frames: int
    """Output frames (camera frames and the held last frame)."""
    camera_frames: int
    fps: float
    duration_s: float
    width: int
    height: int
    audio: bool
    """The speaker's output is the audio track (False: a silent track, nothing was played)."""


def output_size(w: int, h: int, max_width: int) -> tuple[int, int]:
    """Frame size for H.264 (even sides) no wider than ``max_width``."""
    ow = min(w, max_width) // 2 * 2
    return ow, max(2, int(round(h * ow / w / 2)) * 2)


def write_video(frames: Iterable[Any], records: Iterable[dict[str, Any]], path: Path, fps: float, *,
                start_s: float = 0.0, soundtrack: Soundtrack | None = None, max_width: int = 1280,
                min_fps: float = 10.0, tail_s: float = 0.4, hold_tick_s: float = 0.5, crf: int = 26, preset: str = "ultrafast",
                on_frame=None) -> Written:
    """Write the annotated MP4 (H.264 + AAC, through PyAV's FFmpeg) from CameraFrames ``frames``
    (drive-time order) and, as its audio track, what the speaker played (``soundtrack``; silence without).

    Output frame ``k`` is drive time ``start_s + k / out_fps`` (``out_fps``: ``fps``, times a whole
    number when below ``min_fps`` so that captions change on time; a constant rate, so that every
    player and OpenCV seek alike), and the audio starts at ``start_s`` too. The video lasts until the
    last camera frame or, when later, until the last caption ends and ``tail_s`` after the last
    spoken request; the last camera frame is held meanwhile (its clock ticks every ``hold_tick_s``).
    A frame that looks like the one before is not drawn again (the encoder gets the same picture).
    """
    import av
    import cv2

    records = list(records)
    index = OverlayIndex(records, soundtrack.spoken if soundtrack else None)
    src_period_ns = int(1e9 / fps)
    out_fps = fps * max(1, math.ceil(min_fps / fps))
    t0_ns = int(round(start_s * 1e9))
    spoken_end = soundtrack.end_s() + tail_s if soundtrack and soundtrack.spoken else 0.0
    after_ns = int(round(max(index.end_s(), spoken_end) * 1e9))
    it = iter(frames)
    nxt = next(it, None)
    if nxt is None:
        raise ReplayError("video-no-frames", f"no camera frames to write {path} from")
    h0, w0 = nxt.image.shape[:2]
    ow, oh = output_size(w0, h0, max_width)
    box_scale = ow / w0
    rate = Fraction(out_fps).limit_denominator(1001)
    sr = soundtrack.sample_rate if soundtrack else 22050
    try:
        private.open_file(path, "wb").close()  # owner-only from the start (FFmpeg keeps the mode it finds)
        container = av.open(str(path), "w", options={"movflags": "+faststart"})
    except (OSError, av.FFmpegError) as err:
        raise ReplayError("video-failed", f"cannot write {path}: {err}") from err
    try:
        video = container.add_stream("libx264", rate=rate, options={"preset": preset, "crf": str(crf)})
        video.width, video.height, video.pix_fmt = ow, oh, "yuv420p"
        video.codec_context.time_base = 1 / rate
        audio = container.add_stream("aac", rate=sr, layout="mono")
        audio.bit_rate = 96000
        spoken, pcm = (soundtrack.spoken, soundtrack.pcm) if soundtrack else ((), np.zeros(0, np.float32))
        step = audio.codec_context.frame_size or 1024
        done = 0  # audio samples encoded

        def encode_audio(upto: int) -> int:
            """Encode the track up to sample ``upto`` (interleaved with the video as it goes)."""
            i = done
            while i < upto:
                j = min(i + step, upto)
                chunk = av.AudioFrame.from_ndarray(window(spoken, pcm, sr, start_s, i, j).reshape(1, -1), format="fltp", layout="mono")
                chunk.sample_rate, chunk.pts, chunk.time_base = sr, i, Fraction(1, sr)
                for packet in audio.encode(chunk):
                    container.mux(packet)
                i = j
            return i

        cur, base, n, n_cam, last_key, picture = None, None, 0, 0, None, None
        while True:
            t_ns = t0_ns + int(round(n * 1e9 / out_fps))
            while nxt is not None and (cur is None or nxt.t_ns <= t_ns + src_period_ns // 2):
                cur, nxt, base = nxt, next(it, None), None
                n_cam += 1
            if nxt is None and t_ns >= max(cur.t_ns + src_period_ns, after_ns):
                break
            if base is None:
                base = cur.image if cur.image.shape[:2] == (oh, ow) else cv2.resize(cur.image, (ow, oh), interpolation=cv2.INTER_AREA)
            held = t_ns - cur.t_ns > 1.5 * src_period_ns
            shown_ns = t0_ns + int((t_ns - t0_ns) // (hold_tick_s * 1e9) * hold_tick_s * 1e9) if held else t_ns
            overlay = index.at(t_ns, cur.t_ns, held=held, shown_ns=shown_ns)
            key = (id(base), overlay.boxes, overlay.captions, overlay.status)
            if key != last_key:
                img = draw(base, overlay, box_scale)
                picture = av.VideoFrame.from_ndarray(cv2.cvtColor(img, cv2.COLOR_BGR2YUV_I420), format="yuv420p")
                last_key = key
            picture.pts, picture.time_base = n, 1 / rate
            for packet in video.encode(picture):
                container.mux(packet)
            n += 1
            done = encode_audio(done + (int(n * sr / out_fps) - done) // step * step)  # whole audio frames so far
            if on_frame:
                on_frame()
        for packet in video.encode(None):
            container.mux(packet)
        duration = n / out_fps
        encode_audio(int(round(duration * sr)))
        for packet in audio.encode(None):
            container.mux(packet)
    except av.FFmpegError as err:
        raise ReplayError("video-failed", f"FFmpeg could not write {path}: {err}") from err
    finally:
        container.close()
    return Written(n, n_cam, out_fps, round(duration, 3), ow, oh, bool(soundtrack and soundtrack.spoken))


__all__ = ["Caption", "caption_schedule", "captions_at", "Overlay", "OverlayIndex", "box_label", "predict_box", "draw", "wrap", "write_video",
           "Written", "output_size", "LEVEL_BGR"]
