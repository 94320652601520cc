"""Wake phrase by sound: how Whisper scores the wake phrase on utterances that hold it and on ones
that do not, so the acceptance margin can be set on dev (docs/speech.md, "Wake phrase by sound").

    python bench/wake_verify.py --split dev [--conditions clean,snr10,snr5,snr0] [--voice piper] --json-out FILE
    python bench/wake_verify.py --rescore FILE [--set activation.wake_check.min_margin=-6]   # judge again, no ASR

Items (all rendered like bench/speech.py's, ``evalset.audio_for``):
- positives: the split's "hey car ..." utterances, and "Hey car, " + each of the split's questions and
  commands (the phrase before every request, so the margin is tuned on more than 12 sentences);
- negatives: the split's questions and commands as they are, and ``bench/data/wake_confusers.jsonl``:
  sentences a driver or passenger says that open like the phrase ("A car is overtaking me", "Okay, carry
  on", "Hey Carl, ...").
Each is streamed through the VAD in 100 ms blocks; its first utterance with words is transcribed and,
whatever the text gate says, scored against the phrase (``FasterWhisperASR.score_prefix``), so any
trigger and margin can be judged afterwards (``--rescore``). Rates: detected (positives accepted by the
text gate or by sound), accepted negatives, per condition; JSON on stdout, a summary on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from vehicle_assist import clock, config
from vehicle_assist.messages import Utterance
from vehicle_assist.speech import activation, asr, vad
from vehicle_assist.tools import evalset

CONDITIONS = {"clean": None, "snr10": 10.0, "snr5": 5.0, "snr0": 0.0, "snr-5": -5.0}


def items(split: str) -> list[tuple[evalset.EvalUtterance, bool]]:
    """(utterance, holds the wake phrase) for the split."""
    base = evalset.load_utterances(split)
    out = [(u, u.kind == "wake") for u in base]
    out += [(replace(u, id=f"h{u.id}", text=f"Hey car, {u.text[0].lower()}{u.text[1:]}", kind="wake"), True)
            for u in base if u.kind != "wake"]
    path = evalset.data_dir() / "wake_confusers.jsonl"
    out += [(evalset.EvalUtterance(**json.loads(line)), False) for line in path.read_text().splitlines() if line.strip()
            if json.loads(line)["split"] == split]
    return out


def first_utterance(pcm: np.ndarray, recogniser, options: vad.VadOptions):
    """The first VAD utterance of a stream that Whisper finds words in: (utterance, transcript), or None."""
    seg = vad.VadSegmenter(options)
    events = []
    for i in range(0, len(pcm), 1600):
        events += seg.process(pcm[i:i + 1600], i / 16000)
    events += seg.flush(len(pcm) / 16000)
    for ev in events:
        if ev.utterance is not None:
            tr = recogniser.transcribe(ev.utterance)
            if tr.text.strip():
                return ev.utterance, tr
    return None


def run(split: str, conditions: dict, voice: str, settings) -> list[dict]:
    recogniser = asr.load_backend("faster-whisper", asr.AsrOptions.from_settings(settings.asr))
    gate = activation.Gate.from_settings(settings.activation.model_copy(update={"mode": "wake_phrase"}))
    opts = vad.VadOptions.from_settings(settings.vad)
    rows = []
    todo = items(split)
    for cond, snr in conditions.items():
        for k, (u, positive) in enumerate(todo):
            pcm = evalset.audio_for(u, snr, voice=voice)
            got = first_utterance(pcm, recogniser, opts)
            row = {"id": u.id, "cond": cond, "positive": positive, "ref": u.text, "text": got[1].text if got else ""}
            if got:
                utt, tr = got
                ps = recogniser.score_prefix(utt, gate.prefix, tr.text)
                row.update(near=round(gate.near(tr.text), 3), text_accept=gate.decide(tr.text).accept,
                           margin=round(ps.margin, 3), prefix_logprob=round(ps.prefix_logprob, 3), after=ps.text,
                           score_ms=round(ps.ms, 1), asr_ms=round(tr.asr_ms, 1))
            rows.append(row)
            print(f"\r{cond} {k + 1}/{len(todo)}", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
    return rows


def judge(rows: list[dict], settings) -> dict:
    """Detection and false acceptance per condition with the configured gate and check (no ASR)."""
    gate = activation.Gate.from_settings(settings.activation.model_copy(update={"mode": "wake_phrase"}))
    out = {}
    for cond in dict.fromkeys(r["cond"] for r in rows):
        pos = [r for r in rows if r["cond"] == cond and r["positive"]]
        neg = [r for r in rows if r["cond"] == cond and not r["positive"]]

        def accepted(r):
            if not r["text"]:
                return False
            if gate.decide(r["text"]).accept:
                return True
            ps = asr.PrefixScore(gate.prefix, r["after"], r["margin"], 0.0, r["prefix_logprob"])
            return gate.wants_sound_check(r["text"]) and gate.decide_by_sound(r["text"], ps).accept

        conf = [r for r in neg if r["id"].startswith("n")]
        out[cond] = {"positives": len(pos), "detected": round(sum(map(accepted, pos)) / max(1, len(pos)), 4),
                     "detected_by_text": round(sum(bool(r["text"]) and gate.decide(r["text"]).accept for r in pos)
                                               / max(1, len(pos)), 4),
                     "negatives": len(neg), "false_accepts": sum(map(accepted, neg)),
                     "false_accepts_confusers": sum(map(accepted, conf)), "confusers": len(conf),
                     "false_accept_texts": [r["text"] for r in neg if accepted(r)],
                     "missed_texts": [r["text"] for r in pos if not accepted(r)]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", default="dev", choices=["dev", "test"])
    ap.add_argument("--conditions", default="clean,snr10,snr5,snr0")
    ap.add_argument("--voice", default="piper", choices=list(evalset.VOICE_KINDS))
    ap.add_argument("--rescore", type=Path, default=None, help="judge a stored run again (no ASR)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a speech setting, e.g. activation.wake_check.min_margin=-6 (repeatable)")
    ap.add_argument("--json-out", type=Path, default=None)
    args = ap.parse_args()
    from speech import override  # bench/speech.py

    settings = override(config.load_app().speech, args.set)
    t0 = clock.perf_ns()
    if args.rescore:
        stored = json.loads(args.rescore.read_text())
        rows, meta = stored["rows"], {k: stored[k] for k in ("split", "voice") if k in stored}
    else:
        rows = run(args.split, {c: CONDITIONS[c] for c in args.conditions.split(",")}, args.voice, settings)
        meta = {"split": args.split, "voice": args.voice}
    scored = [r["score_ms"] for r in rows if "score_ms" in r]
    result = {**meta, "wake_check": settings.activation.wake_check.model_dump(), "judged": judge(rows, settings),
              "score_ms_p50": round(float(np.median(scored)), 1) if scored else None,
              "bench_s": round((clock.perf_ns() - t0) / 1e9, 1), "load_average": [round(x, 2) for x in os.getloadavg()],
              "rows": rows}
    text = json.dumps(result, indent=1)
    print(text)
    if args.json_out:
        args.json_out.write_text(text)
    for cond, j in result["judged"].items():
        print(f"{cond}: detected {j['detected']:.1%} (text only {j['detected_by_text']:.1%}) of {j['positives']}, "
              f"false accepts {j['false_accepts']} of {j['negatives']} ({j['false_accepts_confusers']} of "
              f"{j['confusers']} confusers): {j['false_accept_texts'][:4]}", file=sys.stderr)


if __name__ == "__main__":
    main()
