"""Advisory lane benchmark: SLM-with-validation and extractive-only, side by side, per split.

    python bench/advisory.py [--split test] [--limit N] [--modes extractive,slm] [--no-speak] [--json-out FILE]

For each question of bench/data/questions.jsonl (real retrieval, real TTS into a null audio sink,
real SLM) it runs the whole AdvisoryRun and reports, per split and mode, and per question
type (number, permission, action, definition, other, scene, unanswerable): citation precision and
recall against the expected rules, grounded rate (every number/unit/rule id supported and every
sentence's meaning, see advisory/validate.py), fact coverage (the share of a question's key facts in
the answer), fully answered (all of them), the rule that holds the answer first / in the top 3 of
retrieval, refusal accuracy (and answerable questions refused),
share answered locally vs routed remote, time from question text to first audio p50/p95 per
route, SLM tokens/s and the SLM acceptance rate without fallback. JSON on stdout, summary on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

import numpy as np

from vehicle_assist import clock, paths
from vehicle_assist.advisory import validate
from vehicle_assist.messages import Scene
from common import emit_json  # bench/common.py (the script's folder is on sys.path)


def load_questions(path: Path, split: str, limit: int | None) -> list[dict]:
    """The evaluation set, one split (or both), optionally the first ``limit`` of each kind per split."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = [r for r in rows if split == "both" or r["split"] == split]
    if limit:
        out, seen = [], {}
        for r in rows:  # keep the mix: answerable questions, scenes and unanswerable ones
            key = (r["split"], r["kind"], r["answerable"])
            if seen.get(key, 0) < max(1, limit * {"question": 3, "scene": 1}.get(r["kind"], 1) // 5):
                seen[key] = seen.get(key, 0) + 1
                out.append(r)
        rows = out
    return rows


QUESTION_TYPES = (  # (type, pattern on the question), first match wins; data for the per-type report
    ("number", r"\b(how (far|fast|quick|long|many|much|close|often|old|tall|heavy)|what time|what hours|"
               r"what'?s the (speed )?limit|speed limit|how big)\b"),
    ("permission", r"^(can|may|am|is|are|do|does|must|should|could|would)\b|\ballowed\b|\blegal\b|\bok to\b"),
    ("action", r"\bwhat (should|do|must|shall) (i|you|we) do\b|\bwhat now\b|\bhow (do|should) i\b|\bwhat do i\b"),
    ("definition", r"\bwhat (does|do|is|are|'s)\b.*\b(mean|for)\b|\bwhat('s| is| are) (a|an|the)\b"),
)


def question_type(item: dict) -> str:
    """number / permission / action / definition / other for a question; scene; unanswerable."""
    import re

    if not item["answerable"]:
        return "unanswerable"
    if item["kind"] == "scene" or not item.get("question"):
        return "scene"
    q = item["question"].lower()
    return next((name for name, pattern in QUESTION_TYPES if re.search(pattern, q)), "other")


def has_fact(answer: str, fact: str) -> bool:
    """A key fact is in the answer (case, hyphens and number words normalised)."""
    return validate.normalise(fact) in validate.normalise(answer)


def pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values else None


def summarise(rows: list[dict]) -> dict:
    """Metrics over one split and mode."""
    ans = [r for r in rows if r["answerable"]]
    una = [r for r in rows if not r["answerable"]]
    answered = [r for r in rows if not r["refused"]]
    answered_ok = [r for r in ans if not r["refused"]]
    prec = [len(set(r["cited"]) & set(r["rule_ids"])) / len(r["cited"]) for r in answered_ok if r["cited"]]
    rec = [len(set(r["cited"]) & set(r["rule_ids"])) / len(r["rule_ids"]) for r in answered_ok if r["rule_ids"]]
    hit = [bool(set(r["cited"]) & set(r["rule_ids"])) for r in answered_ok]
    routes: dict[str, list[float]] = {}
    for r in rows:
        if r["first_audio_ms"] is not None:
            routes.setdefault(r["route"], []).append(r["first_audio_ms"])
    slm_runs = [r for r in rows if r["chosen"] == "slm"]
    tps = [r["tokens_per_s"] for r in rows if r.get("tokens_per_s")]
    ranked = [r for r in ans if "rule_rank" in r]
    return {
        "n": len(rows), "answerable": len(ans), "unanswerable": len(una),
        "fully_answered": round(float(np.mean([r["facts_ok"] for r in ans])), 3) if ans else None,
        "rule_first": round(float(np.mean([r["rule_rank"] == 1 for r in ranked])), 3) if ranked else None,
        "rule_top3": round(float(np.mean([r["rule_rank"] is not None and r["rule_rank"] <= 3 for r in ranked])), 3)
        if ranked else None,
        "citation_precision": round(float(np.mean(prec)), 3) if prec else None,
        "citation_recall": round(float(np.mean(rec)), 3) if rec else None,
        "citation_hit": round(float(np.mean(hit)), 3) if hit else None,
        "grounded_rate": round(float(np.mean([r["grounded"] for r in answered])), 3) if answered else None,
        "fact_coverage": round(float(np.mean([r["fact_share"] for r in ans])), 3) if ans else None,
        "refusal_accuracy": round(float(np.mean([r["refused"] != r["answerable"] for r in rows])), 3) if rows else None,
        "answerable_refused": round(float(np.mean([r["refused"] for r in ans])), 3) if ans else None,
        "unanswerable_refused": round(float(np.mean([r["refused"] for r in una])), 3) if una else None,
        "share_local": round(float(np.mean([r["route"] != "remote" for r in rows])), 3) if rows else None,
        "share_remote": round(float(np.mean([r["route"] == "remote" for r in rows])), 3) if rows else None,
        "routes": {k: sum(r["route"] == k for r in rows) for k in sorted({r["route"] for r in rows})},
        "first_audio_ms": {k: {"p50": pct(v, 50), "p95": pct(v, 95), "n": len(v)} for k, v in sorted(routes.items())},
        "slm_acceptance_rate": round(float(np.mean([not r["fallback"] for r in slm_runs])), 3) if slm_runs else None,
        "slm_tokens_per_s_p50": pct(tps, 50),
        "slm_first_sentence_ms_p50": pct([r["slm_first_sentence_ms"] for r in rows if r.get("slm_first_sentence_ms")], 50),
    }


def kv_reuse(slm, retriever, rows: list[dict], n: int = 4) -> dict:
    """Prefill time (ms, to the first token) with the saved system-prompt KV state vs from scratch."""
    out: dict[str, list[float]] = {"reused": [], "scratch": []}
    for q in [r for r in rows if r["answerable"] and r["question"]][:n]:
        passages = retriever.search(q["question"]).passages
        for mode, reuse in (("scratch", False), ("reused", True)):
            g = slm.generate(q["question"], passages, max_tokens=2, reuse_prefix=reuse)
            out[mode].append(g.prefill_ms)
    return {k: pct(v, 50) for k, v in out.items()} | {"n": len(out["reused"])}


def _commit() -> str:
    import subprocess

    try:
        return subprocess.run(["git", "-C", str(Path(__file__).resolve().parent), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def retrieved_ids(rep) -> list[str]:
    """The retriever's own order of rule ids (before whole rules and attached figures)."""
    if rep.retrieval is not None:
        return [p.id for p in rep.retrieval.passages]
    return [p.id for p in rep.passages]


async def run_all(args: argparse.Namespace) -> dict:
    from vehicle_assist.advisory import lane as lanes
    from vehicle_assist.config import load_app
    from vehicle_assist.speech.speak import Speaker

    cfg = load_app()
    rows = load_questions(Path(args.questions), args.split, args.limit)
    modes = [m for m in args.modes.split(",") if m]
    typical = None
    if args.with_scene:  # the same scene beside every question (in a car there is nearly always a car ahead)
        from vehicle_assist.advisory.scene import parse_scene

        typical = parse_scene(args.with_scene)
    print(f"{len(rows)} questions, modes {modes}", file=sys.stderr)
    parts = lanes.load(cfg, route="slm" if "slm" in modes else None)  # the lane the car and `ask` load
    retriever, similarity, slm = parts.retriever, parts.similarity, parts.slm
    if similarity is not None:
        similarity.prewarm(retriever.passages_by_id.values())
    info: dict = {}
    if slm is not None:
        info["slm"] = {"model": slm.model_name, "threads": cfg.runtime.threads.slm, "output": slm.output, "prefix_ms": round(slm.prefix_ms, 1),
                       "prefix_tokens": len(slm._prefix_tokens), "kv_reuse": kv_reuse(slm, retriever, rows)}
    speaker = arbiter = None
    if args.speak:
        from vehicle_assist.audio_out import AudioArbiter, NullSink
        from vehicle_assist.speech.tts import load_tts

        renderer = load_tts()
        renderer.render("Ready.")  # start the engine once
        arbiter = AudioArbiter(NullSink(realtime=False)).start()
        speaker = Speaker(arbiter, renderer)
    results: dict = {"commit": _commit(), "config": {"modes": modes, "split": args.split, "limit": args.limit, "speak": args.speak,
                                "semantic_weight": cfg.advisory.semantic_weight, "with_scene": args.with_scene,
                                "max_answer_words": cfg.advisory.max_answer_words}, **info, "splits": {}}
    per: dict[tuple[str, str], list[dict]] = {}
    for mode in modes:
        lane = parts.bind(speaker, cancel_event=arbiter.cancel_event if arbiter else None, route=mode)
        for i, q in enumerate(rows):
            scene = Scene(**q["scene"]) if q.get("scene") else typical
            if q.get("scene") is None and typical is not None and not q["question"]:
                scene = None
            rep = await lane.execute_report(q["question"] or None, scene, clock.perf_ns())
            adv = rep.advisory
            row = {
                "id": q["id"], "split": q["split"], "kind": q["kind"], "answerable": q["answerable"],
                "rule_ids": q["rule_ids"], "answer": adv.text, "cited": list(adv.cited), "route": adv.route,
                "chosen": rep.route, "refused": adv.refused, "fallback": rep.fallback,
                "grounded": bool(rep.verdict.ok) if rep.verdict is not None else adv.refused,
                "qtype": question_type(q),
                "facts_ok": (not adv.refused) and all(has_fact(adv.text, f) for f in q["key_facts"]),
                "fact_share": (0.0 if adv.refused else float(np.mean([has_fact(adv.text, f) for f in q["key_facts"]])))
                if q["key_facts"] else None,
                "rule_rank": next((i + 1 for i, p in enumerate(retrieved_ids(rep)) if p in set(q["rule_ids"])), None),
                "first_audio_ms": rep.timings.get("first_audio_ms"), "total_ms": rep.timings.get("total_ms"),
                "retrieve_ms": rep.timings.get("retrieve_ms"),
                "support": round(rep.support, 3),
                "similarity": max((round(x.similarity, 3) for x in rep.ranked if x.similarity is not None), default=None),
                "retrieval_answerable": rep.answerable,
            }
            if rep.slm is not None:
                row.update(tokens_per_s=round(rep.slm.tokens_per_s, 1), slm_first_sentence_ms=rep.slm.first_sentence_ms,
                           slm_stop=rep.slm.stop)
            per.setdefault((q["split"], mode), []).append(row)
            if arbiter:
                arbiter.wait_idle(5)
            print(f"\r{mode} {i + 1}/{len(rows)}", end="", file=sys.stderr)
        print(file=sys.stderr)
    if similarity is not None:
        similarity.save()
    if arbiter:
        arbiter.close()
    for (split, mode), rs in sorted(per.items()):
        results["splits"].setdefault(split, {})[mode] = summarise(rs)
        results.setdefault("by_type", {}).setdefault(split, {})[mode] = {
            t: summarise([r for r in rs if r["qtype"] == t]) for t in sorted({r["qtype"] for r in rs})}
    if args.rows:
        results["rows"] = {f"{s}/{m}": rs for (s, m), rs in per.items()}
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--questions", default=str(paths.home() / "bench" / "data" / "questions.jsonl"),
                    help="evaluation set (JSONL with key_facts and a dev/test split)")
    ap.add_argument("--split", default="test", choices=["dev", "test", "both"], help="which split to run")
    ap.add_argument("--limit", type=int, default=None,
                    help="subset: about this many answerable questions per split (keeps the mix); default all")
    ap.add_argument("--modes", default="extractive,slm", help="comma list of local routes to compare")
    ap.add_argument("--no-speak", dest="speak", action="store_false",
                    help="skip TTS (first-audio times then exclude rendering)")
    ap.add_argument("--rows", action="store_true", help="include every question's result in the JSON")
    ap.add_argument("--json-out", default=None, help="also write the JSON here")
    ap.add_argument("--with-scene", default=None,
                    help="a scene given with every question, e.g. 'label=car,distance_m=19,hazard=forward-collision'")
    ap.add_argument("--baseline", default=None,
                    help="JSON of an earlier run of this script (for example the code before issue 15, run with its "
                         "package on PYTHONPATH): put side by side under 'baseline'")
    args = ap.parse_args()
    results = asyncio.run(run_all(args))
    if args.baseline:
        base = json.loads(Path(args.baseline).read_text(encoding="utf-8"))
        results["baseline"] = {k: base.get(k) for k in ("config", "splits", "by_type", "commit")}
    emit_json(results, args.json_out, default=str)
    for split, modes in results["splits"].items():
        for mode, m in modes.items():
            fa = ", ".join(f"{k} p50 {v['p50']} ms" for k, v in m["first_audio_ms"].items())
            print(f"[{split}/{mode}] facts {m['fact_coverage']} fully {m['fully_answered']} "
                  f"rule 1st/top3 {m['rule_first']}/{m['rule_top3']} grounded {m['grounded_rate']} "
                  f"refusal acc {m['refusal_accuracy']} (answerable refused {m['answerable_refused']}) "
                  f"cite P/R {m['citation_precision']}/{m['citation_recall']} | {fa}"
                  + (f" | slm accepted {m['slm_acceptance_rate']}, {m['slm_tokens_per_s_p50']} tok/s"
                     if m["slm_acceptance_rate"] is not None else ""), file=sys.stderr)
            base = (results.get("baseline") or {}).get("splits", {}).get(split, {}).get("extractive")
            if base and mode == "extractive":
                print(f"   before issue 15: facts {base.get('fact_coverage')} fully {base.get('fully_answered')} "
                      f"rule 1st/top3 {base.get('rule_first')}/{base.get('rule_top3')} grounded "
                      f"{base.get('grounded_rate')} refusal acc {base.get('refusal_accuracy')} "
                      f"(answerable refused {base.get('answerable_refused')})", file=sys.stderr)
            for t, tm in results.get("by_type", {}).get(split, {}).get(mode, {}).items():
                print(f"   {t:13s} n={tm['n']:3d} facts {tm['fact_coverage']} fully {tm['fully_answered']} "
                      f"rule 1st {tm['rule_first']} refused {tm['answerable_refused'] if t != 'unanswerable' else tm['unanswerable_refused']}",
                      file=sys.stderr)


if __name__ == "__main__":
    main()
