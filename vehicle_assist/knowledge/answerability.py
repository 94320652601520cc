"""Answerability: can the Highway Code answer this question? A logistic model over the query's
embedding and three retrieval features, fitted on the dev split only (``bench/fit_answerability.py``)
and stored as a data table (``answerability.yaml``: weights, bias, threshold, the embedding model
it was fitted for and its cross-validated figures)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import yaml

from vehicle_assist.knowledge.normalize import bm25_tokens

log = logging.getLogger(__name__)

MODEL_PATH = Path(__file__).with_name("answerability.yaml")
FEATURES = ("top_dense", "oov_share", "bm25_per_token")
"""Scalar features after the embedding: best dense cosine, share of the question's content words
absent from the indexed text, best BM25 score per question word. The out-of-scope table is not a
feature: it rejects on its own, so the model has to learn what is off-topic from the question
itself (dev CV: 0.84 rejected with the table beside the model vs 0.82 with it as a feature)."""


@dataclass(frozen=True)
class AnswerModel:
    """A fitted logistic model: P(answerable) = sigmoid(w_emb . v + w_feat . f + bias)."""

    model_id: str
    embedding_weights: np.ndarray
    feature_weights: np.ndarray
    bias: float
    threshold: float
    """Reject when P(answerable) is below this."""
    info: dict

    def probability(self, vector: np.ndarray, feats: np.ndarray) -> float:
        """P(answerable) for one query vector and its scalar features. Pure."""
        z = float(vector @ self.embedding_weights + feats @ self.feature_weights + self.bias)
        return float(1.0 / (1.0 + np.exp(-z)))


def features(question: str, top_dense: float, bm25_top: float, vocabulary) -> np.ndarray:
    """The scalar features of FEATURES for one question. Pure."""
    tokens = bm25_tokens(question)
    n = max(len(tokens), 1)
    oov = sum(t not in vocabulary for t in tokens) / n
    return np.array([top_dense, oov, bm25_top / n], dtype=np.float64)


def to_table(model: AnswerModel) -> dict:
    """The YAML-ready table of a model."""
    return {"model_id": model.model_id, "features": list(FEATURES), "bias": round(model.bias, 6),
            "threshold": round(model.threshold, 6), "info": model.info,
            "feature_weights": [round(float(w), 6) for w in model.feature_weights],
            "embedding_weights": [round(float(w), 6) for w in model.embedding_weights]}


def save(model: AnswerModel, path: Path = MODEL_PATH) -> None:
    """Write the model's table to ``path``."""
    header = ("# Answerability model: written by bench/fit_answerability.py (fitted on the dev split only).\n"
              "# P(answerable) = sigmoid(embedding_weights . query_vector + feature_weights . features + bias)\n")
    path.write_text(header + yaml.safe_dump(to_table(model), sort_keys=False, width=120), encoding="utf-8")


@lru_cache(maxsize=4)
def load(path: Path = MODEL_PATH) -> AnswerModel | None:
    """The model in ``path``, or None (logged) if it is missing or malformed."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if list(data["features"]) != list(FEATURES):
            raise ValueError(f"features {data['features']} != {list(FEATURES)}")
        return AnswerModel(str(data["model_id"]), np.asarray(data["embedding_weights"], dtype=np.float32),
                           np.asarray(data["feature_weights"], dtype=np.float64), float(data["bias"]),
                           float(data["threshold"]), dict(data.get("info") or {}))
    except (OSError, KeyError, TypeError, ValueError, yaml.YAMLError) as err:
        log.warning("answerability model %s unusable (%s): falling back to the similarity threshold", path, err)
        return None
