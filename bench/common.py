"""Pieces the benchmarks share: looped real clips and percentiles (bench/runtime.py, bench/soak.py), and the
result as JSON on stdout and in ``--json-out`` (every bench script)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from vehicle_assist.clock import WallClock
from vehicle_assist.messages import CameraFrame


def looped_clips(clips: list[Path], clock: WallClock, stop: threading.Event) -> Iterator[CameraFrame]:
    """The clips one after another, again and again, in real time, re-stamped on the run clock."""
    from vehicle_assist.perception.sources import open_source

    seq = 0
    while not stop.is_set():
        for path in clips:
            src = open_source(str(path), clock=clock, realtime=True)
            try:
                for f in src:
                    if stop.is_set():
                        return
                    yield CameraFrame(clock.now_ns(), seq, f.image, f.source, perf_ns=f.perf_ns)
                    seq += 1
            finally:
                src.close()


def pct(values: list[float]) -> dict:
    """n, p50, p95, max (ms), rounded."""
    if not values:
        return {"n": 0}
    a = np.asarray(values)
    return {"n": int(a.size), "p50": round(float(np.percentile(a, 50)), 1),
            "p95": round(float(np.percentile(a, 95)), 1), "max": round(float(a.max()), 1)}


def save_json(doc: Any, path: Path | str | None, indent: int = 1, default: Callable[[Any], Any] | None = None) -> str:
    """``doc`` as JSON text, also written to ``path`` (folders made, a final newline) when one is given."""
    text = json.dumps(doc, indent=indent, default=default)
    if path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n", encoding="utf-8")
    return text


def emit_json(doc: Any, path: Path | str | None = None, indent: int = 1, default: Callable[[Any], Any] | None = None) -> None:
    """A benchmark's result: the JSON on stdout and, with ``--json-out PATH``, the same text in that file."""
    print(save_json(doc, path, indent, default), flush=True)


def grouped_folds(gold_sets: list, folds: int, seed: int) -> np.ndarray:
    """Fold per item such that items linked by a shared gold rule share a fold (union-find); groups
    largest first into the smallest fold, ties in a seeded random order."""
    n = len(gold_sets)
    parent = list(range(n))

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a
    first: dict = {}
    for i, gs in enumerate(gold_sets):
        for g in gs:
            if g in first:
                parent[find(i)] = find(first[g])
            else:
                first[g] = i
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    rng = np.random.default_rng(seed)
    order = sorted(groups.values(), key=lambda g: (-len(g), rng.random()))
    fold_of = np.zeros(n, dtype=int)
    sizes = [0] * folds
    for g in order:  # largest groups first into the smallest fold
        f = int(np.argmin(sizes))
        fold_of[g] = f
        sizes[f] += len(g)
    return fold_of
