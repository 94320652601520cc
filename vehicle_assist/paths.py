"""Where things live. One root setting, ``VA_HOME``; nothing is found relative to the cwd.

- ``VA_HOME``: the project root holding ``configs/``, ``knowledge/`` and ``sim/``
  (default: the checkout this package was installed from).
- ``VA_CACHE``: where model weights are fetched to (default ``~/.cache/vehicle_assist``).
- ``VA_MIRROR``: an optional local mirror folder to copy data from instead of upstream.
"""

from __future__ import annotations

import os
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parent.parent


def home() -> Path:
    """The project root (``VA_HOME``, else the checkout)."""
    return Path(os.environ.get("VA_HOME") or _CHECKOUT).expanduser().resolve()


def configs() -> Path:
    return home() / "configs"


def knowledge() -> Path:
    return home() / "knowledge"


def sim() -> Path:
    return home() / "sim"


def cache() -> Path:
    """User cache for model weights (``VA_CACHE``, else ``~/.cache/vehicle_assist``)."""
    return Path(os.environ.get("VA_CACHE") or Path.home() / ".cache" / "vehicle_assist").expanduser()


def mirror() -> Path | None:
    """The mirror folder named by ``VA_MIRROR``, or None."""
    value = os.environ.get("VA_MIRROR")
    return Path(value).expanduser().resolve() if value else None


def resolve(path: str | Path, base: Path | None = None) -> Path:
    """Resolve a path from a config: absolute stays, ``~`` expands, relative is under ``base`` (VA_HOME)."""
    p = Path(os.path.expandvars(str(path))).expanduser()
    return p if p.is_absolute() else (base or home()) / p
