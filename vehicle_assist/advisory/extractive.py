"""The extractive answerer (pure): the best passage's key sentence for the question, shortened for speech.

It is the baseline route and the fallback for every other route: it can only say what a rule says.
"""

from __future__ import annotations

from dataclasses import dataclass

from vehicle_assist.advisory import scene as scenes
from vehicle_assist.advisory.text import Sentence, idf, passage_sentences, relevance, shorten, terms, wants_number
from vehicle_assist.messages import Passage, Scene


@dataclass(frozen=True)
class Scored:
    """A sentence with its relevance to the question (already weighted by its passage's rank)."""

    sentence: Sentence
    score: float


@dataclass(frozen=True)
class Extract:
    """An extractive answer: the spoken text, the rule it comes from and how well it matched."""

    text: str
    cited: tuple[str, ...]
    sentence: str
    score: float


RANK_WEIGHT = (1.0, 0.8, 0.65, 0.5, 0.4)
"""Prior on a passage by its retrieval rank: the retriever's order counts, the words decide."""


def rank_sentences(question: str, passages: tuple[Passage, ...] | list[Passage], scene: Scene | None = None,
                   max_passages: int = 3) -> list[Scored]:
    """Every sentence of the top passages, best first, scored against the question and scene."""
    pool = list(passages)[:max_passages]
    sents = [s for p in pool for s in passage_sentences(p)]
    if not sents:
        return []
    weights = idf(sents)
    qterms = terms(question + " " + scenes.describe(scene))
    numeric = wants_number(question)
    rank = {p.id: RANK_WEIGHT[min(i, len(RANK_WEIGHT) - 1)] for i, p in enumerate(pool)}
    scored = [Scored(s, relevance(s.text, qterms, weights, numeric) * rank[s.passage_id] - 0.02 * s.index)
              for s in sents]
    return sorted(scored, key=lambda x: -x.score)


def answer(question: str, passages: tuple[Passage, ...] | list[Passage], scene: Scene | None = None,
           max_words: int = 30) -> Extract | None:
    """The key sentence that best answers ``question``, shortened to ``max_words``; None without passages."""
    ranked = rank_sentences(question, passages, scene)
    if not ranked:
        return None
    best = ranked[0]
    return Extract(shorten(best.sentence.text, max_words), (best.sentence.passage_id,), best.sentence.text, best.score)
