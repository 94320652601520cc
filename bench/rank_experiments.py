"""Rule-ranking experiments on the dev split (issue 15, fourth round), from cached vectors.

    python bench/rank_experiments.py cache            # embed dev queries + pseudo-queries once (-> --cache)
    python bench/rank_experiments.py run [NAMES...]   # score the variants (rule first / top 3 on dev)

Only the dev split is ever read (the test split's texts are filtered out on loading). Every
variant that trains on dev questions is scored by k-fold cross-validation over the dev items
(train on the other folds + the pseudo-queries, score the held-out fold), repeated over shuffles.
Scoring replicates ``Retriever._score_fusion`` (dense with the adapted vector + rank-based BM25
bonus, audience factor, a rule scores as its best chunk).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from vehicle_assist import paths

QUESTIONS = paths.home() / "bench" / "data" / "questions.jsonl"
CACHE = Path(os.environ.get("VA_RANK_CACHE", "/tmp/va_rank_cache.npz"))  # several workers share /tmp


def dev_items() -> list[dict]:
    rows = [json.loads(line) for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in rows if r["split"] == "dev" and r["answerable"]]


def make_cache(path: Path) -> None:
    from vehicle_assist.config import load_app
    from vehicle_assist.knowledge import adapter
    from vehicle_assist.knowledge.normalize import bm25_tokens, normalize
    from vehicle_assist.knowledge.retrieve import Retriever, scene_query
    from vehicle_assist.messages import Scene

    app = load_app()
    r = Retriever.load(app.knowledge, progress=False, threads=1)
    items = dev_items()
    queries = []
    for it in items:
        parts = [it["question"].strip()] if it["question"] else []
        if it.get("scene"):
            parts.append(scene_query(Scene(**it["scene"]), r.terms))
        queries.append(normalize(". ".join(parts), r.terms))
    qv = r.encoder.encode(queries, parallel=True)
    lex = np.stack([r.index.bm25.get_scores(bm25_tokens(q)) for q in queries])
    import re

    skip = re.compile(app.knowledge.exclude_ids) if app.knowledge.exclude_ids else None
    indexed = [rec for rec in r.index.records.values() if not (skip and skip.search(rec.id))]
    ptexts, pids = adapter.pseudo_queries(indexed)
    pv = r.encoder.encode(ptexts, parallel=True)
    np.savez(path, qv=qv, lex=lex, vectors=r.vectors, audience=r.audience, matrix=r.index.adapter,
             chunk_rules=np.array([c.rule_id for c in r.index.chunks]), pv=pv, pids=np.array(pids),
             ptexts=np.array(ptexts), queries=np.array(queries), ids=np.array([it["id"] for it in items]),
             gold=np.array(["|".join(it["rule_ids"]) for it in items]),
             kinds=np.array([it["kind"] for it in items]))
    print(f"cached {len(items)} dev items, {len(ptexts)} pseudo-queries -> {path}", file=sys.stderr)


class Data:
    def __init__(self, path: Path) -> None:
        z = np.load(path, allow_pickle=False)
        self.__dict__.update({k: z[k] for k in z.files})
        self.rules = list(dict.fromkeys(self.chunk_rules.tolist()))
        self.rule_index = {r: i for i, r in enumerate(self.rules)}
        self.chunk_label = np.array([self.rule_index[r] for r in self.chunk_rules], dtype=np.int64)
        self.gold_sets = [[self.rule_index[g] for g in s.split("|") if g in self.rule_index] for s in self.gold]
        self.plabels = [[self.rule_index[p]] for p in self.pids]


def membership(label_sets: list[list[int]], n_rules: int) -> np.ndarray:
    m = np.zeros((len(label_sets), n_rules), dtype=bool)
    for i, s in enumerate(label_sets):
        m[i, s] = True
    return m


def fit(x_all: np.ndarray, member: np.ndarray, c: np.ndarray, chunk_label: np.ndarray, epochs=5,
        sample_weight=None, **kw) -> np.ndarray:
    """``adapter.fit`` with label sets (several gold rules), 5 epochs unless told, optional per-query weights."""
    from vehicle_assist.knowledge import adapter

    return adapter.fit(x_all, member, c, chunk_label, epochs=epochs, sample_weight=sample_weight, **kw)


def apply(q: np.ndarray, w: np.ndarray | None, weight: float) -> np.ndarray:
    if w is None or weight <= 0:
        return q
    a = q + q @ w
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    return (1 - weight) * q + weight * a


def rule_scores(d: Data, qv: np.ndarray, lex: np.ndarray, bm25_w=0.15, scale=10.0) -> np.ndarray:
    """(n_items, n_rules): fused score of each rule's best chunk (as Retriever._score_fusion)."""
    dense = qv @ d.vectors.T
    rank = np.argsort(np.argsort(-lex, axis=1, kind="stable"), axis=1)
    bonus = bm25_w / (1.0 + rank / scale) * (lex > 0)
    score = (dense + bonus) * d.audience[None, :]
    out = np.full((len(qv), len(d.rules)), -np.inf, dtype=np.float64)
    for ci, lab in enumerate(d.chunk_label):
        out[:, lab] = np.maximum(out[:, lab], score[:, ci])
    return out


