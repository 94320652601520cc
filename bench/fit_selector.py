"""Cross-validate a learned answer-sentence selector against the hand-set order (dev split only).

    python bench/answer_breakdown.py --cv-dir DIR --grouped --dump DUMP   # candidates + features (bench/selector.py)
    python bench/fit_selector.py --dump DUMP [--c 0.03 0.1 0.3 1 3] [--repeats 3]

Listwise: for each answerable dev question, a softmax over its candidate sentences (every sentence
of the top 3 rules) is fitted towards the sentences that hold its key facts (each weighted by how
many it holds); L2 penalty ``1 / C`` on the standardised weights; scipy L-BFGS, started from the
hand-set score. Questions none of whose candidates hold a fact teach nothing and are skipped.
Scored by 5-fold cross-validation (random folds, repeated; ``--grouped``: folds by shared gold
rule): the share of held-out questions whose top candidate holds the most key facts, beside the
same share for the hand-set order. An experiment: the lane does not use a learned selector.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

sys.path.insert(0, str(Path(__file__).parent))
import selector  # noqa: E402
from common import grouped_folds  # noqa: E402
from advisory import has_fact  # noqa: E402

SCORE = selector.NAMES.index("score")


def lists(dump: list[dict]) -> list[tuple[str, list[str], np.ndarray, np.ndarray]]:
    """(id, gold rules, features, target distribution) per question with a fact-holding candidate."""
    out = []
    for d in dump:
        if d["refused"] or not d["ranked"] or not d["key_facts"]:
            continue
        x = np.array([c["features"] for c in d["ranked"]], dtype=np.float64)
        held = np.array([sum(has_fact(c["text"], f) for f in d["key_facts"]) for c in d["ranked"]], dtype=np.float64)
        if held.sum() == 0:
            continue
        out.append((d["id"], d["rule_ids"], x, held / held.sum()))
    return out


def fit(data, c: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(weights, mean, scale) minimising the mean cross-entropy + ||w||^2 / (2 C)."""
    allx = np.concatenate([x for _, _, x, _ in data])
    mean = allx.mean(axis=0)
    scale = allx.std(axis=0)
    scale[scale < 1e-6] = 1.0
    zs = [((x - mean) / scale, t) for _, _, x, t in data]
    w0 = np.zeros(allx.shape[1])
    w0[SCORE] = 1.0

    def loss(w):
        total, grad = 0.0, np.zeros_like(w)
        for z, t in zs:
            s = z @ w
            s -= s.max()
            p = np.exp(s)
            p /= p.sum()
            total -= float(t @ np.log(p + 1e-12))
            grad += z.T @ (p - t)
        return total / len(zs) + 0.5 / c * float(w @ w), grad / len(zs) + w / c

    res = minimize(loss, w0, jac=True, method="L-BFGS-B", options={"maxiter": 500})
    return res.x, mean, scale


def hits(data, model=None) -> int:
    """Questions whose top candidate holds the most key facts (hand-set order without ``model``)."""
    n = 0
    for _, _, x, t in data:
        s = x[:, SCORE] if model is None else ((x - model[1]) / model[2]) @ model[0]
        n += bool(t[int(np.argmax(s))] >= t.max() - 1e-9)
    return n


def folds_of(data, k: int, seed: int, grouped: bool) -> np.ndarray:
    if grouped:
        return grouped_folds([gold for _, gold, _, _ in data], k, seed)
    rng = np.random.default_rng(seed)
    return np.arange(len(data))[np.argsort(rng.permutation(len(data)))] % k


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dump", type=Path, required=True)
    ap.add_argument("--c", type=float, nargs="+", default=[0.03, 0.1, 0.3, 1.0, 3.0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--grouped", action="store_true")
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args(argv)
    dump = [json.loads(line) for line in args.dump.read_text().splitlines() if line.strip()]
    assert all("features" in c for d in dump for c in d["ranked"]), "dump without features: rerun answer_breakdown"
    data = lists(dump)
    hand = hits(data) / len(data)
    result: dict = {"questions": len(data), "features": len(selector.NAMES), "grouped": args.grouped,
                    "hand_top1": round(hand, 3), "cv_top1": {}}
    for c in args.c:
        got = 0
        for rep in range(args.repeats):
            folds = folds_of(data, 5, 100 + rep, args.grouped)
            for f in range(5):
                train = [d for d, k in zip(data, folds) if k != f]
                test = [d for d, k in zip(data, folds) if k == f]
                got += hits(test, fit(train, c))
        result["cv_top1"][str(c)] = round(got / len(data) / args.repeats, 3)
        print(f"C={c}: held-out top-1 {result['cv_top1'][str(c)]} (hand-set order {hand:.3f})", file=sys.stderr)
    model = fit(data, 0.3)
    result["in_sample_top1_c0.3"] = round(hits(data, model) / len(data), 3)
    result["largest_weights_c0.3"] = {n: round(float(v), 3) for n, v in
                                      sorted(zip(selector.NAMES, model[0]), key=lambda x: -abs(x[1]))[:10]}
    text = json.dumps(result, indent=1)
    print(text)
    if args.json_out:
        args.json_out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
