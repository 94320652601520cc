"""The ``ask`` record: one JSON object per question, defined once here and extended (never changed)
by the advisory lane, which fills answer/cited/route."""

from __future__ import annotations

from typing import Any

from vehicle_assist.knowledge.retrieve import Retrieval


def ask_record(retrieval: Retrieval) -> dict[str, Any]:
    """``{"question", "passages": [{"id","score","section","title","text"}], "answerable",
    "answer": None, "cited": [], "route": None, "timings"}`` for one retrieval."""
    return {
        "question": retrieval.query,
        "passages": [
            {"id": p.id, "score": round(float(p.score), 6), "section": p.section, "title": p.title, "text": p.text}
            for p in retrieval.passages
        ],
        "answerable": bool(retrieval.answerable),
        "answer": None,
        "cited": [],
        "route": None,
        "timings": {k: round(float(v), 3) for k, v in retrieval.timings.items()},
    }
