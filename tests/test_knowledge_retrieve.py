"""Index persistence and hybrid retrieval with the real all-MiniLM-L6-v2 embedder (slow)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vehicle_assist import fetch, models, paths
from vehicle_assist.knowledge import onnx_embed
from vehicle_assist.config import KnowledgeSettings
from vehicle_assist.knowledge.encoder import Encoder, OnnxEncoder
from vehicle_assist.knowledge.index import open_index
from vehicle_assist.knowledge.record import ask_record
from vehicle_assist.knowledge.retrieve import Retriever
from vehicle_assist.messages import Scene

pytestmark = pytest.mark.slow

TINY_IDS = ("124", "126", "163", "195", "219")
SOURCE = fetch.data_path("knowledge", "uk_highway_code.jsonl")  # the real file, before VA_HOME moves


@pytest.fixture(scope="module")
def embedder():
    return models.load_embedder()


@pytest.fixture(scope="module")
def retriever(embedder) -> Retriever:
    """The real index (built once if absent or stale, else loaded)."""
    return Retriever.load(KnowledgeSettings(), progress=False)  # the default ONNX encoder


@pytest.fixture
def tiny_home(va_home):
    """A VA_HOME whose catalogue holds five real rules, so building is quick."""
    lines = [line for line in SOURCE.read_text(encoding="utf-8").splitlines() if json.loads(line)["id"] in TINY_IDS]
    folder = va_home / "knowledge" / "sources"
    folder.mkdir(parents=True)
    (folder / "tiny.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (va_home / "knowledge" / "sources.yaml").write_text(
        "sources:\n  - {id: tiny, jurisdiction: test, title: five rules, licence: OGL v3.0, "
        "attribution: 'Contains public sector information (test).', files: [tiny.jsonl]}\n", encoding="utf-8")
    return va_home


def test_index_persists_and_rebuilds_only_on_change(tiny_home, embedder):
    settings = KnowledgeSettings(jurisdictions=["tiny"])
    enc = Encoder(embedder)
    first = open_index(settings, enc, "model-a", progress=False)
    assert first.built and {c.rule_id for c in first.chunks} == set(TINY_IDS)
    assert len(first.chunks) > len(TINY_IDS)  # rules 124 and 163 exceed 256 tokens: sub-chunked
    again = open_index(settings, enc, "model-a", progress=False)
    assert not again.built and again.fingerprint == first.fingerprint and again.meta["encoder"] == "torch"
    assert open_index(settings, enc, "model-b", progress=False).built  # the model changed
    assert not open_index(settings, enc, "model-b", progress=False).built
    onnx = OnnxEncoder(onnx_embed.load())
    assert open_index(settings, onnx, "model-b", progress=False).meta["encoder"] == "onnx"  # backend changed
    assert not open_index(settings, onnx, "model-b", progress=False).built
    src = tiny_home / "knowledge" / "sources" / "tiny.jsonl"
    src.write_text(src.read_text(encoding="utf-8").replace("two-second", "three-second"), encoding="utf-8")
    assert open_index(settings, onnx, "model-b", progress=False).built  # a source changed
    (paths.resolve(settings.index_dir) / "vectors.faiss").write_bytes(b"garbage")
    healed = open_index(settings, onnx, "model-b", progress=False)  # corrupt index: rebuilt, no crash
    assert healed.built and healed.faiss_index.ntotal == len(healed.chunks)


def test_every_chunk_fits_the_model_window(retriever):
    count = retriever.encoder.count_tokens
    too_long = [c for c in retriever.index.chunks if count(c.embed_text) > 256 and "|" not in c.text]
    assert not too_long
    assert {c.rule_id for c in retriever.index.chunks if c.part > 0} >= {"7", "124", "163"}


@pytest.mark.parametrize("question, rule", [
    ("there's an ambulance with blues on behind me", "219"),
    ("can i wait in the bike box at the lights", "178"),
    ("how far behind the car in front should i be on a fast road", "126"),
    ("what's the national speed limit on a dual carriageway", "124"),
])
def test_spoken_questions_find_their_rule(retriever, question, rule):
    r = retriever.search(question)
    assert rule in [p.id for p in r.passages[:3]], [p.id for p in r.passages]
    assert r.answerable


def test_scene_finds_the_rules_for_the_situation(retriever):
    r = retriever.search("", scene=Scene(label="bicycle", hazard="cyclist_ahead", road_type="rural", speed_mps=13))
    assert {"163", "212", "213"} & {p.id for p in r.passages[:3]}
    r = retriever.search("", scene=Scene(road_type="motorway", weather="fog", hazard="low_visibility"))
    assert {"234", "235", "236", "226"} & {p.id for p in r.passages[:3]}


def test_results_are_one_passage_per_rule(retriever):
    r = retriever.search("overtaking cyclists and horse riders, how much room", k=10)
    ids = [p.id for p in r.passages]
    assert len(ids) == len(set(ids)) == 10
    assert [p.score for p in r.passages] == sorted((p.score for p in r.passages), reverse=True)


def test_unanswerable_questions_are_rejected(retriever):
    for question in ("what's the speed limit on the autobahn", "how much does an MOT cost",
                     "tell me a joke"):
        r = retriever.search(question)
        assert not r.answerable and r.reason, question


def test_garbage_and_empty_input_degrade_gracefully(retriever):
    assert not retriever.search("").answerable
    r = retriever.search("?!? ...")
    assert not r.answerable and r.passages == ()
    r = retriever.search("zxqv blorf wug")
    assert not r.answerable


def test_passage_lookup_and_ask_record(retriever):
    full = retriever.passage("126")
    assert full is not None and "two-second" in full.text and retriever.passage("999") is None
    assert "H1" in retriever.passages_by_id
    r = retriever.search("how big a gap should I leave")
    rec = ask_record(r)
    assert list(rec) == ["question", "passages", "answerable", "answer", "cited", "route", "timings"]
    assert rec["answer"] is None and rec["cited"] == [] and rec["route"] is None
    assert set(rec["passages"][0]) == {"id", "score", "section", "title", "text"}
    assert rec["timings"]["total_ms"] > 0 and "embed_ms" in rec["timings"]
    json.dumps(rec)


def test_dense_only_mode_differs_from_hybrid(retriever):
    q = "can i wait in the bike box at the lights"
    dense = retriever.search(q, mode="dense", normalize_query=False)
    assert dense.normalized == q
    assert "advanced stop lines" in retriever.search(q).normalized
    with pytest.raises(ValueError):
        retriever.search(q, mode="magic")


def test_bm25_rows_give_rank_bm25_scores(retriever):
    from rank_bm25 import BM25Okapi

    from vehicle_assist.knowledge.normalize import bm25_tokens

    okapi = BM25Okapi([bm25_tokens(c.embed_text) or ["_"] for c in retriever.index.chunks])
    for q in ("cyclist ahead on a country road in wet weather, cyclist", "zxqv blorf", "70 mph motorway"):
        tokens = bm25_tokens(q)
        assert np.allclose(retriever.index.bm25.get_scores(tokens), okapi.get_scores(tokens), atol=1e-9)


def test_score_fusion_is_cosine_plus_bm25_rank_bonus(retriever):
    """A passage's score is its best chunk's dense score (the cosine with the adapted query vector:
    (1 - a) cos(q, c) + a cos(adapted q, c)) + w / (1 + the chunk's BM25 rank / scale), times the
    audience factor; passages come best first; top_dense stays the raw cosine."""
    from vehicle_assist.knowledge.normalize import bm25_tokens

    assert retriever.settings.fusion == "score"
    q = "how close can i follow the car in front on the motorway"
    r = retriever.search(q)
    vec = retriever.encoder.encode([r.normalized])[0]
    lex = retriever.index.bm25.get_scores(bm25_tokens(r.normalized))
    s = retriever.settings
    rank = np.argsort(np.argsort(-lex, kind="stable"), kind="stable")
    bonus = np.where(lex > 0, s.bm25_score_weight / (1 + rank / s.bm25_rank_scale), 0.0)
    mix = retriever.settings.adapter_weight
    adapted = vec + vec @ retriever.adapter.matrix
    adapted /= np.linalg.norm(adapted)
    dense = (1 - mix) * (retriever.vectors @ vec) + mix * (retriever.vectors @ adapted)
    expected = (dense + bonus) * retriever.audience
    per_rule: dict[str, float] = {}
    for c, score in zip(retriever.index.chunks, expected):
        per_rule[c.rule_id] = max(per_rule.get(c.rule_id, -9.0), float(score))
    best = sorted(per_rule, key=lambda rid: -per_rule[rid])[: len(r.passages)]
    assert [p.id for p in r.passages] == best
    assert [p.score for p in r.passages] == pytest.approx([per_rule[rid] for rid in best], abs=1e-5)
    assert r.top_dense == pytest.approx(float((retriever.vectors @ vec).max()), abs=1e-5)


def test_rank_fusion_is_still_available(retriever):
    """fusion: rrf keeps reciprocal rank fusion (scores are sums of 1/(rrf_k + rank))."""
    rrf = Retriever(retriever.index, retriever.encoder, retriever.settings.model_copy(update={"fusion": "rrf"}))
    r = rrf.search("what's the speed limit on the motorway")
    assert "124" in [p.id for p in r.passages[:3]]
    assert all(0 < p.score <= 2 / (rrf.settings.rrf_k + 1) + 1e-6 for p in r.passages)
    assert [p.score for p in r.passages] == sorted((p.score for p in r.passages), reverse=True)


def test_the_query_adapter_is_built_with_the_index_and_rebuilt_when_missing(tiny_home):
    from vehicle_assist.knowledge import adapter

    settings = KnowledgeSettings(jurisdictions=["tiny"], adapter_epochs=2)
    enc = OnnxEncoder(onnx_embed.load())
    first = open_index(settings, enc, "model-a", progress=False)
    folder = paths.resolve(settings.index_dir)
    assert first.built and first.adapter.shape == (enc.dim, enc.dim) and first.meta["pseudo_queries"] > 20
    assert np.abs(first.adapter).max() > 0  # fitted, not the zero start
    again = open_index(settings, enc, "model-a", progress=False)
    assert not again.built and np.array_equal(again.adapter, first.adapter)
    assert not open_index(settings.model_copy(update={"adapter_weight": 0.0}), enc, "model-a",
                          progress=False).built  # the weight is applied at query time: no rebuild
    assert open_index(settings.model_copy(update={"adapter_epochs": 3}), enc, "model-a", progress=False).built
    (folder / adapter.FILE).unlink()
    healed = open_index(settings, enc, "model-a", progress=False)  # adapter missing: rebuilt, no crash
    assert healed.built and (folder / adapter.FILE).is_file()


def test_the_adapter_ranks_the_codes_own_titles_better_and_leaves_answerability_alone(retriever):
    titles = {r.title: r.id for r in retriever.index.records.values()
              if "#intro" not in r.id and len(r.title.split()) >= 3}
    saved = retriever.settings
    assert retriever.adapter is not None and saved.adapter_weight > 0

    def first_share() -> float:
        return float(np.mean([retriever.search(t).passages[0].id == rid for t, rid in titles.items()]))

    try:
        with_adapter = first_share()
        q = "there's an ambulance with blues on behind me"
        adapted = retriever.search(q)
        retriever.settings = saved.model_copy(update={"adapter_weight": 0.0})  # off at query time
        without = first_share()
        raw = retriever.search(q)
    finally:
        retriever.settings = saved
    assert with_adapter > without + 0.02, (with_adapter, without)  # measured 0.60 vs 0.56
    assert adapted.top_dense == raw.top_dense and adapted.p_answerable == raw.p_answerable


def test_the_adapter_learns_from_labelled_dev_questions_only_and_rebuilds_when_they_change(tiny_home):
    settings = KnowledgeSettings(jurisdictions=["tiny"], adapter_epochs=2, adapter_question_repeat=3)
    enc = OnnxEncoder(onnx_embed.load())
    without = open_index(settings, enc, "model-a", progress=False)  # no questions file in this VA_HOME
    assert without.meta["adapter_questions"] == 0
    path = paths.resolve(settings.adapter_questions)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [{"question": "how fast can i go on the motorway", "rule_ids": ["124"], "split": "dev",
             "answerable": True, "scene": None},
            {"question": "ambulance behind me with its blues on", "rule_ids": ["219"], "split": "dev",
             "answerable": True, "scene": None},
            {"question": "how big a gap in the rain", "rule_ids": ["126"], "split": "test",
             "answerable": True, "scene": None}]
    path.write_text("\n".join(json.dumps(r) for r in rows[:2]) + "\n", encoding="utf-8")
    first = open_index(settings, enc, "model-a", progress=False)
    assert first.built and first.meta["adapter_questions"] == 2 and not np.array_equal(first.adapter, without.adapter)
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    same = open_index(settings, enc, "model-a", progress=False)  # a test item added: not read, no rebuild
    assert not same.built and np.array_equal(same.adapter, first.adapter)
    rows[0]["rule_ids"] = ["124", "126"]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    assert open_index(settings, enc, "model-a", progress=False).built  # a dev label changed: refitted
    off = settings.model_copy(update={"adapter_question_repeat": 0})
    assert open_index(off, enc, "model-a", progress=False).meta["adapter_questions"] == 0
