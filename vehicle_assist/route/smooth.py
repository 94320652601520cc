"""The place along the matched path, smoothed over a whole recorded track.

The HMM (:mod:`vehicle_assist.route.match`) decides *which* roads the car drove; the place along
them it reports is a forward estimate: the odometer moves it exactly, but where it starts carries the
GNSS error along the road, which is coloured (it barely changes over seconds) and so does not average
away, and a longer lag only chooses among forward estimates. Where the speed limit changes at a
node, a place a few metres off puts the change early or late.

Here the matched path of a track is taken as given, joined into one chain of edges per run
(:func:`chains`), and the place along it is estimated from every fix of the run, before and after
(:func:`smooth_along`): the matcher's places' trend plus an offset on a grid, each grid value scored
by a Kalman filter on the coloured GNSS error (and by the course, where there is one), a random walk
between fixes for the odometer's scale error, and a forward-backward pass over the grid. After a
turn the error across the new road is seen directly, and the coloured model carries that back to the
error along the old road before the turn. The grid makes the chain's corners exact (no
linearisation).

Pure: arrays in, arrays out; the chain is built from the matches with a router passed in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from vehicle_assist.route.map import RoadMap
from vehicle_assist.route.match import Match


@dataclass(frozen=True)
class SmoothSettings:
    sigma_m: float = 10.0
    """GNSS 1-sigma per axis (m)."""
    coloured: float = 0.8
    """Share of the GNSS variance that is coloured (Gauss-Markov)."""
    tau_s: float = 5.0
    """Time constant of the coloured GNSS error (s)."""
    q: float = 0.05
    """Random-walk variance of the place per metre travelled (m^2/m): the odometer's scale error."""
    grid_m: float = 0.5
    span_m: float = 30.0
    """The place is searched within this far of the first guess's trend, every ``grid_m``."""
    trend_s: float = 20.0
    """The first guess's offset from the odometer is averaged over this long (s)."""
    turn_m: float = 4.0
    """A course is compared with the path's direction over this far either side."""
    window: int = 6000
    overlap: int = 1000
    """A run of more samples is smoothed in windows of this many, each with this many more either side."""


Router = Callable[[int, int, float], "list[int] | None"]
"""(edge, next edge, metres travelled between) -> the edges joining them, both included, or None."""


def chains(rmap: RoadMap, matches: Sequence[Match | None], odo: np.ndarray, route: Router,
           back_steps: int = 3, detour_m: float = 30.0) -> list[tuple[list[int], list[int], np.ndarray]]:
    """Split a track's matches into runs along one chain of edges each: (fix indices, chain edges,
    each fix's distance along the chain, NaN where unknown). A run ends at a fix with no match, where
    the odometer starts again (a matcher restart), where no route joins two consecutive matched
    edges within ``detour_m`` of the distance travelled, or where the match forks off a part of the
    chain it had stepped back from. A loop the chain makes back onto one of its own edges that is
    more than twice the distance travelled around it (plus ``detour_m``: a loop of the matcher, not
    of the car) is cut out, and the fixes matched on it lose their place (NaN)."""
    out: list[tuple[list[int], list[int], np.ndarray]] = []
    idx: list[int] = []
    pos_of: list[int] = []  # chain index of each fix of the run
    along: list[float] = []
    chain: list[int] = []
    starts: list[float] = []
    first: list[int] = []  # run index of the first fix on each chain index
    pos = 0

    def close() -> None:
        if idx:
            out.append((list(idx), list(chain), np.asarray(along, dtype=float)))

    def new_run(e: int | None) -> None:
        nonlocal idx, pos_of, along, chain, starts, first, pos
        close()
        idx, pos_of, along, first, pos = [], [], [], [], 0
        chain, starts = ([e], [0.0]) if e is not None else ([], [])

    prev_i = -1
    for i, m in enumerate(matches):
        if m is None:
            new_run(None)
            continue
        e = m.edge
        if not chain:
            new_run(e)
        elif odo[i] < odo[prev_i] - 1e-6:
            new_run(e)
        elif e != chain[pos]:
            du = float(odo[i] - odo[prev_i])
            last = along[-1] if math.isfinite(along[-1]) else starts[pos]
            # a place a little behind (the match wavered back) or on along the chain already built
            near = [k for k in range(max(0, pos - back_steps), len(chain)) if chain[k] == e
                    and -detour_m <= starts[k] + m.offset_m - last <= du + detour_m]
            if near:
                pos = min(near, key=lambda k: abs(k - pos))
            else:
                link = route(chain[pos], e, du) if pos == len(chain) - 1 else None
                if link is not None:  # a route much longer than the distance travelled is a detour, not the path
                    ahead = sum(float(rmap.edge_len[c]) for c in link[:-1]) - along[-1] + starts[pos] + m.offset_m \
                        if math.isfinite(along[-1]) else 0.0
                    if ahead > du + detour_m:
                        link = None
                if link is None:
                    new_run(e)
                else:
                    for c in link[1:]:
                        starts.append(starts[-1] + float(rmap.edge_len[chain[-1]]))
                        chain.append(c)
                    pos = len(chain) - 1
                    # the chain came back onto an edge it had: a loop; cut it if the car did not drive it
                    back = [k for k in range(pos) if chain[k] == e and k < len(first)]
                    if back:
                        k = back[-1]
                        j = first[k]
                        loop = starts[pos] - starts[k]
                        if loop > 2.0 * float(odo[i] - odo[idx[j]]) + detour_m:
                            del chain[k + 1:], starts[k + 1:]
                            del first[k + 1:]
                            for r in range(len(idx)):
                                if pos_of[r] > k:
                                    pos_of[r], along[r] = k, math.nan
                            pos = k
        while len(first) <= pos:
            first.append(len(idx))
        idx.append(i)
        pos_of.append(pos)
        along.append(starts[pos] + m.offset_m)
        prev_i = i
    close()
    return out


