"""The persisted index: chunk embeddings in FAISS plus BM25, rebuilt when sources or model change.

Layout of ``knowledge/index/`` (git-ignored): ``chunks.jsonl`` (one chunk per line, row order of
the vectors), ``vectors.faiss`` (IndexFlatIP over L2-normalised vectors: cosine similarity) and
``meta.json``, written last, holding the content hash of everything the index depends on (source
files, embedding model files, encoder backend, chunking settings). A different hash, or a missing or corrupt file,
means a rebuild.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
from collections.abc import Callable
from contextlib import AbstractContextManager as ContextManager
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vehicle_assist import clock, paths
from vehicle_assist.config import KnowledgeSettings
from vehicle_assist.fetch import sha256_of
from vehicle_assist.knowledge import KnowledgeError, adapter, corpus
from vehicle_assist.knowledge.corpus import Chunk, Record, SourceSpec
from vehicle_assist.knowledge.normalize import bm25_tokens

log = logging.getLogger(__name__)

INDEX_VERSION = 5
"""Bump when the chunking or the on-disk layout changes: every index is then rebuilt."""

_FILES = ("meta.json", "chunks.jsonl", "vectors.faiss", adapter.FILE)


@dataclass
class KnowledgeIndex:
    """Everything retrieval needs in memory: chunks, their vectors (FAISS), BM25, full records."""

    chunks: list[Chunk]
    records: dict[str, Record]
    sources: list[SourceSpec]
    faiss_index: object
    bm25: object
    fingerprint: str
    built: bool = False
    build_s: float = 0.0
    meta: dict = field(default_factory=dict)
    model_id: str = ""
    """Fingerprint of the embedding model the vectors come from."""
    adapter: np.ndarray | None = None
    """The query adapter's matrix (knowledge/adapter.py), fitted with every build."""

    def __len__(self) -> int:
        return len(self.chunks)


def model_fingerprint(model_path: Path) -> str:
    """Identity of the embedding model: file names and sizes, plus the bytes of small files (configs)."""
    h = hashlib.sha256(str(model_path.name).encode())
    files = [model_path] if model_path.is_file() else sorted(p for p in model_path.rglob("*") if p.is_file())
    for p in files:
        rel = p.name if p == model_path else str(p.relative_to(model_path))
        size = p.stat().st_size
        h.update(f"{rel}:{size}".encode())
        if size < 2_000_000:
            h.update(p.read_bytes())
    return h.hexdigest()


def fingerprint(settings: KnowledgeSettings, specs: list[SourceSpec], model_id: str, encoder: str) -> str:
    """Content hash of what the index is built from (``encoder``: the backend name, e.g. "onnx");
    any change means a rebuild."""
    h = hashlib.sha256(f"v{INDEX_VERSION}|{model_id}|encoder={encoder}|{settings.max_tokens}|"
                       f"{settings.chunk_overlap_sentences}|{settings.exclude_ids}|{_adapter_key(settings)}".encode())
    for spec in specs:
        for path in corpus.source_files(spec):
            if not path.is_file():
                raise KnowledgeError("source-missing", f"{path} not found: run `vehicle-assist fetch knowledge`")
            h.update(f"{spec.id}:{path.name}:{sha256_of(path)}".encode())
    return h.hexdigest()


def _adapter_key(settings: KnowledgeSettings) -> str:
    """What the stored adapter depends on besides sources and model (not ``adapter_weight``: the
    adapter is always fitted, the weight only says how much of it a query uses): its fitting
    settings and the labelled questions it is fitted on (their content hash)."""
    questions = adapter_questions(settings)
    return (f"adapter=v2,l2={settings.adapter_l2},epochs={settings.adapter_epochs},"
            f"questions={adapter.questions_key(questions) if questions else 'none'},"
            f"repeat={settings.adapter_question_repeat}")


