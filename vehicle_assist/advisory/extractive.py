"""The extractive answerer (pure): the best passage's key sentence for the question, shortened for speech.

It is the baseline route and the fallback for every other route: it can only say what a rule says.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from vehicle_assist.advisory import cues as cue_table
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
                   max_passages: int = 3, similarity: Similarity | None = None, alpha: float = 0.5,
                   asked: str | None = None, cue_weight: float = 0.0, expand: str = "") -> list[Scored]:
    """Every sentence of the top passages, best first, scored against the question and scene.

    Word match is normalised to the best sentence's; with ``similarity`` the order mixes it
    (weight ``1 - alpha``) with semantic similarity (weight ``alpha``). ``asked`` is the driver's own question ('' for a
    scene alone; default ``question``): each question cue (cues.yaml) a sentence answers adds
    ``cue_weight``."""
    pool = list(passages)[:max_passages]
    sents = [s for p in pool for s in passage_sentences(p)]
    if not sents:
        return []
    weights = idf(sents)
    said = question if asked is None else asked
    steer = scenes.steers(said)
    ask = " ".join(x for x in (question, scenes.describe(scene) if steer else "") if x)
    # the scene's own numbers (its speed, a distance) say nothing about which rule applies
    scene_terms = [t for t in terms(scenes.describe(scene)) if not t[0].isdigit()]
    qterms = terms(said) + ([t for t in terms(ask) if not t[0].isdigit()] if not said else
                            scene_terms if steer else [])
    if expand and said:  # the Code's words the query rewriting added ("blues on" -> emergency vehicle)
        own = set(qterms)
        qterms += [t for t in dict.fromkeys(terms(expand)) if t not in own and not t[0].isdigit()]
    numeric = wants_number(said)
    wanted = cue_table.active(said) if cue_weight else ()
    rank = {p.id: RANK_WEIGHT[min(i, len(RANK_WEIGHT) - 1)] for i, p in enumerate(pool)}
    lex = [relevance(s.text, qterms, weights, numeric) for s in sents]
    top = max(lex) or 1.0
    sims = list(similarity(ask, [s.text for s in sents])) if similarity is not None else None
    scored = []
    for i, s in enumerate(sents):
        mix = lex[i] / top if sims is None else (1 - alpha) * lex[i] / top + alpha * max(sims[i], 0.0)
        bonus = cue_weight * cue_table.matches(s.text, wanted) if wanted else 0.0
        if scene_terms and not steer:  # the scene only breaks ties
            bonus += 0.001 * len(set(scene_terms) & set(terms(s.text)))
        scored.append(Scored(s, mix * rank[s.passage_id] + bonus - 0.002 * s.index, lex[i] * rank[s.passage_id],
                             None if sims is None else float(sims[i])))
    return sorted(scored, key=lambda x: -x.score)


def _overlaps(a: Sentence, b: Sentence) -> bool:
    """Two sentences say the same thing: one is a list joined into a sentence that holds the other."""
    return a.passage_id == b.passage_id and a.group >= 0 and a.group == b.group and (a.joined or b.joined)


def _keeps_best_item(joined: Sentence, ranked: list[Scored], max_words: int) -> bool:
    """A list joined into one sentence may be said shortened only if the shortened text still holds
    the list's best-ranked item (else that item is said on its own)."""
    item = next((r.sentence for r in ranked if r.sentence.group == joined.group and not r.sentence.joined
                 and r.sentence.passage_id == joined.passage_id), None)
    if item is None:
        return True
    said = set(terms(shorten(joined.text, max_words)))
    need = set(terms(item.text))
    return len(need & said) >= 0.8 * len(need)


