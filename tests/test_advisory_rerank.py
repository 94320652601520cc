"""The rule re-ranker's pure parts (bench/rerank.py, an experiment outside the runtime package): features, the stored table, the order it gives.
The fitted model is not in use (no dev gain, docs/advisory.md); these keep the experiment re-runnable."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import rerank  # noqa: E402
from vehicle_assist.messages import Passage

P = (Passage("126", "General", "Stopping distances", "Leave at least a two-second gap. Double it on wet roads.", 0.6),
     Passage("annex-5-penalties#penalty-table", "Annex 5. Penalties", "Penalty table",
             "Speeding brings penalty points and a fine.", 0.5),
     Passage("124", "General", "Speed limits", "Cars on motorways: 70 mph.", 0.4))


def vectors(texts):
    """A deterministic stand-in embedding (isolation): bag of letters, unit length."""
    out = np.zeros((len(texts), 26))
    for i, t in enumerate(texts):
        for ch in t.lower():
            if "a" <= ch <= "z":
                out[i, ord(ch) - 97] += 1
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def test_features_describe_each_candidate():
    q = "how fast can a car go on the motorway"
    x = rerank.features(q, P, vectors([q])[0], vectors)
    assert x.shape == (3, len(rerank.FEATURES))
    col = dict(zip(rerank.FEATURES, x.T))
    assert list(col["inv_rank"]) == [1.0, 0.5, 1 / 3]
    assert list(col["section_kind"]) == [0.0, 1.0, 0.0]       # the annex is not a numbered rule
    assert col["number_fit"][2] == 1.0 and col["number_fit"][0] == 0.0  # "70 mph" meets "how fast"
    assert col["lex_share"][2] > col["lex_share"][0]            # 'car', 'motorway' are in Rule 124


def test_a_stored_model_reorders_only_its_candidates(tmp_path):
    n = len(rerank.FEATURES)
    w = np.zeros(n)
    w[rerank.FEATURES.index("number_fit")] = 5.0
    model = rerank.Reranker("m", np.zeros(n), np.ones(n), w, 0.0, 3, {"fitted_on": "dev"})
    rerank.save(model, tmp_path / "r.yaml")
    back = rerank.load(tmp_path / "r.yaml")
    assert back is not None and back.candidates == 3
    q = "how fast can a car go on the motorway"
    order = rerank.rerank(back, q, P, vectors([q])[0], vectors)
    assert [p.id for p in order][0] == "124"
    assert rerank.rerank(back, "", P, vectors(["x"])[0], vectors) == P  # a scene alone is never re-ranked


def test_a_missing_or_malformed_table_keeps_the_retrievers_order(tmp_path):
    assert rerank.load(tmp_path / "none.yaml") is None
    bad = tmp_path / "bad.yaml"
    bad.write_text("features: [x]\n")
    assert rerank.load(bad) is None
