"""The router (pure): which route answers this request.

- a command intent -> ``intent`` (acted on by the voice lane at once)
- a question the rules do not cover -> ``refusal`` (an honest short refusal)
- a complex question, with the remote LLM opted in -> ``remote`` (local answer as fallback)
- any other rule question or persistent hazard's scene -> ``extractive`` or ``slm`` (``settings.route``)

Urgent hazards never come here: the alert table (``configs/alerts.yaml``) speaks them.
"""

from __future__ import annotations

import re
from typing import Protocol

from vehicle_assist.config import AdvisorySettings
from vehicle_assist.messages import HazardLevel, Intent, Scene

INTENT, REFUSAL, REMOTE, EXTRACTIVE, SLM = "intent", "refusal", "remote", "extractive", "slm"
ROUTES = (INTENT, REFUSAL, REMOTE, EXTRACTIVE, SLM)
_COMPLEX = re.compile(r"\b(why|explain|compare|difference|versus|vs|what if)\b", re.I)


class RetrievalLike(Protocol):
    """What the router needs of a retrieval: whether the rules can answer."""

    answerable: bool


def level(name: str) -> HazardLevel:
    """A hazard level from its config name ('warning' -> HazardLevel.WARNING)."""
    try:
        return HazardLevel[name.upper()]
    except KeyError as err:
        raise ValueError(f"unknown hazard level {name!r}; expected one of {[h.name.lower() for h in HazardLevel]}") from err


def is_complex(question: str, settings: AdvisorySettings) -> bool:
    """A question long or open enough to be worth a larger remote model."""
    return len(question.split()) >= settings.remote.min_words or bool(_COMPLEX.search(question))


def route(item: str | Intent | Scene, retrieval: RetrievalLike | None, settings: AdvisorySettings,
          support: float | None = None, similarity: float | None = None) -> str:
    """Pick the route for a question text, an intent or a scene.

    ``support`` is the word-match relevance of the best rule sentence (see ``extractive.rank_sentences``);
    below ``settings.min_support`` the question is refused even if retrieval found passages.
    ``similarity`` is the best sentence's embedding similarity: a question the retriever judged
    only *weakly similar* (never one it judged out of scope) is answered when it reaches
    ``settings.rescue_similarity``. A question whose best sentence is weak on both counts (word match
    below ``weak_support`` and similarity below ``weak_similarity``) is refused even when retrieval
    judged it answerable.
    """
    if isinstance(item, Intent):
        if item.name != "question":
            return INTENT
        question = item.text
    elif isinstance(item, Scene):
        question = ""
    else:
        question = item
    if retrieval is None:
        return REFUSAL
    if not retrieval.answerable:
        weak = str(getattr(retrieval, "reason", "")).startswith("low-similarity")
        rescued = weak and similarity is not None and similarity >= settings.rescue_similarity
        if not rescued:
            return REFUSAL
    if support is not None and support < settings.min_support:
        return REFUSAL
    if (question and support is not None and similarity is not None
            and support < settings.weak_support and similarity < settings.weak_similarity):
        return REFUSAL  # neither the words nor the meaning of any rule sentence match the question
    if question and settings.remote.enabled and settings.remote.url and is_complex(question, settings):
        return REMOTE
    return settings.route
