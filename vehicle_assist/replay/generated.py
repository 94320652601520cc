"""Drive media the project makes itself rather than fetches: built on first use.

The four NHTSA approach drives (``sim/manifests/approach_*.yaml``) name videos under the git-ignored
``sim/generated/approach/``: composites rendered from fetched frames by the approach generator
(test split, fixed seeds, the same pixels on every machine). A replay that finds one missing (or
made by an older generator) renders it first, so a fresh checkout needs nothing but
``vehicle-assist fetch``. This module is the only place the replay calls the generator: moving the
generator is a change of the import in :func:`_generator`.
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


def _generator():
    from vehicle_assist.perception import approach

    return approach


def folder() -> Path:
    """Where the approach drives' media are rendered."""
    return paths.sim() / "generated" / "approach"


def buildable(path: Path) -> str | None:
    """The generator's sequence name when ``path`` is one of the media it renders, else None."""
    path = Path(path)
    if path.suffix not in (".mp4", ".json") or path.parent.resolve() != folder().resolve():
        return None
    names = {sc.name for sc, _ in _generator().split("test")}
    return path.stem if path.stem in names else None


@contextmanager
def _line(description: str, total: int) -> Iterator[Callable[..., None]]:
    sys.stderr.write(f"{description}: {total} frames ...\n")
    sys.stderr.flush()
    yield lambda n=1: None


def ensure(media: Iterable[Path], progress: Progress | None = None) -> list[Path]:
    """Render the generated media among ``media`` that are missing or stale; returns those rendered.
    Other paths are left alone (a missing fetched file stays the caller's error to report)."""
    gen = _generator()
    todo = {name for name in (buildable(p) for p in media) if name}
    built: list[Path] = []
    for sc, seed in gen.split("test"):
        if sc.name not in todo or gen.is_fresh(sc, seed, folder()):
            continue
        mp4 = folder() / f"{sc.name}.mp4"
        try:
            with (progress or _line)(f"rendering generated drive {sc.name} (first use)", gen.frame_count(sc)) as advance:
                gen.ensure("test", folder(), progress=advance, names=[sc.name])
        except (OSError, ValueError) as err:  # e.g. the fetched frames it composites are missing
            raise DriveError("drive-media-unbuilt", mp4, "(render)", f"a rendered approach sequence ({err})") from err
        built.append(mp4)
    return built


def ensure_drive(drive_spec: str | Path, progress: Progress | None = None) -> list[Path]:
    """:func:`ensure` for the media a drive manifest names (nothing for other kinds of drive)."""
    from vehicle_assist.config import ConfigError
    from vehicle_assist.replay.drive import resolve_drive
    from vehicle_assist.replay.errors import ReplayError
    from vehicle_assist.replay.manifest import load_manifest

    try:
        path = resolve_drive(drive_spec)
        if path.is_dir():
            path = path / "manifest.yaml"
        if path.suffix.lower() not in (".yaml", ".yml") or not path.is_file():
            return []
        manifest, base = load_manifest(path)
    except (ReplayError, ConfigError):  # opening the drive reports it properly
        return []
    return ensure([paths.resolve(manifest.video, base)], progress)


__all__ = ["buildable", "ensure", "ensure_drive", "folder"]
