"""An OpenStreetMap extract -> the drivable road graph, its feature nodes and a spatial index.

The extract (OSM XML ``.osm``, ``.osm.pbf``, ``.osm.bz2``...) is read once with pyosmium
(libosmium's Python bindings) and indexed into numpy arrays saved under the cache folder
(``$VA_CACHE/route/<name>-<sha256 prefix>.npz``); the next load reads the arrays (milliseconds)
and builds a KD-tree (scipy) over points sampled every few metres along the road segments. A
changed extract has another sha256 and so another cache file; a changed table
(``configs/route.yaml``) or index format changes the key too.

Coordinates: lat/lon (WGS84) are kept; geometry runs on a local equirectangular projection
(metres east/north of the extract's centre), whose scale error stays under 1% within ~100 km of
that centre. Segment lengths are great-circle (haversine) lengths.

Nothing here decides anything: :mod:`vehicle_assist.route.match` matches fixes,
:mod:`vehicle_assist.route.ahead` reads features along the path, :mod:`vehicle_assist.route.limits`
says which limit applies.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vehicle_assist import config, paths
from vehicle_assist.config import StrictModel
from vehicle_assist.errors import CodedError
from vehicle_assist.fetch import sha256_of

log = logging.getLogger(__name__)

INDEX_VERSION = 2
EARTH_R = 6_371_008.8
SAMPLE_M = 8.0
"""Index points are sampled along segments at most this far apart."""


class RouteError(CodedError):
    """A map cannot be read or indexed; ``code`` is stable, the message names the file."""


class BuiltUpEvidence(StrictModel):
    """``built_up_evidence`` in ``configs/route.yaml``: what the surroundings of an untagged way must
    hold for it to count as built-up (street lights: Rule 124's 30 mph) when it has no ``lit`` tag."""

    radius_m: float = 100.0
    """Evidence within this distance of the way (points every 20 m along it) counts."""
    min_lit_ways: int = 2
    """Other highway ways (any kind, footways too) tagged lit=yes..."""
    min_buildings: int = 10
    """...or buildings..."""
    min_lamps: int = 1
    """...or street lamps (highway=street_lamp nodes)..."""
    landuse: list[str] = ["residential", "commercial", "retail", "industrial"]
    """...or a landuse area of these kinds (closed ways) around or beside the way."""


class RouteTables(StrictModel):
    """``configs/route.yaml``."""

    drivable: list[str]
    excluded_service: list[str] = []
    closed_access: list[str] = []
    national_limits_mph: dict[str, dict[str, int]]
    built_up_classes: list[str] = []
    national_values: dict[str, str | None] = {}
    built_up_evidence: BuiltUpEvidence = BuiltUpEvidence()


def load_tables(path: Path | None = None) -> RouteTables:
    return config.load(path or config.config_path("route.yaml"), RouteTables)


# --- pure tag readers -------------------------------------------------------------------------

_SPEED = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(mph|km/h|kmh|kph)?\s*$", re.IGNORECASE)


def parse_maxspeed(value: str | None, national_values: dict[str, str | None]) -> tuple[float, str]:
    """An OSM ``maxspeed`` value -> (mph or NaN, kind).

    kind: ``mph`` (a number: ``"30 mph"``, or km/h when bare or marked, converted), ``national``
    (a value naming the national limit, see ``national_values``; the category is the value's),
    ``none`` (no limit, or unreadable), ``""`` (no tag)."""
    if value is None or not value.strip():
        return math.nan, ""
    v = value.strip()
    if v in national_values:
        return math.nan, "national:" + (national_values[v] or "")
    m = _SPEED.match(v)
    if not m:
        return math.nan, "none"
    number = float(m.group(1))
    unit = (m.group(2) or "km/h").lower()
    return (number if unit == "mph" else number / 1.609344), "mph"


def crossing_detail(tags: dict[str, str]) -> str:
    """A crossing node's UK type: zebra, pelican, puffin, toucan, pegasus, tiger, signal-controlled,
    marked, unmarked or unknown (from crossing_ref, crossing, crossing:markings)."""
    ref = tags.get("crossing_ref", "")
    if ref in ("zebra", "pelican", "puffin", "toucan", "pegasus", "tiger"):
        return ref
    kind = tags.get("crossing", "")
    if kind == "zebra" or tags.get("crossing:markings") == "zebra":
        return "zebra"
    if kind == "traffic_signals" or tags.get("highway") == "traffic_signals":
        return "signal-controlled"
    if kind in ("marked", "uncontrolled"):
        return "marked"
    if kind in ("unmarked", "no", "informal"):
        return "unmarked"
    return "unknown"


def node_feature(tags: dict[str, str]) -> tuple[str, str] | None:
    """(kind, detail) of a node that matters ahead of a driver, else None."""
    hw = tags.get("highway", "")
    if hw == "crossing" or (hw == "traffic_signals" and "crossing" in tags):
        return "crossing", crossing_detail(tags)
    if hw == "traffic_signals":
        return "signals", ""
    if hw in ("give_way", "stop"):
        return hw, ""
    if hw == "mini_roundabout":
        return "roundabout", "mini"
    if tags.get("railway") == "level_crossing":
        return "level_crossing", tags.get("crossing:barrier", "")
    if tags.get("amenity") == "school":
        return "school", tags.get("name", "")
    return None


def oneway_of(tags: dict[str, str]) -> int:
    """+1 one-way along the way's node order, -1 against it, 0 both ways."""
    v = tags.get("oneway", "")
    if v in ("yes", "true", "1"):
        return 1
    if v in ("-1", "reverse"):
        return -1
    if v in ("no", "false", "0"):
        return 0
    hw = tags.get("highway", "")
    if tags.get("junction") in ("roundabout", "circular") or hw in ("motorway", "motorway_link"):
        return 1
    return 0


def is_drivable(tags: dict[str, str], tables: RouteTables) -> bool:
    """A way a car may drive on (class table, service exclusions, access)."""
    if tags.get("highway") not in tables.drivable or tags.get("area") == "yes":
        return False
    if tags.get("highway") == "service" and tags.get("service") in tables.excluded_service:
        return False
    opened = tags.get("motor_vehicle") in ("yes", "designated") or tags.get("motorcar") in ("yes", "designated")
    closed = (tags.get("access") in tables.closed_access or tags.get("motor_vehicle") in tables.closed_access
              or tags.get("motorcar") in tables.closed_access)
    return opened or not closed


def _lanes(v: str | None) -> int:
    try:
        return int(str(v).split(";")[0])
    except (TypeError, ValueError):
        return -1


# --- the map ----------------------------------------------------------------------------------

ARRAYS = ("node_id", "node_ll", "node_xy", "way_id", "way_name", "way_ref", "way_class", "way_oneway",
          "way_lanes", "way_maxspeed_mph", "way_maxspeed_kind", "way_lit", "way_dual", "way_roundabout",
          "way_near_lit", "way_near_buildings", "way_near_lamps", "way_near_landuse",
          "seg_a", "seg_b", "seg_way", "seg_len", "feat_node", "feat_kind", "feat_detail", "feat_dir",
          "feat_osm_id", "origin")


@dataclass
class RoadMap:
    """The drivable graph of one extract. Arrays are read-only once built; see :data:`ARRAYS`.

    Directed edges (built on load): each segment gives an edge along its node order unless the way
    is one-way against it, and one against it unless one-way along it. ``edge_seg``, ``edge_dir``
    (+1 along, -1 against), ``edge_from``/``edge_to`` (node indices), ``edge_len``; ``out_ptr``/
    ``out_edges`` list the edges leaving each node (CSR); ``edge_rev`` is the edge of the same
    segment the other way, or -1.
    """

    path: Path
    sha256: str
    a: dict[str, np.ndarray]
    edge_seg: np.ndarray = field(init=False)
    edge_dir: np.ndarray = field(init=False)
    edge_from: np.ndarray = field(init=False)
    edge_to: np.ndarray = field(init=False)
    edge_len: np.ndarray = field(init=False)
    edge_rev: np.ndarray = field(init=False)
    out_ptr: np.ndarray = field(init=False)
    out_edges: np.ndarray = field(init=False)
    node_degree: np.ndarray = field(init=False)
    node_ways: np.ndarray = field(init=False)
    feats_at: dict[int, list[int]] = field(init=False)

    def __post_init__(self) -> None:
        a = self.a
        seg_a, seg_b, seg_way = a["seg_a"], a["seg_b"], a["seg_way"]
        ow = a["way_oneway"][seg_way]
        segs, dirs = [], []
        for d, keep in ((1, ow >= 0), (-1, ow <= 0)):
            idx = np.nonzero(keep)[0]
            segs.append(idx)
            dirs.append(np.full(len(idx), d, dtype=np.int8))
        self.edge_seg = np.concatenate(segs).astype(np.int32)
        self.edge_dir = np.concatenate(dirs)
        fwd = self.edge_dir > 0
        self.edge_from = np.where(fwd, seg_a[self.edge_seg], seg_b[self.edge_seg]).astype(np.int32)
        self.edge_to = np.where(fwd, seg_b[self.edge_seg], seg_a[self.edge_seg]).astype(np.int32)
        self.edge_len = a["seg_len"][self.edge_seg]
        rev = np.full(len(self.edge_seg), -1, dtype=np.int32)
        by_key = {(int(s), int(d)): i for i, (s, d) in enumerate(zip(self.edge_seg, self.edge_dir))}
        for i, (s, d) in enumerate(zip(self.edge_seg, self.edge_dir)):
            rev[i] = by_key.get((int(s), -int(d)), -1)
        self.edge_rev = rev
        n = len(a["node_id"])
        order = np.argsort(self.edge_from, kind="stable")
        self.out_edges = order.astype(np.int32)
        self.out_ptr = np.searchsorted(self.edge_from[order], np.arange(n + 1)).astype(np.int32)
        # undirected distinct neighbours per node, and how many ways use it
        pairs = np.unique(np.sort(np.stack([seg_a, seg_b], 1), axis=1), axis=0)
        self.node_degree = np.bincount(pairs.ravel(), minlength=n)
        nw = np.unique(np.concatenate([np.stack([seg_a, seg_way], 1), np.stack([seg_b, seg_way], 1)]), axis=0)
        self.node_ways = np.bincount(nw[:, 0], minlength=n)
        self.feats_at = {}
        for i, node in enumerate(a["feat_node"]):
            self.feats_at.setdefault(int(node), []).append(i)
        self._tree = None

    # geometry ------------------------------------------------------------------------------

    def project(self, lat: float | np.ndarray, lon: float | np.ndarray) -> np.ndarray:
        """lat/lon -> local metres (x east, y north) of this map's projection."""
        lat0, lon0 = self.a["origin"]
        k = math.pi / 180.0 * EARTH_R
        return np.stack([(np.asarray(lon) - lon0) * k * math.cos(math.radians(lat0)),
                         (np.asarray(lat) - lat0) * k], -1)

    def unproject(self, xy: np.ndarray) -> np.ndarray:
        """Local metres -> (lat, lon)."""
        lat0, lon0 = self.a["origin"]
        k = math.pi / 180.0 * EARTH_R
        xy = np.asarray(xy, dtype=np.float64)
        return np.stack([xy[..., 1] / k + lat0, xy[..., 0] / (k * math.cos(math.radians(lat0))) + lon0], -1)

    @property
    def tree(self):
        """scipy cKDTree over points sampled along every segment (built on first use)."""
        if self._tree is None:
            from scipy.spatial import cKDTree

            xy = self.a["node_xy"]
            pa, pb = xy[self.a["seg_a"]], xy[self.a["seg_b"]]
            n = np.maximum(1, np.ceil(np.hypot(*(pb - pa).T) / SAMPLE_M)).astype(int)
            seg = np.repeat(np.arange(len(n)), n + 1)
            frac = np.concatenate([np.linspace(0.0, 1.0, k + 1) for k in n])
            pts = pa[seg] + (pb[seg] - pa[seg]) * frac[:, None]
            self._tree = cKDTree(pts)
            self._tree_seg = seg.astype(np.int32)
        return self._tree

    def segments_near(self, xy: np.ndarray, radius_m: float) -> np.ndarray:
        """Indices of segments passing within ``radius_m`` of a point (unique, unordered)."""
        tree = self.tree
        hits = tree.query_ball_point(xy, radius_m + SAMPLE_M / 2 + 0.01)
        if not hits:
            return np.zeros(0, dtype=np.int32)
        return np.unique(self._tree_seg[hits])

    def project_on_segments(self, xy: np.ndarray, segs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(distance m, fraction along a->b) of the point's projection on each segment."""
        p = self.a["node_xy"]
        pa, pb = p[self.a["seg_a"][segs]], p[self.a["seg_b"][segs]]
        d = pb - pa
        ll = np.einsum("ij,ij->i", d, d)
        frac = np.clip(np.einsum("ij,ij->i", np.asarray(xy) - pa, d) / np.where(ll > 0, ll, 1.0), 0.0, 1.0)
        foot = pa + d * frac[:, None]
        return np.hypot(*(np.asarray(xy) - foot).T), frac

    def edge_bearing(self, e: int) -> float:
        """Compass bearing (deg) of a directed edge."""
        p = self.a["node_xy"]
        dx, dy = p[self.edge_to[e]] - p[self.edge_from[e]]
        return math.degrees(math.atan2(dx, dy)) % 360.0

    def way_of_edge(self, e: int) -> int:
        return int(self.a["seg_way"][self.edge_seg[e]])

    def junction_nodes(self) -> np.ndarray:
        """Nodes where roads meet: three or more neighbours, or shared by two or more ways."""
        return np.nonzero((self.node_degree >= 3) | (self.node_ways >= 2))[0]

    def summary(self) -> dict[str, Any]:
        a = self.a
        kinds, counts = np.unique(a["feat_kind"], return_counts=True)
        tagged = np.isfinite(a["way_maxspeed_mph"])
        return {"map": str(self.path), "sha256": self.sha256, "ways": int(len(a["way_id"])),
                "ways_with_maxspeed": int(tagged.sum()), "nodes": int(len(a["node_id"])),
                "segments": int(len(a["seg_a"])), "road_km": round(float(a["seg_len"].sum()) / 1000, 2),
                "roundabout_ways": int(a["way_roundabout"].sum()),
                "features": {str(k): int(c) for k, c in zip(kinds, counts)}}


def haversine_m(lat1: Any, lon1: Any, lat2: Any, lon2: Any) -> Any:
    """Great-circle distance in metres (numpy-broadcasting)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(np.asarray(lon2) - np.asarray(lon1))
    h = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_R * np.arcsin(np.sqrt(np.minimum(1.0, h)))


def wrap180(deg: float) -> float:
    """An angle in [-180, 180) (pure)."""
    return (deg + 180.0) % 360.0 - 180.0


def bearing_diff_deg(a: float, b: float) -> float:
    """The angle between two compass bearings, 0 to 180 degrees (pure)."""
    return abs(wrap180(a - b))


# --- building ---------------------------------------------------------------------------------


def build_arrays(path: Path, tables: RouteTables) -> dict[str, np.ndarray]:
    """Read an extract with pyosmium and return the arrays of :data:`ARRAYS`."""
    try:
        import osmium
    except ImportError as err:  # pragma: no cover - a declared dependency
        raise RouteError("map-library-missing", f"pyosmium is not installed ({err}); pip install osmium") from err

    feature_nodes: dict[int, tuple[str, str, str, float, float]] = {}
    ways: list[dict[str, Any]] = []
    schools: list[list[tuple[float, float]]] = []
    ev = tables.built_up_evidence
    lit_ways: list[tuple[int, list[tuple[float, float]]]] = []  # highway ways tagged lit=yes
    buildings: list[tuple[float, float]] = []  # centroids
    lamps: list[tuple[float, float]] = []
    landuse: list[list[tuple[float, float]]] = []  # closed rings of urban landuse

    class Handler(osmium.SimpleHandler):
        def node(self, n: Any) -> None:
            if not n.tags:
                return
            tags = {t.k: t.v for t in n.tags}
            if tags.get("highway") == "street_lamp" and n.location.valid():
                lamps.append((n.location.lat, n.location.lon))
            feat = node_feature(tags)
            if feat and n.location.valid():
                feature_nodes[n.id] = (feat[0], feat[1], tags.get("direction", ""), n.location.lat, n.location.lon)

        def way(self, w: Any) -> None:
            tags = {t.k: t.v for t in w.tags}
            if tags.get("amenity") == "school":
                schools.append([(nd.lat, nd.lon) for nd in w.nodes if nd.location.valid()])
                return
            if "building" in tags or tags.get("landuse") in ev.landuse or (tags.get("highway") and tags.get("lit") == "yes"):
                pts = [(nd.lat, nd.lon) for nd in w.nodes if nd.location.valid()]
                if pts:
                    if "building" in tags:
                        buildings.append(tuple(np.mean(pts, axis=0)))
                    elif tags.get("landuse") in ev.landuse:
                        if len(pts) >= 4 and w.nodes[0].ref == w.nodes[len(w.nodes) - 1].ref:
                            landuse.append(pts)
                    else:
                        lit_ways.append((w.id, pts))
            if not is_drivable(tags, tables):
                return
            refs, lls = [], []
            for nd in w.nodes:
                if not nd.location.valid():
                    continue  # an incomplete extract: the way's missing nodes are skipped
                if refs and refs[-1] == nd.ref:
                    continue
                refs.append(nd.ref)
                lls.append((nd.lat, nd.lon))
            if len(refs) >= 2:
                ways.append({"id": w.id, "tags": tags, "refs": refs, "lls": lls})

    try:
        Handler().apply_file(str(path), locations=True)
    except RuntimeError as err:
        raise RouteError("map-unreadable", f"{path}: not a readable OSM file ({err})") from err
    if not ways:
        raise RouteError("map-empty", f"{path}: no drivable highway ways in this extract")

    node_index: dict[int, int] = {}
    node_ll: list[tuple[float, float]] = []
    seg_a, seg_b, seg_way = [], [], []
    for wi, w in enumerate(ways):
        idx = []
        for ref, ll in zip(w["refs"], w["lls"]):
            if ref not in node_index:
                node_index[ref] = len(node_ll)
                node_ll.append(ll)
            idx.append(node_index[ref])
        seg_a.extend(idx[:-1])
        seg_b.extend(idx[1:])
        seg_way.extend([wi] * (len(idx) - 1))
    ll = np.asarray(node_ll, dtype=np.float64)
    origin = np.array([(ll[:, 0].min() + ll[:, 0].max()) / 2, (ll[:, 1].min() + ll[:, 1].max()) / 2])
    k = math.pi / 180.0 * EARTH_R
    xy = np.stack([(ll[:, 1] - origin[1]) * k * math.cos(math.radians(origin[0])), (ll[:, 0] - origin[0]) * k], 1)
    sa, sb = np.asarray(seg_a, dtype=np.int32), np.asarray(seg_b, dtype=np.int32)

    def tag(w: dict, key: str) -> str:
        return w["tags"].get(key, "")

    speeds = [parse_maxspeed(w["tags"].get("maxspeed"), tables.national_values) for w in ways]
    oneway = [oneway_of(w["tags"]) for w in ways]
    arrays: dict[str, np.ndarray] = {
        "node_id": np.fromiter(node_index.keys(), dtype=np.int64, count=len(node_index)),
        "node_ll": ll, "node_xy": xy, "origin": origin,
        "way_id": np.array([w["id"] for w in ways], dtype=np.int64),
        "way_name": np.array([tag(w, "name") for w in ways], dtype=str),
        "way_ref": np.array([tag(w, "ref") for w in ways], dtype=str),
        "way_class": np.array([tag(w, "highway") for w in ways], dtype=str),
        "way_oneway": np.array(oneway, dtype=np.int8),
        "way_lanes": np.array([_lanes(w["tags"].get("lanes")) for w in ways], dtype=np.int16),
        "way_maxspeed_mph": np.array([s[0] for s in speeds], dtype=np.float64),
        "way_maxspeed_kind": np.array([s[1] for s in speeds], dtype=str),
        "way_lit": np.array([1 if tag(w, "lit") == "yes" else 0 if tag(w, "lit") == "no" else -1 for w in ways],
                            dtype=np.int8),
        "way_dual": np.array([tag(w, "dual_carriageway") == "yes"
                              or (o != 0 and tag(w, "highway").split("_")[0] in ("trunk", "primary", "secondary")
                                  and tag(w, "junction") not in ("roundabout", "circular"))
                              for w, o in zip(ways, oneway)], dtype=bool),
        "way_roundabout": np.array([tag(w, "junction") in ("roundabout", "circular") for w in ways], dtype=bool),
        "seg_a": sa, "seg_b": sb, "seg_way": np.asarray(seg_way, dtype=np.int32),
        "seg_len": haversine_m(ll[sa, 0], ll[sa, 1], ll[sb, 0], ll[sb, 1]),
    }
    arrays.update(_built_up_evidence(ways, origin, k, ev, lit_ways, buildings, lamps, landuse))
    # features: nodes on drivable ways; schools attach to the nearest road node within 60 m
    f_node, f_kind, f_detail, f_dir, f_osm = [], [], [], [], []
    for osm_id, (kind, detail, direction, lat, lon) in feature_nodes.items():
        if kind == "school":
            schools.append([(lat, lon)])
            continue
        if osm_id in node_index:
            f_node.append(node_index[osm_id]); f_kind.append(kind); f_detail.append(detail)
            f_dir.append(direction); f_osm.append(osm_id)
    if schools:
        from scipy.spatial import cKDTree

        tree = cKDTree(xy)
        for poly in schools:
            if not poly:
                continue
            p = np.asarray(poly)
            pxy = np.stack([(p[:, 1] - origin[1]) * k * math.cos(math.radians(origin[0])), (p[:, 0] - origin[0]) * k], 1)
            d, i = tree.query(pxy)
            j = int(np.argmin(d))
            if d[j] <= 60.0:
                f_node.append(int(i[j])); f_kind.append("school"); f_detail.append(""); f_dir.append(""); f_osm.append(-1)
    arrays.update({"feat_node": np.asarray(f_node, dtype=np.int32), "feat_kind": np.array(f_kind, dtype=str),
                   "feat_detail": np.array(f_detail, dtype=str), "feat_dir": np.array(f_dir, dtype=str),
                   "feat_osm_id": np.asarray(f_osm, dtype=np.int64)})
    for key in ("feat_kind", "feat_detail", "feat_dir"):
        if arrays[key].size == 0:
            arrays[key] = np.zeros(0, dtype="<U1")
    return arrays


def _built_up_evidence(ways: list[dict], origin: np.ndarray, k: float, ev: BuiltUpEvidence,
                       lit_ways: list, buildings: list, lamps: list, landuse: list) -> dict[str, np.ndarray]:
    """Per drivable way, what lies within ``ev.radius_m`` of it (points every 20 m along it): other highway ways tagged
    lit=yes (count), buildings, street lamps, and whether an urban landuse area holds or touches it."""
    from scipy.spatial import cKDTree

    cos0 = math.cos(math.radians(origin[0]))

    def proj(pts: Any) -> np.ndarray:
        p = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
        return np.stack([(p[:, 1] - origin[1]) * k * cos0, (p[:, 0] - origin[0]) * k], 1)

    def tree_of(pts: list) -> tuple[Any, int]:
        return (cKDTree(proj(pts)), len(pts)) if pts else (None, 0)

    lit_pts = [p for _, pts in lit_ways for p in pts]
    lit_owner = np.array([wid for wid, pts in lit_ways for _ in pts], dtype=np.int64)
    lit_tree, _ = tree_of(lit_pts)
    b_tree, _ = tree_of(buildings)
    l_tree, _ = tree_of(lamps)
    rings = [proj(r) for r in landuse]
    ring_tree = cKDTree(np.concatenate(rings)) if rings else None
    n = len(ways)
    near_lit, near_b, near_l = np.zeros(n, np.int16), np.zeros(n, np.int16), np.zeros(n, np.int16)
    near_land = np.zeros(n, dtype=bool)
    r = ev.radius_m
    for wi, w in enumerate(ways):
        pts = _densify(proj(w["lls"]), 20.0)
        if lit_tree is not None:
            hit = {int(lit_owner[j]) for js in lit_tree.query_ball_point(pts, r) for j in js}
            hit.discard(int(w["id"]))
            near_lit[wi] = min(len(hit), 32767)
        if b_tree is not None:
            near_b[wi] = min(len({j for js in b_tree.query_ball_point(pts, r) for j in js}), 32767)
        if l_tree is not None:
            near_l[wi] = min(len({j for js in l_tree.query_ball_point(pts, r) for j in js}), 32767)
        if rings:
            near = ring_tree is not None and any(ring_tree.query_ball_point(pts, r))
            near_land[wi] = near or any(_inside(p, ring) for ring in rings for p in pts[:: max(1, len(pts) // 4)])
    return {"way_near_lit": near_lit, "way_near_buildings": near_b, "way_near_lamps": near_l,
            "way_near_landuse": near_land}


def _densify(pts: np.ndarray, step_m: float) -> np.ndarray:
    """A polyline's points with more added along each segment, at most ``step_m`` apart."""
    out = [pts[:1]]
    for a, b in zip(pts[:-1], pts[1:]):
        n = max(1, int(math.ceil(float(np.hypot(*(b - a))) / step_m)))
        out.append(a + (b - a) * (np.arange(1, n + 1) / n)[:, None])
    return np.concatenate(out)


def _inside(p: np.ndarray, ring: np.ndarray) -> bool:
    """Point in polygon (even-odd rule)."""
    x, y = float(p[0]), float(p[1])
    xs, ys = ring[:, 0], ring[:, 1]
    xj, yj = np.roll(xs, 1), np.roll(ys, 1)
    cross = ((ys > y) != (yj > y)) & (x < (xj - xs) * (y - ys) / np.where(yj - ys == 0, 1e-12, yj - ys) + xs)
    return bool(np.count_nonzero(cross) % 2)


def cache_path(path: Path, sha: str, tables: RouteTables) -> Path:
    """Where the index of an extract is cached: keyed by its sha256, the tables and the format."""
    key = hashlib.sha256(f"{sha}|{INDEX_VERSION}|{tables.model_dump_json()}".encode()).hexdigest()[:16]
    return paths.cache() / "route" / f"{path.stem.split('.')[0]}-{key}.npz"


_LOADED: dict[tuple[str, str], RoadMap] = {}


def load_map(path: str | Path, tables: RouteTables | None = None, use_cache: bool = True) -> RoadMap:
    """The indexed map of an extract: from the cache when its key matches, else built and cached."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise RouteError("map-not-found", f"no map file at {path} (run `vehicle-assist fetch maps`)")
    tables = tables or load_tables()
    sha = sha256_of(path)
    memo = (str(path.resolve()), sha)
    if use_cache and memo in _LOADED:
        return _LOADED[memo]
    cached = cache_path(path, sha, tables)
    arrays = None
    if use_cache and cached.is_file():
        try:
            with np.load(cached, allow_pickle=False) as z:
                arrays = {k: z[k] for k in ARRAYS}
        except (OSError, ValueError, KeyError) as err:
            log.warning("route index %s unreadable (%s); rebuilding", cached, err)
    if arrays is None:
        arrays = build_arrays(path, tables)
        if use_cache:
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_suffix(".partial.npz")
            np.savez(tmp, **arrays)
            tmp.replace(cached)
            (cached.with_suffix(".json")).write_text(json.dumps({"map": str(path), "sha256": sha,
                                                                  "index_version": INDEX_VERSION}))
    rmap = RoadMap(path, sha, arrays)
    if use_cache:
        _LOADED[memo] = rmap
    return rmap
