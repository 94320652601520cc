"""Fault injection as pure transforms of a drive's message stream (plus one flag for the advisory lane).

Faults: dropped frames (every n-th, listed times, or a seeded probability), camera outages (no
frames in a span), corrupt audio in a span (white noise, zeros, clipping or NaN samples), and a
stalled SLM (``slm_stall``: the runtime's generator waits that long before answering). The stream
transforms never touch the production code: replay differs only in its sources.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Iterator, Literal

import numpy as np
from pydantic import Field

from vehicle_assist.config import StrictModel
from vehicle_assist.messages import AudioChunk
from vehicle_assist.replay.drive import Timed


class Span(StrictModel):
    """A drive-time span ``[start_s, end_s)``."""

    start_s: float = Field(ge=0)
    end_s: float = Field(gt=0)

    def contains(self, t_ns: int) -> bool:
        return self.start_s * 1e9 <= t_ns < self.end_s * 1e9


class DropFrames(StrictModel):
    """Frames to drop: every ``every``-th, at listed times (nearest frame), or with a seeded probability."""

    every: int | None = Field(None, ge=2)
    at_s: list[float] = []
    probability: float = Field(0.0, ge=0, le=1)
    seed: int = 0


class AudioCorruption(Span):
    """Audio in the span replaced: ``noise`` (full-scale white), ``zeros`` (dropout), ``clip`` (x50, clipped), ``nan``."""

    kind: Literal["noise", "zeros", "clip", "nan"] = "noise"


class SlmStall(StrictModel):
    """The advisory generator stalls for ``stall_s`` of drive time on requests made at or after ``after_s``
    (applied by ``run.StalledAdvisor`` around the runtime's advisor; the safety lane goes on)."""

    stall_s: float = Field(gt=0, le=600)
    after_s: float = Field(0.0, ge=0)


class FaultPlan(StrictModel):
    """All faults of one replay (the ``faults:`` section of a scenario, or ``--fault`` options)."""

    drop_frames: DropFrames | None = None
    camera_outage: list[Span] = []
    corrupt_audio: list[AudioCorruption] = []
    slm_stall: SlmStall | None = None

    def is_empty(self) -> bool:
        return self == FaultPlan()

    def slm_stall_s(self, t_ns: int) -> float:
        """How long the SLM must stall for a request made at drive time ``t_ns`` (0: not at all)."""
        s = self.slm_stall
        return s.stall_s if s and t_ns >= s.after_s * 1e9 else 0.0


def apply(plan: FaultPlan, stream: Iterable[Timed]) -> Iterator[Timed]:
    """The stream with the plan's frame and audio faults applied (deterministic for a given plan)."""
    rng = np.random.default_rng(plan.drop_frames.seed if plan.drop_frames else 0)
    drop_at = sorted(plan.drop_frames.at_s) if plan.drop_frames else []
    frame_period_ns: int | None = None
    last_frame_ns: int | None = None
    for item in stream:
        if item.topic == "frames":
            if last_frame_ns is not None and frame_period_ns is None:
                frame_period_ns = item.t_ns - last_frame_ns
            last_frame_ns = item.t_ns
            if any(span.contains(item.t_ns) for span in plan.camera_outage):
                continue
            if plan.drop_frames and _dropped(plan.drop_frames, item, drop_at, frame_period_ns, rng):
                continue
        elif item.topic == "audio":
            for c in plan.corrupt_audio:
                if c.contains(item.t_ns):
                    item = dataclasses.replace(item, msg=corrupt_chunk(item.msg, c.kind, item.t_ns))
        yield item


def _dropped(spec: DropFrames, item: Timed, drop_at: list[float], period_ns: int | None, rng) -> bool:
    seq = item.msg.seq
    if spec.every and seq % spec.every == spec.every - 1:
        return True
    half = (period_ns or 50_000_000) / 2
    if any(abs(item.t_ns - t * 1e9) < half for t in drop_at):
        return True
    return bool(spec.probability) and rng.random() < spec.probability


def corrupt_chunk(chunk: AudioChunk, kind: str, t_ns: int) -> AudioChunk:
    """One audio block corrupted in the given way (noise is seeded by the block's time)."""
    n = len(chunk.pcm)
    if kind == "zeros":
        pcm = np.zeros(n, np.float32)
    elif kind == "clip":
        pcm = np.clip(chunk.pcm * 50.0, -1.0, 1.0).astype(np.float32)
    elif kind == "nan":
        pcm = np.full(n, np.nan, np.float32)
    else:
        pcm = np.random.default_rng(t_ns % (2**32)).uniform(-1.0, 1.0, n).astype(np.float32)
    return dataclasses.replace(chunk, pcm=pcm)


def describe(plan: FaultPlan) -> list[str]:
    """One readable line per fault, for reports and headers."""
    out = []
    d = plan.drop_frames
    if d:
        parts = [f"every {d.every}th frame" if d.every else "", f"frames at t={d.at_s}" if d.at_s else "",
                 f"p={d.probability} (seed {d.seed})" if d.probability else ""]
        out.append("dropped frames: " + ", ".join(p for p in parts if p))
    out += [f"camera outage t={s.start_s:g}-{s.end_s:g} s" for s in plan.camera_outage]
    out += [f"corrupt audio ({c.kind}) t={c.start_s:g}-{c.end_s:g} s" for c in plan.corrupt_audio]
    if plan.slm_stall:
        out.append(f"SLM stalls {plan.slm_stall.stall_s:g} s on requests after t={plan.slm_stall.after_s:g} s")
    return out
