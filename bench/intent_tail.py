"""Dev check of the intents' first-word rule (``intents._command_by_tail``), with and without it, no ASR:

- the dev command references of three words or more with their first word replaced by each of 12 function
  words Whisper may write for a misheard one: how many still give the right command;
- every dev question reference, dev wake confuser (``bench/data/wake_confusers.jsonl``) and dev question
  transcript of the given speech runs (``bench/speech.py --json-out``): how many turn into a command.

    python bench/intent_tail.py [RUN.json ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from vehicle_assist.speech import intents
from vehicle_assist.tools import evalset

FUNCTION_WORDS = ["to", "a", "the", "up", "so", "i", "and", "it", "but", "uh", "of", "in"]


def check(runs: list[Path], with_tail: bool) -> dict:
    dev = evalset.load_utterances("dev")
    orig = intents._command_by_tail
    if not with_tail:
        intents._command_by_tail = lambda core, table: None
    try:
        ok = n = 0
        for u in dev:
            words = intents.normalise(u.text).split()
            if u.kind != "command" or len(words) < 3:
                continue
            for f in FUNCTION_WORDS:
                n += 1
                ok += intents.classify(" ".join([f] + words[1:]), 0).name == u.intent
        questions = [u.text for u in dev if u.intent == "question"]
        root = Path(__file__).resolve().parent
        for line in (root / "data" / "wake_confusers.jsonl").read_text().splitlines():
            d = json.loads(line)
            if d.get("split") == "dev":
                questions.append(d["text"])
        want = {u.id: u for u in dev}
        for path in runs:
            run = json.loads(path.read_text())
            if run.get("split") != "dev":
                continue
            for v in run["conditions"].values():
                questions += [r["hyp"] for r in v["rows"] if want[r["id"]].intent == "question"]
        flips = [q for q in questions if intents.classify(q, 0).name not in ("question", "empty")]
    finally:
        intents._command_by_tail = orig
    return {"corrupted_first_word_right": ok, "corrupted_first_word_n": n,
            "questions_to_command": len(flips), "questions_n": len(questions), "flipped": flips}


def main() -> None:
    runs = [Path(a) for a in sys.argv[1:]]
    out = {"without_tail": check(runs, False), "with_tail": check(runs, True)}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
