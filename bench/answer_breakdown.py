"""Where the advisory lane's fact coverage is lost (issue 15), per dev question.

    python bench/answer_breakdown.py [--split dev] [--json-out FILE] [--dump FILE]
    python bench/answer_breakdown.py --cv-dir DIR [--grouped] ...   # held-out rule ranking (dev)

Runs the lane the car uses (``lane.load(...).bind(...)``, extractive route, no speech) over the
answerable items of one split and puts every question that is not fully answered in one bucket:

- ``refused``: the lane refused it (d);
- ``not_top3``: no gold rule among the retriever's first 3 (a);
- ``selection``: a gold rule is in the top 3 and one or two sentences of the top 3 rules (as the
  answerer sees them: whole rules, bullets, table cells as sentences) hold every key fact, but the
  answer said does not (b); split by the gold rule's place (first / 2nd-3rd);
- ``not_in_sentences``: a gold rule is in the top 3 but no one or two of those sentences hold every
  key fact (the fact is in a table row, a figure or spread over a list; only a structured fact or
  a longer answer could carry it) (c).

The query adapter is fitted on the dev questions, so the plain run is in-sample for rule ranking.
``--cv-dir DIR`` scores every dev item with an index whose adapter did not see it: 5 folds (rule-
grouped with ``--grouped``, as bench/advisory_cv.py), one index per fold built (once, then reused)
under DIR with that fold's items withheld from ``adapter_questions``.

``--dump`` writes, per answerable item, the ranked candidate sentences with the scorer's parts (so
selection methods can be compared offline without re-running retrieval). Reads only ``--split``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from itertools import combinations
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from advisory import has_fact, load_questions, question_type, retrieved_ids  # noqa: E402

from vehicle_assist import clock, paths  # noqa: E402
from vehicle_assist.messages import Scene  # noqa: E402


def coverable(facts: list[str], texts: list[str]) -> bool:
    """One sentence, or two, of ``texts`` hold every key fact."""
    if not facts:
        return True
    holds = [frozenset(i for i, f in enumerate(facts) if has_fact(t, f)) for t in texts]
    full = frozenset(range(len(facts)))
    if any(h == full for h in holds):
        return True
    useful = [h for h in holds if h]
    return any(a | b == full for a, b in combinations(useful, 2))


def bucket(item: dict, row: dict, texts: list[str]) -> str:
    if row["facts_ok"]:
        return "answered"
    if row["refused"]:
        return "refused"
    if row["rule_rank"] is None or row["rule_rank"] > 3:
        return "not_top3"
    if coverable(item["key_facts"], texts):
        return "selection_rule_first" if row["rule_rank"] == 1 else "selection_rule_2_3"
    return "not_in_sentences"


def fold_rerank(cv_dir: Path, fold: str) -> dict:
    """The rule re-ranker for a fold: the one ``bench/fit_rerank.py --cv-dir`` fitted without that
    fold's questions (DIR/rerank_<fold>.yaml), else none (the shipped one saw every dev question)."""
    path = cv_dir / f"rerank_{fold}.yaml"
    return {"VA_ADVISORY__RERANK_MODEL": str(path)} if path.is_file() else {"VA_ADVISORY__RERANK": "retriever"}


def cv_folds(cv_dir: Path, grouped: bool, seed: int = 100, folds: int = 5) -> list[tuple[set[str], dict]]:
    """[(held-out ids, environment for the fold's index)] as bench/advisory_cv.py splits dev."""
    import os

    import numpy as np
    import rank_experiments as rx

    rows_all = [json.loads(line) for line in rx.QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]
    dev = [r for r in rows_all if r["split"] == "dev" and r["answerable"]]
    if grouped:
        d = rx.Data(rx.CACHE)
        assert d.ids.tolist() == [r["id"] for r in dev], "rank cache is stale: python bench/rank_experiments.py cache"
        fold_of = rx._rule_groups(d, folds, seed)
    else:
        perm = np.random.default_rng(seed).permutation(len(dev))
        fold_of = np.arange(len(dev))[np.argsort(perm)] % folds
    cv_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for f in range(folds):
        held = {dev[i]["id"] for i in np.flatnonzero(fold_of == f)}
        qfile = cv_dir / f"questions_{'g' if grouped else 'r'}{f}.jsonl"
        qfile.write_text("".join(json.dumps({**r, "split": "heldout"} if r["id"] in held else r) + "\n"
                                 for r in rows_all if r["split"] == "dev"), encoding="utf-8")
        env = dict(os.environ, VA_KNOWLEDGE__ADAPTER_QUESTIONS=str(qfile),
                   VA_KNOWLEDGE__INDEX_DIR=str(cv_dir / f"index_{'g' if grouped else 'r'}{f}"))
        env.update(fold_rerank(cv_dir, f"{'g' if grouped else 'r'}{f}"))
        out.append((held, env))
    return out