def adapter_questions(settings: KnowledgeSettings) -> list[dict]:
    """The labelled questions the adapter is fitted on (``adapter_questions``, its
    ``adapter_question_split`` only); [] when none is configured or the file is missing."""
    if not settings.adapter_questions or settings.adapter_question_repeat <= 0:
        return []
    path = paths.resolve(settings.adapter_questions)
    items = adapter.labelled_questions(path, settings.adapter_question_split)
    if not items:
        log.info("no labelled questions for the query adapter at %s (split %s): pseudo-queries only",
                 path, settings.adapter_question_split)
    return items


def index_dir(settings: KnowledgeSettings) -> Path:
    """Where the index is persisted (``settings.index_dir`` under VA_HOME)."""
    return paths.resolve(settings.index_dir)


def stored_fingerprint(folder: Path) -> str | None:
    """The hash recorded with a persisted index, or None if there is no complete index."""
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if not all((folder / f).is_file() for f in _FILES):
        return None
    return meta.get("fingerprint")


class Bm25:
    """BM25 (Okapi, rank-bm25's parameters and idf) with each term's per-chunk score precomputed:
    a query's scores are a sum of rows (same numbers as ``BM25Okapi.get_scores``, ~100x faster)."""

    def __init__(self, okapi) -> None:
        self.idf: dict[str, float] = dict(okapi.idf)
        self.row = {term: i for i, term in enumerate(self.idf)}
        doc_len = np.asarray(okapi.doc_len, dtype=np.float64)
        norm = okapi.k1 * (1 - okapi.b + okapi.b * doc_len / okapi.avgdl)
        weights = np.zeros((len(self.row), len(doc_len)), dtype=np.float64)
        for d, freqs in enumerate(okapi.doc_freqs):
            for term, tf in freqs.items():
                weights[self.row[term], d] = self.idf[term] * tf * (okapi.k1 + 1) / (tf + norm[d])
        self.weights = weights
        self.size = len(doc_len)

    def get_scores(self, tokens: list[str]) -> np.ndarray:
        """BM25 score of every chunk for the query ``tokens`` (repeats count, unknown words add 0)."""
        rows = [self.row[t] for t in tokens if t in self.row]
        return self.weights[rows].sum(axis=0) if rows else np.zeros(self.size)


def build_bm25(chunks: list[Chunk]) -> Bm25:
    """A BM25 (Okapi) index over the chunks' title + text."""
    from rank_bm25 import BM25Okapi

    return Bm25(BM25Okapi([bm25_tokens(c.embed_text) or ["_"] for c in chunks]))


Progress = Callable[[str, int], ContextManager[Callable[..., None]]]
"""``progress(description, total)``: a context giving ``advance(n=1)`` (the CLI hands in its progress bar)."""


def _progress(progress: Progress | None, total: int) -> ContextManager[Callable[..., None]]:
    if not callable(progress):
        return nullcontext(lambda n=1: None)
    return progress("embedding rule passages", total)


