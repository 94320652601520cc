"""HTML report of a trip log: a timeline (inline SVG) of hazards, alerts and voice turns, latency per
stage, what was said and which rules were cited, and how the runtime coped with faults.

One self-contained file: no scripts, no network, no CDN. Pure: records in, HTML text out.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from typing import Any, Iterable

from vehicle_assist.tripstats import percentiles, stage_latencies

LEVEL_COLOURS = {"info": "#9aa5b1", "caution": "#f2c94c", "warning": "#f2994a", "critical": "#eb5757"}
LEVEL_RANK = {"none": 0, "info": 1, "caution": 2, "warning": 3, "critical": 4}
ROWS = ("hazards", "alerts", "speaker", "driver", "advisories", "health")
W, LEFT, ROW_H, TOP = 980, 100, 30, 24

CSS = """body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:20px}h2{font-size:16px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4}.pass{color:#1e7b34;font-weight:600}.fail{color:#b00020;font-weight:600}
.muted{color:#777}svg text{font:11px system-ui,sans-serif}code{background:#f4f4f4;padding:0 3px}"""


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _s(t_ns: int) -> float:
    return t_ns / 1e9


def events(records: Iterable[dict[str, Any]]) -> dict[str, list]:
    """The timeline's items, grouped by row (pure; used by the SVG and the tables)."""
    out: dict[str, list] = {r: [] for r in ROWS}
    out["said"], out["answers"], out["errors"], out["end_s"] = [], [], [], 0.0
    speaking: dict[tuple[str, str], float] = {}
    alert_open: dict[str, float] = {}
    stale_open: dict[str, float] = {}
    for rec in records:
        topic, msg, t = rec.get("topic"), rec.get("msg"), _s(int(rec.get("t_ns", 0)))
        out["end_s"] = max(out["end_s"], t)
        if topic == "hazards" and isinstance(msg, list) and msg:
            worst = max(msg, key=lambda h: LEVEL_RANK.get(str(h.get("level")), 0))
            out["hazards"].append((t, str(worst.get("level")), f"{worst.get('label')} {worst.get('kind')} "
                                   f"d={worst.get('distance_m')} m ttc={worst.get('ttc_s')} s"))
        elif topic == "alerts" and isinstance(msg, dict):
            name = str(msg.get("name"))
            if msg.get("state") == "start":
                alert_open[name] = t
                out["said"].append((t, "alert", msg.get("text", ""), name, bool(msg.get("audible"))))
            elif name in alert_open:
                out["alerts"].append((alert_open.pop(name), t, name, bool(msg.get("audible", True))))
        elif topic == "speech" and isinstance(msg, dict):
            key = (str(msg.get("text")), str(msg.get("tier")))
            if msg.get("kind") == "start":
                speaking[key] = t
            elif key in speaking:
                out["speaker"].append((speaking.pop(key), t, key[0], key[1], msg.get("kind")))
        elif topic == "transcripts" and isinstance(msg, dict):
            out["driver"].append((t, msg.get("text", ""), msg.get("confidence")))
        elif topic == "advisories" and isinstance(msg, dict):
            out["advisories"].append((t, msg.get("text", "")))
            out["answers"].append((t, msg))
        elif topic == "health" and isinstance(msg, dict):
            name = str(msg.get("topic"))
            if msg.get("stale"):
                stale_open.setdefault(name, t)
            elif name in stale_open:
                out["health"].append((stale_open.pop(name), t, f"{name} stale"))
        elif topic == "errors" and isinstance(msg, dict):
            out["errors"].append((t, msg.get("code"), msg.get("stage"), msg.get("message")))
    end = out["end_s"]
    out["alerts"] += [(t0, end, n, True) for n, t0 in alert_open.items()]
    out["speaker"] += [(t0, end, k[0], k[1], "open") for k, t0 in speaking.items()]
    out["health"] += [(t0, end, f"{n} stale") for n, t0 in stale_open.items()]
    return out


def timeline_svg(ev: dict[str, list], duration_s: float, faults: list[tuple[float, float, str]] = ()) -> str:
    """The timeline as inline SVG: one row per lane, drive time on the x axis; hover for details."""
    dur = max(duration_s, ev["end_s"], 1e-3)
    plot_w = W - LEFT - 10
    x = lambda t: LEFT + plot_w * min(max(t, 0.0), dur) / dur  # noqa: E731
    h = TOP + ROW_H * len(ROWS) + 24
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{h}" role="img" aria-label="timeline">']
    for i, row in enumerate(ROWS):
        y = TOP + i * ROW_H
        parts.append(f'<rect x="{LEFT}" y="{y}" width="{plot_w}" height="{ROW_H - 4}" fill="{"#fafafa" if i % 2 else "#f3f5f7"}"/>')
        parts.append(f'<text x="4" y="{y + 17}">{row}</text>')
    for t0, t1, label in faults:
        parts.append(f'<rect x="{x(t0):.1f}" y="{TOP - 4}" width="{max(x(t1) - x(t0), 1):.1f}" height="{ROW_H * len(ROWS)}" '
                     f'fill="#8e44ad" opacity="0.10"><title>fault: {_e(label)}</title></rect>')
    y = {row: TOP + i * ROW_H for i, row in enumerate(ROWS)}
    cols: dict[int, tuple[int, float, str, str]] = {}
    for t, level, text in ev["hazards"]:  # one mark per pixel column, the worst level wins
        col = int(x(t))
        if LEVEL_RANK.get(level, 0) >= cols.get(col, (-1,))[0]:
            cols[col] = (LEVEL_RANK.get(level, 0), t, level, text)
    for col, (_, t, level, text) in sorted(cols.items()):
        parts.append(f'<rect x="{col}" y="{y["hazards"] + 3}" width="2" height="{ROW_H - 10}" fill="{LEVEL_COLOURS.get(level, "#ccc")}">'
                     f'<title>t={t:.2f} s {_e(level)}: {_e(text)}</title></rect>')
    for t0, t1, name, audible in ev["alerts"]:
        parts.append(f'<rect x="{x(t0):.1f}" y="{y["alerts"] + 3}" width="{max(x(t1) - x(t0), 2):.1f}" height="{ROW_H - 10}" '
                     f'fill="{"#eb5757" if audible else "#f5b7b1"}"><title>{_e(name)} t={t0:.2f}-{t1:.2f} s'
                     f'{"" if audible else " (silent)"}</title></rect>')
        parts.append(f'<text x="{x(t0) + 2:.1f}" y="{y["alerts"] + 16}" fill="#fff">{_e(name)}</text>')
    for t0, t1, text, tier, kind in ev["speaker"]:
        colour = "#eb5757" if tier == "alert" else "#27ae60"
        parts.append(f'<rect x="{x(t0):.1f}" y="{y["speaker"] + 3}" width="{max(x(t1) - x(t0), 2):.1f}" height="{ROW_H - 10}" '
                     f'fill="{colour}" opacity="{0.5 if kind == "preempted" else 0.9}"><title>{_e(tier)} {_e(kind)} '
                     f't={t0:.2f}-{t1:.2f} s: {_e(text)}</title></rect>')
    for t, text, conf in ev["driver"]:
        parts.append(f'<circle cx="{x(t):.1f}" cy="{y["driver"] + 13}" r="5" fill="#2f80ed"><title>t={t:.2f} s heard '
                     f'({conf}): {_e(text)}</title></circle>')
    for t, text in ev["advisories"]:
        parts.append(f'<path d="M{x(t):.1f} {y["advisories"] + 6} l6 7 l-6 7 l-6 -7 z" fill="#27ae60"><title>t={t:.2f} s: '
                     f'{_e(text)}</title></path>')
    for t0, t1, label in ev["health"]:
        parts.append(f'<rect x="{x(t0):.1f}" y="{y["health"] + 3}" width="{max(x(t1) - x(t0), 2):.1f}" height="{ROW_H - 10}" '
                     f'fill="#828282"><title>{_e(label)} t={t0:.2f}-{t1:.2f} s</title></rect>')
    for t, code, stage, message in ev["errors"]:
        parts.append(f'<text x="{x(t) - 4:.1f}" y="{y["health"] + 18}" fill="#000">✕<title>t={t:.2f} s {_e(code)} '
                     f'in {_e(stage)}: {_e(message)}</title></text>')
    axis_y = TOP + ROW_H * len(ROWS) + 12
    step = next(s for s in (0.1, 0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1e9) if dur / s <= 12)
    k = 0
    while k * step <= dur + 1e-9:
        parts.append(f'<text x="{x(k * step) - 6:.1f}" y="{axis_y}">{k * step:g}s</text>')
        k += 1
    parts.append("</svg>")
    return "".join(parts)


def _roads_near(map_path: str | None, lat0: float, lon0: float, half_m: tuple[float, float]) -> list[tuple]:
    """Segments (lat1, lon1, lat2, lon2, name) of the map within the panel (empty without a readable map)."""
    if not map_path:
        return []
    try:
        from vehicle_assist import paths
        from vehicle_assist.route.lane import _load_map

        rmap = _load_map(str(paths.resolve(map_path)))
    except Exception:  # noqa: BLE001 - the panel draws the path alone
        return []
    import math

    import numpy as np

    ll = rmap.a["node_ll"]
    la, lb = ll[rmap.a["seg_a"]], ll[rmap.a["seg_b"]]
    k = 111_320.0
    dx = (np.minimum(np.abs(la[:, 1] - lon0), np.abs(lb[:, 1] - lon0)) * k * math.cos(math.radians(lat0)))
    dy = np.minimum(np.abs(la[:, 0] - lat0), np.abs(lb[:, 0] - lat0)) * k
    keep = np.nonzero((dx <= half_m[0]) & (dy <= half_m[1]))[0]
    names = rmap.a["way_name"]
    return [(float(la[i, 0]), float(la[i, 1]), float(lb[i, 0]), float(lb[i, 1]), str(names[rmap.a["seg_way"][i]]))
            for i in keep[:20000]]


def map_panel(records: list[dict[str, Any]], route: dict[str, Any] | None, width: int = 640, height: int = 420) -> str:
    """A static map (inline SVG): the map's roads near the driven path, the path from the logged
    positions, and a marker where each advisory was spoken. Honours ``route.log_position``: with
    positions coarsened or off the panel is not drawn (the log holds no usable path)."""
    import math

    route = route or {}
    mode = route.get("log_position", "exact")
    if mode != "exact":
        return f"<p class='muted'>Map panel not drawn: positions are logged {_e(mode)} (route.log_position).</p>"
    pts = [(r["t_ns"] / 1e9, m["lat"], m["lon"]) for r in records if r.get("topic") == "vehicle"
           for m in [r.get("msg")] if isinstance(m, dict) and m.get("lat") is not None and m.get("lon") is not None]
    if not pts:
        return "<p class='muted'>Map panel not drawn: no positions in the log.</p>"
    lats, lons = [p[1] for p in pts], [p[2] for p in pts]
    lat0, lon0 = (min(lats) + max(lats)) / 2, (min(lons) + max(lons)) / 2
    k, c = 111_320.0, math.cos(math.radians(lat0))
    span_x = max((max(lons) - min(lons)) * k * c, 200.0) * 1.15
    span_y = max((max(lats) - min(lats)) * k, 200.0) * 1.15
    scale = min((width - 20) / span_x, (height - 40) / span_y)

    def xy(lat: float, lon: float) -> tuple[float, float]:
        return width / 2 + (lon - lon0) * k * c * scale, (height - 20) / 2 - (lat - lat0) * k * scale

    half = ((width / 2) / scale, ((height - 20) / 2) / scale)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" class="map" '
             f'style="background:#f4f1ea;font:11px sans-serif">']
    for la1, lo1, la2, lo2, name in _roads_near(route.get("map"), lat0, lon0, half):
        (x1, y1), (x2, y2) = xy(la1, lo1), xy(la2, lo2)
        parts.append(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="#bbb" stroke-width="3">'
                     f'<title>{_e(name)}</title></line>')
    runs: list[list[tuple[float, float]]] = [[]]
    last_t = None
    for t, la, lo in pts:
        if last_t is not None and t - last_t > 2.0:  # a gap (or outside the map and back): a new stroke
            runs.append([])
        runs[-1].append(xy(la, lo))
        last_t = t
    for run in runs:
        if run:
            parts.append('<polyline fill="none" stroke="#2f80ed" stroke-width="2" points="'
                         + " ".join(f"{x:.1f},{y:.1f}" for x, y in run) + '"/>')
    times = [p[0] for p in pts]
    import bisect

    for r in records:
        m = r.get("msg")
        if r.get("topic") != "advisories" or not isinstance(m, dict):
            continue
        t = r["t_ns"] / 1e9
        i = min(max(bisect.bisect_left(times, t), 0), len(pts) - 1)
        x, y = xy(pts[i][1], pts[i][2])
        colour = "#27ae60" if m.get("route") == "route" else "#9b51e0"
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{colour}" stroke="#fff"><title>t={t:.1f} s: '
                     f'{_e(m.get("text", ""))[:160]}</title></circle>')
    parts.append(f'<text x="6" y="{height - 6}" fill="#555">© OpenStreetMap contributors (ODbL)</text></svg>')
    return "".join(parts)


