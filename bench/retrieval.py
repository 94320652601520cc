"""Retrieval benchmark: recall@1/3/5, MRR, answerability, latency and index build time, per split,
for the configured hybrid retriever, hybrid with reciprocal rank fusion instead of score fusion, hybrid without the query adapter,
hybrid without query normalisation, and a dense-only baseline.

    python bench/retrieval.py [--json-out FILE] [--splits dev,test] [--no-build]

JSON on stdout, a short summary on stderr. Latency is wall time per query (``latency_ms``) and the
process CPU time it used (``cpu_ms``: on a machine shared with other jobs, wall time includes waiting
for a core; CPU time does not). Recall@k here is the share of items with at least one
of their gold rule ids among the first k passages. Rejection thresholds of the variants without
the configured one (the dense-only baseline) are calibrated on dev (largest threshold with
<= 5% of dev answerable questions rejected) and applied unchanged to test.

Since issue 15's fourth round the query adapter is also fitted on the dev questions
(``knowledge.adapter_questions``), so the dev rows of the adapter variants are in-sample; the
held-out dev figures come from ``bench/rank_experiments.py`` (k-fold cross-validation over dev).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

from vehicle_assist import clock, paths
from vehicle_assist.config import load_app
from vehicle_assist.knowledge.retrieve import Retriever
from vehicle_assist.messages import Scene
from common import emit_json  # bench/common.py (the script's folder is on sys.path)

QUESTIONS = paths.home() / "bench" / "data" / "questions.jsonl"
VARIANTS = {  # name -> (search mode, normalise query?, use configured rejection?, settings changed)
    "hybrid": ("hybrid", None, True, {}),  # the configured retriever
    "hybrid_rrf": ("hybrid", None, True, {"fusion": "rrf"}),  # ablation: reciprocal rank fusion instead
    "hybrid_no_adapter": ("hybrid", None, True, {"adapter_weight": 0.0}),  # ablation: raw query vector ranks
    "hybrid_no_normalization": ("hybrid", False, True, {}),  # ablation: raw spoken text
    "dense_only_baseline": ("dense", False, False, {}),  # plain dense, dev-calibrated threshold, no scope table
}


def load_items(path: Path = QUESTIONS) -> list[dict]:
    """The evaluation set, one dict per line."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def run_items(retriever: Retriever, items: list[dict], mode: str, normalize_query: bool | None) -> list[dict]:
    """Search every item once; returns per-item ranks, similarity, decision and latency."""
    out = []
    for it in items:
        scene = Scene(**it["scene"]) if it.get("scene") else None
        c0 = clock.cpu_ns()
        r = retriever.search(it["question"], scene=scene, k=5, mode=mode, normalize_query=normalize_query)
        cpu_ms = (clock.cpu_ns() - c0) / 1e6
        ids = [p.id for p in r.passages]
        rank = next((i + 1 for i, pid in enumerate(ids) if pid in set(it["rule_ids"])), None)
        out.append({"id": it["id"], "split": it["split"], "kind": it["kind"], "answerable": it["answerable"],
                    "rank": rank, "top_dense": r.top_dense, "accepted": r.answerable, "reason": r.reason,
                    "ms": r.timings["total_ms"], "cpu_ms": cpu_ms, "ids": ids})
    return out


def calibrate(results: list[dict], max_false_reject: float = 0.05) -> float:
    """Largest dense threshold rejecting at most ``max_false_reject`` of answerable dev questions."""
    sims = sorted(r["top_dense"] for r in results if r["answerable"] and r["kind"] == "question")
    if not sims:
        return 0.0
    allowed = int(np.floor(max_false_reject * len(sims)))
    return float(sims[allowed]) - 1e-6