def build(settings: KnowledgeSettings, encoder, specs: list[SourceSpec], records: list[Record],
          fp: str, folder: Path, progress: Progress | None = None
          ) -> tuple[list[Chunk], object, float, np.ndarray]:
    """Chunk, embed, fit the query adapter and write the index to ``folder``; returns
    (chunks, faiss index, seconds, adapter matrix)."""
    import faiss

    t0 = clock.perf_ns()
    skip = re.compile(settings.exclude_ids) if settings.exclude_ids else None
    indexed = [r for r in records if not (skip and skip.search(r.id))]
    window = min(settings.max_tokens, encoder.max_tokens)  # another embedder may read fewer tokens
    chunks = corpus.build_chunks(indexed, encoder.count_tokens, window, settings.chunk_overlap_sentences)
    with _progress(progress, len(chunks)) as advance:
        vectors = encoder.encode([c.embed_text for c in chunks], on_batch=advance, parallel=True)
    fidx = faiss.IndexFlatIP(vectors.shape[1])
    fidx.add(vectors)
    t_adapter = clock.perf_ns()
    matrix, n_pseudo, n_questions = adapter.build(
        indexed, [c.rule_id for c in chunks], vectors, encoder, settings.adapter_l2, settings.adapter_epochs,
        adapter_questions(settings), settings.adapter_question_repeat)
    adapter_s = (clock.perf_ns() - t_adapter) / 1e9
    build_s = (clock.perf_ns() - t0) / 1e9
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "meta.json").unlink(missing_ok=True)  # an interrupted write leaves no valid index
    part = f".{os.getpid()}.partial"  # two processes building at once never share a temporary file
    adapter.save(folder, matrix, adapter.FILE + part)
    os.replace(folder / (adapter.FILE + part), folder / adapter.FILE)
    tmp = folder / ("chunks.jsonl" + part)
    with tmp.open("w", encoding="utf-8") as f:
        for c in chunks:
            f.write(json.dumps(dataclasses.asdict(c), ensure_ascii=False) + "\n")
    os.replace(tmp, folder / "chunks.jsonl")
    faiss.write_index(fidx, str(folder / ("vectors.faiss" + part)))
    os.replace(folder / ("vectors.faiss" + part), folder / "vectors.faiss")
    meta = {"fingerprint": fp, "version": INDEX_VERSION, "chunks": len(chunks), "records": len(records),
            "dim": int(vectors.shape[1]), "encoder": encoder.name, "build_s": round(build_s, 3),
            "adapter_s": round(adapter_s, 3), "pseudo_queries": n_pseudo,
            "adapter_questions": n_questions,
            "sources": [s.id for s in specs], "built_unix": round(clock.unix_time(), 1)}
    tmp = folder / ("meta.json" + part)
    tmp.write_text(json.dumps(meta, indent=1), encoding="utf-8")
    os.replace(tmp, folder / "meta.json")
    return chunks, fidx, build_s, matrix


def _read(folder: Path) -> tuple[list[Chunk], object, dict, np.ndarray]:
    import faiss

    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    chunks = [Chunk(**json.loads(line)) for line in
              (folder / "chunks.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    fidx = faiss.read_index(str(folder / "vectors.faiss"))
    if fidx.ntotal != len(chunks) or len(chunks) != meta.get("chunks"):
        raise ValueError(f"{fidx.ntotal} vectors for {len(chunks)} chunks")
    matrix = adapter.load(folder / adapter.FILE)  # missing or bad: OSError / ValueError -> rebuild
    if matrix.shape[0] != fidx.d:
        raise ValueError(f"adapter is {matrix.shape[0]}-d for {fidx.d}-d vectors")
    return chunks, fidx, meta, matrix


def open_index(settings: KnowledgeSettings, encoder, model_id: str, progress: Progress | None = None,
               rebuild: bool = False, on_event: Callable[[str], None] | None = None) -> KnowledgeIndex:
    """Load the persisted index if its hash matches the sources and model, else (re)build it."""
    specs = corpus.load_catalogue(settings)
    records = [r for spec in specs for r in corpus.read_records(spec)]
    fp = fingerprint(settings, specs, model_id, encoder.name)
    folder = index_dir(settings)
    chunks = fidx = matrix = None
    meta: dict = {}
    built, build_s = False, 0.0
    if not rebuild and stored_fingerprint(folder) == fp:
        try:
            chunks, fidx, meta, matrix = _read(folder)
        except (OSError, ValueError, RuntimeError, TypeError, json.JSONDecodeError) as err:
            log.warning("index at %s unreadable (%s): rebuilding", folder, err)
            if on_event:
                on_event(f"index unreadable ({err}): rebuilding")
    elif on_event:
        on_event("building index" if stored_fingerprint(folder) is None else "sources or model changed: rebuilding index")
    if chunks is None:
        chunks, fidx, build_s, matrix = build(settings, encoder, specs, records, fp, folder, progress)
        built = True
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    return KnowledgeIndex(chunks=chunks, records={r.id: r for r in records}, sources=specs,
                          faiss_index=fidx, bm25=build_bm25(chunks), fingerprint=fp, built=built,
                          build_s=build_s, meta=meta, model_id=model_id, adapter=matrix)
