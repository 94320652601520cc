"""Does each row of the mishearing table (configs/intents.yaml ``mishearings``) still help?

Reads bench/speech.py JSON outputs (their per-utterance ``hyp``; DEV split runs only), and for
each row compares intent accuracy with the whole table against the table without that row. A row
that never changes an outcome does not help; one that turns right into wrong hurts.

    python bench/mishearings.py out/dev_a.json [out/dev_b.json ...] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vehicle_assist.speech import intents
from vehicle_assist.tools import evalset
from common import emit_json  # bench/common.py (the script's folder is on sys.path)


def outcomes(rows: list[tuple[str, str, object]], table: intents.CompiledTable) -> list[bool]:
    """For (hyp, want_intent, want_slots) rows: is the intent right with this table?"""
    out = []
    for hyp, want, slots in rows:
        got = intents.classify(hyp, 0, table)
        out.append(got.name == want and (not slots or dict(got.slots) == slots))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--json-out", type=Path, default=None)
    args = ap.parse_args()
    utts = {u.id: u for u in evalset.load_utterances()}
    rows = []
    for path in args.runs:
        run = json.loads(path.read_text())
        if run.get("split") != "dev":
            sys.exit(f"{path}: not a dev-split run (split={run.get('split')!r}); the table is learned on dev only")
        for cond in run["conditions"].values():
            for r in cond["rows"]:
                u = utts[r["id"]]
                if u.kind == "wake":
                    continue  # the wake phrase is stripped by the gate first; commands and questions only
                rows.append((r["hyp"], u.intent, u.slots))
    full = intents.load_table()
    base = outcomes(rows, full)
    report = {"n": len(rows), "accuracy_full_table": round(sum(base) / len(rows), 4), "rows": {}}
    for heard in full.table.mishearings:
        reduced = full.table.model_copy(update={"mishearings": {k: v for k, v in full.table.mishearings.items() if k != heard}})
        without = outcomes(rows, intents.compile_table(reduced))
        helps = sum(a and not b for a, b in zip(base, without))
        hurts = sum(b and not a for a, b in zip(base, without))
        report["rows"][heard] = {"helps": helps, "hurts": hurts}
    none = full.table.model_copy(update={"mishearings": {}})
    report["accuracy_no_table"] = round(sum(outcomes(rows, intents.compile_table(none))) / len(rows), 4)
    emit_json(report, args.json_out)
    idle = [k for k, v in report["rows"].items() if v["helps"] == 0]
    print(f"{len(rows)} dev rows: accuracy {report['accuracy_full_table']:.1%} with the table, "
          f"{report['accuracy_no_table']:.1%} without; rows that never help: {idle}", file=sys.stderr)


if __name__ == "__main__":
    main()
