"""The matcher's coloured-GNSS route score (MatchSettings.gnss_innov, vehicle_assist/route/gnss_innov.py).

A lean of the GNSS error that persists (a bias, coloured over seconds) must be counted about once per
correlation time, not again at every matching step as the distance emission counts it; a road the
car really drives on must still win as the evidence for it grows over many correlation times.
"""

from __future__ import annotations

import math

import numpy as np

from vehicle_assist.route import gnss_innov

SIGMA, COLOURED, TAU, ALONG_Q = 10.0, 0.8, 5.0, 0.05
STEP_M, STEP_S = 12.0, 1.2


def _run(fixes_y: list[float], road_y: float) -> float:
    """Total innovation log-likelihood of a straight road along x at ``road_y`` (the car drives along
    x, 12 m per step) for fixes at the given lateral positions."""
    geom = (0.0, road_y, 1.0, 0.0)
    s, filt, ll = gnss_innov.start(geom, (0.0, fixes_y[0]), 0.0, None, 0.0, SIGMA, COLOURED, TAU)
    total = ll
    for k, y in enumerate(fixes_y[1:], start=1):
        s, filt, ll = gnss_innov.step(geom, (k * STEP_M, y), s + STEP_M, filt, STEP_M, STEP_S,
                                      ALONG_Q, SIGMA, COLOURED, TAU)
        total += ll
    return total


def _emission(fixes_y: list[float], road_y: float) -> float:
    return sum(-0.5 * ((y - road_y) / SIGMA) ** 2 for y in fixes_y)


def test_a_persistent_lean_is_counted_once_not_at_every_step():
    """20 steps (24 s) with the fixes 8 m off the true road (y=0), towards a parallel road 12 m away:
    the distance emission lets the wrong road gain 0.24 at every step (4.8 in all); the innovation
    explains the lean by the bias and lets it gain far less."""
    fixes = [8.0] * 20
    emis_gap = _emission(fixes, 12.0) - _emission(fixes, 0.0)
    innov_gap = _run(fixes, 12.0) - _run(fixes, 0.0)
    assert emis_gap > 4.5, emis_gap
    assert innov_gap < emis_gap / 3, (innov_gap, emis_gap)


def test_evidence_for_the_true_road_still_grows_over_correlation_times():
    """The car is on the road at y=12, fixes (no noise) on it: the road 12 m away falls behind,
    and keeps falling behind over many correlation times (a bias that never decays is unlikely)."""
    short = _run([12.0] * 5, 0.0) - _run([12.0] * 5, 12.0)
    long = _run([12.0] * 80, 0.0) - _run([12.0] * 80, 12.0)
    assert short < -0.5, short
    assert long < 4 * short, (short, long)


def test_the_place_along_the_road_follows_the_distance_travelled():
    """Noise-free fixes on the road: the filter's place stays on the car and its bias near zero."""
    geom = (0.0, 0.0, 1.0, 0.0)
    s, filt, _ = gnss_innov.start(geom, (0.0, 0.0), 0.0, None, 0.0, SIGMA, COLOURED, TAU)
    for k in range(1, 30):
        s, filt, ll = gnss_innov.step(geom, (k * STEP_M, 0.0), s + STEP_M, filt, STEP_M, STEP_S,
                                      ALONG_Q, SIGMA, COLOURED, TAU)
    assert abs(s - 29 * STEP_M) < 1e-6
    assert math.hypot(*filt[0]) < 1e-6
    assert np.isfinite(ll)


def test_cross_update_without_colour_is_the_distance_emission():
    """With no coloured share the cross-road innovation is the Gaussian distance emission (plus a
    constant): the option reduces to the matcher's usual score."""
    resid = np.array([[3.0, 4.0], [0.0, 0.0], [-12.0, 5.0]])
    dist = np.hypot(resid[:, 0], resid[:, 1])
    prior = gnss_innov.bias_prior(None, 0.0, SIGMA, 1e-9, TAU)
    _, _, ll = gnss_innov.cross_update(prior, resid, dist, SIGMA ** 2)
    emis = -0.5 * (dist / SIGMA) ** 2
    assert np.allclose(ll - ll[1], emis - emis[1])


def _leeds_drive(seed: int):
    import sys
    from pathlib import Path

    from vehicle_assist import fetch
    from vehicle_assist.route.limits import way_limits
    from vehicle_assist.route.map import load_map, load_tables

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    from route_drives import drive, random_path

    rmap = load_map(fetch.data_path("maps", "leeds_city_centre.osm"))
    rng = np.random.default_rng(seed)
    d = drive(rmap, way_limits(rmap, load_tables()), random_path(rmap, rng, 1500.0), rng, "t", sigma_m=12.0)
    return rmap, d


def _matched_edges(rmap, d, **overrides):
    from vehicle_assist.config import RouteSettings
    from vehicle_assist.route.context import match_settings
    from vehicle_assist.route.match import Fix, Matcher

    ms = match_settings(RouteSettings(match_lag_s=0.0, turn_cost=2.0, turn_speed_mps=6.0, minor_cost=1.5, **overrides))
    m = Matcher(rmap, ms)
    out = []
    for i in range(len(d.t)):
        got = m.update(Fix(float(d.t[i]), float(d.lat[i]), float(d.lon[i]), float(d.speed[i])))
        out.append(None if got is None else got.edge)
    return out


def test_cross_mode_is_wired_through_the_route_settings():
    """``route.gnss_innov: cross`` reaches the matcher: with (almost) no coloured share it matches
    every fix as the plain matcher does; with the configured share it changes some."""
    rmap, d = _leeds_drive(5)
    plain = _matched_edges(rmap, d)
    assert _matched_edges(rmap, d, gnss_innov="cross", gnss_coloured=1e-6) == plain
    coloured = _matched_edges(rmap, d, gnss_innov="cross", gnss_coloured=0.8)
    assert coloured != plain


def test_every_mode_follows_a_drive():
    """Each mode keeps the matched way right on most of a noisy Leeds drive (fixes > 20 m from a junction)."""
    rmap, d = _leeds_drive(3)
    way = lambda e: None if e is None else rmap.way_of_edge(e)  # noqa: E731
    far = [i for i in range(len(d.t)) if d.junction_m[i] > 20]
    for mode in ("off", "place", "cross", "scale"):
        got = _matched_edges(rmap, d, gnss_innov=mode)
        right = sum(way(got[i]) == int(d.true_way[i]) for i in far) / len(far)
        assert right >= 0.85, (mode, right)
