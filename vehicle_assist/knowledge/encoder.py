"""Sentence embeddings for the index and for queries: the embedder's transformer + mean pooling.

Two backends with one interface (``name``, ``dim``, ``max_tokens``, ``count_tokens``, ``encode``):
``OnnxEncoder`` (default: onnxruntime + fast tokenizer, no torch) and ``Encoder`` (torch). The
torch one wraps the sentence-transformers model loaded by ``models.load_embedder`` (vendor objects
stay in here). Queries take a short fast path (one forward pass under ``torch.inference_mode``, no
DataLoader); ``int8=True`` applies dynamic int8 quantisation to the Linear layers (faster, slightly
different vectors: the index records which was used).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable

import numpy as np


class Encoder:
    """Turns texts into L2-normalised float32 vectors (one row per text)."""

    def __init__(self, embedder, int8: bool = False, threads: int | None = None) -> None:
        import torch

        self._torch = torch
        self.embedder = embedder
        self.tokenizer = embedder.tokenizer
        self.max_tokens = int(getattr(embedder, "max_seq_length", 256) or 256)
        self.int8 = int8
        self.name = "torch-int8" if int8 else "torch"
        if threads:
            torch.set_num_threads(threads)
        model = embedder[0].auto_model
        model.eval()
        pooling = embedder[1] if len(embedder) > 1 else None
        self._mean_pooling = bool(getattr(pooling, "pooling_mode_mean_tokens", False))
        if int8:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        self._model = model
        get_dim = getattr(embedder, "get_embedding_dimension", None) or embedder.get_sentence_embedding_dimension
        self.dim = int(get_dim())

    def count_tokens(self, text: str) -> int:
        """Tokens the model would read for ``text`` (special tokens included, no truncation)."""
        return len(self.tokenizer(text, add_special_tokens=True, truncation=False)["input_ids"])

    def encode(self, texts: list[str], batch_size: int = 32,
               on_batch: Callable[[int], None] | None = None, parallel: bool = False) -> np.ndarray:
        """Embed ``texts`` (longest first inside, original order out); ``on_batch(n)`` after each batch.
        ``parallel`` is accepted for the common interface (torch uses its own thread setting)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if not self._mean_pooling and not self.int8:  # another pooling: let the library do it
            out = self.embedder.encode(texts, batch_size=batch_size, normalize_embeddings=True)
            if on_batch:
                on_batch(len(texts))
            return np.asarray(out, dtype=np.float32)
        torch = self._torch
        order = np.argsort([-len(t) for t in texts], kind="stable")
        result = np.zeros((len(texts), self.dim), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                idx = order[start:start + batch_size]
                batch = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                       max_length=self.max_tokens, return_tensors="pt")
                hidden = self._model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                vecs = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                vecs = torch.nn.functional.normalize(vecs, dim=1)
                result[idx] = vecs.numpy()
                if on_batch:
                    on_batch(len(idx))
        return result


class OnnxEncoder:
    """Turns texts into L2-normalised float32 vectors with the ONNX embedder (no torch).

    Queries and other callers run on the embedder's session (``runtime.threads.embedder`` threads).
    ``encode(..., parallel=True)`` (the index build, offline) runs its batches on ``build_threads``
    worker threads at once (default: all cores), all on that same session: batch-level parallelism needs no second copy of the model and,
    unlike intra-op threads, does not stall when other processes hold the cores. Texts are
    tokenised once and batched by token length, so padding is minimal."""

    name = "onnx"
    int8 = False

    def __init__(self, embedder, build_threads: int | None = None) -> None:
        self.embedder = embedder
        self.max_tokens = embedder.max_tokens
        self.dim = embedder.dim
        self.build_threads = build_threads or os.cpu_count() or 1

    def count_tokens(self, text: str) -> int:
        """Tokens the model would read for ``text`` (special tokens included, no truncation)."""
        return self.embedder.count_tokens(text)

    def encode(self, texts: list[str], batch_size: int = 16,
               on_batch: Callable[[int], None] | None = None, parallel: bool = False) -> np.ndarray:
        """Embed ``texts`` (batched by length inside, original order out); ``on_batch(n)`` after each
        batch; ``parallel``: batches on ``build_threads`` workers."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        ids = self.embedder.token_ids(texts)
        order = np.argsort([len(x) for x in ids], kind="stable")
        batches = [order[i:i + batch_size] for i in range(0, len(texts), batch_size)]
        result = np.zeros((len(texts), self.dim), dtype=np.float32)

        def run(idx: np.ndarray) -> np.ndarray:
            result[idx] = self.embedder.embed_ids([ids[i] for i in idx])
            return idx

        workers = min(self.build_threads, len(batches)) if parallel else 1
        if workers <= 1:
            for idx in batches:
                run(idx)
                if on_batch:
                    on_batch(len(idx))
            return result
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(workers, thread_name_prefix="embed") as pool:
            for idx in pool.map(run, batches[::-1]):  # longest first: the pool ends on short batches
                if on_batch:
                    on_batch(len(idx))
        return result