def _completion(best: Scored, ranked: list[Scored], asked: str, window: int) -> Scored | None:
    """The runner-up that adds what the question asks for and the best sentence lacks: among the
    ``window`` best-ranked sentences of any top passage, the first one answering a question cue
    (cues.yaml: a distance, a speed, MUST / MUST NOT, an action...) that ``best`` does not; None
    when the best already answers every cue, or none does."""
    if window <= 0:
        return None
    wanted = cue_table.active(asked)
    missing = tuple(c for c in wanted if not c.sentence.search(best.sentence.text))
    if not missing:
        return None
    for r in ranked[1:window]:
        if not _overlaps(r.sentence, best.sentence) and cue_table.matches(r.sentence.text, missing):
            return r
    return None


def answer(question: str, passages: tuple[Passage, ...] | list[Passage], scene: Scene | None = None,
           max_words: int = 32, similarity: Similarity | None = None, ranked: list[Scored] | None = None,
           second_ratio: float = 0.0, sentences: int = 2, same_passage: bool = True,
           asked: str | None = None, complete: int = 0, redundancy: float = 0.0, tries: int = 1,
           third_window: int = 3) -> Extract | None:
    """The key sentence that best answers ``question`` (plus, with ``sentences=2``, the runner-up when it
    scores within ``second_ratio`` of it and both fit), shortened to ``max_words``; None without passages.

    Two items of one bullet list are said as the whole list when it fits ("You should reduce your speed,
    be prepared for the hazard, and ..."); a runner-up that repeats the best sentence is skipped. With
    ``sentences=3``, when the answer leaves room in ``max_words`` + 8, the best-ranked of the
    ``third_window`` - 1 sentences ranked after the best (any top rule) that is not said yet and fits
    is said too (eighth round: the fact is often in the sentence ranked just below)."""
    ranked = ranked if ranked is not None else rank_sentences(question, passages, scene, similarity=similarity)
    whole = [r for r in ranked if not r.sentence.joined or _keeps_best_item(r.sentence, ranked, max_words)]
    if not whole:
        return None
    best = whole[0]
    chosen = [best.sentence]
    first = shorten(best.sentence.text, max_words)
    pool = [r for r in whole[1:] if (not same_passage or r.sentence.passage_id == best.sentence.passage_id)
            and not _overlaps(r.sentence, best.sentence)]
    if redundancy > 0 and len(pool) > 1:  # the runner-up should add to the best, not repeat it
        said = set(terms(best.sentence.text))

        def fresh(r: Scored) -> float:
            st = set(terms(r.sentence.text))
            return r.score - redundancy * abs(best.score) * len(st & said) / max(1, len(st | said))
        pool = sorted(pool, key=lambda r: -fresh(r))
    filler = _completion(best, whole, question if asked is None else asked, complete)
    if filler is not None:
        pool = [filler] + [r for r in pool if r is not filler]
    whole_list = False
    for cand in pool[:max(1, tries)] if sentences > 1 else []:  # the first runner-up that fits
        if cand.score < second_ratio * best.score:
            break
        nxt = cand.sentence
        joined = [r.sentence for r in ranked if r.sentence.joined and r.sentence.passage_id == nxt.passage_id
                  and r.sentence.group == nxt.group >= 0 and nxt.group == best.sentence.group]
        second = shorten(nxt.text, max_words)
        if joined and len(joined[0].text.split()) <= max_words + 8:
            chosen, whole_list = [joined[0]], True
            break
        if len(first.split()) + len(second.split()) <= max_words + 8:
            chosen.append(nxt)
            break
    if sentences > 2 and not whole_list:  # a third sentence when the answer leaves room for it
        used = sum(len(shorten(c.text, max_words).split()) for c in chosen)
        for r in whole[1:max(1, third_window)]:
            if any(r.sentence == c or _overlaps(r.sentence, c) for c in chosen):
                continue
            if used + len(shorten(r.sentence.text, max_words).split()) <= max_words + 8:
                chosen.append(r.sentence)
                break
    if len({c.passage_id for c in chosen}) == 1:
        chosen.sort(key=lambda c: c.index)
    text = " ".join(shorten(c.text, max_words) for c in chosen)
    cited = tuple(dict.fromkeys(c.passage_id for c in chosen))
    return Extract(text, cited, " ".join(c.text for c in chosen), best.lexical)
