"""Drive media the project makes itself rather than fetches: built on first use.

Two kinds of drive name files under the git-ignored ``sim/generated/``:

- the four NHTSA approach drives (``sim/manifests/approach_*.yaml``): videos in
  ``sim/generated/approach/`` composited from fetched frames by the approach generator (test split,
  fixed seeds, pinned car boxes: the same pixels on every machine);
- the scripted route drives (``sim/manifests/leeds_*.yaml``): telemetry in
  ``sim/generated/route/<name>/`` made by the route synthesiser from the committed map
  (``sim/route_drives.yaml``, fixed seeds).

A replay that finds one missing, or made by an older generator, builds it first with a progress
line, so a fresh checkout needs nothing but ``vehicle-assist fetch``. This module is the only place
the replay calls the generators: moving one is a change of the import in :func:`_approach` or
:func:`_route`.
"""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Callable, Iterable, Iterator

from vehicle_assist import paths
from vehicle_assist.replay.errors import DriveError

Progress = Callable[[str, int], AbstractContextManager[Callable[..., None]]]
"""``progress(description, total)``: a context manager yielding ``advance(n=1)`` (as the commands'
progress bar); the default prints one line on stderr."""


def _approach():
    from vehicle_assist.tools import approach

    return approach


def _route():
    from vehicle_assist.route import synth

    return synth


def folder(kind: str = "approach") -> Path:
    """Where a kind of generated media is written (``approach`` or ``route``)."""
    return paths.sim() / "generated" / kind


def buildable(path: Path) -> tuple[str, str] | None:
    """(kind, name) when ``path`` is a file a generator makes: ``approach/<name>.mp4|json`` of the
    test split or ``route/<name>/telemetry.csv|truth.json`` of ``sim/route_drives.yaml``; else None."""
    path = Path(path).resolve()
    if path.parent == folder("approach").resolve() and path.suffix in (".mp4", ".json"):
        names = {sc.name for sc, _ in _approach().split("test")}
        return ("approach", path.stem) if path.stem in names else None
    if path.parent.parent == folder("route").resolve() and path.name in ("telemetry.csv", "truth.json"):
        try:
            names = set(_route()._specs())
        except (OSError, KeyError, TypeError):  # no route_drives.yaml: nothing to build
            return None
        return ("route", path.parent.name) if path.parent.name in names else None
    return None


@contextmanager
def _line(description: str, total: int) -> Iterator[Callable[..., None]]:
    sys.stderr.write(f"{description}: {total} frames ...\n" if total else f"{description} ...\n")
    sys.stderr.flush()
    yield lambda n=1: None


def ensure(media: Iterable[Path], progress: Progress | None = None) -> list[Path]:
    """Build the generated media among ``media`` that are missing or stale; returns the ones built.
    Other paths are left alone (a missing fetched file stays the caller's error to report)."""
    wanted = [b for b in (buildable(p) for p in media) if b]
    built: list[Path] = []
    for kind, name in dict.fromkeys(wanted):
        target = folder(kind) / (f"{name}.mp4" if kind == "approach" else name)
        try:
            if kind == "approach":
                built += _ensure_approach(name, progress)
            else:
                built += _ensure_route(name, progress)
        except DriveError:
            raise
        except Exception as err:  # noqa: BLE001 - e.g. the fetched frames or map missing: one line, never a traceback
            raise DriveError("drive-media-unbuilt", target, "(render)", f"a generated {kind} drive ({err})") from err
    return built


def _ensure_approach(name: str, progress: Progress | None) -> list[Path]:
    gen = _approach()
    (sc, seed), = [(sc, seed) for sc, seed in gen.split("test") if sc.name == name]
    if gen.is_fresh(sc, seed, folder("approach")):
        return []
    with (progress or _line)(f"rendering generated drive {name} (first use)", gen.frame_count(sc)) as advance:
        gen.ensure("test", folder("approach"), progress=advance, names=[name])
    return [folder("approach") / f"{name}.mp4"]


def _ensure_route(name: str, progress: Progress | None) -> list[Path]:
    out = folder("route") / name
    if (out / "telemetry.csv").is_file() and (out / "truth.json").is_file():
        _route().ensure([name])  # remade, quickly, only when its spec in sim/route_drives.yaml or the route tables changed
        return []
    with (progress or _line)(f"generating route drive {name} (first use)", 0):
        _route().ensure([name])
    return [out]


__all__ = ["buildable", "ensure", "folder"]