class _Poly:
    """A chain of edges as a polyline in the map's metric plane, parametrised by distance along it
    (each edge's length as the map measures it)."""

    def __init__(self, rmap: RoadMap, chain: list[int]) -> None:
        xy = rmap.a["node_xy"]
        self.a = np.asarray([xy[rmap.edge_from[e]] for e in chain], dtype=float)
        self.b = np.asarray([xy[rmap.edge_to[e]] for e in chain], dtype=float)
        self.len = np.asarray([max(float(rmap.edge_len[e]), 1e-3) for e in chain])
        self.start = np.concatenate([[0.0], np.cumsum(self.len)[:-1]])
        self.total = float(self.len.sum())

    def _index(self, s: np.ndarray | float) -> np.ndarray:
        """The chain index of the edge at distance(s) ``s`` (before the start: the first; past the end: the last)."""
        return np.clip(np.searchsorted(self.start, s, side="right") - 1, 0, len(self.len) - 1)

    def points(self, s: np.ndarray) -> np.ndarray:
        """The points at distances ``s`` (beyond the ends: on the end edges' lines)."""
        k = self._index(s)
        d = (self.b[k] - self.a[k]) / self.len[k][:, None]
        return self.a[k] + d * (s - self.start[k])[:, None]

    def edge_at(self, s: float) -> tuple[int, float]:
        """The chain index of the edge at distance ``s`` and the offset on it (clamped to the edge)."""
        k = int(self._index(s))
        return k, min(max(s - self.start[k], 0.0), float(self.len[k]))


