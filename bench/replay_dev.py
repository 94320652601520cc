"""Dev set for the safety lane's hazard and alert logic (tune here; `sim/scenarios` is the test set).

    python bench/replay_dev.py [--out DIR] [--from-logs] [--json-out FILE]

Drives (made under ``sim/generated/dev``, git-ignored; deterministic):
- 10 approach sequences that are not in the test split: the perception split's four ``*-dev``
  sequences and six more with other kinematics, cars and seeds (``EXTRA``). Labelled from the
  generator's ground truth: silent while the constant-velocity TTC is above 7.5 s (before a lead
  brakes), a forward-collision alert by the NHTSA deadline.
- the five real clips mirrored left-right (other geometry; the cut-in comes from the left), with
  labels written from the mirrored frames (``MIRROR_LABELS``).
Each drive is replayed in lockstep with the current configs (``--no-voice``); ``--from-logs`` skips
the replays and re-runs tracking, hazards and alerts on the detections logged in ``--out`` (seconds,
for iterating on ``configs/hazards.yaml`` / ``alerts.yaml``). Prints one JSON document (per drive:
alerts, failed checks; pooled alert precision/recall) and a summary on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import replace
from pathlib import Path

import yaml

from vehicle_assist import config, paths, runtime, triplog
from vehicle_assist.tools import approach as ap
from vehicle_assist.replay import expect, realert
from vehicle_assist.replay.drive import open_drive
from vehicle_assist.replay.run import ReplayOptions, run_replay
from common import emit_json  # bench/common.py (the script's folder is on sys.path)

S = ap.SCENARIOS
EXTRA = [
    (replace(S["lead-stopped"], name="dev-stopped-35mph", ego_speed_mps=35 * ap.MPH, gap0_m=90.0,
             crop="highway_test6.jpg", crop_index=1), 301),
    (replace(S["lead-slower"], name="dev-slower-10mph", lead_speed_mps=10 * ap.MPH, gap0_m=110.0,
             crop="highway_test5.jpg", crop_index=1), 302),
    (replace(S["lead-braking"], name="dev-braking-45m-04g", gap0_m=45.0, lead_decel_mps2=0.4 * ap.G,
             crop="highway_test4.jpg", crop_index=0), 303),
    (replace(S["lead-braking-far"], name="dev-braking-70m", gap0_m=70.0, brake_at_s=2.0,
             crop="highway_test6.jpg", crop_index=0), 304),
    (replace(S["lead-slower"], name="dev-slower-25mph", lead_speed_mps=25 * ap.MPH, ego_speed_mps=50 * ap.MPH,
             gap0_m=95.0, crop="highway_test1.jpg", crop_index=1), 305),
    (replace(S["lead-stopped"], name="dev-stopped-110m", gap0_m=110.0, crop="highway_test4.jpg", crop_index=0), 306),
]
MIRROR_LABELS = {
    "urban_busy_street_pedestrians_scooters_dad000487": ["no alert between t=0 and t=3.0",
                                                         "alert any between t=3.6 and t=5.0"],
    "urban_crosswalk_scooters_cyclist_fall_dad000617": ["no alert between t=0 and t=4.5"],
    "urban_narrow_street_taxi_pedestrians_dad000597": ["no alert between t=0 and t=4.4"],
    "highway_cars_1s": ["no alert between t=0 and t=1.5"],
    "urban_boston_parked_cars_nuscenes_2s": ["no alert between t=0 and t=19.5"],
}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def approach_labels(truth: dict) -> list[str]:
    """Expectations from a generated sequence's ground truth (see the module docstring)."""
    sc, fr = truth["scenario"], truth["frames"]
    dt = 1 / sc["fps"]

    def cv_ttc(i: int) -> float:
        i = max(i, 1)
        v = (fr[i - 1]["gap_m"] - fr[i]["gap_m"]) / dt
        return fr[i]["gap_m"] / v if v > 0.01 else float("inf")

    quiet_end = next((f["t_s"] for i, f in enumerate(fr) if cv_ttc(i) < 7.5), None)
    if sc["lead_decel_mps2"] > 0 and quiet_end:
        quiet_end = min(quiet_end, sc["brake_at_s"] + 0.3)
    out = [f"alert forward-collision|brake-now between t={quiet_end or 0.0:.2f} and t={truth['warn_deadline_t_s']:.2f}"]
    if quiet_end and quiet_end > 0.3:
        out.append(f"no alert between t=0 and t={quiet_end - 0.05:.2f}")
    return out


