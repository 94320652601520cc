"""The evaluation set bench/data/questions.jsonl: size, split, gold ids, key facts, no copied wording."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from vehicle_assist import fetch, paths

QUESTIONS = paths.home() / "bench" / "data" / "questions.jsonl"
FIELDS = {"id", "question", "rule_ids", "answerable", "key_facts", "split", "kind", "scene"}


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower().replace("’", "'").replace("'", ""))


def shared_ngrams(a: str, b: str, n: int = 4) -> set[tuple[str, ...]]:
    """Runs of ``n`` consecutive words found in both texts."""
    def grams(t: str) -> set[tuple[str, ...]]:
        w = _words(t)
        return {tuple(w[i:i + n]) for i in range(len(w) - n + 1)}
    return grams(a) & grams(b)


@pytest.fixture(scope="module")
def items() -> list[dict]:
    return [json.loads(line) for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def corpus() -> dict[str, str]:
    texts = {}
    for name in ("uk_highway_code.jsonl", "uk_highway_code_figures.jsonl"):
        path = fetch.data_path("knowledge", name)
        if not path.is_file():
            pytest.fail(f"{path} missing: run `vehicle-assist fetch knowledge`")
        for line in path.read_text(encoding="utf-8").splitlines():
            rec = json.loads(line)
            texts[rec["id"]] = rec["text"]
    return texts


def test_sizes_and_fields(items):
    assert all(set(it) == FIELDS for it in items)
    assert len({it["id"] for it in items}) == len(items)
    answerable_q = [it for it in items if it["answerable"] and it["kind"] == "question"]
    scenes = [it for it in items if it["kind"] == "scene"]
    unanswerable = [it for it in items if not it["answerable"]]
    assert len(answerable_q) >= 100
    assert len(scenes) >= 20 and all(it["scene"] and it["answerable"] for it in scenes)
    assert len(unanswerable) >= 40 and all(not it["rule_ids"] and not it["key_facts"] for it in unanswerable)


def test_every_group_is_split_into_dev_and_test(items):
    """The set written before tuning is split half and half; questions added later to widen the
    tuning data (ids starting with "x") are dev only, so the test split never changes."""
    assert all(it["split"] == "dev" for it in items if it["id"].startswith("x"))
    original = [it for it in items if not it["id"].startswith("x")]
    assert len(original) == 195
    for group in ("question-True", "scene-True", "question-False"):
        counts = Counter(it["split"] for it in original if f"{it['kind']}-{it['answerable']}" == group)
        assert set(counts) == {"dev", "test"}, group
        assert abs(counts["dev"] - counts["test"]) <= 1, (group, counts)


def test_gold_ids_exist_and_hold_the_key_facts(items, corpus):
    for it in (i for i in items if i["answerable"]):
        assert it["rule_ids"] and it["key_facts"], it["id"]
        missing = [r for r in it["rule_ids"] if r not in corpus]
        assert not missing, (it["id"], missing)
        gold = " ".join(corpus[r] for r in it["rule_ids"]).lower()
        absent = [k for k in it["key_facts"] if k.lower() not in gold]
        assert not absent, (it["id"], absent)


def test_no_question_copies_four_words_of_its_rules(items, corpus):
    offenders = {}
    for it in items:
        if it["question"] and it["rule_ids"]:
            shared = shared_ngrams(it["question"], " ".join(corpus[r] for r in it["rule_ids"]))
            if shared:
                offenders[it["id"]] = sorted(shared)
    assert not offenders


def test_the_overlap_check_catches_copied_wording():
    rule = "Allow at least a two-second gap between you and the vehicle in front."
    assert shared_ngrams("should i allow at least a two second gap", rule)
    assert not shared_ngrams("how big a gap do i leave", rule)
