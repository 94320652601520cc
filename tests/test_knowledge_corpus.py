"""Sources -> records -> chunks: citation ids kept, token budget respected, tables never split."""

from __future__ import annotations

import json

import pytest

from vehicle_assist.config import KnowledgeSettings
from vehicle_assist.knowledge import KnowledgeError, corpus
from vehicle_assist.knowledge.corpus import Record, chunk_record, linearize_tables


def words(text: str) -> int:
    """A stand-in tokenizer for the pure chunking logic: one token per word."""
    return len(text.split())


@pytest.fixture(scope="module")
def records() -> list[Record]:
    specs = corpus.load_catalogue(KnowledgeSettings())
    return [r for s in specs for r in corpus.read_records(s)]


def test_real_sources_read_with_rule_ids(records):
    ids = {r.id for r in records}
    assert {"1", "126", "307", "H1", "H3", "126-figure"} <= ids
    assert len([r for r in records if r.kind == "rule"]) == 310
    assert all(r.text and r.source == "uk-gb" for r in records)


def test_catalogue_carries_the_licence_attribution():
    spec = corpus.load_catalogue(KnowledgeSettings())[0]
    assert "Open Government Licence v3.0" in spec.attribution and "GOV.UK" in spec.attribution


def test_unknown_jurisdiction_is_a_clear_error():
    with pytest.raises(KnowledgeError) as err:
        corpus.load_catalogue(KnowledgeSettings(jurisdictions=["atlantis"]))
    assert err.value.code == "unknown-jurisdiction"


def _spec(tmp_path, name: str) -> corpus.SourceSpec:
    return corpus.SourceSpec(id="t", jurisdiction="test", title="t", licence="x", attribution="x", files=[name])


def test_corrupt_and_missing_sources_raise_coded_errors(va_home):
    folder = va_home / "knowledge" / "sources"
    folder.mkdir(parents=True)
    (folder / "bad.jsonl").write_text('{"id": "1", "section": "s", "title": "t", "text": "ok"}\nnot json\n')
    with pytest.raises(KnowledgeError) as err:
        corpus.read_records(_spec(va_home, "bad.jsonl"))
    assert err.value.code == "source-corrupt" and ":2:" in str(err.value)
    (folder / "nofield.jsonl").write_text(json.dumps({"id": "1", "section": "s", "title": "t"}) + "\n")
    with pytest.raises(KnowledgeError, match="source-corrupt"):
        corpus.read_records(_spec(va_home, "nofield.jsonl"))
    with pytest.raises(KnowledgeError) as err:
        corpus.read_records(_spec(va_home, "absent.jsonl"))
    assert err.value.code == "source-missing"


def test_long_rule_is_split_within_budget_and_keeps_its_id(records):
    rule = next(r for r in records if r.id == "163")
    chunks = chunk_record(rule, words, max_tokens=80, overlap=1)
    assert len(chunks) > 1
    assert {c.rule_id for c in chunks} == {"163"} and [c.part for c in chunks] == list(range(len(chunks)))
    assert all(words(c.embed_text) <= 80 for c in chunks)
    joined = "\n".join(c.text for c in chunks)
    for line in rule.text.splitlines():  # nothing is lost (long lines are cut at sentence ends)
        for sentence in corpus._SENTENCE.split(line):
            assert sentence.strip() in joined


def test_short_rule_stays_whole(records):
    rule = next(r for r in records if r.id == "101")
    (chunk,) = chunk_record(rule, words, max_tokens=256)
    assert chunk.text == rule.text and chunk.part == 0


def test_tables_are_never_split(records):
    rule = next(r for r in records if r.id == "124")  # prose + the speed-limit table
    table = "\n".join(line for line in rule.text.splitlines() if line.startswith("|"))
    chunks = chunk_record(rule, words, max_tokens=60, overlap=1)
    holding = [c for c in chunks if "| Speed Limits |" in c.text]
    assert len(holding) == 1 and table in holding[0].text
    assert sum(c.text.count("| Cars towing caravans") for c in chunks) == 1


def test_tables_are_linearised_for_embedding():
    text = "Limits\n| Vehicle | Motorways |\n| --- | --- |\n| Cars | 70 (112) |"
    assert linearize_tables(text) == "Limits\nCars: Motorways 70 (112)"
