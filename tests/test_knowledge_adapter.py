"""The query adapter (knowledge/adapter.py): pseudo-queries from the Code, the numpy fit, applying it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vehicle_assist.knowledge import adapter
from vehicle_assist.knowledge.adapter import QueryAdapter
from vehicle_assist.knowledge.corpus import Record


def _rec(rid: str, title: str, text: str, section: str = "Using the road") -> Record:
    return Record(rid, section, title, text, "rule", "test")


def test_pseudo_queries_are_titles_headings_and_sentences_of_each_rule():
    recs = [_rec("126", "Stopping distances", "Drive at a speed that will allow you to stop. You should\n"
                 "- leave enough space\n- allow at least a two-second gap.\n"),
            _rec("124", "Speed limits", "| Type | Motorways |\n|---|---|\n| Cars | 70 (112) |\nOk.")]
    texts, ids = adapter.pseudo_queries(recs)
    pairs = set(zip(texts, ids))
    assert ("Stopping distances", "126") in pairs and ("Using the road. Stopping distances", "126") in pairs
    assert ("Drive at a speed that will allow you to stop.", "126") in pairs
    assert ("allow at least a two-second gap.", "126") in pairs  # bullet marker stripped
    assert ("Cars: Motorways 70 (112)", "124") in pairs  # a table row as a sentence
    assert "Ok." not in texts  # one word is no query
    assert len(ids) == len(texts) and len(set(zip(texts, ids))) == len(texts)


def _toy():
    """Two chunks per rule in 3 d; queries near rule 0's chunks are labelled rule 1 (the raw
    cosine ranks them wrong), so only a fitted map ranks them right."""
    chunks = np.array([[1, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0, 0.9, 0.1]], dtype=np.float32)
    chunks /= np.linalg.norm(chunks, axis=1, keepdims=True)
    labels_c = np.array([0, 0, 1, 1])
    rng = np.random.default_rng(3)
    q = np.array([0.8, 0.2, 0.5]) + rng.normal(0, 0.05, (40, 3))
    q = (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)
    return q, np.ones(40, dtype=np.int64), chunks, labels_c


def test_fit_learns_a_map_that_ranks_the_labelled_rule_first():
    q, y, chunks, labels_c = _toy()
    assert (np.argmax(q @ chunks.T, axis=1) < 2).all()  # raw: all wrong
    w = adapter.fit(q, y, chunks, labels_c, l2=0.01, epochs=200, lr=0.05, batch=16)
    ad = QueryAdapter(w, 1.0)
    ranked = np.array([np.argmax(chunks @ ad.apply(v)) for v in q])
    assert (labels_c[ranked] == 1).mean() > 0.9
    again = adapter.fit(q, y, chunks, labels_c, l2=0.01, epochs=200, lr=0.05, batch=16)
    assert np.array_equal(w, again)  # deterministic: a rebuild gives the same ranking


def test_sample_weight_ones_changes_nothing_and_zero_weight_drops_a_query():
    q, y, chunks, labels_c = _toy()
    plain = adapter.fit(q, y, chunks, labels_c, l2=0.01, epochs=20, lr=0.05, batch=16)
    ones = adapter.fit(q, y, chunks, labels_c, l2=0.01, epochs=20, lr=0.05, batch=16,
                       sample_weight=np.ones(len(q)))
    assert np.array_equal(plain, ones)  # no weights given == every query weighs 1
    # weight 0 on every query: only the L2 term acts, so W stays zero
    none = adapter.fit(q, y, chunks, labels_c, l2=0.01, epochs=20, lr=0.05, batch=16,
                       sample_weight=np.zeros(len(q)))
    assert not none.any()
    # doubling half the queries' weights gives a different map
    w2 = np.where(np.arange(len(q)) % 2 == 0, 2.0, 1.0)
    assert not np.array_equal(plain, adapter.fit(q, y, chunks, labels_c, l2=0.01, epochs=20, lr=0.05,
                                                 batch=16, sample_weight=w2))
    with pytest.raises(ValueError):
        adapter.fit(q, y, chunks, labels_c, sample_weight=np.ones(3))


def test_l2_keeps_the_map_small_and_empty_input_gives_zero():
    q, y, chunks, labels_c = _toy()
    small = adapter.fit(q, y, chunks, labels_c, l2=100.0, epochs=50, lr=0.05, batch=16)
    free = adapter.fit(q, y, chunks, labels_c, l2=0.0, epochs=50, lr=0.05, batch=16)
    assert np.linalg.norm(small) < np.linalg.norm(free)
    assert not adapter.fit(q[:0], y[:0], chunks, labels_c).any()


def test_apply_mixes_the_raw_and_adapted_cosines():
    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.3, (4, 4)).astype(np.float32)
    v = rng.normal(size=4).astype(np.float32)
    v /= np.linalg.norm(v)
    c = rng.normal(size=4).astype(np.float32)
    assert np.array_equal(QueryAdapter(w, 0.0).apply(v), v)
    full = QueryAdapter(w, 1.0).apply(v)
    assert np.isclose(np.linalg.norm(full), 1.0, atol=1e-6)
    half = QueryAdapter(w, 0.5).apply(v)
    assert np.isclose(half @ c, 0.5 * (v @ c) + 0.5 * (full @ c), atol=1e-6)
    assert np.array_equal(QueryAdapter(w, 1.0).apply(v, 0.5), half)  # the weight passed wins
    assert np.array_equal(QueryAdapter(w, 1.0).apply(v, 0.0), v)


def test_save_load_round_trip_and_bad_files(tmp_path):
    w = np.eye(3, dtype=np.float32) * 0.5
    adapter.save(tmp_path, w)
    assert np.array_equal(adapter.load(tmp_path / adapter.FILE), w)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError):
        adapter.load(tmp_path / "bad.npz")
    np.savez(tmp_path / "odd.npz", matrix=np.zeros((2, 3)))
    with pytest.raises(ValueError):
        adapter.load(tmp_path / "odd.npz")
    with pytest.raises(OSError):
        adapter.load(tmp_path / "missing.npz")


def test_labelled_questions_read_only_the_named_split(tmp_path):
    rows = [{"id": "a", "question": "how fast on the motorway", "rule_ids": ["124"], "answerable": True,
             "split": "dev", "kind": "question", "scene": None},
            {"id": "b", "question": "secret test question", "rule_ids": ["126"], "answerable": True,
             "split": "test", "kind": "question", "scene": None},
            {"id": "c", "question": "price of fuel", "rule_ids": [], "answerable": False,
             "split": "dev", "kind": "question", "scene": None},
            {"id": "d", "question": "", "rule_ids": ["219"], "answerable": True, "split": "dev",
             "kind": "scene", "scene": {"label": "ambulance"}}]
    path = tmp_path / "q.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    dev = adapter.labelled_questions(path, "dev")
    assert [q["rule_ids"] for q in dev] == [["124"], ["219"]]  # unanswerable and test items left out
    assert all("secret" not in q["question"] for q in dev)
    assert adapter.labelled_questions(tmp_path / "missing.jsonl", "dev") == []
    texts = adapter.question_texts(dev)
    assert texts[0] == "how fast on the motorway" and "ambulance" in texts[1]  # the scene as a query
    assert adapter.questions_key(dev) != adapter.questions_key(dev[:1])


def test_fit_takes_several_gold_rules_per_query():
    """A boolean (queries x rules) label matrix: any gold rule's chunks are positives."""
    q, y, chunks, labels_c = _toy()
    member = np.zeros((len(q), 2), dtype=bool)
    member[:, 1] = True
    as_ints = adapter.fit(q, y, chunks, labels_c, l2=0.01, epochs=50, lr=0.05, batch=16)
    as_sets = adapter.fit(q, member, chunks, labels_c, l2=0.01, epochs=50, lr=0.05, batch=16)
    assert np.allclose(as_ints, as_sets, atol=1e-6)  # one gold rule each: the same fit
    member[:, 0] = True  # both rules gold: nothing to correct, the map stays small
    both = adapter.fit(q, member, chunks, labels_c, l2=0.01, epochs=50, lr=0.05, batch=16)
    assert np.linalg.norm(both) < 0.1 * np.linalg.norm(as_ints)
