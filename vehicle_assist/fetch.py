"""Fetch data that does not ship on PyPI (detector weights, rule sources, drives, test media).

The catalogue is ``configs/data.yaml``. Every file is verified by sha256. A file is taken, in
order, from: the destination if already present and correct (so fetching again is a no-op);
the mirror folder ``VA_MIRROR`` (layout ``<group>/<name>``); the file's ``upstream`` URL.
A wrong checksum never leaves a file in place.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from vehicle_assist import config, paths
from vehicle_assist.config import StrictModel


class FileSpec(StrictModel):
    name: str
    sha256: str
    upstream: str | None = None
    derived: str | None = None


class GroupSpec(StrictModel):
    dest: str
    files: list[FileSpec]


class DataCatalogue(StrictModel):
    groups: dict[str, GroupSpec]


class FetchError(Exception):
    """A data file could not be fetched; the message says which and what to do."""


@dataclass(frozen=True)
class FetchResult:
    group: str
    name: str
    path: Path
    how: str  # "present" | "mirror" | "upstream"
    bytes: int


def catalogue(path: Path | None = None) -> DataCatalogue:
    return config.load(path or config.config_path("data.yaml"), DataCatalogue)


def group_dir(group: GroupSpec) -> Path:
    """The destination folder of a group (``$cache`` means VA_CACHE)."""
    if group.dest.startswith("$cache"):
        return paths.cache() / group.dest[len("$cache"):].lstrip("/")
    return paths.resolve(group.dest)


def data_path(group: str, name: str) -> Path:
    """Where a catalogued file lives once fetched (whether or not it is there yet)."""
    return group_dir(catalogue().groups[group]) / name


def sha256_of(path: Path) -> str:
    """sha256 (hex) of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch_file(group: str, spec: FileSpec, dest_dir: Path, mirror: Path | None = None,
               timeout_s: float = 30.0) -> FetchResult:
    """Make ``dest_dir/spec.name`` present and correct; raise FetchError if it cannot be."""
    dest = dest_dir / spec.name
    if dest.is_file() and sha256_of(dest) == spec.sha256:
        return FetchResult(group, spec.name, dest, "present", dest.stat().st_size)
    tried: list[str] = []
    if mirror is not None:
        src = mirror / group / spec.name
        if src.is_file():
            _install(dest, spec, lambda tmp: shutil.copyfile(src, tmp), f"mirror {src}")
            return FetchResult(group, spec.name, dest, "mirror", dest.stat().st_size)
        tried.append(f"mirror {src} (absent)")
    if spec.upstream:
        def download(tmp: Path) -> None:
            try:
                with urllib.request.urlopen(spec.upstream, timeout=timeout_s) as resp, tmp.open("wb") as out:
                    shutil.copyfileobj(resp, out, 1 << 20)
            except OSError as err:
                raise FetchError(f"{group}/{spec.name}: download from {spec.upstream} failed: {err}") from err
        _install(dest, spec, download, f"upstream {spec.upstream}")
        return FetchResult(group, spec.name, dest, "upstream", dest.stat().st_size)
    tried.append("upstream (none: " + (spec.derived or "no public download") + ")")
    raise FetchError(
        f"{group}/{spec.name}: not found. Looked in: {dest}; " + "; ".join(tried)
        + ". Set VA_MIRROR to a folder holding it (layout <group>/<name>)."
    )


def _install(dest: Path, spec: FileSpec, produce: Callable[[Path], None], origin: str) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmpdir:
        tmp = Path(tmpdir) / "partial"
        produce(tmp)
        got = sha256_of(tmp)
        if got != spec.sha256:
            raise FetchError(f"{dest.name}: checksum mismatch from {origin}: expected sha256 {spec.sha256}, got {got}")
        tmp.replace(dest)


def fetch_all(groups: list[str] | None = None, mirror: Path | None = None,
              on_file: Callable[[str, str], None] | None = None) -> tuple[list[FetchResult], list[str]]:
    """Fetch every file of the chosen groups. Returns (results, errors); never stops at the first error."""
    cat = catalogue()
    mirror = mirror if mirror is not None else paths.mirror()
    unknown = sorted(set(groups or []) - set(cat.groups))
    if unknown:
        raise FetchError(f"unknown data group(s) {unknown}; known: {sorted(cat.groups)}")
    results, errors = [], []
    for gname, group in cat.groups.items():
        if groups and gname not in groups:
            continue
        for spec in group.files:
            if on_file:
                on_file(gname, spec.name)
            try:
                results.append(fetch_file(gname, spec, group_dir(group), mirror))
            except FetchError as err:
                errors.append(str(err))
    return results, errors
