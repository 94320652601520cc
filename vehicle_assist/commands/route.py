"""``vehicle-assist route match|info``: the road, the limit and what is ahead, from an offline map."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from rich.markup import escape

from vehicle_assist.commands._out import console, emit, emit_line, fail, progress, warn

MAP_HELP = "OpenStreetMap extract (.osm, .osm.pbf); default: route.map in the config."


def _error(as_json: bool, code: str, message: str) -> None:
    """A one-line error in the commands' one form (JSON on stdout under --json); exit code 2."""
    fail(message, 2, code=code)


def _map_path(map_file: Optional[Path], as_json: bool) -> Path:
    from vehicle_assist import config, paths

    if map_file is not None:
        return map_file.expanduser()
    configured = config.load_app().route.map
    if not configured:
        _error(as_json, "map-missing", "no map: pass --map FILE.osm or set route.map in the config")
    return paths.resolve(configured)  # type: ignore[arg-type]


def record(ctx: Any) -> dict[str, Any]:
    """The per-fix JSON record of ``route match``."""
    from vehicle_assist.route.ahead import feature_record

    limit = ctx.speed_limit_mph
    return {"t": round(ctx.t_ns / 1e9, 3), "way_id": ctx.way_id, "road": ctx.road, "road_class": ctx.road_class,
            "oneway": ctx.oneway, "lanes": ctx.lanes,
            "speed_limit_mph": None if limit is None else round(limit),
            "limit_source": ctx.limit_source,
            "features_ahead": [feature_record(f) for f in ctx.features_ahead]}


def describe(rec: dict[str, Any]) -> str:
    """One readable line for a per-fix record."""
    if rec["way_id"] is None:
        return f"{rec['t']:9.2f}s  no road matched (outside the map, or no position): no limit claimed"
    limit = f"{rec['speed_limit_mph']} mph ({rec['limit_source']})" if rec["speed_limit_mph"] is not None else "no limit known"
    ahead = ", ".join(f"{f['kind']}{' ' + f['detail'] if f.get('detail') else ''}"
                      f"{' ' + str(f['limit_mph']) + ' mph' if 'limit_mph' in f else ''} {f['distance_m']:.0f} m"
                      for f in rec["features_ahead"][:4])
    road = rec["road"] or "unnamed road"
    return f"{rec['t']:9.2f}s  {road} ({rec['road_class']}), {limit}" + (f"; ahead: {ahead}" if ahead else "")


