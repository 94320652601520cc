"""Round trip of spoken answers: what the driver hears, written down by Whisper, against what was meant.

    python bench/tts_roundtrip.py --split dev [--limit 50] [--seeds 1] [--json-out FILE]

The extractive answers the advisory lane gives (the lane the car loads, extractive route, no SLM) to
the answerable questions of bench/data/questions.jsonl (one split: dev for tuning, test read once at
the end), each rendered by the default Piper voice (onnxruntime seeded, as
tests/test_speech_piper.py does), transcribed by Whisper tiny.en with the shipped settings
(speech.asr), and scored by word error rate:

- ``before``: the voice given the written text, WER against the written text (no normaliser);
- ``after``: the voice given :func:`vehicle_assist.speech.spoken.speakable` of each sentence, WER
  against those spoken words (what was meant to be said), and against the written text for comparison.

Whisper's English normaliser is applied to both sides (numbers, spellings: "metres" == "meters"); it
deletes words in brackets, which the voice does say ("96 metres (315 feet)"), so brackets in a reference
are made spaces first (:func:`reference`).
JSON on stdout (and --json-out), with the answers that have errors; load average at start and end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

from vehicle_assist import clock, paths
from common import emit_json  # bench/common.py (the script's folder is on sys.path)


def reference(text: str) -> str:
    """The words meant to be heard in ``text``: brackets made spaces (Whisper's normaliser would drop their words)."""
    return re.sub(r"[()\[\]]", " ", text)


def load_answerable(path: Path, split: str, limit: int) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = [r for r in rows if r["split"] == split and r["kind"] == "question" and r["answerable"] and r["question"]]
    return rows[: limit * 2]  # some answers repeat or are refused: take twice as many questions, keep ``limit`` answers


async def answers_for(rows: list[dict], limit: int) -> list[dict]:
    from vehicle_assist.advisory import lane as lanes
    from vehicle_assist.config import load_app

    parts = lanes.load(load_app(), route=None)
    if parts.similarity is not None:
        parts.similarity.prewarm(parts.retriever.passages_by_id.values())
    lane = parts.bind(None, cancel_event=None, route="extractive")
    out, seen = [], set()
    for q in rows:
        rep = await lane.execute_report(q["question"], None, clock.perf_ns())
        text = rep.advisory.text
        if rep.advisory.refused or not text or text in seen:
            continue
        seen.add(text)
        out.append({"id": q["id"], "answer": text})
        if len(out) >= limit:
            break
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", default="dev", choices=["dev", "test"])
    ap.add_argument("--limit", type=int, default=50, help="answers per split (distinct, not refused)")
    ap.add_argument("--seeds", type=int, default=1, help="renderings per answer (onnxruntime seeds 0..N-1)")
    ap.add_argument("--questions", type=Path, default=paths.home() / "bench" / "data" / "questions.jsonl")
    ap.add_argument("--json-out", type=Path, default=None)
    args = ap.parse_args()

    import onnxruntime

    from vehicle_assist import config
    from vehicle_assist.messages import Utterance
    from vehicle_assist.speech import asr, audio, tts
    from vehicle_assist.speech.spoken import speakable
    from vehicle_assist.tools import evalset

    load_start = open("/proc/loadavg").read().split()[:3]
    t0 = time.monotonic()
    items = asyncio.run(answers_for(load_answerable(args.questions, args.split, args.limit), args.limit))
    print(f"{len(items)} answers ({args.split})", file=sys.stderr)
    piper = tts.load_renderer("piper", cache_mb=0)
    settings = config.load_app().speech.asr
    recogniser = asr.load_backend("faster-whisper", asr.AsrOptions.from_settings(settings))

    def heard(text: str, normalise: bool, seed: int) -> tuple[str, str]:
        piper.normalise = normalise
        onnxruntime.set_seed(seed)
        rs = list(piper.render_sentences(text, 175 - seed))  # a new rate per seed: nothing from the reply cache
        pcm16 = audio.resample(np.concatenate([r.pcm for r in rs]), piper.sample_rate, 16000)
        tr = recogniser.transcribe(Utterance(0, 0, pcm16.astype(np.float32), 16000))
        return " ".join(r.said for r in rs), tr.text

    pairs = {"before": [], "after": [], "after_vs_written": []}
    rows = []
    for i, it in enumerate(items):
        for seed in range(args.seeds):
            said, hyp_after = heard(it["answer"], True, seed)
            _, hyp_before = (None, hyp_after) if said == " ".join(tts.split_sentences(it["answer"])) else heard(it["answer"], False, seed)
            pairs["before"].append((reference(it["answer"]), hyp_before))
            pairs["after"].append((reference(said), hyp_after))
            pairs["after_vs_written"].append((reference(it["answer"]), hyp_after))
            eb, n = evalset.word_errors(*pairs["before"][-1])
            ea, na = evalset.word_errors(*pairs["after"][-1])
            rows.append({"id": it["id"], "seed": seed, "written": it["answer"], "said": said if said != it["answer"] else None,
                         "heard_before": hyp_before, "heard_after": hyp_after, "errors_before": eb, "words": n,
                         "errors_after": ea, "words_said": na})
        print(f"\r{i + 1}/{len(items)}", end="", file=sys.stderr)
    print(file=sys.stderr)
    changed = [r for r in rows if r["said"]]
    doc = {
        "split": args.split, "answers": len(items), "seeds": args.seeds, "renderings": len(rows),
        "voice": piper.voice, "asr": {"model": getattr(settings, "model", None), "backend": "faster-whisper"},
        "normalised_answers": len({r["id"] for r in changed}),
        "wer": {k: round(evalset.wer(v), 4) for k, v in pairs.items()},
        "wer_on_normalised_answers": {
            "before": round(evalset.wer([(reference(r["written"]), r["heard_before"]) for r in changed]), 4) if changed else None,
            "after": round(evalset.wer([(reference(r["said"]), r["heard_after"]) for r in changed]), 4) if changed else None},
        "words": sum(r["words"] for r in rows),
        "seconds": round(time.monotonic() - t0, 1), "loadavg_start": load_start,
        "loadavg_end": open("/proc/loadavg").read().split()[:3], "nproc": os.cpu_count(),
        "with_errors": [r for r in rows if r["errors_before"] or r["errors_after"]],
    }
    emit_json(doc, args.json_out)
    print(f"[{args.split}] {len(items)} answers: WER before {doc['wer']['before']:.3f} after {doc['wer']['after']:.3f} "
          f"(after vs written {doc['wer']['after_vs_written']:.3f}); {doc['seconds']} s, load {load_start}", file=sys.stderr)


if __name__ == "__main__":
    main()
