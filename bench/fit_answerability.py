"""Fit the answerability model on the DEV split only and write vehicle_assist/knowledge/answerability.yaml.

    python bench/fit_answerability.py [--max-false-reject 0.04] [--dry-run] [--sweep 0.01,0.02,0.03] [--oof FILE]

Features per dev question (kind "question"): the normalised query's embedding and the scalar
features of answerability.FEATURES. Logistic regression (scikit-learn, only here: the runtime uses
the stored weights with numpy). The regularisation C is chosen by repeated stratified 5-fold
cross-validation on dev (scored as deployed: the out-of-scope table rejects beside the model); the
probability threshold is the one at which the out-of-fold predictions
reject at most ``--max-false-reject`` of the dev answerable questions. The final model is fitted on
all of dev. The test split is never read. JSON report on stdout. ``--sweep`` adds the cross-validated
operating curve (rejection against false rejection, every C); ``--oof`` writes the out-of-fold
probabilities for ``bench/refusal_paths.py``, which adds the lane's other refusal paths.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from vehicle_assist.config import load_app
from vehicle_assist.knowledge import answerability
from vehicle_assist.knowledge.retrieve import Retriever

sys.path.insert(0, str(Path(__file__).parent))
from retrieval import load_items

GRID = (0.3, 1.0, 3.0, 10.0)
REPEATS = 8


def dev_features(retriever: Retriever) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(query vectors, scalar features, labels, out-of-scope table matches) of the dev questions."""
    rows = [it for it in load_items() if it["split"] == "dev" and it["kind"] == "question"]
    vecs, feats, labels, scope = [], [], [], []
    for it in rows:
        r = retriever.search(it["question"])
        vecs.append(retriever.encoder.encode([r.normalized])[0])
        feats.append(r.features)
        labels.append(int(it["answerable"]))
        scope.append(r.reason.startswith("out-of-scope"))
    return np.array(vecs), np.array(feats), np.array(labels), np.array(scope)


def _threshold(p: np.ndarray, y: np.ndarray, max_false_reject: float) -> float:
    ok = np.sort(p[y == 1])
    return float(ok[int(np.floor(max_false_reject * len(ok)))]) - 1e-9


def oof_probabilities(x: np.ndarray, y: np.ndarray, c: float) -> list[np.ndarray]:
    """Out-of-fold P(answerable) of every dev question for one C, one array per shuffle (REPEATS)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    out = []
    for rep in range(REPEATS):
        p = np.zeros(len(y))
        for tr, te in StratifiedKFold(5, shuffle=True, random_state=rep).split(x, y):
            m = LogisticRegression(C=c, max_iter=5000, class_weight="balanced").fit(x[tr], y[tr])
            p[te] = m.predict_proba(x[te])[:, 1]
        out.append(p)
    return out


def cross_validate(x: np.ndarray, y: np.ndarray, scope: np.ndarray, c: float, max_false_reject: float,
                   probs: list[np.ndarray] | None = None) -> dict:
    """Out-of-fold rejection figures for one C, averaged over REPEATS shuffles: the model alone, and
    as deployed (the out-of-scope table rejects too). ``probs``: the shuffles' out-of-fold
    probabilities when already computed (oof_probabilities)."""
    rejected, false_rejected, thresholds, alone = [], [], [], []
    for p in probs if probs is not None else oof_probabilities(x, y, c):
        thr = _threshold(p, y, max_false_reject)
        thresholds.append(thr)
        reject = (p < thr) | scope
        alone.append(float(np.mean(p[y == 0] < thr)))
        rejected.append(float(np.mean(reject[y == 0])))
        false_rejected.append(float(np.mean(reject[y == 1])))
    return {"C": c, "max_false_reject": max_false_reject,
            "cv_unanswerable_rejected": round(float(np.mean(rejected)), 4),
            "cv_model_alone_rejected": round(float(np.mean(alone)), 4),
            "cv_answerable_false_rejected": round(float(np.mean(false_rejected)), 4),
            "threshold": float(np.median(thresholds))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--max-false-reject", type=float, default=0.04,
                    help="Share of dev answerable questions the threshold may reject (out of fold).")
    ap.add_argument("--dry-run", action="store_true", help="Report only; do not write answerability.yaml.")
    ap.add_argument("--sweep", default="", help="comma list of --max-false-reject values: report the cross-validated "
                    "operating curve for every C (the model is fitted at --max-false-reject)")
    ap.add_argument("--oof", type=Path, help="write each dev question's out-of-fold P(answerable) (chosen C, one per "
                    "shuffle), its label and scope match as JSON lines (bench/refusal_paths.py combines them with the "
                    "lane's other refusals)")
    args = ap.parse_args(argv)
    from sklearn.linear_model import LogisticRegression

    settings = load_app().knowledge.model_copy(update={"answerability": "threshold"})
    retriever = Retriever.load(settings, progress=False)
    vecs, feats, y, scope = dev_features(retriever)
    x = np.hstack([vecs, feats])
    probs = {c: oof_probabilities(x, y, c) for c in GRID}
    results = [cross_validate(x, y, scope, c, args.max_false_reject, probs[c]) for c in GRID]
    best = max(results, key=lambda r: (r["cv_unanswerable_rejected"], -r["cv_answerable_false_rejected"]))
    final = LogisticRegression(C=best["C"], max_iter=5000, class_weight="balanced").fit(x, y)
    w = final.coef_[0]
    info = {"fitted_on": "dev", "n_answerable": int(y.sum()), "n_unanswerable": int((1 - y).sum()),
            "max_false_reject": args.max_false_reject, **{k: v for k, v in best.items() if k != "threshold"},
            "grid": [{k: v for k, v in r.items() if k not in ("threshold", "max_false_reject")} for r in results]}
    model = answerability.AnswerModel(retriever.index.model_id, w[: vecs.shape[1]].astype(np.float32),
                                      w[vecs.shape[1]:], float(final.intercept_[0]), best["threshold"], info)
    if not args.dry_run:
        answerability.save(model)
    if args.sweep:
        info["sweep"] = [{k: (round(v, 4) if k == "threshold" else v) for k, v in
                          cross_validate(x, y, scope, c, float(m), probs[c]).items()}
                         for c in GRID for m in args.sweep.split(",")]
    if args.oof:
        rows = [it for it in load_items() if it["split"] == "dev" and it["kind"] == "question"]
        p = probs[best["C"]]
        args.oof.write_text("".join(json.dumps({"id": it["id"], "answerable": bool(y[i]), "scope": bool(scope[i]),
                                                "p": [round(float(ps[i]), 5) for ps in p]}) + "\n"
                                    for i, it in enumerate(rows)), encoding="utf-8")
    report = {"written": None if args.dry_run else str(answerability.MODEL_PATH), "threshold": best["threshold"],
              "feature_weights": dict(zip(answerability.FEATURES, map(float, w[vecs.shape[1]:]))), **info}
    print(json.dumps(report, indent=1))
    print(f"C={best['C']}: dev cross-validated rejection {best['cv_unanswerable_rejected']:.2f} "
          f"(model alone {best['cv_model_alone_rejected']:.2f}), false rejection "
          f"{best['cv_answerable_false_rejected']:.3f}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