def _checks_table(checks: list[dict[str, Any]]) -> str:
    rows = "".join(f'<tr><td class="{"pass" if c["passed"] else "fail"}">{"pass" if c["passed"] else "FAIL"}</td>'
                   f'<td><code>{_e(c["expectation"])}</code></td><td>{_e(c["reason"])}</td></tr>' for c in checks)
    return f"<table><tr><th></th><th>expectation</th><th>what happened</th></tr>{rows}</table>"


def verdict_line(passed: bool | None, checks: list[dict[str, Any]] | None, ref_diffs: list[str] | None) -> str:
    """The header's verdict (``passed`` is the replay's one verdict, as its exit code says); empty
    when the replay was not checked."""
    if passed is None:
        return ""
    parts = []
    if checks is not None:
        parts.append(f"scenario checks {sum(c['passed'] for c in checks)}/{len(checks)} passed")
    if ref_diffs is not None:
        parts.append(f"reference: {len(ref_diffs)} difference(s)" if ref_diffs else "reference: no differences")
    word, cls = ("PASSED", "pass") if passed else ("FAILED", "fail")
    return f'<h2 class="{cls}">Verdict: {word}</h2><p>{_e("; ".join(parts))}</p>'


def render(header: dict[str, Any], records: Iterable[dict[str, Any]], title: str = "Replay report",
           checks: list[dict[str, Any]] | None = None, ref_diffs: list[str] | None = None,
           passed: bool | None = None) -> str:
    """The whole report as one HTML string; ``passed`` (the replay's verdict, None: not checked)
    heads it."""
    records = list(records)
    ev = events(records)
    drive = header.get("drive", {}) if isinstance(header.get("drive"), dict) else {}
    duration = float(drive.get("duration_s") or ev["end_s"])
    read = drive.get("read") if isinstance(drive.get("read"), dict) else {}
    length = f"{duration:.2f} s"
    if read.get("ended_early"):  # say what was read, not what the container claimed
        length = (f"{read['until_s']:.2f} s read: the video ends early, {read['frames']} of the {read['claimed_frames']} "
                  f"frames ({duration:.2f} s) its header claims could be decoded")
        duration = float(read["until_s"])
    faults = [(float(s.get("start_s", 0)), float(s.get("end_s", 0)), "camera outage")
              for s in (header.get("faults") or {}).get("camera_outage", [])]
    faults += [(float(s.get("start_s", 0)), float(s.get("end_s", 0)), f"corrupt audio ({s.get('kind')})")
               for s in (header.get("faults") or {}).get("corrupt_audio", [])]
    counts = Counter(r.get("topic") for r in records)
    lat = {k: percentiles(v) for k, v in sorted(stage_latencies(records).items()) if v}
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(title)}</title><style>{CSS}</style></head><body>",
           f"<h1>{_e(title)}</h1>",
           f"<p>Drive <b>{_e(drive.get('name', '?'))}</b> ({_e(length)}, mode {_e(header.get('mode', '?'))}); "
           f"git {_e((header.get('git') or {}).get('commit', '?'))}; config {_e(header.get('config_hash', '?'))}.</p>",
           "<p>" + ", ".join(f"{_e(k)}: {v}" for k, v in sorted(counts.items(), key=lambda kv: str(kv[0]))) + "</p>",
           verdict_line(passed, checks, ref_diffs)]
    if checks is not None:
        n_ok = sum(c["passed"] for c in checks)
        out.append(f"<h2>Scenario checks: {n_ok}/{len(checks)} passed</h2>" + _checks_table(checks))
    if ref_diffs is not None:
        out.append(f"<h2>Reference comparison: {len(ref_diffs)} difference(s)</h2>")
        out.append("<ul>" + "".join(f"<li><code>{_e(d)}</code></li>" for d in ref_diffs[:50]) + "</ul>" if ref_diffs else "<p>identical within tolerances</p>")
    out.append("<h2>Timeline</h2>" + timeline_svg(ev, duration, faults))
    route = (header.get("inputs") or {}).get("route") if isinstance(header.get("inputs"), dict) else None
    if route or any(r.get("topic") == "route" for r in records):
        out.append("<h2>Map</h2>" + map_panel(records, route)
                   + '<p class="muted">grey: the map\'s roads; blue: the driven path (logged positions); '
                   "green: route advisories where spoken; purple: other advisories.</p>")
    out.append('<p class="muted">hazards: grey info, yellow caution, orange warning, red critical. alerts: red audible, pink silent. '
               "speaker: red alert tier, green advisory tier (faded: pre-empted). driver: what ASR heard. "
               "health: stale topics (grey), errors (✕). Purple bands: injected faults. Hover for details.</p>")
    out.append("<h2>Latency per stage (processing time, ms)</h2>")
    if lat:
        out.append("<table><tr><th>stage</th><th>n</th><th>p50</th><th>p95</th><th>max</th></tr>" + "".join(
            f"<tr><td>{_e(k)}</td><td>{v['n']}</td><td>{v['p50']}</td><td>{v['p95']}</td><td>{v['max']}</td></tr>" for k, v in lat.items()) + "</table>")
    else:
        out.append('<p class="muted">no stage timings in this log</p>')
    out.append("<h2>What was said</h2><table><tr><th>t (s)</th><th>kind</th><th>text</th></tr>")
    said = [(t, f"alert {name}" + ("" if audible else " (silent)"), text) for t, _, text, name, audible in ev["said"]]
    said += [(t0, f"speaker ({tier}, {kind})", text) for t0, _, text, tier, kind in ev["speaker"]]
    said += [(t, "driver said", text) for t, text, _ in ev["driver"]]
    out += [f"<tr><td>{t:.2f}</td><td>{_e(k)}</td><td>{_e(text)}</td></tr>" for t, k, text in sorted(said, key=lambda r: r[0])]
    out.append("</table><h2>Answers and cited rules</h2>")
    if ev["answers"]:
        out.append("<table><tr><th>t (s)</th><th>question</th><th>answer</th><th>route</th><th>rules cited</th></tr>" + "".join(
            f"<tr><td>{t:.2f}</td><td>{_e(m.get('question') or '(proactive)')}</td><td>{_e(m.get('text'))}"
            f"{' <b>(refused)</b>' if m.get('refused') else ''}</td><td>{_e(m.get('route'))}</td>"
            f"<td>{_e(', '.join(map(str, m.get('cited') or [])) or '-')}</td></tr>" for t, m in ev["answers"]) + "</table>")
    else:
        out.append('<p class="muted">no advisories</p>')
    out.append("<h2>How the runtime coped</h2>")
    fault_lines = header.get("fault_lines") or []
    out.append("<p>Injected faults: " + (_e("; ".join(fault_lines)) if fault_lines else "none") + "</p>")
    stale = [f"{label} t={t0:.2f}-{t1:.2f} s" for t0, t1, label in ev["health"]]
    out.append("<p>Stale topics: " + (_e("; ".join(stale)) if stale else "none") + "</p>")
    if ev["errors"]:
        out.append("<table><tr><th>t (s)</th><th>code</th><th>stage</th><th>message</th></tr>" + "".join(
            f"<tr><td>{t:.2f}</td><td>{_e(c)}</td><td>{_e(s)}</td><td>{_e(m)}</td></tr>" for t, c, s, m in ev["errors"]) + "</table>")
    else:
        out.append("<p>Errors: none</p>")
    extra = {k: v for k, v in header.items() if k in ("replay", "speed", "frames")}
    if extra:
        out.append(f"<h2>Replay</h2><pre>{_e(json.dumps(extra, indent=1, default=str))}</pre>")
    out.append("</body></html>")
    return "\n".join(out)
