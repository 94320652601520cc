"""Answer selection measured end to end on held-out candidates (issue 15, seventh round; dev only).

    python bench/answer_breakdown.py --cv-dir DIR [--grouped] --dump DUMP   # held-out candidates
    python bench/selector_replay.py --dump DUMP [--grouped] [--k 12] [--json-out FILE]

``bench/fit_selector.py`` scores a selector by whether its top sentence holds the most key facts;
the lane then adds a runner-up (same rule, or a cue-completing one from another top rule) and, for
number questions, a structured fact. This script replays that answer offline from the dump
(``extractive.answer`` on the dumped candidates with the configured settings, plus the fact step;
it first checks that the replay gives the dumped answers) and scores by **fully answered**:

- ``oracle``: for how many questions some candidate among the first ``k``, said as the best
  sentence, would give a fully answered reply (the head room of any selector);
- ``listwise``: the linear selector of bench/selector.py's features, fitted listwise towards the
  candidates whose answer would be complete (fact share when none), its top candidate said first;
- ``switch``: a logistic model over (candidate, candidate - hand-set best) pairs that moves a
  candidate first only when its probability of completing an answer the hand-set best does not is
  above a threshold;
- ``mix``: the hand-set score's own parameters (semantic weight, cue weight, rank prior) on a grid,
  chosen on the training folds.

Every learned variant is scored by 5-fold cross-validation over questions (random, or with
``--grouped`` rule-grouped folds), 3 repeats. An experiment: the lane keeps the hand-set order.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import fit_selector as fs  # noqa: E402
from advisory import has_fact  # noqa: E402
from common import emit_json  # noqa: E402

from vehicle_assist.advisory import cues as cue_table  # noqa: E402
from vehicle_assist.advisory import extractive, facts, validate  # noqa: E402
from vehicle_assist.advisory.text import Sentence, shorten  # noqa: E402
from vehicle_assist.config import load_app  # noqa: E402


class Replay:
    """The lane's extractive answer from one dumped item's candidates (vehicle_assist/advisory/run.py's ``_answer``)."""

    def __init__(self) -> None:
        from vehicle_assist.knowledge.retrieve import Retriever

        cfg = load_app()
        self.s = cfg.advisory
        self.passages = Retriever.load(cfg.knowledge, progress=False, threads=1).passages_by_id

    def text(self, d: dict, scores: list[float] | None = None, first: int = 0) -> str:
        ranked = [extractive.Scored(Sentence(c["pid"], c["index"], c["text"], c["group"], c["joined"]),
                                    c["score"] if scores is None else scores[i], c["lexical"], c["similarity"])
                  for i, c in enumerate(d["ranked"])]
        if scores is not None:
            ranked.sort(key=lambda r: -r.score)
        if first:
            ranked = [ranked[first]] + ranked[:first] + ranked[first + 1:]
        s, q = self.s, d["question"] or ""
        ex = extractive.answer(q, [], None, s.max_answer_words, ranked=ranked, sentences=s.extractive_sentences,
                               asked=q, complete=s.complete_window, redundancy=s.redundancy, tries=s.second_tries)
        ps = [self.passages[i] for i in d["passages"] if i in self.passages]
        fact = facts.best(q, ps, min_score=s.facts_min_score) if s.facts != "off" else None
        if fact is None or (not fact.row and ex is not None and validate.quantities(ex.text)):
            return ex.text if ex else ""
        said = shorten(facts.spoken(fact, q), s.max_answer_words)
        if s.facts == "with_sentence" and ex is not None:
            head = ex.text if len(ex.text.split()) <= s.max_answer_words else ""
            if head and fact.text not in ex.sentence and len(said.split()) + len(head.split()) <= s.max_answer_words + 8:
                return f"{said} {head}"
        return said

    @staticmethod
    def share(d: dict, text: str) -> float:
        return sum(has_fact(text, f) for f in d["key_facts"]) / max(1, len(d["key_facts"]))


def rescore(d: dict, alpha: float, cue_weight: float, rank_weight: tuple) -> list[float]:
    """The hand-set score (extractive.rank_sentences, a question's terms) with other parameters."""
    wanted = cue_table.active(d["question"] or "")
    rw = lambda pid: rank_weight[min(d["passages"].index(pid), len(rank_weight) - 1)]  # noqa: E731
    old = lambda pid: extractive.RANK_WEIGHT[min(d["passages"].index(pid), len(extractive.RANK_WEIGHT) - 1)]  # noqa: E731
    raw = [c["lexical"] / old(c["pid"]) for c in d["ranked"]]
    top = max(raw) or 1.0
    out = []
    for c, lx in zip(d["ranked"], raw):
        sim = c["similarity"]
        mix = (1 - alpha) * lx / top + alpha * max(sim, 0.0) if sim is not None else lx / top
        bonus = cue_weight * cue_table.matches(c["text"], wanted) if wanted and cue_weight else 0.0
        out.append(mix * rw(c["pid"]) + bonus - 0.002 * c["index"])
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dump", type=Path, required=True)
    ap.add_argument("--grouped", action="store_true")
    ap.add_argument("--k", type=int, default=12, help="candidates a selector may put first")
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args(argv)
    from sklearn.linear_model import LogisticRegression

    dump = [json.loads(x) for x in args.dump.read_text().splitlines() if x.strip()]
    dump = [d for d in dump if not d["refused"] and d["ranked"]]
    rp = Replay()
    same = sum((rp.share(d, rp.text(d)) >= 1.0) == d["facts_ok"] for d in dump)
    ok = [np.array([rp.share(d, rp.text(d, first=i)) for i in range(min(args.k, len(d["ranked"])))]) for d in dump]
    xs = [np.array([c["features"] for c in d["ranked"][:len(o)]], dtype=np.float64) for d, o in zip(dump, ok)]
    hand = int(sum(o[0] >= 1.0 for o in ok))
    first_full = [next((i for i, v in enumerate(o) if v >= 1.0), None) for o in ok]
    out: dict = {"dump": str(args.dump), "grouped": args.grouped, "questions": len(dump), "replay_agrees": same,
                 "hand_fully": hand, "oracle_fully": int(sum(f is not None for f in first_full)),
                 "oracle_first_full_at": {str(i): first_full.count(i) for i in range(args.k)}}
    folds = [fs.folds_of([(0, d["rule_ids"], 0, 0) for d in dump], 5, 100 + rep, args.grouped) for rep in range(3)]

    def cv(fit_pick) -> list[int]:
        """Held-out fully answered per repeat; ``fit_pick(train idx) -> pick(question idx) -> candidate``."""
        got = []
        for fold_of in folds:
            n = 0
            for f in range(5):
                pick = fit_pick([i for i in range(len(dump)) if fold_of[i] != f])
                n += sum(ok[i][pick(i)] >= 1.0 for i in range(len(dump)) if fold_of[i] == f)
            got.append(int(n))
        return got

    def target(o):
        full = (o >= 1.0).astype(float)
        return full / full.sum() if full.sum() else (o / o.sum() if o.sum() else None)

    out["listwise"] = {}
    for c in (0.03, 0.1, 0.3, 1.0, 3.0, 10.0):
        def fit_pick(tr, c=c):
            model = fs.fit([(0, 0, xs[i], target(ok[i])) for i in tr if target(ok[i]) is not None], c)
            return lambda i: int(np.argmax(((xs[i] - model[1]) / model[2]) @ model[0]))
        out["listwise"][str(c)] = cv(fit_pick)
        print(f"listwise C={c}: {out['listwise'][str(c)]} (hand {hand})", file=sys.stderr, flush=True)

    def pairs(x):
        return np.hstack([x[1:], x[1:] - x[:1], np.arange(1, len(x))[:, None] / 10.0])
    out["switch"] = {}
    for c in (0.01, 0.1, 1.0):
        for tau in (0.3, 0.5, 0.7):
            def fit_pick(tr, c=c, tau=tau):
                keep = [i for i in tr if len(xs[i]) > 1]
                x = np.vstack([pairs(xs[i]) for i in keep])
                y = np.concatenate([((ok[i][1:] >= 1.0) & (ok[i][0] < 1.0)).astype(int) for i in keep])
                mu, sd = x.mean(0), x.std(0)
                sd[sd < 1e-9] = 1.0
                m = LogisticRegression(C=c, max_iter=3000).fit((x - mu) / sd, y)

                def pick(i):
                    if len(xs[i]) < 2:
                        return 0
                    p = m.predict_proba((pairs(xs[i]) - mu) / sd)[:, 1]
                    j = int(np.argmax(p))
                    return j + 1 if p[j] > tau else 0
                return pick
            out["switch"][f"C{c}_tau{tau}"] = cv(fit_pick)
        print(f"switch C={c}: {[out['switch'][f'C{c}_tau{t}'] for t in (0.3, 0.5, 0.7)]}", file=sys.stderr, flush=True)

    grid = list(itertools.product((0.7, 0.8, 0.85, 0.9, 1.0), (0.0, 0.05, 0.1, 0.2),
                                  ((1.0, 0.8, 0.65), (1.0, 0.9, 0.8), (1.0, 0.7, 0.5), (1.0, 1.0, 1.0), (1.0, 0.6, 0.4))))
    full = np.zeros((len(dump), len(grid)), dtype=bool)
    for qi, d in enumerate(dump):
        for gi, (a, cw, rw) in enumerate(grid):
            scores = rescore(d, a, cw, rw) if d["question"] else None
            full[qi, gi] = rp.share(d, rp.text(d, scores)) >= 1.0
    current = grid.index((0.85, 0.1, (1.0, 0.8, 0.65)))
    got = []
    for fold_of in folds:
        n = 0
        for f in range(5):
            tr = fold_of != f
            best = int(np.argmax(full[tr].sum(0) + 1e-3 * (np.arange(len(grid)) == current)))
            n += int(full[~tr, best].sum())
        got.append(n)
    out["mix"] = {"current_in_sample": int(full[:, current].sum()), "best_in_sample": int(full.sum(0).max()),
                  "best_in_sample_at": str(grid[int(full.sum(0).argmax())]), "cv_chosen_on_train": got}
    emit_json(out, args.json_out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
