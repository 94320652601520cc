"""Made-up OpenStreetMap extracts for tests: nodes placed in metres east / north of a corner."""

from __future__ import annotations

import math
from pathlib import Path


class MadeUpOsm:
    """Nodes at (x, y) metres east / north of (``lat0``, ``lon0``), ids from ``first_id``; one node
    per untagged place (a way that passes the same place shares it: a junction)."""

    def __init__(self, lat0: float, lon0: float, first_id: int = 1000) -> None:
        self.lat0, self.lon0, self.next_id = lat0, lon0, first_id
        self.nodes: list[str] = []
        self.ways: list[str] = []
        self._at: dict[tuple[float, float], int] = {}

    def node(self, x: float, y: float, tags: str = "") -> int:
        if not tags and (x, y) in self._at:
            return self._at[(x, y)]
        self.next_id += 1
        lat = self.lat0 + y / 111_195.0
        lon = self.lon0 + x / (111_195.0 * math.cos(math.radians(self.lat0)))
        self.nodes.append(f'<node id="{self.next_id}" lat="{lat:.7f}" lon="{lon:.7f}" version="1">{tags}</node>')
        if not tags:
            self._at[(x, y)] = self.next_id
        return self.next_id

    def way(self, wid: int, nodes: list[int], tags: dict[str, str]) -> None:
        nds = "".join(f'<nd ref="{p}"/>' for p in nodes)
        tg = "".join(f'<tag k="{k}" v="{v}"/>' for k, v in tags.items())
        self.ways.append(f'<way id="{wid}" version="1">{nds}{tg}</way>')

    def write(self, path: Path) -> Path:
        path.write_text('<?xml version="1.0"?><osm version="0.6">' + "".join(self.nodes) + "".join(self.ways) + "</osm>")
        return path
