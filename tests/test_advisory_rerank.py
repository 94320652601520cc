"""The rule re-ranker (advisory/rerank.py): features, the stored table, the order it gives, and how the
lane uses it (seventh round: on by default, advisory.rerank; docs/advisory.md)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np

from vehicle_assist.advisory import rerank
from vehicle_assist.advisory.run import AdvisoryRun
from vehicle_assist.config import AdvisorySettings
from vehicle_assist.knowledge.retrieve import Retrieval
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


def test_road_user_features_tell_a_road_users_own_rules_from_a_drivers():
    # eighth round: a question that names cyclists as the ones acting is about their own part of the Code
    assert rerank.road_user_fit("can bikes go in the bus lane", "Rules for cyclists") == (1.0, 0.0, 0.0)
    assert rerank.road_user_fit("how much room should I give a cyclist when overtaking",
                                "Rules for cyclists") == (1.0, 0.0, 1.0)
    assert rerank.road_user_fit("can I park on double yellows", "Rules for pedestrians") == (0.0, 1.0, 0.0)
    assert rerank.road_user_fit("can you ride a horse bareback", "Rules about animals")[0] == 1.0
    assert rerank.road_user_fit("can bikes go in the bus lane", "Using the road") == (0.0, 0.0, 0.0)
    cyc = Passage("65", "Rules for cyclists", "Bus lanes", "Most bus lanes may be used by cyclists.", 0.4)
    q = "can bikes go in the bus lane"
    col = dict(zip(rerank.FEATURES, rerank.features(q, P + (cyc,), vectors([q])[0], vectors).T))
    assert list(col["road_user_named"]) == [0.0, 0.0, 0.0, 1.0]


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


class BagSimilarity:
    """The sentence similarity's surface the lane uses, on the bag-of-letters stand-in (isolation)."""

    def __call__(self, question, sentences):
        return list(vectors(sentences) @ vectors([question])[0])

    def vectors(self, texts):
        return vectors(texts)

    def query(self, question):
        return vectors([question])[0]


@dataclass
class Index:
    model_id: str


class Retriever:
    def __init__(self, model_id="m"):
        self.index, self.asked_k = Index(model_id), []

    def search(self, text, scene=None, k=5):
        self.asked_k.append(k)
        return Retrieval(text, P[:k], True, {}, text)


def _model(tmp_path, model_id="m"):
    n = len(rerank.FEATURES)
    w = np.zeros(n)
    w[rerank.FEATURES.index("number_fit")] = 5.0
    path = tmp_path / "r.yaml"
    rerank.save(rerank.Reranker(model_id, np.zeros(n), np.ones(n), w, 0.0, 3, {"fitted_on": "dev"}), path)
    return str(path)


def _passages(settings, retriever, k=2, question="how fast can a car go on the motorway"):
    lane = AdvisoryRun(settings, retriever, similarity=BagSimilarity(), k=k)
    rep = asyncio.run(lane.execute_report(question, None, 0))
    return [p.id for p in rep.passages], lane


def test_the_lane_reranks_a_wider_pool_then_keeps_its_k(tmp_path):
    ret = Retriever()
    ids, lane = _passages(AdvisorySettings(rerank="model", rerank_pool=3, rerank_model=_model(tmp_path)), ret)
    assert lane.reranker is not None and ret.asked_k == [3]
    assert ids == ["124", "126"]          # Rule 124 (the 3rd retrieved) states the speed: moved first, k kept


def test_rerank_off_or_fitted_for_another_embedder_keeps_the_retrievers_order(tmp_path):
    for settings in (AdvisorySettings(rerank="retriever", rerank_model=_model(tmp_path)),
                     AdvisorySettings(rerank="model", rerank_model=_model(tmp_path, "other-embedder"))):
        ret = Retriever()
        ids, lane = _passages(settings, ret)
        assert lane.reranker is None and ret.asked_k == [2] and ids == ["126", "annex-5-penalties#penalty-table"]