def mirror(manifest: Path, out: Path) -> Path:
    """The drive of ``manifest`` flipped left-right, with its calibration's cx mirrored."""
    import cv2

    man = yaml.safe_load(manifest.read_text())
    dst = out / f"{manifest.stem}_mirror.mp4"
    cap = cv2.VideoCapture(str(paths.resolve(man["video"])))
    w, h, fps = int(cap.get(3)), int(cap.get(4)), cap.get(5)
    if not dst.is_file():
        wr = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            wr.write(cv2.flip(frame, 1))
        wr.release()
    cap.release()
    cal = {k: v for k, v in man["calibration"].items() if k != "note"}
    if cal.get("cx") is not None:
        cal["cx"] = w - float(cal["cx"])
    doc = {"name": dst.stem, "video": str(dst), "frame_rate_hz": man.get("frame_rate_hz", fps), "calibration": cal}
    path = out / f"{dst.stem}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def approach_manifest(mp4: Path, truth: dict, out: Path) -> Path:
    cal = truth["calibration"]
    doc = {"name": mp4.stem, "video": str(mp4), "frame_rate_hz": truth["fps"],
           "calibration": {k: cal[k] for k in ("focal_px", "mount_height_m", "cx", "cy")}}
    path = out / f"{mp4.stem}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def build_set(out: Path) -> list[tuple[Path, list[str]]]:
    """(manifest, expectations) of every dev drive, making what is missing."""
    gen = paths.sim() / "generated" / "approach"
    out.mkdir(parents=True, exist_ok=True)
    drives = []
    pairs = ap.ensure("dev")
    for sc, seed in EXTRA:
        mp4, js = gen / f"{sc.name}.mp4", gen / f"{sc.name}.json"
        if not (mp4.is_file() and js.is_file() and ap.load_truth(js).get("seed") == seed):
            mp4, js = ap.generate(sc, gen, seed=seed)
        pairs.append((mp4, js))
    for mp4, js in pairs:
        truth = ap.load_truth(js)
        drives.append((approach_manifest(mp4, truth, out), approach_labels(truth)))
    for name, labels in MIRROR_LABELS.items():
        drives.append((mirror(paths.sim() / "manifests" / f"{name}.yaml", out), labels))
    return drives


def main() -> None:
    ap_ = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap_.add_argument("--out", type=Path, default=None, help="drives, manifests and trip logs (default sim/generated/dev)")
    ap_.add_argument("--from-logs", action="store_true", help="re-run the alert logic on the trip logs already in --out")
    ap_.add_argument("--json-out", type=Path, help="also write the JSON document here")
    args = ap_.parse_args()
    out = args.out or paths.sim() / "generated" / "dev"
    drives = build_set(out)
    cfg = config.load_app()
    parts = None if args.from_logs else runtime.load_parts(cfg, voice=False)
    rows, runs = [], []
    for manifest, labels in drives:
        name = manifest.stem
        run_dir = out / "runs" / name
        trip = run_dir / "trip.jsonl"
        drive = open_drive(str(manifest))
        cal = drive.info.calibration.camera(drive.info.width, drive.info.height)
        if not args.from_logs:
            if trip.exists():
                trip.unlink()
            asyncio.run(run_replay(drive, cfg, parts, run_dir, ReplayOptions()))
        _, records = triplog.read(trip)
        records = list(records)
        if args.from_logs:
            records = realert.rerun(records, cal)
        exps = [expect.parse(t) for t in labels]
        results = expect.check(exps, records)
        alerts = expect.alert_starts(records)
        runs.append((exps, results, alerts))
        failed = [r.reason for r in results if not r.passed]
        rows.append({"drive": name, "alerts": [[round(t, 2), n] for t, n in alerts], "failed": failed})
        log(f"{'PASS' if not failed else 'FAIL'} {name:<58} {[(round(t, 2), n) for t, n in alerts]}")
        for reason in failed:
            log(f"     {reason}")
    score = expect.score(runs)
    doc = {"drives": rows, "passed": sum(not r["failed"] for r in rows), "total": len(rows),
           "alert_recall": score.recall, "alert_precision": score.precision,
           "false_alerts": score.alerts_false, "mode": "from-logs" if args.from_logs else "replay"}
    log(f"dev: {doc['passed']}/{doc['total']} drives pass; recall {score.recall}, precision {score.precision}")
    emit_json(doc, args.json_out)


if __name__ == "__main__":
    main()