def register(app: typer.Typer) -> None:
    route_app = typer.Typer(help="Route context from an offline OpenStreetMap extract: map matching, "
                            "speed limit, features ahead.", no_args_is_help=True,
                            short_help="Match a track to an offline map: road, limit, what is ahead.")
    app.add_typer(route_app, name="route")

    @route_app.command("match", short_help="Match each fix of a track to the map, with its speed limit.")
    def match(
        track: Path = typer.Option(..., "--track", metavar="FILE", help="Track: CSV with header "
                                   "t,lat,lon,speed_mps[,heading_deg][,yaw_rate_dps] (heading_deg: GNSS course over ground; "
                                   "yaw_rate_dps: gyro yaw rate, deg/s, clockwise positive; empty cell: unknown; a row with no "
                                   "lat/lon is a GPS gap, its speed and yaw rate still dead-reckon), "
                                   "or telemetry that `run` reads (CSV/JSON Lines, comma2k19 folder)."),
        map_file: Optional[Path] = typer.Option(None, "--map", metavar="FILE", help=MAP_HELP),
        vehicle_type: Optional[str] = typer.Option(None, "--vehicle", metavar="TYPE", help="Rule 124 vehicle type (default: route.vehicle_type)."),
        as_json: bool = typer.Option(False, "--json", help="JSON Lines: one record per fix, in order."),
        lag: Optional[float] = typer.Option(None, "--lag", metavar="SECONDS", min=0.0, max=10.0,
                                            help="Decide each fix with only the next SECONDS of fixes and stream the "
                                            "records as the track is read (0: each fix at once, as the onboard route "
                                            "lane does). Default: the whole track (route.match_whole_track)."),
    ) -> None:
        """Match each fix of a track to the map: road, class, speed limit and its source, features ahead.

        By default each fix is decided with the whole track: the best path through all of its fixes,
        and the place along it smoothed with the fixes before and after (the records come out once
        the track has been read). --lag decides with fewer fixes and streams.

        A fix with no road of the map within reach (outside its coverage) gets way_id and
        speed_limit_mph null: nothing is claimed.
        """
        from vehicle_assist import config
        from vehicle_assist.route.context import RouteTracker, TrackError, read_track
        from vehicle_assist.route.map import RouteError, load_map, load_tables

        path = _map_path(map_file, as_json)
        settings = config.load_app().route
        if vehicle_type:
            settings = settings.model_copy(update={"vehicle_type": vehicle_type})
        if lag is not None:
            settings = settings.model_copy(update={"match_whole_track": False, "match_lag_s": lag})
        try:
            tables = load_tables()
            if settings.vehicle_type not in tables.national_limits_mph:
                _error(as_json, "vehicle-unknown", f"unknown vehicle type {settings.vehicle_type!r}; "
                       f"known: {', '.join(sorted(tables.national_limits_mph))}")
            tracker = RouteTracker(load_map(path, tables), settings, tables)
        except RouteError as err:
            _error(as_json, err.code, err.message)
        if not track.exists():
            _error(as_json, "track-not-found", f"no track at {track}")
        n = matched = 0
        try:
            def out(ctxs: list) -> tuple[int, int]:
                got = hit = 0
                for ctx in ctxs:
                    rec = record(ctx)
                    got += 1
                    hit += rec["way_id"] is not None
                    if as_json:
                        emit_line(rec)
                    else:
                        console.print(describe(rec), markup=False, highlight=False, soft_wrap=True)
                return got, hit

            whole = settings.match_whole_track  # the records come at the end: show the fixes read meanwhile
            with progress("matching fixes", None, enabled=whole) as advance:
                for fix in read_track(track):  # a fix's record comes out once the lag has passed (whole track: at flush)
                    got, hit = out(tracker.push(fix))
                    n, matched = n + got, matched + hit
                    advance(1)
            got, hit = out(tracker.flush())
            n, matched = n + got, matched + hit
        except TrackError as err:
            _error(as_json, "track-bad", str(err))
        right, mirrored = tracker.matcher.yaw_sign_votes
        if tracker.matcher.yaw_mirrored:
            warn(f"the yaw rate turned the other way from the track in {mirrored} of {right + mirrored} turns, so it "
                 "was ignored from then on: is it anticlockwise-positive (ISO 8855, as many CAN signals)? "
                 "yaw_rate_dps wants clockwise-positive, negate it")
        if not as_json:
            console.print(f"{n} fixes, {matched} matched to a road of {path.name}. Map data © OpenStreetMap contributors.",
                          markup=False, highlight=False)

    @route_app.command("info", short_help="Index a map and count its roads, limits and features.")
    def info(
        map_file: Optional[Path] = typer.Option(None, "--map", metavar="FILE", help=MAP_HELP),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
    ) -> None:
        """Index a map (cached; rebuilt when the file changes) and count its roads, limits and features."""
        import time

        from vehicle_assist.route.map import RouteError, load_map

        path = _map_path(map_file, as_json)
        t0 = time.perf_counter()
        try:
            rmap = load_map(path)
        except RouteError as err:
            _error(as_json, err.code, err.message)
        doc = rmap.summary() | {"load_ms": round((time.perf_counter() - t0) * 1000, 1)}

        def human(d: dict) -> None:
            console.print(f"[bold]{escape(d['map'])}[/bold]: {d['ways']} drivable ways ({d['road_km']} km), "
                          f"{d['ways_with_maxspeed']} with maxspeed, {d['roundabout_ways']} roundabout ways; "
                          f"features: " + ", ".join(f"{k} {v}" for k, v in d["features"].items())
                          + f"; loaded in {d['load_ms']} ms. © OpenStreetMap contributors")

        emit(doc, as_json, human)

    @route_app.command("drives", short_help="Generate the scripted route drives that are missing or changed.")
    def drives(
        name: Optional[list[str]] = typer.Argument(None, metavar="NAME", help="Drive names of sim/route_drives.yaml (default: all)."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
    ) -> None:
        """Generate the scripted route drives (sim/route_drives.yaml) into sim/generated/route/ (when missing or changed)."""
        from vehicle_assist.route import synth
        from vehicle_assist.route.map import RouteError

        try:
            folders = synth.ensure(name or None)
        except KeyError as err:
            _error(as_json, "drive-unknown", f"no drive {err} in sim/route_drives.yaml")
        except (RouteError, OSError) as err:
            _error(as_json, "drives-failed", str(err))
        doc = {"drives": [str(f) for f in folders]}
        emit(doc, as_json, lambda d: console.print("\n".join(d["drives"]), markup=False, highlight=False))
