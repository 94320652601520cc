"""Semantic sentence similarity for the extractive answerer, with a persistent embedding cache.

Sentence embeddings (the knowledge lane's embedder, all-MiniLM-L6-v2 by default) are cached by
text hash in ``$VA_CACHE/advisory/sentences-<model>.npz``, so a question costs one query embedding
once the corpus sentences are cached (:meth:`SentenceSimilarity.prewarm`).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from vehicle_assist import paths
from vehicle_assist.advisory.text import passage_sentences
from vehicle_assist.messages import Passage

log = logging.getLogger(__name__)


def _key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


class SentenceSimilarity:
    """``sim(question, sentences) -> cosines``; sentence vectors come from the cache when present."""

    def __init__(self, encode: Callable[[list[str]], np.ndarray], name: str = "embedder",
                 cache_dir: Path | None = None) -> None:
        self.encode = encode
        self.path = (cache_dir or paths.cache() / "advisory") / f"sentences-{name}.npz"
        self._vecs: dict[str, np.ndarray] = {}
        self._dirty = False
        self._lock = threading.Lock()
        self._load()

    def _load(self) -> None:
        if not self.path.is_file():
            return
        try:
            with np.load(self.path) as data:
                self._vecs = dict(zip(data["keys"].tolist(), data["vecs"]))
        except Exception as err:  # a corrupt cache is rebuilt, never fatal
            log.warning("sentence cache %s unreadable (%s); rebuilding", self.path, err)
            self._vecs = {}

    def save(self) -> None:
        """Write the cache if new sentences were embedded."""
        with self._lock:
            if not self._dirty or not self._vecs:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            keys = list(self._vecs)
            tmp = self.path.with_suffix(".tmp.npz")
            np.savez(tmp, keys=np.array(keys), vecs=np.stack([self._vecs[k] for k in keys]))
            tmp.replace(self.path)
            self._dirty = False

    @classmethod
    def for_retriever(cls, retriever: Any) -> "SentenceSimilarity":
        """Share the knowledge lane's query encoder (same model, same int8 setting as its index)."""
        enc = retriever.encoder
        from vehicle_assist import models

        name = f"{models.resolve('embedder').path.parent.name}-{enc.dim}{'-int8' if enc.int8 else ''}"
        return cls(enc.encode, name)

    def _encode(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.encode(texts), dtype=np.float32)

    def query(self, question: str) -> np.ndarray:
        """The unit vector of ``question`` (embedded each time: questions are not cached)."""
        return self._encode([question])[0]

    def vectors(self, sentences: list[str]) -> np.ndarray:
        """Unit vectors of ``sentences`` (embedding and caching the ones not seen yet)."""
        keys = [_key(s) for s in sentences]
        missing = [(k, s) for k, s in zip(keys, sentences) if k not in self._vecs]
        if missing:
            vecs = self._encode([s for _, s in missing])
            with self._lock:
                for (k, _), v in zip(missing, vecs):
                    self._vecs[k] = v
                self._dirty = True
        return np.stack([self._vecs[k] for k in keys]) if keys else np.zeros((0, 1), np.float32)

    def prewarm(self, passages: Iterable[Passage], on_batch=None) -> int:
        """Embed every sentence of ``passages`` into the cache; returns how many were new."""
        sents = [s.text for p in passages for s in passage_sentences(p)]
        new = [s for s in dict.fromkeys(sents) if _key(s) not in self._vecs]
        for i in range(0, len(new), 256):
            self.vectors(new[i:i + 256])
            if on_batch:
                on_batch(min(256, len(new) - i))
        self.save()
        return len(new)

    def __call__(self, question: str, sentences: list[str]) -> list[float]:
        """Cosine similarity of ``question`` to each sentence."""
        if not sentences:
            return []
        return (self.vectors(sentences) @ self.query(question)).tolist()
