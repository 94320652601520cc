"""Doc2query on dev, held out (issue 15, ninth round): do generated questions help rule ranking?

    VA_RANK_CACHE=FILE python bench/rank_experiments.py cache          # dev + pseudo-query vectors
    python bench/doc2query.py generate ... --out RAW.jsonl                # the generated questions
    VA_RANK_CACHE=FILE python bench/d2q_experiments.py --raw RAW.jsonl [--json-out FILE] [NAMES...]

Generated questions (from the Code's chunks only; bench/doc2query.py) are filtered by general rules
(``doc2query.filtered``: length, repetition, question shape, prompt echo, a content word shared with
the passage) and used three ways, alone and together:

- ``P`` pseudo-queries: each question joins the adapter's fit labelled with its chunk's rule;
- ``D`` document side: a chunk's dense score is ``(1 - a) cos(q, chunk) + a max_j cos(q, question_j)``
  over its own generated questions (``a`` = 0.25 / 0.5; chunks without questions keep the cosine);
- ``B`` BM25 over each chunk's text plus its generated questions.

Scored as ``rank_experiments.cv_trained_on`` (the configured fusion: adapter weight 0.5, BM25 0.10,
dev questions x10 in the fit), with the same folds (rule-grouped and random, 5 folds x 2 shuffles,
pooled), so every variant scores the same held-out items as the baseline: paired gains / losses,
and the per-shuffle spread of the difference. Dev only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import doc2query  # noqa: E402
import rank_experiments as rx  # noqa: E402


def load_generated(raw: Path, emb_filter: int = 0) -> tuple[list[tuple[int, str]], dict]:
    """[(chunk row, question)] after the general filters; stats."""
    rows = [json.loads(line) for line in raw.read_text(encoding="utf-8").splitlines() if line.strip()]
    chunk_list = doc2query.chunks()
    kept = doc2query.filtered(rows, chunk_list)
    row_of = {(c["rule_id"], c["part"]): i for i, c in enumerate(chunk_list)}
    pairs = [(row_of[k], q) for k, qs in kept.items() for q in qs]
    stats = {"chunks_generated": len(rows), "raw_questions": sum(len(r["questions"]) for r in rows),
             "kept": len(pairs), "chunks_with_questions": len({p for p, _ in pairs}),
             "tokens": sum(r["tokens"] for r in rows), "seconds": round(sum(r["seconds"] for r in rows), 1)}
    return pairs, stats


def embed(texts: list[str], cache_dir: Path) -> np.ndarray:
    key = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
    path = cache_dir / f"gq_vectors_{key}.npy"
    if path.is_file():
        return np.load(path)
    from vehicle_assist.config import load_app
    from vehicle_assist.knowledge.normalize import normalize
    from vehicle_assist.knowledge.retrieve import Retriever

    r = Retriever.load(load_app().knowledge, progress=False, threads=1)
    v = r.encoder.encode([normalize(t, r.terms) for t in texts], parallel=True).astype(np.float32)
    np.save(path, v)
    return v


class Variant:
    def __init__(self, d: rx.Data, pairs, gv, chunk_list, pseudo=False, doc_a=0.0, bm25=False, emb_top=0):
        self.d = d
        keep = np.ones(len(pairs), dtype=bool)
        if emb_top:  # embedding filter: the question's own rule among its emb_top nearest rules (raw cosine)
            rs = rx.rule_scores(d, gv, np.zeros((len(gv), len(d.vectors))), 0.0)
            own = np.array([d.chunk_label[c] for c, _ in pairs])
            rank = (rs > rs[np.arange(len(gv)), own][:, None]).sum(axis=1) + 1
            keep = rank <= emb_top
        self.n_used = int(keep.sum())
        self.pairs = [p for p, k in zip(pairs, keep) if k]
        self.gv = gv[keep]
        self.chunk_of_q = np.array([c for c, _ in self.pairs], dtype=np.int64)
        self.pseudo = pseudo
        self.doc_a = doc_a
        self.lex = d.lex
        if bm25:
            from vehicle_assist.knowledge.corpus import Chunk
            from vehicle_assist.knowledge.index import build_bm25
            from vehicle_assist.knowledge.normalize import bm25_tokens

            extra: dict[int, list[str]] = {}
            for c, q in self.pairs:
                extra.setdefault(c, []).append(q)
            chunks = []
            for i, c in enumerate(chunk_list):
                ch = Chunk(**{k: c[k] for k in ("rule_id", "part", "section", "title", "kind", "text", "source")})
                if i in extra:
                    ch = Chunk(**{**ch.__dict__, "text": ch.text + "\n" + "\n".join(extra[i])})
                chunks.append(ch)
            bm = build_bm25(chunks)
            self.lex = np.stack([bm.get_scores(bm25_tokens(str(q))) for q in d.queries])

    def fits(self, grouped: bool, dev_repeat=10, folds=5, repeats=2):
        d = self.d
        n = len(d.qv)
        out = []
        plab = [[int(d.chunk_label[c])] for c in self.chunk_of_q] if self.pseudo else []
        pvec = [self.gv] if self.pseudo else []
        for rep in range(repeats):
            perm = np.random.default_rng(100 + rep).permutation(n)
            fold_of = rx._rule_groups(d, folds, 100 + rep) if grouped else np.arange(n)[np.argsort(perm)] % folds
            for f in range(folds):
                held = np.flatnonzero(fold_of == f)
                train = np.setdiff1d(np.arange(n), held)
                labs = d.plabels + plab + [d.gold_sets[i] for i in train] * dev_repeat
                x = np.concatenate([d.pv] + pvec + [d.qv[train]] * dev_repeat).astype(np.float32)
                out.append((rep, held, rx.fit(x, rx.membership(labs, len(d.rules)), d.vectors, d.chunk_label)))
        return out

    def scores(self, qv: np.ndarray, rows: np.ndarray, bm25_w=0.10, scale=10.0) -> np.ndarray:
        d = self.d
        dense = qv @ d.vectors.T
        if self.doc_a > 0 and len(self.gv):
            qd = qv @ self.gv.T  # (n, n_questions)
            best = np.full(dense.shape, -np.inf)
            for j, c in enumerate(self.chunk_of_q):
                best[:, c] = np.maximum(best[:, c], qd[:, j])
            has = np.isfinite(best[0])
            dense[:, has] = (1 - self.doc_a) * dense[:, has] + self.doc_a * best[:, has]
        lex = self.lex[rows]
        rank = np.argsort(np.argsort(-lex, axis=1, kind="stable"), axis=1)
        bonus = bm25_w / (1.0 + rank / scale) * (lex > 0)
        score = (dense + bonus) * d.audience[None, :]
        out = np.full((len(qv), len(d.rules)), -np.inf)
        for ci, lab in enumerate(d.chunk_label):
            out[:, lab] = np.maximum(out[:, lab], score[:, ci])
        return out

    def run(self, fits, weight=0.5) -> dict[int, dict[int, int]]:
        """{shuffle: {row: rank}}."""
        out: dict[int, dict[int, int]] = {}
        for rep, held, w in fits:
            r = rx.ranks(self.d, self.scores(rx.apply(self.d.qv[held], w, weight), held), held)
            out.setdefault(rep, {}).update(dict(zip(held.tolist(), r.tolist())))
        return out


def compare(base: dict, var: dict, covered: set[int] | None = None) -> dict:
    """Pooled rule first / top 3 for both, paired changes, and the per-shuffle differences; with
    ``covered`` (rows whose gold rules all have generated questions) the same on those rows too."""
    if covered is not None:
        res = compare(base, var)
        sub = compare({k: {i: r for i, r in v.items() if i in covered} for k, v in base.items()},
                      {k: {i: r for i, r in v.items() if i in covered} for k, v in var.items()})
        res["covered_items"] = {"n": len(covered), **sub}
        return res
    res = {}
    for name, r in (("before", base), ("after", var)):
        allr = np.array([v for rep in sorted(r) for v in r[rep].values()])
        res[name] = {"rule_first": round(float(np.mean(allr == 1)), 3), "top3": round(float(np.mean(allr <= 3)), 3)}
    diffs1, diffs3 = [], []
    gained = lost = gained3 = lost3 = 0
    for rep in sorted(base):
        b = base[rep]
        v = var[rep]
        rows = sorted(b)
        b1 = np.array([b[i] == 1 for i in rows]); v1 = np.array([v[i] == 1 for i in rows])
        b3 = np.array([b[i] <= 3 for i in rows]); v3 = np.array([v[i] <= 3 for i in rows])
        diffs1.append(int(v1.sum() - b1.sum())); diffs3.append(int(v3.sum() - b3.sum()))
        gained += int((v1 & ~b1).sum()); lost += int((b1 & ~v1).sum())
        gained3 += int((v3 & ~b3).sum()); lost3 += int((b3 & ~v3).sum())
    res["first_diff_per_shuffle"] = diffs1
    res["top3_diff_per_shuffle"] = diffs3
    res["first_gained_lost"] = [gained, lost]
    res["top3_gained_lost"] = [gained3, lost3]
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--raw", type=Path, required=True)
    ap.add_argument("--cache", type=Path, default=rx.CACHE)
    ap.add_argument("--json-out", type=Path)
    ap.add_argument("--schemes", default="grouped,random")
    ap.add_argument("names", nargs="*")
    args = ap.parse_args(argv)
    d = rx.Data(args.cache)
    chunk_list = doc2query.chunks()
    assert [c["rule_id"] for c in chunk_list] == d.chunk_rules.tolist(), "rank cache and index differ"
    pairs, stats = load_generated(args.raw)
    t = time.time()
    gv = embed([q for _, q in pairs], args.raw.parent)
    print(json.dumps(stats), f"embedded in {time.time() - t:.0f} s", file=sys.stderr, flush=True)
    variants = {
        "P": dict(pseudo=True), "P_e10": dict(pseudo=True, emb_top=10), "P_e3": dict(pseudo=True, emb_top=3),
        "D25": dict(doc_a=0.25), "D50": dict(doc_a=0.5), "B": dict(bm25=True),
        "PD25": dict(pseudo=True, doc_a=0.25), "PB": dict(pseudo=True, bm25=True),
        "PD25B": dict(pseudo=True, doc_a=0.25, bm25=True), "D25B": dict(doc_a=0.25, bm25=True),
        "D25_e10": dict(doc_a=0.25, emb_top=10), "PD25B_e10": dict(pseudo=True, doc_a=0.25, bm25=True, emb_top=10),
        "PB_e10": dict(pseudo=True, bm25=True, emb_top=10), "B_e10": dict(bm25=True, emb_top=10),
    }
    names = args.names or list(variants)
    report = {"generation": stats, "results": {}}
    base_v = Variant(d, pairs, gv, chunk_list)
    for scheme in args.schemes.split(","):
        grouped = scheme == "grouped"
        t = time.time()
        base_fits = base_v.fits(grouped)
        base = base_v.run(base_fits)
        print(f"[{scheme}] baseline fits {time.time() - t:.0f} s", file=sys.stderr, flush=True)
        fit_cache = {}
        for name in names:
            t = time.time()
            v = Variant(d, pairs, gv, chunk_list, **variants[name])
            fkey = (v.pseudo, variants[name].get("emb_top", 0))
            if v.pseudo and fkey not in fit_cache:  # PD25B reuses P's fits
                fit_cache[fkey] = v.fits(grouped)
            fits = fit_cache[fkey] if v.pseudo else base_fits
            rules_with = {int(d.chunk_label[c]) for c in v.chunk_of_q}
            covered = {i for i, g in enumerate(d.gold_sets) if g and set(g) <= rules_with}
            res = compare(base, v.run(fits), covered)
            res["questions_used"] = v.n_used
            report["results"][f"{scheme}:{name}"] = res
            print(f"[{scheme}] {name}: {json.dumps(res)} [{time.time() - t:.0f} s]", flush=True)
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
