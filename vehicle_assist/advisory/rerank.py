"""Rule re-ranker (issue 15, deliverable 4; wired into the lane in the seventh round): re-orders the
retriever's top rules (``advisory.rerank_pool``, 10) for a question with a small logistic model over
per-rule features, fitted on the dev split only (``bench/fit_rerank.py --cv-dir``: on candidates
from fold indexes whose query adapter did not see the question) and stored as a data table
(``rerank.yaml``: feature names, standardisation, weights, the embedding model it was fitted for and
its cross-validated figures). ``advisory.rerank: retriever`` keeps the retriever's order.

Features of one candidate rule (:data:`FEATURES`), all from the question, the candidate list and
the sentence embeddings the extractive answerer already caches: the retriever's fused score, its
gap to the best and the rank; the cosine of the question to the rule's best and second-best
sentence, to its title and to the whole passage; idf-weighted share of the question's words in the
rule and in its title; whether a number question meets a rule stating a quantity; how many of the
question's cues (cues.yaml) some sentence of the rule answers; whether the passage is an annex,
sign or signal section rather than a numbered rule; and, for a passage of a road user's own part of
the Code (pedestrians, cyclists, horse riders, mobility scooters, motorcyclists: road_users.yaml),
whether the question names that road user, names none, or names them while speaking of driving
(eighth round). A scene alone is never re-ranked.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import yaml

from vehicle_assist.advisory import cues as cue_table
from vehicle_assist.advisory.text import passage_sentences, terms, wants_number
from vehicle_assist.messages import Passage

log = logging.getLogger(__name__)

MODEL_PATH = Path(__file__).with_name("rerank.yaml")
FEATURES = ("fused", "fused_gap", "inv_rank", "sent_max", "sent_second", "title_sim", "passage_sim",
            "lex_share", "title_share", "number_fit", "cue_fit", "section_kind",
            "road_user_named", "road_user_unnamed", "road_user_driving")
ROAD_USERS_PATH = Path(__file__).with_name("road_users.yaml")
_QUANTITY = re.compile(r"\d+(?:\.\d+)?\s*(?:mph|km/h|metres?|m\b|feet|seconds?|years?|points|tonnes?|%|am|pm|"
                       r"miles?|mg|microgrammes|kg|cm|mm|lengths)|£\s?\d", re.I)
Vectors = Callable[[list[str]], np.ndarray]
"""Unit embedding vectors of some texts (SentenceSimilarity.vectors: cached by text)."""


@lru_cache(maxsize=2)
def road_users(path: Path = ROAD_USERS_PATH) -> tuple[dict[str, re.Pattern], re.Pattern]:
    """(section name -> how a question names its road user, driving words) from road_users.yaml."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    named = {sec: re.compile(u["named"], re.I) for u in data["road_users"] for sec in u["sections"]}
    return named, re.compile(data["driving"], re.I)


def road_user_fit(question: str, section: str) -> tuple[float, float, float]:
    """(named, unnamed, named while driving) for a passage of a road user's own part of the Code
    (pedestrians, cyclists, horse riders...): the question names that road user; it names none;
    it names them and speaks of driving (a driver passing a cyclist, not the cyclist's own rules).
    (0, 0, 0) for every other passage. Pure."""
    named, driving = road_users()
    pattern = named.get(section)
    if pattern is None:
        return 0.0, 0.0, 0.0
    if not pattern.search(question):
        return 0.0, 1.0, 0.0
    return 1.0, 0.0, float(bool(driving.search(question)))


