"""Fit the rule re-ranker on the DEV split only and write vehicle_assist/advisory/rerank.yaml.

    python bench/fit_rerank.py [--dry-run] [--pseudo]
    python bench/fit_rerank.py --cv-dir DIR [--dry-run]   # held-out candidates (seventh round; kept)

``--cv-dir`` (the fold indexes of ``bench/answer_breakdown.py --cv-dir DIR [--grouped]``, both fold
schemes built there first): each dev question's candidates come from the fold index whose query
adapter did not see it (the plain mode's come from the shipped index, which was fitted on every dev
question, so its fused score is in-sample); the cross-validation keeps those folds (rule-grouped and
random), (C, candidates) is chosen by held-out rule first + top 3 on the grouped folds, one model per
fold is written to DIR/rerank_{g,r}{fold}.yaml (for an end-to-end held-out run of the lane:
``answer_breakdown.py --cv-dir DIR [--grouped] --fold-rerank``) and the shipped model is fitted on
every held-out candidate.

For every answerable dev question (kind "question"), the retriever's top rules (``--pool``, 10) and
their features (advisory.rerank.FEATURES); label: the rule is one of the question's gold rules.
Pointwise logistic regression (scikit-learn, only here: the lane uses the stored weights with numpy),
its C and the number of rules it re-orders chosen by repeated 5-fold cross-validation over questions
(scored as deployed: rule first among the re-ordered list). ``--pseudo`` adds pseudo-queries made
from the Code's own rule titles (never test questions) to each training fold. The test split is never
read. JSON report on stdout; the model is written only if its cross-validated rule-first beats the
retriever's order.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from vehicle_assist.advisory import rerank
from vehicle_assist.advisory.semantic import SentenceSimilarity
from vehicle_assist.config import load_app
from vehicle_assist.knowledge.retrieve import Retriever

QUESTIONS = Path(__file__).parent / "data" / "questions.jsonl"
GRID_C = (0.1, 0.3, 1.0, 3.0)
GRID_N = (3, 5, 10)
REPEATS = 5


def dev_questions() -> list[dict]:
    rows = [json.loads(x) for x in QUESTIONS.read_text(encoding="utf-8").splitlines() if x.strip()]
    return [r for r in rows if r["split"] == "dev" and r["kind"] == "question" and r["answerable"] and r["question"]]


def pseudo_queries(retriever: Retriever) -> list[dict]:
    """A question per passage from its own title ("what are the rules on <title>"): the Code's text
    only, every kind of passage (numbered rules, annexes, signs and signals sections)."""
    out = []
    for p in retriever.passages_by_id.values():
        if p.title and not p.id.endswith("#intro") and len(p.title.split()) >= 2:
            out.append({"question": f"what are the rules on {p.title.lower()}", "rule_ids": [p.id]})
    return out


def collect(retriever: Retriever, sim: SentenceSimilarity, items: list[dict], pool: int):
    """[(features n x F, labels n)] per item, in the retriever's order."""
    out = []
    for it in items:
        r = retriever.search(it["question"], k=pool)
        qvec = sim.query(it["question"])
        x = rerank.features(it["question"], r.passages, qvec, sim.vectors)
        y = np.array([p.id in set(it["rule_ids"]) for p in r.passages], dtype=int)
        out.append((x, y))
    return out


def first_hit(data, scores_of, n: int) -> float:
    hits = []
    for x, y in data:
        if not len(y):
            hits.append(0)
            continue
        head = min(n, len(y))
        order = list(range(len(y)))
        if scores_of is not None and head > 1:
            s = scores_of(x[:head])
            order = sorted(range(head), key=lambda i: (-s[i], i)) + order[head:]
        hits.append(int(y[order[0]]))
    return float(np.mean(hits))


def fit(data, c: float, n: int):
    from sklearn.linear_model import LogisticRegression

    x = np.vstack([d[0][:n] for d in data if len(d[1])])
    y = np.concatenate([d[1][:n] for d in data if len(d[1])])
    mean, scale = x.mean(0), x.std(0)
    scale[scale < 1e-9] = 1.0
    m = LogisticRegression(C=c, max_iter=5000, class_weight="balanced").fit((x - mean) / scale, y)
    return mean, scale, m.coef_[0], float(m.intercept_[0])


