"""Measurement only (issue 15, ninth round; docs/knowledge.md "doc2query"): with VA_D2Q_BM25=FILE
(the output of ``bench/doc2query.py filter``) every process started with this folder first on
PYTHONPATH builds its in-memory BM25 over each chunk's text plus that chunk's generated questions;
the index files, the dense vectors and the adapter are unchanged. Not part of the product.

    PYTHONPATH=bench/d2q_patch:$PWD VA_D2Q_BM25=FILE python bench/advisory_cv.py --grouped --cv-dir DIR
"""
import json, os, dataclasses
p = os.environ.get("VA_D2Q_BM25")
if p:
    from vehicle_assist.knowledge import index as _ix
    _orig = _ix.build_bm25
    _q = {}
    for line in open(p, encoding="utf-8"):
        if line.strip():
            r = json.loads(line)
            _q[(r["rule_id"], r["part"])] = r["questions"]
    def build_bm25(chunks):
        out = [dataclasses.replace(c, text=c.text + "\n" + "\n".join(_q[(c.rule_id, c.part)]))
               if _q.get((c.rule_id, c.part)) else c for c in chunks]
        return _orig(out)
    _ix.build_bm25 = build_bm25