def metrics(results: list[dict], threshold: float | None) -> dict:
    """Recall@k, MRR, rejection rates and latency over one split's results."""
    def accepted(r: dict) -> bool:
        return r["accepted"] if threshold is None else r["top_dense"] >= threshold

    def ranking(rows: list[dict]) -> dict:
        if not rows:
            return {}
        n = len(rows)
        return {"n": n, **{f"recall@{k}": round(sum(1 for r in rows if r["rank"] and r["rank"] <= k) / n, 4)
                           for k in (1, 3, 5)},
                "mrr": round(sum(1 / r["rank"] for r in rows if r["rank"]) / n, 4)}

    qa = [r for r in results if r["answerable"] and r["kind"] == "question"]
    sc = [r for r in results if r["kind"] == "scene"]
    un = [r for r in results if not r["answerable"]]
    ms = [r["ms"] for r in results]
    cpu = [r["cpu_ms"] for r in results]
    return {
        "questions": ranking(qa),
        "scenes": ranking(sc),
        "unanswerable_rejected": round(sum(not accepted(r) for r in un) / len(un), 4) if un else None,
        "answerable_false_rejected": round(sum(not accepted(r) for r in qa) / len(qa), 4) if qa else None,
        "scenes_false_rejected": round(sum(not accepted(r) for r in sc) / len(sc), 4) if sc else None,
        "n_unanswerable": len(un),
        "latency_ms": {"p50": round(statistics.median(ms), 2), "p95": round(float(np.percentile(ms, 95)), 2),
                       "max": round(max(ms), 2)},
        "cpu_ms": {"p50": round(statistics.median(cpu), 2), "p95": round(float(np.percentile(cpu, 95)), 2)},
        "misses@3": [r["id"] for r in qa + sc if not (r["rank"] and r["rank"] <= 3)],
        "wrongly_accepted": [r["id"] for r in un if accepted(r)],
        "wrongly_rejected": [r["id"] for r in qa if not accepted(r)],
    }


def measure_build(settings, embedder) -> dict:
    """A full index build (chunk + embed + write) into a scratch folder, model already loaded."""
    with tempfile.TemporaryDirectory() as tmp:
        t0, c0 = clock.perf_ns(), clock.cpu_ns()
        r = Retriever.load(settings.model_copy(update={"index_dir": tmp}), embedder=embedder, progress=False)
        total, cpu = (clock.perf_ns() - t0) / 1e9, (clock.cpu_ns() - c0) / 1e9
    return {"build_s": round(r.index.build_s, 3), "load_plus_build_s": round(total, 3), "cpu_s": round(cpu, 2),
            "chunks": len(r.index.chunks), "records": len(r.index.records)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json-out", type=Path, help="Also write the JSON result to this file.")
    ap.add_argument("--splits", default="dev,test", help="Comma-separated splits to report (default dev,test).")
    ap.add_argument("--no-build", action="store_true", help="Skip the fresh index build timing.")
    ap.add_argument("--details", action="store_true", help="Include per-item results in the JSON.")
    args = ap.parse_args(argv)
    app = load_app()
    settings = app.knowledge
    t0 = clock.perf_ns()
    from vehicle_assist import models

    if settings.encoder == "onnx":  # the configured backend, with the onboard query thread count
        from vehicle_assist.knowledge import onnx_embed

        embedder = onnx_embed.load(threads=app.runtime.threads.embedder)
    else:
        embedder = models.load_embedder()
    load_s = (clock.perf_ns() - t0) / 1e9
    build = None if args.no_build else measure_build(settings, embedder)
    retriever = Retriever.load(settings, embedder=embedder, progress=False, threads=app.runtime.threads.embedder)
    items = load_items()
    splits = [s for s in args.splits.split(",") if s]
    report: dict = {"items": len(items), "model_load_s": round(load_s, 2), "encoder": retriever.encoder.name,
                    "index": build,
                    "settings": settings.model_dump(), "variants": {}}
    run_items(retriever, items[:10], "hybrid", None)  # warm-up: first calls allocate
    for name, (mode, norm, configured, changed) in VARIANTS.items():
        retriever.settings = settings.model_copy(update=changed)
        results = run_items(retriever, items, mode, norm)
        retriever.settings = settings
        threshold = None if configured else calibrate([r for r in results if r["split"] == "dev"])
        entry = {"threshold": settings.reject_min_dense if configured else round(threshold, 4), "changed": changed,
                 "out_of_scope_table": bool(configured and settings.reject_out_of_scope)}
        for split in splits:
            entry[split] = metrics([r for r in results if r["split"] == split], threshold)
        if args.details:
            entry["items"] = results
        report["variants"][name] = entry
    emit_json(report, args.json_out)
    for name, entry in report["variants"].items():
        for split in splits:
            m = entry[split]
            print(f"{name:26s} {split:4s} questions R@1/3/5 {m['questions']['recall@1']:.2f}/"
                  f"{m['questions']['recall@3']:.2f}/{m['questions']['recall@5']:.2f} MRR {m['questions']['mrr']:.2f} | "
                  f"scenes R@3 {m['scenes']['recall@3']:.2f} | unans rejected {m['unanswerable_rejected']:.2f} "
                  f"false-rej {m['answerable_false_rejected']:.2f} | p50/p95 {m['latency_ms']['p50']}/"
                  f"{m['latency_ms']['p95']} ms (CPU p95 {m['cpu_ms']['p95']} ms)", file=sys.stderr)
    if build:
        print(f"index build {build['build_s']} s, {build['cpu_s']} s CPU ({build['chunks']} chunks); "
              f"model load {load_s:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
