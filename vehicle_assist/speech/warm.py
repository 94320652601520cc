"""Answer openings pre-rendered into the TTS disk cache, so that an answer's first audio comes from the cache.

The first audio of anything the car says in silence is its first sentence's first phrase
(:meth:`vehicle_assist.speech.speak.Speaker.opening`); Piper needs ~120-170 ms for it on a quiet machine and ~490 ms
under load, where the disk cache answers in ~1 ms. What the car can open with is known ahead for everything but
generated answers (SLM, remote): every extractive answer's first sentence
(:func:`vehicle_assist.advisory.lane.answer_openings`), the route lane's advisories and map answers
(:func:`vehicle_assist.route.advice.spoken_texts`), the replies to voice commands and the ask-back.
:func:`phrases` lists them with the rate each is first said at; :func:`prerender` renders those not yet on disk
as pinned cache entries (:class:`vehicle_assist.speech.tts.DiskCache`) under the renderer's own key
(:meth:`PiperRenderer.cache_key`), and drops pinned openings no longer in the list. ``vehicle-assist index``
runs it after the rule index (``--no-voice`` skips it). espeak-ng renders in ~20 ms and has no cache: nothing to do.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager as ContextManager
from contextlib import nullcontext
from dataclasses import dataclass, field

from vehicle_assist import clock

Progress = Callable[[str, int], ContextManager[Callable[..., None]]]
"""``progress(description, total)``: a context giving ``advance(n=1)`` (the CLI's progress bar)."""

MUTE_MINUTES = (1, 2, 3, 5, 10, 15, 20, 30, 45, 60)
"""Mute durations whose reply is pre-rendered (others render in ~0.1 s: the reply is short)."""


@dataclass
class WarmReport:
    """What :func:`prerender` did."""

    phrases: int = 0
    """Distinct (opening, rate) pairs asked for."""
    rendered: int = 0
    cached: int = 0
    """Already on disk (kept, not rendered again)."""
    skipped: int = 0
    """Not stored: the cache's share for openings is full (raise ``speech.tts.cache_mb``)."""
    pruned_bytes: int = 0
    render_s: float = 0.0
    pinned_bytes: int = 0
    cache_bytes: int = 0
    max_bytes: int = 0
    note: str = ""
    sources: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def command_replies(default_minutes: int = 10) -> list[tuple[str, int]]:
    """(reply, rate) of each voice command from the default controls: the rate is the one the reply is said at
    ("speak more slowly" answers at the new, slower rate)."""
    from vehicle_assist.messages import Intent
    from vehicle_assist.speech import controls
    from vehicle_assist.speech.intents import COMMANDS

    out: dict[tuple[str, int], None] = {}
    start = controls.VoiceControls()
    for name in COMMANDS:
        minutes = sorted(set(MUTE_MINUTES) | {default_minutes}) if name == "mute" else [None]
        for m in minutes:
            slots = (("minutes", str(m)),) if m is not None else ()
            action = controls.apply(Intent(0, name, name, slots), start, 0)
            if action.reply:
                out.setdefault((action.reply, action.controls.rate))
    return list(out)


def phrases(cfg, advisory_parts=None) -> dict[str, list[tuple[str, int]]]:
    """Everything to pre-render, by source: (text, words per minute). Texts are whole; :func:`prerender`
    takes their openings. ``advisory_parts``: the loaded advisory lane (None: no answer openings)."""
    from vehicle_assist.speech.controls import VoiceControls

    rate = VoiceControls().rate  # what the car's speaker starts at (the voice lane sets it)
    out: dict[str, list[tuple[str, int]]] = {}
    if advisory_parts is not None:
        from vehicle_assist.advisory.lane import answer_openings

        out["answers"] = [(t, rate) for t in answer_openings(advisory_parts)]
    try:
        from vehicle_assist.route import advice

        out["route"] = [(t, rate) for t in advice.spoken_texts(advice.load_table(), cfg.route.lookahead_max_m)]
    except Exception:  # noqa: BLE001 - a broken route table is the route lane's error, not the index's
        out["route"] = []
    out["voice"] = command_replies(cfg.speech.mute_default_minutes) + [(cfg.speech.asr.ask_back, rate)]
    return out


def openings(speaker, texts: Iterable[tuple[str, int]], exclude: str | None = None) -> list[tuple[str, int]]:
    """The distinct openings (:meth:`Speaker.opening`) of ``texts`` with their rates; those holding
    ``exclude`` (a placeholder for a name only the map knows) left out."""
    out: dict[tuple[str, int], None] = {}
    for text, rate in texts:
        head = speaker.opening(text)
        if head and not (exclude and exclude in head):
            out.setdefault((head, rate))
    return list(out)


def prerender(renderer, heads: list[tuple[str, int]], progress: Progress | None = None, prune: bool = True) -> WarmReport:
    """Render each (opening, rate) not yet on disk into the renderer's cache as a pinned entry, under the key
    :meth:`render` looks up; with ``prune`` drop pinned entries that are not among ``heads``."""
    report = WarmReport(phrases=len(heads))
    disk = getattr(renderer, "disk_cache", None)
    if not hasattr(renderer, "prerender") or disk is None:
        report.note = ("no disk cache (speech.tts.cache_mb: 0)" if hasattr(renderer, "prerender")
                       else f"the {getattr(renderer, 'engine', '?')} voice renders in ~20 ms: nothing to pre-render")
        return report
    keep = {disk.path(*renderer.cache_key(t, r), pinned=True) for t, r in heads}
    if prune:
        report.pruned_bytes = disk.unpin_except(keep)
    t0 = clock.perf_ns()
    bar = progress("pre-rendering answer openings", len(heads)) if callable(progress) else nullcontext(lambda n=1: None)
    with bar as advance:
        for i, (text, rate) in enumerate(heads):
            done = renderer.prerender(text, rate)
            if done is None:  # the cache's share for openings is full: the rest would not be kept either
                report.skipped = len(heads) - i
                advance(len(heads) - i)
                break
            report.rendered += done
            report.cached += not done
            advance(1)
    report.render_s = round((clock.perf_ns() - t0) / 1e9, 2)
    report.pinned_bytes, report.cache_bytes, report.max_bytes = disk.pinned_bytes, disk.size, disk.max_bytes
    if report.skipped:
        report.note = (f"{report.skipped} openings not kept: they would fill more than "
                       f"{disk.PINNED_SHARE:.0%} of speech.tts.cache_mb; raise it")
    return report


def all_openings(cfg, renderer, advisory_parts=None) -> tuple[list[tuple[str, int]], dict[str, int]]:
    """:func:`phrases` -> :func:`openings`, cut as the car's speaker cuts them for ``renderer``: the distinct
    (opening, rate) pairs and how many each source gave."""
    from vehicle_assist.route.advice import ROAD
    from vehicle_assist.speech.speak import Speaker

    speaker = Speaker(Silent(), renderer, first_chunk_words=cfg.speech.tts.first_chunk_words)
    heads: dict[tuple[str, int], None] = {}
    counts = {}
    for source, texts in phrases(cfg, advisory_parts).items():
        mine = openings(speaker, texts, exclude=ROAD)
        counts[source] = len(mine)
        heads.update(dict.fromkeys(mine))
    return list(heads), counts


def warm(cfg, renderer, advisory_parts=None, progress: Progress | None = None, prune: bool = True) -> WarmReport:
    """:func:`all_openings` -> :func:`prerender`."""
    heads, counts = all_openings(cfg, renderer, advisory_parts)
    report = prerender(renderer, heads, progress, prune)
    report.sources = counts
    return report


class Silent:
    """An arbiter with nothing playing: the speaker cuts as it does when the driver waits in silence."""

    def __init__(self) -> None:
        self.cancel_event = threading.Event()

    def begin_advisory(self) -> None:
        pass

    def say(self, req) -> None:
        pass

    def is_speaking(self) -> bool:
        return False


__all__ = ["WarmReport", "Silent", "phrases", "openings", "all_openings", "prerender", "warm", "command_replies"]
