"""The doc2query bench's general filters (bench/doc2query.py): what a generated question must be to
be used (a question, 3-25 words, no word loops, about the road and not the prompt, sharing a
content word with its passage, no repeats), and how a model's numbered list is split."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import doc2query  # noqa: E402  (bench/doc2query.py)

PASSAGE = ("Using the road. Fog. You MUST use headlights when visibility is seriously reduced, generally "
           "when you cannot see for more than 100 metres.")


def test_split_questions_strips_numbering_bullets_and_quotes():
    raw = '1. "When do I need headlights in fog?"\n2) How far must I see?\n- Q3: Why?\n\n'
    assert doc2query.split_questions(raw) == ["When do I need headlights in fog?", "How far must I see?", "Why?"]


def test_keep_question_accepts_a_spoken_question_about_the_passage():
    seen: set[str] = set()
    assert doc2query.keep_question("when do I have to put my headlights on in fog?", PASSAGE, seen)
    # the same words again are a repeat
    assert doc2query.keep_question("When do I have to put my headlights on in fog?", PASSAGE, seen) is None


def test_keep_question_drops_the_prompts_words_and_off_topic_or_broken_text():
    keep = doc2query.keep_question
    # "... in the UK Highway Code" is cut, the question kept
    assert keep("What visibility needs headlights in the UK Highway Code?", PASSAGE, set()) == \
        "What visibility needs headlights?"
    assert keep("What does this passage say about fog?", PASSAGE, set()) is None  # about the prompt
    assert keep("How do I talk to the voice assistant in fog?", PASSAGE, set()) is None
    assert keep("Where can I buy cheap tyres for my car?", PASSAGE, set()) is None  # no shared content word
    assert keep("Fog headlights are needed below 100 metres.", PASSAGE, set()) is None  # not a question
    assert keep("Fog?", PASSAGE, set()) is None  # too short
    assert keep("fog fog fog fog fog fog fog headlights headlights headlights?", PASSAGE, set()) is None  # loop
