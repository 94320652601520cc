"""Query adapter: a linear map on the (frozen) query embedding, learned from the Code itself.

Pseudo-queries are built from the indexed rules' own text (each rule's title, "section. title" and
every sentence, tables as row sentences), each labelled with its rule. A matrix ``W`` (dim x dim,
starting at zero) is fitted with numpy so that ``q + q @ W`` (L2-normalised) ranks the chunks of the
pseudo-query's own rule above every other chunk (softmax over all chunk cosines at temperature
``tau``, the rule's chunks as positives, L2 penalty ``l2`` on ``W``, Adam). At query time the dense
score is ``(1 - weight) * cos(q, c) + weight * cos(adapted q, c)``; answerability keeps the raw
cosine. The matrix is stored beside the index (``adapter.npz``) and rebuilt with it: a changed
source gives new pseudo-queries and a new matrix.

Labelled driver questions can be added to the fit (``knowledge.adapter_questions``: the dev split of
bench/data/questions.jsonl by default, each repeated ``adapter_question_repeat`` times, normalised
and scene-expanded exactly as a search does, every gold rule a positive). Only the configured split
is read: the test split is never fitted on.
"""

from __future__ import annotations

import hashlib
import json
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


def labelled_questions(path: Path, split: str) -> list[dict]:
    """The answerable items of ``split`` in a questions JSONL file (``question``, ``scene``,
    ``rule_ids``); [] when the file is missing. Items of other splits are skipped unread."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        if not line.strip():
            continue
        item = json.loads(line)
        if item.get("split") == split and item.get("answerable") and item.get("rule_ids"):
            out.append({"question": item.get("question") or "", "scene": item.get("scene"),
                        "rule_ids": list(item["rule_ids"])})
    return out


def questions_key(items: list[dict]) -> str:
    """Content hash of the labelled questions a fit uses (part of the index fingerprint)."""
    return hashlib.sha256(json.dumps(items, sort_keys=True).encode()).hexdigest()[:16]


def question_texts(items: list[dict]) -> list[str]:
    """Each labelled question as the retriever searches it: question + scene query, normalised."""
    from vehicle_assist.knowledge.normalize import load_terms, normalize, scene_query
    from vehicle_assist.messages import Scene

    terms = load_terms()
    texts = []
    for it in items:
        parts = [it["question"].strip()] if it["question"].strip() else []
        if it.get("scene"):
            parts.append(scene_query(Scene(**it["scene"]), terms))
        texts.append(normalize(". ".join(parts), terms))
    return texts


def fit(queries: np.ndarray, labels: np.ndarray, chunk_vectors: np.ndarray, chunk_labels: np.ndarray,
        l2: float = 0.1, tau: float = 0.05, epochs: int = 10, lr: float = 1e-3, batch: int = 256,
        seed: int = 0, sample_weight: np.ndarray | None = None) -> np.ndarray:
    """The matrix ``W`` (dim x dim) from query vectors and their labels: integers matching
    ``chunk_labels`` (one rule per query), or a boolean matrix (queries x rules) when a query has
    several gold rules (each rule's chunks are positives). ``sample_weight`` (one per query) scales
    each query's loss; without it every query weighs 1 (the same arithmetic as before it existed).
    Deterministic for a given seed. Pure numpy."""
    x_all = np.asarray(queries, dtype=np.float32)
    labels = np.asarray(labels)
    c = np.asarray(chunk_vectors, dtype=np.float32)
    dim = c.shape[1]
    w = np.zeros((dim, dim), dtype=np.float32)
    if len(x_all) == 0 or len(c) == 0:
        return w
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight, dtype=np.float32)
        if sample_weight.shape != (len(x_all),):
            raise ValueError(f"sample_weight has shape {sample_weight.shape}, expected ({len(x_all)},)")
    rng = np.random.default_rng(seed)
    step = 0
    for _ in range(epochs):
        order = rng.permutation(len(x_all))
        for start in range(0, len(order), batch):
            idx = order[start:start + batch]
            x = x_all[idx]
            positive = (labels[idx][:, chunk_labels] if labels.ndim == 2
                        else chunk_labels[None, :] == labels[idx, None])
            logits = (x + x @ w) @ c.T / tau
            logits -= logits.max(axis=1, keepdims=True)
            p = np.exp(logits)
            p /= p.sum(axis=1, keepdims=True)
            target = p * positive
            target /= np.maximum(target.sum(axis=1, keepdims=True), 1e-12)
            residual = p - target
            if sample_weight is not None:
                residual = residual * sample_weight[idx, None]
            grad_q = (residual / (tau * len(idx))) @ c
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
          l2: float, epochs: int, questions: list[dict] | None = None, repeat: int = 1
          ) -> tuple[np.ndarray, int, int]:
    """Embed the pseudo-queries of ``records`` (and the labelled ``questions``, each ``repeat``
    times) and fit ``W``; returns (W, number of pseudo-queries, number of questions used)."""
    texts, ids = pseudo_queries(records)
    known = {rid: i for i, rid in enumerate(dict.fromkeys(chunk_rule_ids))}
    keep = [i for i, rid in enumerate(ids) if rid in known]
    texts = [texts[i] for i in keep]
    label_sets = [[known[ids[i]]] for i in keep]
    n_pseudo = len(texts)
    used = [q for q in (questions or []) if any(r in known for r in q["rule_ids"])]
    if used and repeat > 0:
        q_sets = [[known[r] for r in q["rule_ids"] if r in known] for q in used]
        texts += question_texts(used)
        label_sets += q_sets
    vectors = encoder.encode(texts, parallel=True) if texts else np.zeros((0, chunk_vectors.shape[1]))
    if used and repeat > 1:  # repeats weigh the questions against the many pseudo-queries
        vectors = np.concatenate([vectors] + [vectors[n_pseudo:]] * (repeat - 1))
        label_sets += label_sets[n_pseudo:] * (repeat - 1)
    member = np.zeros((len(label_sets), len(known)), dtype=bool)
    for i, s in enumerate(label_sets):
        member[i, s] = True
    chunk_labels = np.array([known[r] for r in chunk_rule_ids], dtype=np.int64)
    n_questions = len(used) if repeat > 0 else 0
    return fit(vectors, member, chunk_vectors, chunk_labels, l2=l2, epochs=epochs), n_pseudo, n_questions


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