def cross_validate(data, extra, c: float, n: int) -> float:
    from sklearn.model_selection import KFold

    scores = []
    for rep in range(REPEATS):
        hits = []
        for tr, te in KFold(5, shuffle=True, random_state=rep).split(data):
            mean, scale, w, b = fit([data[i] for i in tr] + extra, c, n)
            hits.append(first_hit([data[i] for i in te], lambda x: ((x - mean) / scale) @ w + b, n) * len(te))
        scores.append(sum(hits) / len(data))
    return float(np.mean(scores))


def fold_candidates(cv_dir: Path, tag: str, fold: int, pool: int) -> Path:
    """The held-out questions of one fold, searched on that fold's index (a subprocess: the index is
    chosen by environment): JSON lines of id, candidate ids, features, labels."""
    out = cv_dir / f"rerank_candidates_{tag}{fold}.jsonl"
    if not out.is_file():
        env = dict(os.environ, VA_KNOWLEDGE__ADAPTER_QUESTIONS=str(cv_dir / f"questions_{tag}{fold}.jsonl"),
                   VA_KNOWLEDGE__INDEX_DIR=str(cv_dir / f"index_{tag}{fold}"))
        subprocess.run([sys.executable, __file__, "--collect", str(cv_dir / f"questions_{tag}{fold}.jsonl"),
                        "--pool", str(pool), "--out", str(out)], env=env, check=True)
    return out


def collect_heldout(qfile: Path, pool: int, out: Path) -> None:
    cfg = load_app()
    retriever = Retriever.load(cfg.knowledge, progress=False, threads=cfg.runtime.threads.embedder)
    sim = SentenceSimilarity.for_retriever(retriever)
    rows = [json.loads(x) for x in qfile.read_text(encoding="utf-8").splitlines() if x.strip()]
    items = [r for r in rows if r["split"] == "heldout" and r["kind"] == "question" and r["question"]]
    lines = []
    for it, (x, y) in zip(items, collect(retriever, sim, items, pool)):
        lines.append(json.dumps({"id": it["id"], "model_id": retriever.index.model_id,
                                 "x": np.round(x, 6).tolist(), "y": y.tolist()}))
    sim.save()
    out.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def first_top3(data, scores_of, n: int) -> tuple[int, int]:
    """(questions with a gold rule first, in the first 3) after re-ordering the first ``n``."""
    first = top3 = 0
    for x, y in data:
        order = list(range(len(y)))
        if scores_of is not None and min(n, len(y)) > 1:
            s = scores_of(x[:n])
            order = sorted(range(min(n, len(y))), key=lambda i: (-s[i], i)) + order[n:]
        first += int(len(y) > 0 and y[order[0]])
        top3 += int(y[order[:3]].any()) if len(y) else 0
    return first, top3


