"""The extractive answerer (pure): the best passage's key sentence for the question, shortened for speech.

It is the baseline route and the fallback for every other route: it can only say what a rule says.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from vehicle_assist.advisory import scene as scenes
from vehicle_assist.advisory.text import Sentence, idf, passage_sentences, relevance, shorten, terms, wants_number
from vehicle_assist.messages import Passage, Scene


@dataclass(frozen=True)
class Scored:
    """A sentence with its relevance to the question: ``score`` orders (lexical and, when an
    embedder is given, semantic, weighted by the passage's rank); ``lexical`` is the raw word match."""

    sentence: Sentence
    score: float
    lexical: float = 0.0
    similarity: float | None = None


Similarity = Callable[[str, list[str]], Sequence[float]]
"""Cosine similarity of a question to each of some sentences (see advisory.sentences)."""


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
                   max_passages: int = 3, similarity: Similarity | None = None, alpha: float = 0.5) -> list[Scored]:
    """Every sentence of the top passages, best first, scored against the question and scene.

    With ``similarity`` the order mixes word match (weight ``1 - alpha``, normalised to the best)
    and semantic similarity (weight ``alpha``)."""
    pool = list(passages)[:max_passages]
    sents = [s for p in pool for s in passage_sentences(p)]
    if not sents:
        return []
    weights = idf(sents)
    ask = " ".join(x for x in (question, scenes.describe(scene)) if x)
    qterms = terms(ask)
    numeric = wants_number(question)
    rank = {p.id: RANK_WEIGHT[min(i, len(RANK_WEIGHT) - 1)] for i, p in enumerate(pool)}
    lex = [relevance(s.text, qterms, weights, numeric) for s in sents]
    top = max(lex) or 1.0
    sims = list(similarity(ask, [s.text for s in sents])) if similarity is not None else None
    scored = []
    for i, s in enumerate(sents):
        mix = lex[i] if sims is None else (1 - alpha) * lex[i] / top + alpha * max(sims[i], 0.0)
        scored.append(Scored(s, mix * rank[s.passage_id] - 0.002 * s.index, lex[i] * rank[s.passage_id],
                             None if sims is None else float(sims[i])))
    return sorted(scored, key=lambda x: -x.score)


def answer(question: str, passages: tuple[Passage, ...] | list[Passage], scene: Scene | None = None,
           max_words: int = 32, similarity: Similarity | None = None, ranked: list[Scored] | None = None,
           second_ratio: float = 0.0, sentences: int = 2, same_passage: bool = True) -> Extract | None:
    """The key sentence that best answers ``question`` (plus, with ``sentences=2``, the runner-up when it
    scores within ``second_ratio`` of it and both fit), shortened to ``max_words``; None without passages."""
    ranked = ranked if ranked is not None else rank_sentences(question, passages, scene, similarity=similarity)
    if not ranked:
        return None
    best = ranked[0]
    chosen = [best]
    first = shorten(best.sentence.text, max_words)
    pool = [r for r in ranked[1:] if not same_passage or r.sentence.passage_id == best.sentence.passage_id]
    if sentences > 1 and pool and pool[0].score >= second_ratio * best.score:
        second = shorten(pool[0].sentence.text, max_words)
        if len(first.split()) + len(second.split()) <= max_words + 8:
            chosen.append(pool[0])
    same = len({c.sentence.passage_id for c in chosen}) == 1
    if same:
        chosen.sort(key=lambda c: c.sentence.index)
    text = " ".join(shorten(c.sentence.text, max_words) for c in chosen)
    cited = tuple(dict.fromkeys(c.sentence.passage_id for c in chosen))
    return Extract(text, cited, " ".join(c.sentence.text for c in chosen), best.lexical)