def features(question: str, passages: Sequence[Passage], qvec: np.ndarray, vectors: Vectors) -> np.ndarray:
    """One row of :data:`FEATURES` per passage (retrieval order). Pure given ``vectors``."""
    n = len(passages)
    if not n:
        return np.zeros((0, len(FEATURES)))
    qterms = set(terms(question))
    docs = [set(terms(p.title + " " + p.text)) for p in passages]
    df = Counter(t for d in docs for t in d & qterms)
    weight = {t: math.log(1 + (n + 1) / (1 + df[t])) for t in qterms}
    total = sum(weight.values()) or 1.0
    numeric = wants_number(question)
    wanted = cue_table.active(question)
    top = passages[0].score
    sents = [[s.text for s in passage_sentences(p)] or [p.text] for p in passages]
    flat = [s for ss in sents for s in ss]
    sims = vectors(flat) @ qvec if flat else np.zeros(0)
    titles = vectors([p.title or p.id for p in passages]) @ qvec
    whole = vectors([p.text for p in passages]) @ qvec
    rows, at = [], 0
    for i, p in enumerate(passages):
        own = np.sort(sims[at:at + len(sents[i])])[::-1]
        at += len(sents[i])
        title = set(terms(p.title))
        rows.append([
            p.score, p.score - top, 1.0 / (i + 1),
            float(own[0]) if len(own) else 0.0, float(own[1]) if len(own) > 1 else float(own[0]) if len(own) else 0.0,
            float(titles[i]), float(whole[i]),
            sum(weight[t] for t in qterms & docs[i]) / total,
            sum(weight[t] for t in qterms & title) / total,
            float(numeric and bool(_QUANTITY.search(p.text))),
            max((cue_table.matches(s, wanted) for s in sents[i]), default=0) / max(len(wanted), 1) if wanted else 0.0,
            0.0 if re.fullmatch(r"H?\d+[a-z]?(-figure)?", p.id) else 1.0,
            *road_user_fit(question, p.section),
        ])
    return np.asarray(rows, dtype=np.float64)


@dataclass(frozen=True)
class Reranker:
    """A fitted pointwise logistic model: score = w . (features - mean) / scale + bias."""

    model_id: str
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float
    candidates: int
    """How many of the retriever's rules are re-ordered."""
    info: dict

    def scores(self, x: np.ndarray) -> np.ndarray:
        """The model's score (log-odds that the rule holds the answer) of each feature row. Pure."""
        return ((x - self.mean) / self.scale) @ self.weights + self.bias

    def order(self, x: np.ndarray) -> list[int]:
        """Row indices best first (ties keep the retriever's order). Pure."""
        s = self.scores(x)
        return sorted(range(len(s)), key=lambda i: (-s[i], i))


def to_table(model: Reranker) -> dict:
    """The YAML-ready table of a model."""
    r = lambda v: [round(float(x), 6) for x in v]  # noqa: E731
    return {"model_id": model.model_id, "features": list(FEATURES), "candidates": model.candidates,
            "bias": round(model.bias, 6), "mean": r(model.mean), "scale": r(model.scale),
            "weights": r(model.weights), "info": model.info}


def save(model: Reranker, path: Path = MODEL_PATH) -> None:
    """Write the model's table to ``path``."""
    header = ("# Rule re-ranker: written by bench/fit_rerank.py (fitted on the dev split only).\n"
              "# score = weights . (features - mean) / scale + bias; rules re-ordered by score.\n")
    path.write_text(header + yaml.safe_dump(to_table(model), sort_keys=False, width=120), encoding="utf-8")


@lru_cache(maxsize=4)
def load(path: Path = MODEL_PATH) -> Reranker | None:
    """The model in ``path``, or None (logged) when missing or malformed."""
    if not path.is_file():
        return None
    try:
        d = yaml.safe_load(path.read_text(encoding="utf-8"))
        if list(d["features"]) != list(FEATURES):
            raise ValueError(f"features {d['features']} != {list(FEATURES)}")
        arr = lambda k: np.asarray(d[k], dtype=np.float64)  # noqa: E731
        return Reranker(str(d["model_id"]), arr("mean"), arr("scale"), arr("weights"), float(d["bias"]),
                        int(d["candidates"]), dict(d.get("info") or {}))
    except (OSError, KeyError, TypeError, ValueError, yaml.YAMLError) as err:
        log.warning("re-ranker %s unusable (%s): keeping the retriever's order", path, err)
        return None


def rerank(model: Reranker, question: str, passages: Sequence[Passage], qvec: np.ndarray,
           vectors: Vectors) -> tuple[Passage, ...]:
    """The first ``model.candidates`` passages re-ordered by the model, the rest after them."""
    head, tail = list(passages[:model.candidates]), list(passages[model.candidates:])
    if len(head) < 2 or not question.strip():
        return tuple(passages)
    order = model.order(features(question, head, qvec, vectors))
    return tuple([head[i] for i in order] + tail)
