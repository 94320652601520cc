"""Which path refuses each dev question, and the lane's refusal operating curve on dev (issue 15).

    python bench/fit_answerability.py --dry-run --oof OOF.jsonl     # out-of-fold P(answerable)
    python bench/refusal_paths.py --oof OOF.jsonl [--max-false-reject 0.02,0.03] [--json-out FILE]
    python bench/refusal_paths.py [--thresholds 0.3]                # the shipped model, in-sample

The lane refuses a question on one of four paths: the out-of-scope table, the answerability model
(P(answerable) below its threshold), the router (best rule sentence weak on word match and on
similarity, or below ``min_support``), or validation (no sentence of the extractive answer is
grounded in what it cites). This script runs the lane the car uses (``lane.load(...).bind(...)``,
extractive route, no speech) over the dev questions with the retriever's verdict set aside
(every question with passages treated as answerable), so the router's and validation's own
refusals are seen for every question, and reads the table and the model beside it. With ``--oof``
the model's verdict is the out-of-fold probability of ``bench/fit_answerability.py`` (held out;
each shuffle's threshold set at ``--max-false-reject`` as the fit sets it, figures averaged over the
shuffles); without it, the shipped model's (in-sample: it was fitted on dev). For each operating
point it reports answerable refused and out of scope refused as the whole lane would (any path), and lists the
answerable questions refused with their path. Reads the dev split only.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from advisory import load_questions  # noqa: E402

from vehicle_assist import clock, paths  # noqa: E402
from vehicle_assist.messages import Scene  # noqa: E402


class _Accepting:
    """A retriever whose every search with passages is judged answerable (its verdict kept aside)."""

    def __init__(self, inner):
        self._inner = inner
        self.last = None

    def search(self, *args, **kwargs):
        res = self._inner.search(*args, **kwargs)
        self.last = res
        return dataclasses.replace(res, answerable=bool(res.passages), reason="")

    def __getattr__(self, name):
        return getattr(self._inner, name)


async def lane_rows(questions: Path) -> list[dict]:
    from vehicle_assist.advisory import lane as lanes
    from vehicle_assist.config import load_app

    cfg = load_app()
    parts = lanes.load(cfg)
    accepting = _Accepting(parts.retriever)
    parts = dataclasses.replace(parts, retriever=accepting)
    if parts.similarity is not None:
        parts.similarity.prewarm(parts.retriever.passages_by_id.values())
    lane = parts.bind(None, route="extractive")
    rows = []
    for q in load_questions(questions, "dev", None):
        if q["kind"] != "question":
            continue
        rep = await lane.execute_report(q["question"], None, clock.perf_ns())
        res = accepting.last
        sims = [r.similarity for r in rep.ranked if r.similarity is not None]
        if not rep.advisory.refused:
            path = ""
        elif rep.route == "refusal":
            path = "router"
        else:
            path = "validation"
        rows.append({"id": q["id"], "answerable": bool(q["answerable"]), "question": q["question"],
                     "scope": res.reason.startswith("out-of-scope"), "scope_reason": res.reason,
                     "p_insample": res.p_answerable, "lane_path": path, "support": round(rep.support, 3),
                     "similarity": round(max(sims), 3) if sims else None, "fallback": rep.fallback,
                     "answer": rep.advisory.text})
    parts.close()
    return rows


def refused_by(row: dict, p: float | None, threshold: float) -> str:
    """The first path that refuses a question ('' when none does)."""
    if row["scope"]:
        return "scope-table"
    if p is not None and p < threshold:
        return "model"
    return row["lane_path"]


def operating_point(rows: list[dict], probs: list[dict[str, float]], thresholds: list[float]) -> dict:
    """The lane's refusals (any path) with the model's P from each of ``probs`` (one dict per
    shuffle) at the matching threshold, averaged over the shuffles; the items of the first shuffle."""
    ans = [r for r in rows if r["answerable"]]
    una = [r for r in rows if not r["answerable"]]
    a_share, u_share, a_by, u_by = [], [], {}, {}
    for probs_s, thr in zip(probs, thresholds):
        by = {r["id"]: refused_by(r, probs_s.get(r["id"], r["p_insample"]), thr) for r in rows}
        a_share.append(sum(bool(by[r["id"]]) for r in ans) / len(ans))
        u_share.append(sum(bool(by[r["id"]]) for r in una) / len(una))
        for group, counts in ((ans, a_by), (una, u_by)):
            for r in group:
                key = by[r["id"]] or "answered"
                counts[key] = counts.get(key, 0) + 1 / len(probs)
        if probs_s is probs[0]:
            items = [{"id": r["id"], "path": by[r["id"]], "question": r["question"],
                      "p": probs_s.get(r["id"], r["p_insample"]), "support": r["support"],
                      "similarity": r["similarity"], "fallback": r["fallback"]} for r in ans if by[r["id"]]]
    return {"threshold": round(float(np.median(thresholds)), 4),
            "answerable_refused": round(float(np.mean(a_share)), 4),
            "unanswerable_refused": round(float(np.mean(u_share)), 4),
            "answerable_by": {k: round(v, 2) for k, v in sorted(a_by.items())},
            "unanswerable_by": {k: round(v, 2) for k, v in sorted(u_by.items())},
            "answerable_refused_items": items}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--questions", type=Path, default=paths.home() / "bench" / "data" / "questions.jsonl")
    ap.add_argument("--oof", type=Path, help="out-of-fold P(answerable) from fit_answerability.py --oof")
    ap.add_argument("--max-false-reject", default="",
                    help="with --oof: comma list of operating points; each shuffle's threshold is the one at which its "
                         "out-of-fold P rejects that share of the dev answerable questions (as fit_answerability.py)")
    ap.add_argument("--thresholds", default="", help="without --oof: comma list of thresholds (default: the shipped one)")
    ap.add_argument("--rows", action="store_true", help="include every question's lane row")
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args(argv)
    from vehicle_assist.knowledge import answerability

    rows = asyncio.run(lane_rows(args.questions))
    shipped = answerability.load().threshold
    out = {"model": "out-of-fold" if args.oof else "in-sample (shipped)", "shipped_threshold": shipped,
           "n_answerable": sum(r["answerable"] for r in rows),
           "n_unanswerable": sum(not r["answerable"] for r in rows), "curve": []}
    if args.oof:
        oof = [json.loads(line) for line in args.oof.read_text(encoding="utf-8").splitlines() if line.strip()]
        probs = [{o["id"]: o["p"][s] for o in oof} for s in range(len(oof[0]["p"]))]
        for m in [float(x) for x in (args.max_false_reject or "0.03").split(",")]:
            thresholds = []
            for probs_s in probs:
                ok = np.sort([probs_s[o["id"]] for o in oof if o["answerable"]])
                thresholds.append(float(ok[int(np.floor(m * len(ok)))]) - 1e-9)
            out["curve"].append({"max_false_reject": m, **operating_point(rows, probs, thresholds)})
    else:
        for thr in [float(t) for t in args.thresholds.split(",") if t] or [shipped]:
            out["curve"].append(operating_point(rows, [{}], [thr]))
    out["lane_refusals_without_retriever_verdict"] = [
        {k: r[k] for k in ("id", "answerable", "question", "lane_path", "support", "similarity", "fallback")}
        for r in rows if r["lane_path"]]
    if args.rows:
        out["rows"] = rows
    text = json.dumps(out, indent=1)
    print(text)
    if args.json_out:
        args.json_out.write_text(text + "\n", encoding="utf-8")
    for c in out["curve"]:
        print(f"{c.get('max_false_reject', '')} threshold {c['threshold']:.3f}: answerable refused "
              f"{c['answerable_refused']:.3f} {c['answerable_by']}, out of scope refused "
              f"{c['unanswerable_refused']:.3f} {c['unanswerable_by']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
