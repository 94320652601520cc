"""The whole-track smoothing of the place along the matched path (vehicle_assist/route/smooth.py) and
the whole-track mode of ``RouteTracker`` / ``route match``.

Real data: the Leeds OSM extract (`vehicle-assist fetch maps`) with synthetic drives along its roads
(bench/route_drives.py); a made-up extract for the chain's loop cases.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from vehicle_assist import cli
from vehicle_assist.config import RouteSettings, load_app
from vehicle_assist.route.context import RouteTracker, match_settings
from vehicle_assist.route.limits import way_limits
from vehicle_assist.route.map import load_map, load_tables
from vehicle_assist.route.match import Fix, Match, Matcher, MatchSettings
from vehicle_assist.route.smooth import SmoothSettings, _Poly, chains, smooth_along, smooth_matches

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from route_drives import drive, random_path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from made_up_osm import MadeUpOsm  # noqa: E402

runner = CliRunner()


def _block(path: Path) -> Path:
    """A made-up extract: a street running east (way 1, nodes every 20 m from x = 0 to 200) and a
    two-way block on it: north from x = 100 to y = 40 (way 2), west to x = 80 (way 3), south back
    to the street (way 4). Around the block and on east along the street passes the street's
    80-100 m segment twice."""
    osm = MadeUpOsm(53.80, -1.55, 9000)
    road = {"highway": "residential"}
    osm.way(1, [osm.node(float(x), 0.0) for x in range(0, 220, 20)], road)
    for wid, (a, b) in enumerate((((100, 0), (100, 40)), ((100, 40), (80, 40)), ((80, 40), (80, 0))), start=2):
        osm.way(wid, [osm.node(*a), osm.node(*b)], road)
    return osm.write(path)


def _edge(rmap, a: tuple[float, float], b: tuple[float, float]) -> int:
    """The directed edge from the node at ``a`` to the node at ``b`` (metres from the extract's SW corner)."""
    xy = rmap.a["node_xy"] - rmap.a["node_xy"].min(axis=0)
    na = int(np.argmin(np.hypot(*(xy - np.asarray(a)).T)))
    nb = int(np.argmin(np.hypot(*(xy - np.asarray(b)).T)))
    hit = np.flatnonzero((rmap.edge_from == na) & (rmap.edge_to == nb))
    assert len(hit) == 1, (a, b)
    return int(hit[0])


def _route(rmap):
    m = Matcher(rmap, MatchSettings(lag_s=0.0))
    return m.route_edges


def test_chain_cuts_a_loop_of_the_matcher_but_keeps_one_the_car_drove(tmp_path):
    rmap = load_map(_block(tmp_path / "block.osm"), use_cache=False)
    s1, s2, s3 = _edge(rmap, (60, 0), (80, 0)), _edge(rmap, (80, 0), (100, 0)), _edge(rmap, (100, 0), (120, 0))
    up, west, down = _edge(rmap, (100, 0), (100, 40)), _edge(rmap, (100, 40), (80, 40)), _edge(rmap, (80, 40), (80, 0))
    seq = [(s1, 10.0), (s2, 5.0), (up, 20.0), (west, 10.0), (down, 20.0), (s2, 10.0), (s3, 5.0)]
    matches = [Match(e, off, 3.0, True) for e, off in seq]
    # the car drove around the block: 15 + 35 + 30 + 30 + 30 + 15 m between the matches
    driven = np.cumsum([0.0, 15.0, 35.0, 30.0, 30.0, 30.0, 15.0])
    (idx, chain, along), = chains(rmap, matches, driven, _route(rmap))
    assert chain == [s1, s2, up, west, down, s2, s3] and idx == list(range(7))
    assert np.allclose(np.diff(along), np.diff(driven), atol=0.5)
    # the matcher's loop: the car went 40 m while the match went 120 m round the block (each step
    # within reach of the distance travelled)
    short = np.cumsum([0.0, 15.0, 10.0, 10.0, 10.0, 10.0, 5.0])
    (idx, chain, along), = chains(rmap, matches, short, _route(rmap))
    assert chain == [s1, s2, s3] and idx == list(range(7))
    assert np.isnan(along[2:5]).all() and np.isfinite(along[[0, 1, 5, 6]]).all()  # the fixes on the loop lose their place
    # no match, or a restart (the odometer begins again): a new run
    runs = chains(rmap, [matches[0], None, matches[1], matches[6]], np.array([0.0, 5.0, 15.0, 0.0]), _route(rmap))
    assert [r[0] for r in runs] == [[0], [2], [3]]


def _coloured(rng, n: int, sigma: float, dt: float = 0.1, tau: float = 5.0, coloured: float = 0.85) -> np.ndarray:
    rho = math.exp(-dt / tau)
    e = rng.normal(0.0, 1.0, (n, 2))
    c = np.zeros((n, 2))
    c[0] = e[0]
    for i in range(1, n):
        c[i] = rho * c[i - 1] + math.sqrt(1 - rho * rho) * e[i]
    return sigma * (math.sqrt(coloured) * c + math.sqrt(1 - coloured) * rng.normal(0.0, 1.0, (n, 2)))


def test_smoother_finds_the_place_from_a_wrong_first_guess(leeds):
    """Along a real Leeds path with turns, coloured GNSS noise (10 m, 85% Gauss-Markov 5 s) and an
    exact odometer: a first guess 15 m ahead of the truth everywhere is pulled back to within a few
    metres; the forward pass alone (each sample on the ones before it) gets there too, less well.
    A course through the turns (the path's own direction, 4 deg noise) helps."""
    limits = way_limits(leeds, load_tables())
    errs: dict[str, list[float]] = {"smooth": [], "forward": [], "course": []}
    for seed in range(3):
        rng = np.random.default_rng(100 + seed)
        d = drive(leeds, limits, random_path(leeds, rng, 1500.0), rng, f"s{seed}", sigma_m=10.0)
        ok = np.isfinite(d.along_m)
        t, tru = d.t[ok], d.along_m[ok]
        poly = _Poly(leeds, d.path_edges)
        z = poly.points(tru) + _coloured(rng, len(tru), 10.0)
        odo = tru - tru[0]
        guess = tru + 15.0
        st = SmoothSettings()
        errs["smooth"].append(float(np.sqrt(np.mean((smooth_along(poly, t, z, odo, guess, st) - tru) ** 2))))
        errs["forward"].append(float(np.sqrt(np.mean((smooth_along(poly, t, z, odo, guess, st, forward_only=True) - tru) ** 2))))
        v = poly.points(tru + 0.5) - poly.points(tru - 0.5)
        course = (np.degrees(np.arctan2(v[:, 0], v[:, 1])) + rng.normal(0.0, 4.0, len(tru))) % 360.0
        got = smooth_along(poly, t, z, odo, guess, st, heading=course, heading_sigma=np.full(len(tru), 20.0))
        errs["course"].append(float(np.sqrt(np.mean((got - tru) ** 2))))
    smooth, forward, course = (float(np.mean(errs[k])) for k in ("smooth", "forward", "course"))
    assert smooth < 4.0, errs
    assert forward < 6.0 and smooth < forward, errs
    assert course < smooth, errs


def _leeds_drive(leeds, seed: int):
    limits = way_limits(leeds, load_tables())
    rng = np.random.default_rng(seed)
    return drive(leeds, limits, random_path(leeds, rng, 2500.0), rng, f"dev-{seed}", sigma_m=float(rng.uniform(8.0, 15.0)),
                 gap=(0.45, 0.55) if seed % 3 == 1 else None)


def _place_error(rmap, matches, d) -> np.ndarray:
    """Signed error (m) of each matched place along the true path, where the matched edge is the true one."""
    starts = np.concatenate([[0.0], np.cumsum([rmap.edge_len[e] for e in d.path_edges])])
    out = np.full(len(matches), np.nan)
    for i, m in enumerate(matches):
        if m is None or not math.isfinite(d.along_m[i]):
            continue
        k = min(int(np.searchsorted(starts, d.along_m[i], side="right")) - 1, len(d.path_edges) - 1)
        if m.edge == d.path_edges[k]:
            out[i] = m.offset_m - (d.along_m[i] - starts[k])
    return out


def test_whole_track_smoothing_places_the_car_closer_than_the_matcher(leeds):
    """Four of the bench's dev drives on Leeds (fix + speed): the matcher's best path through the whole
    track, its places, then the smoothed places along it. The smoothed places are closer to the
    truth (rms along the road, fixes matched to the true edge)."""
    raw_err, sm_err = [], []
    settings = match_settings(load_app().route)
    assert math.isinf(settings.lag_s)  # shipped: route match decides with the whole track
    for seed in (0, 2, 4, 5):
        d = _leeds_drive(leeds, seed)
        m = Matcher(leeds, settings)
        xy, odo = np.full((len(d.t), 2), np.nan), np.zeros(len(d.t))
        for i in range(len(d.t)):
            has = math.isfinite(d.lat[i])
            m.update(Fix(float(d.t[i]), float(d.lat[i]) if has else None, float(d.lon[i]) if has else None, float(d.speed[i])))
            odo[i] = m.odometer_m
            if has:
                xy[i] = leeds.project(d.lat[i], d.lon[i])
        raw = m.finish()
        assert m.take_smoothed() == [] and len(raw) == len(d.t)
        sm = smooth_matches(leeds, d.t, xy, odo, raw, m.route_edges)
        assert [x is None for x in sm] == [x is None for x in raw]
        raw_err.append(_place_error(leeds, raw, d))
        sm_err.append(_place_error(leeds, sm, d))
    rms = lambda e: float(np.sqrt(np.nanmean(np.concatenate(e) ** 2)))  # noqa: E731
    assert rms(sm_err) < 0.85 * rms(raw_err), (rms(raw_err), rms(sm_err))


def test_whole_track_tracker_answers_at_flush_in_order(leeds):
    d = _leeds_drive(leeds, 3)
    whole = RouteTracker(leeds, RouteSettings(match_whole_track=True))
    assert math.isinf(whole.matcher.s.lag_s)
    fixes = [Fix(float(d.t[i]), float(d.lat[i]) if math.isfinite(d.lat[i]) else None,
                 float(d.lon[i]) if math.isfinite(d.lat[i]) else None, float(d.speed[i])) for i in range(len(d.t))]
    assert all(whole.push(f) == [] for f in fixes)
    out = whole.flush()
    assert [c.t_ns for c in out] == [int(round(f.t_s * 1e9)) for f in fixes]
    limit_ok = np.mean([c.speed_limit_mph == d.true_limit[i] for i, c in enumerate(out) if math.isfinite(d.true_limit[i])])
    assert limit_ok > 0.95, limit_ok
    with pytest.raises(RuntimeError, match="push"):
        RouteTracker(leeds, RouteSettings(match_whole_track=True)).update(fixes[0])


def test_route_match_whole_track_by_default_and_lag_streams(tmp_path, leeds):
    """``route match`` decides with the whole track by default (as the shipped config says);
    ``--lag 0`` gives what the onboard lane says, fix by fix (filtered)."""
    limits = way_limits(leeds, load_tables())
    rng = np.random.default_rng(4)
    d = drive(leeds, limits, random_path(leeds, rng, 800.0), rng, "cli", sigma_m=10.0)
    track = tmp_path / "track.csv"
    d.write_csv(track)
    got = {}
    for key, extra in (("whole", []), ("now", ["--lag", "0"])):
        res = runner.invoke(cli.app, ["route", "match", "--map", str(leeds.path), "--track", str(track), "--json", *extra])
        assert res.exit_code == 0, res.output
        got[key] = [json.loads(line) for line in res.stdout.splitlines()]
        assert len(got[key]) == len(d.t)
    tracker = RouteTracker(leeds, load_app().route.model_copy(update={"match_whole_track": False, "match_lag_s": 0.0}))
    now = [tracker.update(Fix(float(d.t[i]), float(d.lat[i]), float(d.lon[i]), float(d.speed[i]))) for i in range(len(d.t))]
    assert [r["way_id"] for r in got["now"]] == [c.way_id for c in now]
    ok = lambda recs: np.mean([r["speed_limit_mph"] == d.true_limit[i] for i, r in enumerate(recs)])  # noqa: E731
    assert ok(got["whole"]) >= ok(got["now"]), (ok(got["whole"]), ok(got["now"]))
    res = runner.invoke(cli.app, ["route", "match", "--map", str(leeds.path), "--track", str(track), "--lag", "11"])
    assert res.exit_code != 0


def test_whole_track_without_speed_or_with_odd_rows_is_matched_unsmoothed(tmp_path, leeds):
    """No speed column: nothing to smooth with (the odometer is unknown), so the matcher's own places
    come out; a track that is all gap, or one fix, or one whose time runs backwards gives one record
    per row and no error."""
    limits = way_limits(leeds, load_tables())
    rng = np.random.default_rng(6)
    d = drive(leeds, limits, random_path(leeds, rng, 600.0), rng, "nospeed", sigma_m=8.0)
    fixes = [Fix(float(d.t[i]), float(d.lat[i]), float(d.lon[i]), None) for i in range(len(d.t))]
    whole = RouteTracker(leeds, RouteSettings(match_whole_track=True))
    for f in fixes:
        whole.push(f)
    got = whole.flush()
    m = Matcher(leeds, whole.matcher.s)  # the same settings: the whole track as its lag
    for f in fixes:
        m.update(f)
    raw = m.finish()
    assert [c.way_id for c in got] == [None if x is None else int(leeds.a["way_id"][leeds.way_of_edge(x.edge)]) for x in raw]
    odd = [
        [Fix(0.0, None, None, 5.0), Fix(0.1, None, None, 5.0)],
        [Fix(0.0, float(d.lat[0]), float(d.lon[0]), 5.0)],
        [Fix(float(d.t[i]), float(d.lat[i]), float(d.lon[i]), 10.0) for i in (0, 1, 2, 3)]
        + [Fix(float(d.t[i]), float(d.lat[i]), float(d.lon[i]), 10.0) for i in (0, 1, 2)],
    ]
    for track in odd:
        tr = RouteTracker(leeds, RouteSettings(match_whole_track=True))
        for f in track:
            assert tr.push(f) == []
        assert len(tr.flush()) == len(track)

