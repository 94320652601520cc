"""Fleet replay capacity: the scenarios in sim/scenarios through the local pool and through Ray,
the same batch command a fleet runs; JSON on stdout.

    python bench/fleet.py [--jobs 2] [--folder sim/scenarios] [--out bench/results/fleet.json]

Reports each engine's wall time, Ray's overhead against the local pool, whether the summaries agree,
and the throughput in drive-seconds replayed per core-second, from which the cores needed to replay
1,000 hours of drives in an 8-hour night follow (lockstep, every frame, --no-video).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vehicle_assist import paths
from common import emit_json  # bench/common.py (the script's folder is on sys.path)


def batch(engine: str, folder: Path, jobs: int, out: Path) -> dict:
    cmd = [sys.executable, "-m", "vehicle_assist.cli", "replay", str(folder), "--check", "--no-video", "--engine", engine,
           "--jobs", str(jobs), "--json", "--out", str(out)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"summary": summary, "wall_s": round(wall, 2), "rc": proc.returncode}


def key(s: dict) -> list:
    return [(t["name"], t["passed"], t["failed_checks"], t["ref_diffs"], t["alerts"], t["cited_rules"]) for t in s["targets"]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folder", type=Path, default=paths.sim() / "scenarios")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        local = batch("local", args.folder, args.jobs, Path(tmp) / "local")
        ray = batch("ray", args.folder, args.jobs, Path(tmp) / "ray")
    drive_s = local["summary"]["drive_s"]
    cores = args.jobs
    per_core = {e: round(drive_s / (r["wall_s"] * cores), 3) for e, r in (("local", local), ("ray", ray))}
    night_s, fleet_s = 8 * 3600, 1000 * 3600
    result = {
        "load_average_at_start": os.getloadavg()[0],
        "targets": len(local["summary"]["targets"]), "drive_s": drive_s, "cores": cores,
        "local": {"wall_s": local["wall_s"], "failed": local["summary"]["failed"], "rc": local["rc"]},
        "ray": {"wall_s": ray["wall_s"], "failed": ray["summary"]["failed"], "rc": ray["rc"],
                "models_loaded": sum(1 for t in ray["summary"]["targets"] if t.get("models_loaded"))},
        "ray_overhead": round(ray["wall_s"] / local["wall_s"] - 1, 3),
        "summaries_agree": key(local["summary"]) == key(ray["summary"]),
        "drive_s_per_core_s": per_core,
        "cores_for_1000_h_overnight": {e: int(-(-fleet_s // (v * night_s))) for e, v in per_core.items()},
    }
    emit_json(result, args.out)


if __name__ == "__main__":
    main()