def ranks(d: Data, scores: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Rank (1-based) of the best gold rule for each row."""
    out = []
    for s, i in zip(scores, rows):
        gold = d.gold_sets[i]
        best = max(s[g] for g in gold) if gold else -np.inf
        out.append(int((s > best).sum()) + 1)
    return np.array(out)


def summary(r: np.ndarray) -> str:
    return f"rule first {np.mean(r == 1):.3f} top3 {np.mean(r <= 3):.3f} top5 {np.mean(r <= 5):.3f} (n={len(r)})"


def cv_adapter(d: Data, dev_weight=1.0, dev_repeat=1, epochs=5, l2=0.1, weight=0.75, pseudo=True,
               folds=5, repeats=2, extra=None, grouped=False) -> np.ndarray:
    """Pooled held-out ranks: for each shuffle and fold, fit on pseudo-queries (+ ``extra`` (vectors,
    label sets)) + the other folds' dev items (weighted ``dev_weight``, repeated ``dev_repeat``), score the fold."""
    n = len(d.qv)
    n_rules = len(d.rules)
    out = []
    for rep in range(repeats):
        perm = np.random.default_rng(100 + rep).permutation(n)
        fold_of = np.arange(n)[np.argsort(perm)] % folds
        if grouped:  # items sharing a gold rule land in one fold: held-out rules unseen in training
            fold_of = _rule_groups(d, folds, 100 + rep)
        for f in range(folds):
            held = np.flatnonzero(fold_of == f)
            train = np.setdiff1d(np.arange(n), held)
            xs, labs, ws = [], [], []
            if pseudo:
                xs.append(d.pv); labs += d.plabels; ws.append(np.ones(len(d.pv)))
            if extra is not None:
                xs.append(extra[0]); labs += extra[1]; ws.append(np.ones(len(extra[0])))
            for _ in range(dev_repeat):
                xs.append(d.qv[train]); labs += [d.gold_sets[i] for i in train]; ws.append(np.full(len(train), dev_weight))
            x = np.concatenate(xs).astype(np.float32)
            w = fit(x, membership(labs, n_rules), d.vectors, d.chunk_label, l2=l2, epochs=epochs,
                    sample_weight=np.concatenate(ws))
            out.append(ranks(d, rule_scores(d, apply(d.qv[held], w, weight), d.lex[held]), held))
    return np.concatenate(out)


def cv_fits(d: Data, dev_repeat=10, folds=5, repeats=2, grouped=False, train_prefixes: tuple[str, ...] | None = None,
            **kw) -> list[tuple[np.ndarray, np.ndarray]]:
    """[(held-out rows, W fitted without them)] for every shuffle and fold (as cv_adapter); with
    ``train_prefixes`` only the training folds' items whose id starts with one of them are fitted on
    (the folds stay the same)."""
    n = len(d.qv)
    out = []
    for rep in range(repeats):
        perm = np.random.default_rng(100 + rep).permutation(n)
        fold_of = _rule_groups(d, folds, 100 + rep) if grouped else np.arange(n)[np.argsort(perm)] % folds
        for f in range(folds):
            held = np.flatnonzero(fold_of == f)
            train = np.setdiff1d(np.arange(n), held)
            if train_prefixes is not None:
                train = np.array([i for i in train if str(d.ids[i]).startswith(train_prefixes)], dtype=int)
            labs = d.plabels + [d.gold_sets[i] for i in train] * dev_repeat
            x = np.concatenate([d.pv] + [d.qv[train]] * dev_repeat).astype(np.float32)
            out.append((held, fit(x, membership(labs, len(d.rules)), d.vectors, d.chunk_label, **kw)))
    return out


def cv_trained_on(d: Data, train_prefixes: tuple[str, ...] | None = None, weight=0.5, bm25_w=0.10, grouped=True,
                  **kw) -> tuple[np.ndarray, np.ndarray]:
    """(held-out rows, their ranks) pooled over shuffles and folds (``cv_fits``), scored with the
    configured fusion (adapter weight 0.5, BM25 bonus 0.10). The folds are the same whatever is trained
    on, so two calls score the same held-out items: e.g. the dev set before the sixth round (ids q/s/x)
    against all of it."""
    fits = cv_fits(d, grouped=grouped, train_prefixes=train_prefixes, **kw)
    rows = np.concatenate([h for h, _ in fits])
    r = np.concatenate([ranks(d, rule_scores(d, apply(d.qv[h], w, weight), d.lex[h], bm25_w), h) for h, w in fits])
    return rows, r


def by_part(d: Data, rows_ranks: tuple[np.ndarray, np.ndarray], new_prefix: str = "d") -> np.ndarray:
    """Print held-out rule first / top 3 for the items before the sixth round and the new ones (ids
    starting with ``new_prefix``); return all ranks."""
    rows, r = rows_ranks
    new = np.array([str(d.ids[i]).startswith(new_prefix) for i in rows])
    print(f"    earlier dev items: {summary(r[~new])}; new items ({new_prefix}...): {summary(r[new])}")
    return r


OLD_DEV = ("q", "s", "x")  # the dev items before issue 15's sixth round (ids q.., s.., xq..)


def fusion_grid(d: Data, fits) -> None:
    """Held-out rule first / top 3 over a grid of adapter weight x BM25 bonus x rank scale x audience."""
    base_aud = d.audience.copy()
    res = []
    for weight in (0.5, 0.75, 1.0):
        for bw in (0.05, 0.1, 0.15, 0.2, 0.3):
            for scale in (5.0, 10.0, 20.0):
                for aud in (0.7, 0.8, 0.9):
                    d.audience = np.where(base_aud < 1, aud, 1.0).astype(np.float32)
                    r = np.concatenate([ranks(d, rule_scores(d, apply(d.qv[h], w, weight), d.lex[h], bw, scale), h)
                                        for h, w in fits])
                    res.append((np.mean(r == 1), np.mean(r <= 3), weight, bw, scale, aud))
    d.audience = base_aud
    for row in sorted(res, reverse=True)[:12]:
        print("  first %.3f top3 %.3f | weight %.2f bm25 %.2f scale %.0f audience %.1f" % row)
    for key in [(0.75, 0.15, 10.0, 0.8), (0.75, 0.1, 10.0, 0.8), (0.5, 0.1, 10.0, 0.8), (0.5, 0.15, 10.0, 0.8),
                (1.0, 0.1, 10.0, 0.8), (0.75, 0.1, 10.0, 0.7), (0.5, 0.1, 10.0, 0.7)]:
        row = [x for x in res if x[2:] == key][0]
        print("  weight %.2f bm25 %.2f scale %.0f audience %.1f: first %.3f top3 %.3f" % (key + row[:2]))


def _rule_groups(d: Data, folds: int, seed: int) -> np.ndarray:
    """Fold per item such that items linked by a shared gold rule share a fold (union-find)."""
    from common import grouped_folds  # bench/common.py

    return grouped_folds(d.gold_sets, folds, seed)


def _pseudo_only(d: Data, **kw) -> np.ndarray:
    x = d.pv.astype(np.float32)
    w = fit(x, membership(d.plabels, len(d.rules)), d.vectors, d.chunk_label, **kw)
    return w


TEMPLATES = ("what should i do about {t}", "what are the rules on {t}", "can i {t}", "how do i deal with {t}")


def template_extra(d: Data, path: Path = Path("/tmp/va_rank_templates.npz")):
    """Question-style templates over each indexed rule's title (and "section title"), embedded once."""
    if not path.is_file():
        from vehicle_assist.config import load_app
        from vehicle_assist.knowledge.retrieve import Retriever

        r = Retriever.load(load_app().knowledge, progress=False, threads=1)
        texts, labels = [], []
        for rid in d.rules:
            rec = r.index.records[rid]
            for title in dict.fromkeys([rec.title.lower(), f"{rec.section} {rec.title}".lower()]):
                for t in TEMPLATES:
                    texts.append(t.format(t=title.strip(" .")))
                    labels.append(rid)
        np.savez(path, v=r.encoder.encode(texts, parallel=True), labels=np.array(labels))
    z = np.load(path)
    return z["v"], [[d.rule_index[x]] for x in z["labels"]]


EXPERIMENTS = {
    "refit": lambda d: ranks(d, rule_scores(d, apply(d.qv, _pseudo_only(d), 0.75), d.lex), np.arange(len(d.qv))),
    "cv_dev1": lambda d: cv_adapter(d),
    "cv_dev_w5": lambda d: cv_adapter(d, dev_weight=5.0),
    "cv_dev_r5": lambda d: cv_adapter(d, dev_repeat=5),
    "cv_dev_r10": lambda d: cv_adapter(d, dev_repeat=10),
    "cv_dev_r10_w1": lambda d: cv_adapter(d, dev_repeat=10, weight=1.0),
    "cv_dev_r20": lambda d: cv_adapter(d, dev_repeat=20),
    "g_cv_dev_r10": lambda d: cv_adapter(d, dev_repeat=10, grouped=True),
    "g_cv_dev_r20": lambda d: cv_adapter(d, dev_repeat=20, grouped=True),
    "g_cv_pseudo": lambda d: cv_adapter(d, dev_repeat=0, grouped=True, repeats=1),
    "grid_cv": lambda d: fusion_grid(d, cv_fits(d)) or np.array([1]),
    "grid_gcv": lambda d: fusion_grid(d, cv_fits(d, grouped=True)) or np.array([1]),
    "cv_templates": lambda d: cv_adapter(d, dev_repeat=10, extra=template_extra(d)),
    "g_cv_templates": lambda d: cv_adapter(d, dev_repeat=10, extra=template_extra(d), grouped=True),
    "templates_only": lambda d: cv_adapter(d, dev_repeat=0, extra=template_extra(d), repeats=1),
    "cv_devonly_r10": lambda d: cv_adapter(d, dev_repeat=10, pseudo=False),
    # sixth round: the now-configured fusion (weight 0.5, BM25 0.10), rule-grouped folds, split by old / new items
    "g6_pseudo": lambda d: by_part(d, cv_trained_on(d, dev_repeat=0)),
    "g6_old_only": lambda d: by_part(d, cv_trained_on(d, OLD_DEV)),
    "g6_all": lambda d: by_part(d, cv_trained_on(d)),
    "g6_all_r1": lambda d: by_part(d, cv_trained_on(d, dev_repeat=1)),
    "g6_all_r3": lambda d: by_part(d, cv_trained_on(d, dev_repeat=3)),
    "g6_all_r5": lambda d: by_part(d, cv_trained_on(d, dev_repeat=5)),
    "g6_all_r20": lambda d: by_part(d, cv_trained_on(d, dev_repeat=20)),
    "g6_all_w075": lambda d: by_part(d, cv_trained_on(d, weight=0.75)),
    "g6_all_w1": lambda d: by_part(d, cv_trained_on(d, weight=1.0)),
    "r6_old_only": lambda d: by_part(d, cv_trained_on(d, OLD_DEV, grouped=False)),
    "r6_all": lambda d: by_part(d, cv_trained_on(d, grouped=False)),
    "g6_all_e10": lambda d: by_part(d, cv_trained_on(d, epochs=10)),
    "r6_all_e10": lambda d: by_part(d, cv_trained_on(d, epochs=10, grouped=False)),
    "r6_pseudo": lambda d: by_part(d, cv_trained_on(d, dev_repeat=0, grouped=False)),
    "r6_all_r3": lambda d: by_part(d, cv_trained_on(d, dev_repeat=3, grouped=False)),
    "r6_all_w075": lambda d: by_part(d, cv_trained_on(d, weight=0.75, grouped=False)),
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["cache", "run"])
    ap.add_argument("names", nargs="*")
    ap.add_argument("--cache", type=Path, default=CACHE)
    args = ap.parse_args(argv)
    if args.what == "cache":
        make_cache(args.cache)
        return 0
    d = Data(args.cache)
    n = len(d.qv)
    rows = np.arange(n)
    t = time.time()
    base = ranks(d, rule_scores(d, apply(d.qv, d.matrix, 0.75), d.lex), rows)
    print("shipped adapter (0.75):", summary(base), f"{time.time() - t:.1f}s")
    print("no adapter:", summary(ranks(d, rule_scores(d, d.qv, d.lex), rows)))
    for name in args.names:
        t = time.time()
        r = EXPERIMENTS[name](d)
        print(f"{name}: {summary(r)} [{time.time() - t:.0f}s]", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
