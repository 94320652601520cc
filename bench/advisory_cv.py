"""Held-out dev figures of the advisory bench when the query adapter learns from dev questions.

    python bench/advisory_cv.py [--folds 5] [--grouped] [--cv-dir DIR] [--json-out FILE]

The adapter (knowledge.adapter_questions) is fitted on the dev questions, so `bench/advisory.py
--split dev` is in-sample for it. This script splits the answerable dev items into folds; for each
fold it writes a copy of the question set in which that fold's items are moved to a split the
adapter does not read, builds an index in a scratch folder with that copy as
``adapter_questions``, runs `bench/advisory.py --split dev --modes extractive --no-speak --rows`
and keeps the rows of the held-out fold only. Unanswerable dev items are scored from the first
fold's run (the adapter does not learn from them). Reads the dev split only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from advisory import summarise  # noqa: E402
from answer_breakdown import fold_rerank  # noqa: E402
import rank_experiments as rx  # noqa: E402

HERE = Path(__file__).parent


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--grouped", action="store_true", help="items sharing a gold rule in one fold")
    ap.add_argument("--seed", type=int, default=100)
    ap.add_argument("--cv-dir", type=Path, help="keep the fold indexes here (shared with answer_breakdown.py)")
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args(argv)
    rows_all = [json.loads(line) for line in rx.QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]
    dev = [r for r in rows_all if r["split"] == "dev" and r["answerable"]]
    n = len(dev)
    if args.grouped:
        d = rx.Data(rx.CACHE)
        assert d.ids.tolist() == [r["id"] for r in dev]
        fold_of = rx._rule_groups(d, args.folds, args.seed)
    else:
        perm = np.random.default_rng(args.seed).permutation(n)
        fold_of = np.arange(n)[np.argsort(perm)] % args.folds
    held_rows: list[dict] = []
    unanswerable: list[dict] = []
    tag = "g" if args.grouped else "r"
    with tempfile.TemporaryDirectory() as tmp:
        fold_dir = args.cv_dir or Path(tmp)
        fold_dir.mkdir(parents=True, exist_ok=True)
        for f in range(args.folds):
            held = {dev[i]["id"] for i in np.flatnonzero(fold_of == f)}
            qfile = fold_dir / f"questions_{tag}{f}.jsonl"
            qfile.write_text("".join(json.dumps({**r, "split": "heldout"} if r["id"] in held else r) + "\n"
                                     for r in rows_all if r["split"] == "dev"), encoding="utf-8")
            out = Path(tmp) / f"fold_{f}.json"
            env = dict(os.environ, VA_KNOWLEDGE__ADAPTER_QUESTIONS=str(qfile),
                       VA_KNOWLEDGE__INDEX_DIR=str(fold_dir / f"index_{tag}{f}"))
            env.update(fold_rerank(fold_dir, f"{tag}{f}"))  # the fold's own re-ranker, else off
            bench_q = Path(tmp) / f"bench_{f}.jsonl"  # the bench reads the original dev labels: the held-out
            # fold's items (and, on the first fold, the unanswerable ones) only, as only those rows are kept
            bench_q.write_text("".join(json.dumps(r) + "\n" for r in rows_all if r["split"] == "dev" and (
                r["id"] in held or (f == 0 and not r["answerable"]))), encoding="utf-8")
            subprocess.run([sys.executable, str(HERE / "advisory.py"), "--questions", str(bench_q), "--split", "dev",
                            "--modes", "extractive", "--no-speak", "--rows", "--json-out", str(out)],
                           env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            report = json.loads(out.read_text(encoding="utf-8"))
            rows = _rows(report)
            held_rows += [r for r in rows if r["id"] in held]
            if f == 0:
                unanswerable = [r for r in rows if not r["answerable"]]
            print(f"fold {f}: {len(held)} held out", file=sys.stderr, flush=True)
    s = summarise(held_rows + unanswerable)
    keep = {k: s[k] for k in ("answerable", "fully_answered", "fact_coverage", "rule_first", "rule_top3",
                              "grounded_rate", "refusal_accuracy", "answerable_refused", "unanswerable_refused")}
    result = {"folds": args.folds, "grouped": args.grouped, "seed": args.seed, "held_out": keep}
    for name, pick in (("held_out_sixth_round_items", lambda r: r["id"].startswith("d")),
                       ("held_out_earlier_items", lambda r: not r["id"].startswith("d"))):
        part = [r for r in held_rows if pick(r)]
        if part:
            sp = summarise(part)
            result[name] = {k: sp[k] for k in ("answerable", "fully_answered", "fact_coverage", "rule_first",
                                                "rule_top3", "answerable_refused")}
    text = json.dumps(result, indent=1)
    print(text)
    if args.json_out:
        args.json_out.write_text(text + "\n", encoding="utf-8")
    return 0


def _rows(report: dict) -> list[dict]:
    """The per-question rows of a bench/advisory.py report (whatever nesting it uses)."""
    found: list[dict] = []

    def walk(x):
        if isinstance(x, dict):
            if "rule_rank" in x or ("answerable" in x and "refused" in x and "id" in x):
                found.append(x)
                return
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)
    walk(report)
    return found


if __name__ == "__main__":
    raise SystemExit(main())
