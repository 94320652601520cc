"""Commands rescored by sound, judged again from stored bench runs (no ASR): each row of ``bench/speech.py``
that was rescored keeps the log-probability of the free reading and of each command reading, so the choice
(:func:`vehicle_assist.speech.rescore.choose`) can be replayed for other margins, fewer candidates and either
rule for a command by sound that no reading confirms (ask back | keep). Dev runs only.

    python bench/rescore_margin.py bench/results/speech_dev_round7_*.json [--margins 1,2,3,4,5,6,8]

Per setting: items whose intent is right / wrong command / question for a command / asked back, against the
items' expected intents, over every rescored row (the rows not rescored are the same under every setting).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vehicle_assist.speech import intents, rescore
from vehicle_assist.tools import evalset
from common import emit_json  # bench/common.py


def judge(rows: list[tuple[dict, evalset.EvalUtterance]], margin: float, n: int, sound_only: str,
          lead: float = float("inf")) -> dict:
    """Outcomes of the rescored rows under one setting (``lead``: a command by sound is kept when its own reading
    beats the other commands' by this much, else asked back with ``sound_only`` ask)."""
    out = {"right": 0, "wrong_command": 0, "command_lost": 0, "asked": 0, "question_to_command": 0, "n": len(rows)}
    for row, u in rows:
        sc = row["rescore"]
        free, cands = sc["scores"][0][1], sc["scores"][1:1 + n]
        best = max(cands, key=lambda c: c[1], default=None)
        base = row["rescore"]["route"]
        plain = intents.classify(row["acted"], 0).name
        scored = [(rescore.Candidate(intents.classify(t, 0).name, t, t, 0.0), lp) for t, lp in cands]
        if best is not None and best[1] >= free - margin:
            got = intents.classify(best[0], 0).name
        elif base == "sound" and sound_only == "ask" and not rescore.keeps(plain, scored, lead):
            got = "ask-back"
        else:
            got = plain
        want = u.intent
        out["right"] += got == want
        out["asked"] += got == "ask-back"
        out["wrong_command"] += got in intents.COMMANDS and got != want
        out["command_lost"] += want in intents.COMMANDS and got == "question"
        out["question_to_command"] += want == "question" and got in intents.COMMANDS
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--margins", default="0,1,2,3,4,5,6,8,10")
    ap.add_argument("--json-out", type=Path, default=None)
    args = ap.parse_args()
    rows = []
    for path in args.runs:
        run = json.loads(path.read_text())
        if run.get("split") != "dev":
            sys.exit(f"error: {path} is not a dev run")
        want = {u.id: u for u in evalset.load_utterances("dev")}
        for cond, v in run["conditions"].items():
            rows += [(r, want[r["id"]]) for r in v["rows"] if r.get("rescore")]
    result = {"runs": [str(p) for p in args.runs], "rescored_rows": len(rows),
              "settings": [{"margin": None, "candidates": 0, "sound_only": "off", **judge(rows, -1e9, 0, "keep")}]}
    for margin in (float(m) for m in args.margins.split(",")):
        for n in (1, 2, 3):
            for sound_only, lead in (("ask", float("inf")), ("ask", 1.0), ("ask", 2.0), ("ask", 4.0), ("keep", 0.0)):
                result["settings"].append({"margin": margin, "candidates": n, "sound_only": sound_only,
                                           "lead": None if lead == float("inf") else lead,
                                           **judge(rows, margin, n, sound_only, lead)})
    result["rows"] = [{"id": u.id, "want": u.intent, "acted": r["acted"], **r["rescore"]} for r, u in rows]
    emit_json(result, args.json_out)
    for s in result["settings"]:
        print(f"margin {s['margin'] if s['margin'] is None else format(s['margin'], 'g')} n {s['candidates']} {s['sound_only']} lead {s.get('lead')}: right {s['right']}/{s['n']}, wrong command "
              f"{s['wrong_command']}, question->command {s['question_to_command']}, command lost {s['command_lost']}, "
              f"asked {s['asked']}", file=sys.stderr)


if __name__ == "__main__":
    main()
