"""The answerability model: features, the stored table, and how the retriever uses it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from vehicle_assist import models
from vehicle_assist.config import KnowledgeSettings
from vehicle_assist.knowledge import answerability
from vehicle_assist.knowledge.index import model_fingerprint
from vehicle_assist.knowledge.normalize import bm25_tokens
from vehicle_assist.knowledge.retrieve import Retriever


def test_features_are_pure_and_bounded():
    vocab = set(bm25_tokens("speed limits on motorways"))  # stemmed, as the index vocabulary is
    f = answerability.features("what's the speed limit on the autobahn", 0.56, 6.0, vocab)
    assert f.tolist() == pytest.approx([0.56, 1 / 3, 2.0])  # speed, limit known; autobahn not
    assert answerability.features("", 0.1, 0.0, vocab).tolist() == [0.1, 0.0, 0.0]


def test_the_stored_table_was_fitted_on_dev_for_the_configured_embedder():
    model = answerability.load()
    assert model is not None
    assert model.model_id == model_fingerprint(models.resolve("embedder").path)
    assert model.info["fitted_on"] == "dev" and model.info["cv_answerable_false_rejected"] <= 0.05
    assert model.embedding_weights.shape == (384,) and len(model.feature_weights) == len(answerability.FEATURES)
    assert 0 < model.threshold < 1
    assert model.feature_weights[0] > 0 and model.feature_weights[1] < 0  # similarity helps, unknown words hurt
    p = model.probability(np.zeros(384, dtype=np.float32), np.array([0.7, 0.0, 2.0]))
    q = model.probability(np.zeros(384, dtype=np.float32), np.array([0.2, 0.5, 0.5]))
    assert 0 < q < p < 1


def test_a_malformed_table_is_refused(tmp_path):
    bad = tmp_path / "a.yaml"
    bad.write_text("features: [top_dense]\nbias: 0\n", encoding="utf-8")
    assert answerability.load(bad) is None
    bad.write_text("{{{", encoding="utf-8")
    assert answerability.load(bad) is None
    assert answerability.load(tmp_path / "none.yaml") is None


@pytest.mark.slow
def test_retriever_uses_the_model_and_falls_back_to_the_threshold():
    r = Retriever.load(KnowledgeSettings(), progress=False)
    assert r.answer_model is not None
    ok = r.search("how big a gap should i leave behind the car in front")
    assert ok.answerable and ok.p_answerable is not None and ok.p_answerable >= r.answer_model.threshold
    assert len(ok.features) == len(answerability.FEATURES)
    for question in ("who invented the traffic light", "is there a jam on the m25 right now"):
        no = r.search(question)
        assert not no.answerable and no.reason.startswith("low-answerability:"), (question, no.reason)
    scene_only = r.search("", scene=None)
    assert not scene_only.answerable
    other = Retriever(dataclasses.replace(r.index, model_id="another-model"), r.encoder, r.settings)
    assert other.answer_model is None  # fitted for another embedder: the similarity threshold decides
    assert other.search("tell me a joke").reason.startswith(("out-of-scope", "low-similarity"))
    plain = Retriever(r.index, r.encoder, KnowledgeSettings(answerability="threshold"))
    assert plain.answer_model is None and plain.search("how big a gap should i leave").p_answerable is None