def smooth_along(poly: _Poly, t: np.ndarray, z: np.ndarray, odo: np.ndarray, s0: np.ndarray,
                 st: SmoothSettings, forward_only: bool = False,
                 heading: np.ndarray | None = None, heading_sigma: np.ndarray | None = None) -> np.ndarray:
    """The distance along ``poly`` at each sample, from times ``t``, fixes ``z`` (n, 2; a NaN row is a
    sample with no position), the odometer ``odo`` and a first guess ``s0`` (the matcher's places).

    The place is the first guess's trend (``s0 - odo`` averaged over ``trend_s``, plus the odometer)
    moved by an offset ``d`` on a grid of ``grid_m`` steps within ``span_m``. ``d`` drifts as a random walk
    (``q`` m^2 per metre travelled). For each grid value a Kalman filter runs on the GNSS error
    (Gauss-Markov, isotropic: one gain for all values), and its innovations score the value; a
    forward-backward pass over the grid gives each sample's posterior mean offset (``forward_only``:
    the forward pass alone, each sample decided on the ones before it). A course (``heading``, compass
    deg, NaN where none, with its 1-sigma ``heading_sigma``: the GNSS course or the gyro's) scores each
    value by the path's direction there (over ``turn_m`` either side, as a car turns through a
    corner, not at its point): it tells which side of a turn the car is."""
    n = len(t)
    has = np.isfinite(z).all(axis=1)
    var_c = st.coloured * st.sigma_m ** 2
    var_w = max((1.0 - st.coloured) * st.sigma_m ** 2, 1.0)
    c = np.asarray(s0, dtype=float) - odo
    ok = np.isfinite(c)
    if not ok.any():
        return np.clip(np.asarray(s0, dtype=float), 0.0, poly.total)
    csum = np.concatenate([[0.0], np.cumsum(np.where(ok, c, 0.0))])
    cnt = np.concatenate([[0], np.cumsum(ok)])
    if forward_only:  # the trend of the places so far
        lo = np.searchsorted(t, t - st.trend_s)
        hi = np.arange(1, n + 1)
    else:
        lo = np.searchsorted(t, t - st.trend_s / 2)
        hi = np.searchsorted(t, t + st.trend_s / 2, side="right")
    trend = (csum[hi] - csum[lo]) / np.maximum(cnt[hi] - cnt[lo], 1)
    have = cnt[hi] > cnt[lo]
    trend = np.interp(t, t[have], trend[have]) if not have.all() else trend
    base = odo + trend
    grid = np.arange(-st.span_m, st.span_m + st.grid_m / 2, st.grid_m)
    nj = len(grid)
    # emissions: innovation log-likelihood of each grid offset at each fix
    ll = np.zeros((n, nj))
    b = np.zeros((nj, 2))
    p = var_c
    for i in range(n):
        if i > 0:
            dt = max(float(t[i] - t[i - 1]), 0.0)
            a = math.exp(-dt / st.tau_s) if st.tau_s > 0 else 0.0
            b *= a
            p = a * a * p + (1.0 - a * a) * var_c
        if not has[i]:
            continue
        r = z[i] - poly.points(base[i] + grid)
        s_var = p + var_w
        nu = r - b
        ll[i] = -0.5 * (nu * nu).sum(axis=1) / s_var
        k = p / s_var
        b += k * nu
        p *= 1.0 - k
    if heading is not None and heading_sigma is not None:
        for i in np.flatnonzero(np.isfinite(heading) & np.isfinite(heading_sigma)):
            sg = base[i] + grid
            v = poly.points(sg + st.turn_m) - poly.points(sg - st.turn_m)
            bearing = np.degrees(np.arctan2(v[:, 0], v[:, 1]))
            diff = (heading[i] - bearing + 180.0) % 360.0 - 180.0
            ll[i] -= 0.5 * np.minimum((diff / heading_sigma[i]) ** 2, 9.0)
    # transitions: the offset's random walk, as a small kernel over the grid
    dv = st.q * np.abs(np.diff(odo, prepend=odo[0]))
    taps = np.arange(-3, 4)

    def step(v: np.ndarray, var: float) -> np.ndarray:
        if var < 1e-4:
            return v
        w = np.exp(-0.5 * (taps * st.grid_m) ** 2 / var)
        w /= w.sum()
        out = np.zeros_like(v)
        for k, wk in zip(taps, w):
            if k > 0:
                out[k:] += wk * v[:-k]
            elif k < 0:
                out[:k] += wk * v[-k:]
            else:
                out += wk * v
        return out

    like = np.exp(ll - ll.max(axis=1, keepdims=True))  # each fix's likelihood over the grid, up to a factor
    prior = np.exp(-0.5 * (grid / st.sigma_m) ** 2)
    alpha = np.zeros((n, nj))
    cur = prior / prior.sum()
    for i in range(n):
        if i > 0:
            cur = step(cur, float(dv[i]))
        cur = cur * like[i]
        cur /= cur.sum()
        alpha[i] = cur
    if forward_only:
        post = alpha
    else:
        post = np.zeros((n, nj))
        beta = np.ones(nj) / nj
        for i in range(n - 1, -1, -1):
            g = alpha[i] * beta
            post[i] = g / g.sum()
            if i > 0:
                beta = step(beta * like[i], float(dv[i]))
                beta /= beta.sum()
    return np.clip(base + post @ grid, 0.0, poly.total)


def smooth_matches(rmap: RoadMap, t: np.ndarray, xy: np.ndarray, odo: np.ndarray,
                   matches: Sequence[Match | None], route: Router,
                   settings: SmoothSettings | None = None, heading: np.ndarray | None = None,
                   heading_sigma: np.ndarray | None = None) -> list[Match | None]:
    """The matches with their places along the matched path smoothed over the whole track
    (:func:`smooth_along` per run of :func:`chains`); a fix with no match stays None, and so does
    the place of a run with a fix whose odometer is unknown (NaN: no speed, nothing to smooth with)."""
    st = settings or SmoothSettings()
    out: list[Match | None] = list(matches)
    known = np.isfinite(odo)
    for idx, chain, along in chains(rmap, matches, np.where(known, odo, 0.0), route):
        if len(idx) < 2 or not known[idx].all():
            continue
        poly = _Poly(rmap, chain)
        ii = np.asarray(idx)
        s = np.empty(len(ii))
        # long runs in overlapping windows: the memory is (samples x grid), and an offset is local anyway
        for w0 in range(0, len(ii), st.window):
            lo, hi = max(0, w0 - st.overlap), min(len(ii), w0 + st.window + st.overlap)
            jj = ii[lo:hi]
            part = smooth_along(poly, t[jj], xy[jj], odo[jj], along[lo:hi], st,
                                heading=None if heading is None else heading[jj],
                                heading_sigma=None if heading_sigma is None else heading_sigma[jj])
            s[w0:w0 + st.window] = part[w0 - lo:w0 - lo + st.window]
        for i, si in zip(idx, s):
            k, off = poly.edge_at(float(si))
            m = matches[i]
            out[i] = Match(chain[k], off, m.distance_m, m.stepped)  # type: ignore[union-attr]
    return out
