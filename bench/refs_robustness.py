"""How robust the reference comparison is to the detector's float differences between CPUs.

    vehicle-assist replay sim/scenarios --check --jobs 1 --no-video --out DIR
    python bench/refs_robustness.py DIR [--box-px 0.001] [--conf 0.0001] [--seeds 5] [--json-out FILE]

Another CPU's SIMD path (ONNX Runtime's AVX-512 vs AVX2 vs SSE kernels) changes the detector's
outputs in their last digits. This cannot be forced on one machine (ONNX Runtime has no switch for
its kernels; its thread count does not change them), so it is simulated: every logged detection's
box corners get Gaussian noise of ``--box-px`` pixels and its confidence ``--conf``; a detection
pushed below the confidence threshold (0.25) is dropped, as a marginal box would be. Tracking,
hazards and alerts are re-run on the perturbed detections (``realert``, as ``--from-log``) and
compared with the committed references for the hazards and alerts topics, twice: with the rules of
``sim/refs/compare.yaml`` and with every field compared (``exact``: info-level hazards, counts per
frame and track ids too, as before issue 13, with the same numeric tolerances).
Prints one JSON document: per scenario and seed, the number of differences under each.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

from vehicle_assist import triplog
from vehicle_assist.replay import job, realert, refs

CONF_THRESHOLD = 0.25  # configs/default.yaml perception.conf


def perturb(records: list[dict], box_px: float, conf: float, seed: int) -> list[dict]:
    """The records with every detection jittered (and the ones pushed below the threshold dropped)."""
    rng = random.Random(seed)
    out = []
    for r in records:
        if r.get("topic") == "detections" and isinstance(r.get("msg"), dict) and "items" in r["msg"]:
            items = []
            for it in r["msg"]["items"]:
                c = it["confidence"] + rng.gauss(0, conf)
                if c >= CONF_THRESHOLD:
                    items.append({**it, "confidence": c, "box": [v + rng.gauss(0, box_px) for v in it["box"]]})
            r = {**r, "msg": {**r["msg"], "items": items}}
        out.append(r)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("batch", type=Path, help="--out folder of a batch replay of sim/scenarios (one folder per scenario)")
    ap.add_argument("--box-px", type=float, default=0.001, help="s.d. of the noise on box corners (pixels)")
    ap.add_argument("--conf", type=float, default=0.0001, help="s.d. of the noise on confidences")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args()

    rules = refs.load_rules()
    compared = ("hazards", "alerts")
    ours = rules.model_copy(update={"topics": {k: v for k, v in rules.topics.items() if k in compared}})
    exact = rules.model_copy(update={"topics": {k: refs.TopicRule() for k in compared}})
    rows, totals = {}, {"runs": 0, "ours_failed": 0, "exact_failed": 0}
    for folder in sorted(p for p in args.batch.iterdir() if (p / "trip.jsonl").is_file()):
        _, records = triplog.read(folder / "trip.jsonl")
        records = list(records)
        calib, _ = job._realert_calibration(folder / "trip.jsonl")  # as --from-log does
        _, ref = refs.read_ref(refs.ref_path(folder.name))
        base = realert.rerun(records, calib)
        row = {"unperturbed": len(refs.compare(base, ref, ours)), "seeds": []}
        for seed in range(args.seeds):
            new = realert.rerun(perturb(records, args.box_px, args.conf, seed), calib)
            d_ours, d_exact = refs.compare(new, ref, ours), refs.compare(new, ref, exact)
            row["seeds"].append({"ours": len(d_ours), "exact": len(d_exact), "first": str(d_ours[0]) if d_ours else None})
            totals["runs"] += 1
            totals["ours_failed"] += bool(d_ours)
            totals["exact_failed"] += bool(d_exact)
        rows[folder.name] = row
        print(f"{folder.name}: ours {[s['ours'] for s in row['seeds']]}, exact {[s['exact'] for s in row['seeds']]}",
              file=sys.stderr)
    doc = {"box_px": args.box_px, "conf": args.conf, "seeds": args.seeds, "totals": totals, "scenarios": rows}
    print(json.dumps(doc))
    if args.json_out:
        args.json_out.write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
