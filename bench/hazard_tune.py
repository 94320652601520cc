"""Iterate on the hazard rules for a detector schedule without re-running the detector each time.

    python bench/hazard_tune.py record [--sets negatives,scenarios,dev] [--tag NAME]
    python bench/hazard_tune.py check  [--sets negatives,scenarios,dev] [--tag NAME] [--hazards FILE] [--verbose]

``record`` runs the configured detector (``VA_CONFIG`` / ``VA_PERCEPTION__*`` pick the schedule) and the
image's ego motion (``perception.egomotion``, as the lane computes it without telemetry) over every frame
of each drive, lockstep, and caches its detections (with ``motion``) as trip-log records under
``sim/generated/tune/<tag>/`` (git-ignored), with the process CPU ms per frame. ``check`` rebuilds
tracks, hazards and alerts from those detections exactly as the lane does (``replay.realert``:
a fresh ByteTrack, ``hazards.assess``, the alert manager) with the current ``configs/hazards.yaml``
(or ``--hazards``), and checks:

- negatives: the ordinary-driving clips as ``bench/perception.py --sections negatives`` runs them
  (default camera; the urban clips only up to their events): no hazard alert at all;
- scenarios: the alert expectations of every camera scenario in ``sim/scenarios`` (drive
  calibration, the scenario's slice; answer checks are skipped: this is the alert logic only);
- dev: ``bench/replay_dev.py``'s dev drives with its labels (made by that script).

Only a tuning aid: the gate is ``vehicle-assist replay sim/scenarios --check`` and ``bench/perception.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from vehicle_assist import fetch, paths  # noqa: E402
from vehicle_assist.messages import Envelope, envelope_record  # noqa: E402
from vehicle_assist import config  # noqa: E402
from vehicle_assist.perception import hazards, pipeline  # noqa: E402
from vehicle_assist.perception.sources import open_source  # noqa: E402
from vehicle_assist.replay import expect, realert  # noqa: E402


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def drives(sets: list[str]) -> list[dict]:
    """Each drive: name, set, video, calibration (None = configured camera), expectations, slice."""
    from perception import NEGATIVE_SPLIT, QUIET_UNTIL_S, SYSTEM_ALERTS

    out = []
    if "negatives" in sets:
        for names in NEGATIVE_SPLIT.values():
            for name in names:
                quiet = QUIET_UNTIL_S.get(name, 1e9)
                out.append({"name": f"neg_{Path(name).stem}", "set": "negatives", "video": str(fetch.data_path("drives", name)),
                            "calib": None, "start_s": 0.0, "end_s": None, "exclude": SYSTEM_ALERTS,
                            "expect": [f"no alert between t=0 and t={min(quiet, 1e4):g}"]})
    if "scenarios" in sets:
        from vehicle_assist.replay.drive import open_drive

        for sc in sorted((paths.sim() / "scenarios").glob("*.yaml")):
            doc = yaml.safe_load(sc.read_text())
            man = paths.sim() / "manifests" / f"{doc['drive']}.yaml"
            video = (yaml.safe_load(man.read_text()) or {}).get("video") if man.is_file() else None
            if not video:  # telemetry-only drives are not for this tool
                continue
            drive = open_drive(str(man))
            checks = [e["check"] for e in doc.get("expect", []) if e["check"].split()[0] in ("alert", "no")
                      and "alert" in e["check"]]
            cal = drive.info.calibration.camera(drive.info.width, drive.info.height)
            out.append({"name": f"sc_{doc['name']}", "set": "scenarios", "video": str(paths.resolve(video)),
                        "calib": cal, "start_s": doc.get("start_s", 0.0), "end_s": doc.get("end_s"),
                        "exclude": ("camera-lost", "perception-lagging"), "expect": checks})
    if "dev" in sets:
        import replay_dev
        from vehicle_assist.replay.drive import open_drive

        for manifest, labels in replay_dev.build_set(paths.sim() / "generated" / "dev"):
            drive = open_drive(str(manifest))
            video = yaml.safe_load(manifest.read_text())["video"]
            cal = drive.info.calibration.camera(drive.info.width, drive.info.height)
            out.append({"name": f"dev_{manifest.stem}", "set": "dev", "video": str(paths.resolve(video)), "calib": cal,
                        "start_s": 0.0, "end_s": None, "exclude": ("camera-lost", "perception-lagging"), "expect": labels})
    return out


def record(d: dict, dest: Path) -> dict:
    """Detections of every frame of the drive (the configured schedule), as trip-log records."""
    from vehicle_assist.messages import to_record

    app = config.load_app(only=("perception", "runtime.threads"))
    settings = app.perception
    pipe = pipeline.build(settings, app.runtime.threads.detector, d["calib"])
    src = open_source(d["video"], realtime=False)
    recs, n = [], 0
    cpu0 = time.process_time()
    try:
        for frame in src:
            dets = pipe.observe_motion(frame, pipe.detector.detect(frame), None)
            n += 1
            recs.append({"topic": "detections", "t_ns": frame.t_ns, "seq": n, "msg": to_record(dets),
                         "size": [frame.width, frame.height]})
    finally:
        src.close()
    cpu = (time.process_time() - cpu0) * 1000 / max(n, 1)
    dest.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    return {"frames": n, "cpu_ms_per_frame": round(cpu, 1)}


def cache_name(d: dict) -> str:
    """One recording per video and calibration (scenarios slicing one drive share it)."""
    return f"{Path(d['video']).stem}__{d['calib'].focal_px:g}.jsonl" if d["calib"] else f"{Path(d['video']).stem}__default.jsonl"


def rerun(d: dict, path: Path, table) -> list[dict]:
    recs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    lo, hi = d["start_s"] * 1e9 - 1e3, (d["end_s"] * 1e9 + 1e3) if d["end_s"] is not None else float("inf")
    recs = [r for r in recs if lo <= r["t_ns"] <= hi]
    w, h = recs[0]["size"]
    cal = (d["calib"] or config.load_app(only=("perception",)).perception.calibration or table.camera).scaled(w, h)
    return realert.rerun(recs, cal, hazard_table=table)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=("record", "check"))
    ap.add_argument("--sets", default="negatives,scenarios,dev")
    ap.add_argument("--tag", default="issue16")
    ap.add_argument("--only", default="", help="substring of drive names")
    ap.add_argument("--hazards", type=Path, help="hazard table (default configs/hazards.yaml)")
    ap.add_argument("--verbose", action="store_true", help="print the hazards behind every alert")
    args = ap.parse_args()
    root = paths.sim() / "generated" / "tune" / args.tag
    root.mkdir(parents=True, exist_ok=True)
    ds = [d for d in drives(args.sets.split(",")) if args.only in d["name"]]
    if args.mode == "record":
        done = set()
        for d in ds:
            if cache_name(d) in done or (root / cache_name(d)).is_file():
                continue
            done.add(cache_name(d))
            stats = record(d, root / cache_name(d))
            log(f"{d['name']:<60} {stats}")
        return
    table = hazards.load_table(args.hazards) if args.hazards else hazards.load_table()
    fails = 0
    for d in ds:
        path = root / cache_name(d)
        if not path.is_file():
            log(f"SKIP {d['name']} (not recorded)")
            continue
        records = rerun(d, path, table)
        if d["start_s"]:  # scenario slices: times as replay gives them (from the slice start)
            off = int(d["start_s"] * 1e9)
            records = [{**r, "t_ns": r["t_ns"] - off} for r in records]
        records = [r for r in records if not (r.get("topic") == "alerts" and r["msg"].get("name") in d["exclude"])]
        results = expect.check([expect.parse(t) for t in d["expect"]], records)
        failed = [r.reason for r in results if not r.passed]
        fails += bool(failed)
        alerts = [(round(t, 2), n) for t, n in expect.alert_starts(records)]
        log(f"{'PASS' if not failed else 'FAIL'} {d['name']:<58} {alerts}")
        for reason in failed:
            log(f"     {reason}")
        if args.verbose and alerts:
            for r in records:
                if r.get("topic") == "hazards" and r["msg"]:
                    t = r["t_ns"] / 1e9
                    if any(abs(t - a) < 0.31 for a, _ in alerts):
                        log(f"     t={t:.2f} " + "; ".join(
                            f"#{x['track_id']} {x['label']} {x['kind']} {x['level']} d={x['distance_m']} ttc={x['ttc_s']} "
                            f"v={x['closing_speed_mps']} corr={x['in_corridor']}" for x in r["msg"]))
    log(f"{fails} drive(s) fail")


if __name__ == "__main__":
    main()