def run_cv(args: argparse.Namespace) -> dict:
    """Each fold's held-out rows from a run on that fold's index (subprocesses), merged."""
    import subprocess
    import tempfile

    rows, dump = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for f, (held, env) in enumerate(cv_folds(args.cv_dir, args.grouped)):
            out, dmp = Path(tmp) / f"fold{f}.json", Path(tmp) / f"fold{f}.jsonl"
            subprocess.run([sys.executable, __file__, "--questions", args.questions, "--rows", "--json-out", str(out),
                            "--dump", str(dmp)], env=env, check=True, stdout=subprocess.DEVNULL)
            rows += [r for r in json.loads(out.read_text())["rows"] if r["id"] in held]
            dump += [d for d in map(json.loads, dmp.read_text().splitlines()) if d["id"] in held]
    order = {q["id"]: i for i, q in enumerate(load_questions(Path(args.questions), "dev", None))}
    rows.sort(key=lambda r: order[r["id"]])
    dump.sort(key=lambda r: order[r["id"]])
    return summary(rows, dump, args, {"cv": "grouped" if args.grouped else "random", "folds": 5})


async def run(args: argparse.Namespace) -> dict:
    import selector  # bench/selector.py: the learned-selector experiment's features

    from vehicle_assist.advisory import lane as lanes
    from vehicle_assist.advisory.text import passage_sentences
    from vehicle_assist.config import load_app

    cfg = load_app()
    items = [q for q in load_questions(Path(args.questions), args.split, None) if q["answerable"]]
    parts = lanes.load(cfg)
    if parts.similarity is not None:
        parts.similarity.prewarm(parts.retriever.passages_by_id.values())
    lane = parts.bind(None, route="extractive")
    rows, dump = [], []
    for q in items:
        scene = Scene(**q["scene"]) if q.get("scene") else None
        rep = await lane.execute_report(q["question"] or None, scene, clock.perf_ns())
        adv = rep.advisory
        order = retrieved_ids(rep)
        top = [p for p in rep.passages if p.id in order[:3] or p.id.split("-figure")[0] in order[:3]]
        texts = [s.text for p in top for s in passage_sentences(p)]
        row = {"id": q["id"], "qtype": question_type(q), "question": q["question"], "rule_ids": q["rule_ids"],
               "key_facts": q["key_facts"], "answer": adv.text, "cited": list(adv.cited), "refused": adv.refused,
               "rule_rank": next((i + 1 for i, p in enumerate(order) if p in set(q["rule_ids"])), None),
               "facts_ok": (not adv.refused) and all(has_fact(adv.text, f) for f in q["key_facts"]),
               "fact_share": 0.0 if adv.refused or not q["key_facts"] else
               sum(has_fact(adv.text, f) for f in q["key_facts"]) / len(q["key_facts"]), "order": order[:5]}
        row["bucket"] = bucket(q, row, texts)
        rows.append(row)
        if args.dump:
            feats = selector.features(q["question"] or "", rep.ranked, [p.id for p in rep.passages[:3]])
            dump.append({**row, "scene": q.get("scene"), "passages": [p.id for p in rep.passages],
                         "ranked": [{"pid": r.sentence.passage_id, "index": r.sentence.index, "text": r.sentence.text,
                                     "group": r.sentence.group, "joined": r.sentence.joined, "score": r.score,
                                     "lexical": r.lexical, "similarity": r.similarity,
                                     "features": [round(float(v), 5) for v in f]}
                                    for r, f in zip(rep.ranked, feats)]})
    parts.close()
    return summary(rows, dump, args, {})


def summary(rows: list[dict], dump: list[dict], args: argparse.Namespace, extra: dict) -> dict:
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["bucket"]] = counts.get(r["bucket"], 0) + 1
    lost: dict[str, float] = {}  # the key-fact share each bucket loses (sums to 1 - coverage)
    for r in rows:
        lost[r["bucket"]] = lost.get(r["bucket"], 0.0) + (1.0 - r["fact_share"]) / len(rows)
    by_type: dict[str, dict[str, int]] = {}
    for r in rows:
        by_type.setdefault(r["qtype"], {}).setdefault(r["bucket"], 0)
        by_type[r["qtype"]][r["bucket"]] += 1
    out = {"split": args.split, **extra, "n": len(rows), "buckets": dict(sorted(counts.items())),
           "coverage_lost": {k: round(v, 3) for k, v in sorted(lost.items())},
           "fact_coverage": round(sum(r["fact_share"] for r in rows) / len(rows), 3),
           "fully_answered": round(sum(r["facts_ok"] for r in rows) / len(rows), 3), "by_type": by_type}
    if args.rows:
        out["rows"] = rows
    if args.dump:
        Path(args.dump).write_text("".join(json.dumps(d) + "\n" for d in dump), encoding="utf-8")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--questions", default=str(paths.home() / "bench" / "data" / "questions.jsonl"))
    ap.add_argument("--split", default="dev", choices=["dev", "test"])
    ap.add_argument("--rows", action="store_true", help="include every question's row")
    ap.add_argument("--json-out", type=Path)
    ap.add_argument("--dump", type=Path, help="write ranked candidate sentences per item (JSON lines)")
    ap.add_argument("--cv-dir", type=Path, help="held-out rule ranking: per-fold indexes under this folder (dev)")
    ap.add_argument("--grouped", action="store_true", help="with --cv-dir: items sharing a gold rule in one fold")
    args = ap.parse_args(argv)
    if args.cv_dir and args.split != "dev":
        ap.error("--cv-dir is for the dev split")
    out = run_cv(args) if args.cv_dir else asyncio.run(run(args))
    text = json.dumps(out, indent=1)
    print(text)
    if args.json_out:
        args.json_out.write_text(text + "\n", encoding="utf-8")
    print(f"[{args.split}] n={out['n']} fully {out['fully_answered']} coverage {out['fact_coverage']} "
          f"buckets {out['buckets']} lost {out['coverage_lost']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