def cv_main(args) -> int:
    folds = {tag: [[(np.array(d["x"]), np.array(d["y"], dtype=int)) for d in map(json.loads, fold_candidates(
        args.cv_dir, tag, f, args.pool).read_text().splitlines())] for f in range(5)] for tag in ("g", "r")}
    report: dict = {"pool": args.pool, "questions": sum(map(len, folds["g"])), "grid": []}
    for tag in ("g", "r"):
        report[f"retriever_{tag}"] = first_top3([d for f in folds[tag] for d in f], None, 0)
    for n in GRID_N:
        for c in GRID_C:
            row = {"C": c, "candidates": n}
            for tag in ("g", "r"):
                tot = np.zeros(2, dtype=int)
                for f in range(5):
                    mean, scale, w, b = fit([d for k in range(5) if k != f for d in folds[tag][k]], c, n)
                    tot += first_top3(folds[tag][f], lambda x: ((x - mean) / scale) @ w + b, n)
                row[f"first_top3_{tag}"] = tot.tolist()
            report["grid"].append(row)
            print(row, file=sys.stderr, flush=True)
    best = max(report["grid"], key=lambda g: (sum(g["first_top3_g"]), -g["candidates"], -g["C"]))
    report["chosen"] = best
    cfg = load_app()
    model_id = json.loads(fold_candidates(args.cv_dir, "g", 0, args.pool).read_text().splitlines()[0])["model_id"]
    n, c = best["candidates"], best["C"]
    for tag in ("g", "r"):
        for f in range(5):
            mean, scale, w, b = fit([d for k in range(5) if k != f for d in folds[tag][k]], c, n)
            rerank.save(rerank.Reranker(model_id, mean, scale, w, b, n, {"fold": f"{tag}{f}"}),
                        args.cv_dir / f"rerank_{tag}{f}.yaml")
    alld = [d for f in folds["g"] for d in f]
    mean, scale, w, b = fit(alld, c, n)
    base = report["retriever_g"]
    model = rerank.Reranker(model_id, mean, scale, w, b, n, {
        "fitted_on": "dev (held-out fold-index candidates)", "n_questions": len(alld), "pool": args.pool,
        "retriever_first_top3_grouped": list(base), "cv_first_top3_grouped": best["first_top3_g"],
        "retriever_first_top3_random": list(report["retriever_r"]), "cv_first_top3_random": best["first_top3_r"],
        "grid": report["grid"]})
    kept = sum(best["first_top3_g"]) > sum(base)
    report["kept"] = kept
    if kept and not args.dry_run:
        rerank.save(model)
    del cfg
    json.dump(report, sys.stdout, indent=1)
    print()
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pool", type=int, default=10, help="rules retrieved per question")
    ap.add_argument("--pseudo", action="store_true", help="add title pseudo-queries to the training folds")
    ap.add_argument("--dry-run", action="store_true", help="report only; do not write rerank.yaml")
    ap.add_argument("--cv-dir", type=Path, help="held-out candidates from the fold indexes under DIR")
    ap.add_argument("--collect", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.collect:
        collect_heldout(args.collect, args.pool, args.out)
        return 0
    if args.cv_dir:
        return cv_main(args)
    cfg = load_app()
    retriever = Retriever.load(cfg.knowledge, progress=False, threads=cfg.runtime.threads.embedder)
    sim = SentenceSimilarity.for_retriever(retriever)
    items = dev_questions()
    data = collect(retriever, sim, items, args.pool)
    extra = collect(retriever, sim, pseudo_queries(retriever), args.pool) if args.pseudo else []
    sim.save()
    base = first_hit(data, None, args.pool)
    grid = [{"C": c, "candidates": n, "cv_rule_first": round(cross_validate(data, extra, c, n), 4)}
            for n in GRID_N for c in GRID_C]
    best = max(grid, key=lambda g: (g["cv_rule_first"], -g["candidates"], -g["C"]))
    mean, scale, w, b = fit(data + extra, best["C"], best["candidates"])
    model = rerank.Reranker(retriever.index.model_id, mean, scale, w, b, best["candidates"], {
        "fitted_on": "dev", "n_questions": len(items), "pseudo_queries": len(extra), "pool": args.pool,
        "retriever_rule_first": round(base, 4), "cv_rule_first": best["cv_rule_first"],
        "in_pool": round(float(np.mean([d[1].any() for d in data])), 4), "grid": grid})
    # latency of the features + score for one question (sentence vectors cached)
    t = time.perf_counter()
    for it in items[:20]:
        r = retriever.search(it["question"], k=args.pool)
        rerank.rerank(model, it["question"], r.passages, sim.query(it["question"]), sim.vectors)
    model.info["latency_ms_per_question_incl_search"] = round((time.perf_counter() - t) / 20 * 1000, 1)
    report = rerank.to_table(model)
    kept = best["cv_rule_first"] > base
    report["kept"] = kept
    if kept and not args.dry_run:
        rerank.save(model)
    json.dump(report, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
