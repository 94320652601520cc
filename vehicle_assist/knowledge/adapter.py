"""Query adapter: a linear map on the (frozen) query embedding, learned from the Code itself.

Pseudo-queries are built from the indexed rules' own text (each rule's title, "section. title" and
every sentence, tables as row sentences), each labelled with its rule. A matrix ``W`` (dim x dim,
starting at zero) is fitted with numpy so that ``q + q @ W`` (L2-normalised) ranks the chunks of the
pseudo-query's own rule above every other chunk (softmax over all chunk cosines at temperature
``tau``, the rule's chunks as positives, L2 penalty ``l2`` on ``W``, Adam). At query time the dense
score is ``(1 - weight) * cos(q, c) + weight * cos(adapted q, c)``; answerability keeps the raw
cosine. The matrix is stored beside the index (``adapter.npz``) and rebuilt with it: a changed
source gives new pseudo-queries and a new matrix. No evaluation question is used to fit it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vehicle_assist.knowledge.corpus import Record, linearize_tables

FILE = "adapter.npz"
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")
_SENT_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(])")


def pseudo_queries(records: list[Record]) -> tuple[list[str], list[str]]:
    """(texts, rule ids): each record's title, "section. title", and every sentence of its text
    (bullets stripped, tables as one sentence per row), at least 2 words each, no repeats per rule."""
    texts: list[str] = []
    ids: list[str] = []
    for rec in records:
        seen: set[str] = set()

        def add(text: str) -> None:
            text = " ".join(text.split()).strip(" :;")
            if len(text.split()) >= 2 and text not in seen:
                seen.add(text)
                texts.append(text)
                ids.append(rec.id)

        add(rec.title)
        if rec.section and rec.section != rec.title:
            add(f"{rec.section}. {rec.title}")
        for line in linearize_tables(rec.text).splitlines():
            line = _BULLET.sub("", line).strip()
            for sentence in _SENT_END.split(line):
                add(sentence)
    return texts, ids


def fit(queries: np.ndarray, labels: np.ndarray, chunk_vectors: np.ndarray, chunk_labels: np.ndarray,
        l2: float = 0.1, tau: float = 0.05, epochs: int = 10, lr: float = 1e-3, batch: int = 256,
        seed: int = 0) -> np.ndarray:
    """The matrix ``W`` (dim x dim) from pseudo-query vectors and their labels (integers matching
    ``chunk_labels``). Deterministic for a given seed. Pure numpy."""
    x_all = np.asarray(queries, dtype=np.float32)
    c = np.asarray(chunk_vectors, dtype=np.float32)
    dim = c.shape[1]
    w = np.zeros((dim, dim), dtype=np.float32)
    if len(x_all) == 0 or len(c) == 0:
        return w
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    rng = np.random.default_rng(seed)
    step = 0
    for _ in range(epochs):
        order = rng.permutation(len(x_all))
        for start in range(0, len(order), batch):
            idx = order[start:start + batch]
            x = x_all[idx]
            positive = chunk_labels[None, :] == labels[idx, None]
            logits = (x + x @ w) @ c.T / tau
            logits -= logits.max(axis=1, keepdims=True)
            p = np.exp(logits)
            p /= p.sum(axis=1, keepdims=True)
            target = p * positive
            target /= np.maximum(target.sum(axis=1, keepdims=True), 1e-12)
            grad_q = ((p - target) / (tau * len(idx))) @ c
            grad = x.T @ grad_q + l2 * w
            step += 1
            m = 0.9 * m + 0.1 * grad
            v = 0.999 * v + 0.001 * grad * grad
            w -= lr * (m / (1 - 0.9 ** step)) / (np.sqrt(v / (1 - 0.999 ** step)) + 1e-8)
    return w


@dataclass(frozen=True)
class QueryAdapter:
    """The fitted map and how much of the adapted cosine the dense score takes."""

    matrix: np.ndarray
    weight: float = 0.5

    def apply(self, vec: np.ndarray, weight: float | None = None) -> np.ndarray:
        """The query vector to score chunks with: ``(1 - weight) q + weight normalise(q + q W)``
        (its dot product with a chunk is the same mix of the two cosines); ``weight`` overrides
        the stored one."""
        weight = self.weight if weight is None else weight
        if weight <= 0:
            return vec
        adapted = vec + vec @ self.matrix
        adapted = adapted / max(float(np.linalg.norm(adapted)), 1e-12)
        return ((1 - weight) * vec + weight * adapted).astype(np.float32)


def build(records: list[Record], chunk_rule_ids: list[str], chunk_vectors: np.ndarray, encoder,
          l2: float, epochs: int) -> tuple[np.ndarray, int]:
    """Embed the pseudo-queries of ``records`` and fit ``W``; returns (W, number of pseudo-queries)."""
    texts, ids = pseudo_queries(records)
    known = {rid: i for i, rid in enumerate(dict.fromkeys(chunk_rule_ids))}
    keep = [i for i, rid in enumerate(ids) if rid in known]
    texts = [texts[i] for i in keep]
    labels = np.array([known[ids[i]] for i in keep], dtype=np.int64)
    vectors = encoder.encode(texts, parallel=True) if texts else np.zeros((0, chunk_vectors.shape[1]))
    chunk_labels = np.array([known[r] for r in chunk_rule_ids], dtype=np.int64)
    return fit(vectors, labels, chunk_vectors, chunk_labels, l2=l2, epochs=epochs), len(texts)


def save(folder: Path, matrix: np.ndarray, name: str = FILE) -> None:
    """Write ``W`` (float32) to ``folder/name``."""
    with (folder / name).open("wb") as f:
        np.savez(f, matrix=matrix.astype(np.float32))


def load(path: Path) -> np.ndarray:
    """``W`` from an ``adapter.npz`` (OSError when missing, ValueError when it is not one)."""
    import zipfile

    try:
        with np.load(path) as data:
            matrix = data["matrix"] if "matrix" in data else None
            if matrix is None or matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
                raise ValueError(f"{path} holds no square adapter matrix")
            return matrix.astype(np.float32)
    except (zipfile.BadZipFile, EOFError, AttributeError) as err:
        raise ValueError(f"{path} is not an adapter file: {err}") from err
