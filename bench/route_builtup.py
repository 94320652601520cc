"""Built-up inference for untagged roads, measured on the ways whose limit the map does state.

    python bench/route_builtup.py [--split dev|test|all] [--out bench/results/route_builtup.json]

An untagged way with no ``lit`` tag is taken as built-up (Rule 124: 30 mph where there are street
lights) from its class or its surroundings (``built_up_evidence`` in configs/route.yaml; other lit
ways, buildings, street lamps, urban landuse within ``radius_m``). Whether that guess is right can
only be checked where the map says the answer: on the ways tagged with a ``maxspeed`` in mph, with
their own ``maxspeed`` and ``lit`` tags hidden, the inference should say built-up where the signed
limit is 30 mph or less and not built-up where it is 40 mph or more (motorways left out: their
category is stated by their class). Ways split by OSM id: even ids dev (tuned on), odd ids test.
Prints the confusion counts per map and rule (class alone, surroundings alone, both).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


from vehicle_assist import fetch
from vehicle_assist.route.limits import looks_built_up
from vehicle_assist.route.map import load_map, load_tables

MAPS = ("leeds_city_centre.osm", "manchester_kingsway.osm")


def evaluate(rmap, tables, split: str) -> dict:
    a = rmap.a
    ev = tables.built_up_evidence
    rows = []
    for w in range(len(a["way_id"])):
        cls = str(a["way_class"][w])
        if a["way_maxspeed_kind"][w] != "mph" or cls in ("motorway", "motorway_link"):
            continue
        if split != "all" and (int(a["way_id"][w]) % 2 == 0) != (split == "dev"):
            continue
        mph = float(a["way_maxspeed_mph"][w])
        if 30.5 < mph < 39.5:
            continue
        by_class = cls in tables.built_up_classes
        by_place = looks_built_up(int(a["way_near_lit"][w]), int(a["way_near_buildings"][w]),
                                  int(a["way_near_lamps"][w]), bool(a["way_near_landuse"][w]), ev)
        rows.append((mph <= 30.5, by_class, by_place))
    out = {"ways": len(rows), "signed_30_or_less": sum(r[0] for r in rows)}
    for name, k in (("class", 1), ("surroundings", 2), ("class_or_surroundings", None)):
        pred = [(r[1] or r[2]) if k is None else r[k] for r in rows]
        tp = sum(p and r[0] for p, r in zip(pred, rows))
        fp = sum(p and not r[0] for p, r in zip(pred, rows))
        fn = sum(not p and r[0] for p, r in zip(pred, rows))
        tn = sum(not p and not r[0] for p, r in zip(pred, rows))
        out[name] = {"tp": tp, "fp": fp, "fn": fn, "tn": tn,
                     "accuracy": round((tp + tn) / max(len(rows), 1), 3),
                     "recall_built_up": round(tp / max(tp + fn, 1), 3)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", choices=("dev", "test", "all"), default="dev")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    tables = load_tables()
    doc = {"split": args.split, "evidence": tables.built_up_evidence.model_dump(), "maps": {}}
    for name in MAPS:
        rmap = load_map(fetch.data_path("maps", name), tables)
        doc["maps"][name] = evaluate(rmap, tables, args.split)
        untagged = (rmap.a["way_maxspeed_kind"] == "") & (rmap.a["way_lit"] == -1)
        doc["maps"][name]["untagged_unlit_ways"] = int(untagged.sum())
    print(json.dumps(doc, indent=1))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(doc, indent=1) + "\n")
    return None


if __name__ == "__main__":
    sys.exit(main())
