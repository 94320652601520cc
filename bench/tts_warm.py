"""Answer openings pre-rendered into the TTS cache: what the warm-up costs and what the driver waits for.

    python bench/tts_warm.py [--cache DIR] [--split dev] [--cold-limit 100] [--busy 0] [--json-out FILE]

1. Warm-up (what ``vehicle-assist index`` runs, :func:`vehicle_assist.speech.warm.warm`) into the disk cache at
   ``--cache`` (default: a new temporary folder; give a folder to reuse an earlier warm-up), bounded by the
   configured ``speech.tts.cache_mb``: openings, seconds to render them, bytes on disk.
2. The car's advisory lane (configured route) answers every question of the split (refusals included: they
   are spoken too); route advisories and command replies are added from their own tables.
3. First audio: the car's speaker (:class:`vehicle_assist.speech.speak.Speaker`, nothing playing) given each
   answer's first sentence, from the call to the first part queued on the arbiter (render + queue, the TTS
   share of the time to first audio), with a fresh renderer each condition (no in-memory replies): ``cold``
   (an empty disk cache; the first ``--cold-limit`` answers) and ``warm`` (the warmed cache; every answer),
   with whether the opening came from the disk cache. ``--busy N`` runs N busy-looping processes during 3
   (a stand-in for perception and ASR on the same cores); the load average is recorded either way.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from vehicle_assist import clock, paths
from common import emit_json  # bench/common.py (the script's folder is on sys.path)


def load() -> list[str]:
    return open("/proc/loadavg").read().split()[:3]


def _spin(stop) -> None:
    while not stop.is_set():
        sum(range(10_000))


def stats(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    a = np.asarray(values)
    return {"n": int(a.size), "p50_ms": round(float(np.percentile(a, 50)), 2), "p95_ms": round(float(np.percentile(a, 95)), 2),
            "max_ms": round(float(a.max()), 2), "over_150ms": int((a > 150).sum())}


async def answers(parts, rows: list[dict]) -> list[str]:
    lane = parts.bind(None, cancel_event=None)
    out = []
    for q in rows:
        rep = await lane.execute_report(q["question"], None, clock.perf_ns())
        out.append(rep.advisory.text)
    return out


def first_audio(renderer, texts: list[str], first_chunk_words: int) -> tuple[list[float], list[bool], list[str]]:
    from vehicle_assist.speech import tts, warm
    from vehicle_assist.speech.speak import Speaker

    speaker = Speaker(warm.Silent(), renderer, first_chunk_words=first_chunk_words)
    ms, hits, heads = [], [], []
    for text in texts:
        first = tts.split_sentences(text)[0]
        before = renderer.disk_cache.hits
        t0 = clock.perf_ns()
        speaker(first)
        ms.append((speaker.queued_ns - t0) / 1e6)
        hits.append(renderer.disk_cache.hits > before)
        heads.append(speaker.opening(first))
    return ms, hits, heads


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", type=Path, default=None, help="the warmed cache folder (default: a new temporary one)")
    ap.add_argument("--split", default="dev", choices=["dev", "test"])
    ap.add_argument("--cold-limit", type=int, default=100, help="answers timed with an empty cache")
    ap.add_argument("--busy", type=int, default=0, help="busy-looping processes while timing first audio")
    ap.add_argument("--skip-warm", action="store_true", help="the cache at --cache is already warm: time only")
    ap.add_argument("--warm-for-answers", action="store_true",
                    help="with --skip-warm: pre-render (from the listed openings only) those the answers open with")
    ap.add_argument("--questions", type=Path, default=paths.home() / "bench" / "data" / "questions.jsonl")
    ap.add_argument("--json-out", type=Path, default=None)
    args = ap.parse_args()

    from vehicle_assist import config
    from vehicle_assist.advisory import lane as lanes
    from vehicle_assist.route.advice import ROAD
    from vehicle_assist.speech import tts, warm

    cfg = config.load_app()
    words = cfg.speech.tts.first_chunk_words
    max_bytes = int(cfg.speech.tts.cache_mb * 1e6)
    folder = args.cache or Path(tempfile.mkdtemp(prefix="tts_warm_"))
    doc: dict = {"split": args.split, "cache": str(folder), "cache_mb": cfg.speech.tts.cache_mb,
                 "first_chunk_words": words, "nproc": os.cpu_count()}
    parts = lanes.load(cfg)
    if parts.similarity is not None:
        parts.similarity.prewarm(parts.retriever.passages_by_id.values())

    piper = tts.load_renderer("piper", cache_mb=0)
    piper.render("Warm up.")  # the session's first run, as the runtime's start-up alert rendering does
    piper.disk_cache = tts.DiskCache(folder, max_bytes)
    if not args.skip_warm:
        load0 = load()
        report = warm.warm(cfg, piper, lanes.AdvisoryParts(cfg.advisory, parts.retriever))
        doc["warm_up"] = {**report.as_dict(), "loadavg_start": load0, "loadavg_end": load()}
        print(f"warm-up: {report.phrases} openings, {report.rendered} rendered in {report.render_s} s, "
              f"{report.pinned_bytes / 1e6:.1f} MB; load {load0} -> {load()}", file=sys.stderr)

    rows = [json.loads(line) for line in args.questions.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = [r for r in rows if r["split"] == args.split and r["kind"] == "question" and r["question"]]
    texts = asyncio.run(answers(parts, rows))
    from vehicle_assist.route import advice
    from vehicle_assist.speech.controls import VoiceControls

    extra = [t for t in advice.spoken_texts(advice.load_table(), cfg.route.lookahead_max_m)[::10] if ROAD not in t]
    replies = [t for t, _ in warm.command_replies(cfg.speech.mute_default_minutes)
               if _ == VoiceControls().rate]  # the slower-rate reply is timed at its own rate below, not here
    doc["answers"] = len(texts)
    listed, counts = warm.all_openings(cfg, piper, lanes.AdvisoryParts(cfg.advisory, parts.retriever))
    doc["listed_openings"] = {"n": len(listed), "by_source": counts}
    if args.warm_for_answers:  # only the listed openings these answers start with (the same entries a full warm-up makes)
        from vehicle_assist.speech.speak import Speaker

        cut = Speaker(warm.Silent(), piper, first_chunk_words=words)
        mine = {cut.opening(t) for t in texts}
        need = [(h, r) for h, r in listed if h in mine]
        load0 = load()
        rep = warm.prerender(piper, need, prune=False)
        doc["warm_for_answers"] = {**rep.as_dict(), "loadavg_start": load0, "loadavg_end": load()}
        print(f"warmed for these answers: {rep.rendered} rendered, {rep.cached} there, {rep.render_s} s", file=sys.stderr)

    stop = multiprocessing.Event()
    burners = [multiprocessing.Process(target=_spin, args=(stop,), daemon=True) for _ in range(args.busy)]
    for b in burners:
        b.start()
    try:
        time.sleep(5 if burners else 0)
        load1 = load()
        cold = tts.load_renderer("piper", cache_mb=0)
        cold.render("Warm up.")
        with tempfile.TemporaryDirectory() as empty:
            cold.disk_cache = tts.DiskCache(empty, max_bytes)
            cold_ms, _, _ = first_audio(cold, texts[: args.cold_limit], words)
        warm_r = tts.load_renderer("piper", cache_mb=0)
        warm_r.render("Warm up.")
        warm_r.disk_cache = tts.DiskCache(folder, max_bytes)
        warm_ms, hits, heads = first_audio(warm_r, texts, words)
        other_ms, other_hits, _ = first_audio(warm_r, extra + replies, words)
        load2 = load()
    finally:
        stop.set()
        for b in burners:
            b.join(5)
    misses = sorted({h for h, hit in zip(heads, hits) if not hit})
    doc["first_audio"] = {
        "busy_processes": args.busy, "loadavg_start": load1, "loadavg_end": load2,
        "cold_answers": stats(cold_ms), "warm_answers": stats(warm_ms),
        "warm_answers_from_cache": round(sum(hits) / max(1, len(hits)), 4),
        "warm_same_first_n_as_cold": stats(warm_ms[: args.cold_limit]),
        "warm_route_and_replies": {**stats(other_ms), "from_cache": round(sum(other_hits) / max(1, len(other_hits)), 4)},
        "misses": misses[:40],
    }
    emit_json(doc, args.json_out)
    fa = doc["first_audio"]
    print(f"first audio [{args.split}, busy {args.busy}, load {load1} -> {load2}]: cold p50 {fa['cold_answers'].get('p50_ms')} "
          f"p95 {fa['cold_answers'].get('p95_ms')} ms; warm p50 {fa['warm_answers'].get('p50_ms')} "
          f"p95 {fa['warm_answers'].get('p95_ms')} ms, from cache {fa['warm_answers_from_cache']:.1%}", file=sys.stderr)


if __name__ == "__main__":
    main()
