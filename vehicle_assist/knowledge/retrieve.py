"""Hybrid retrieval: dense cosine and BM25 fused per chunk by score (or by reciprocal rank), one passage per rule,
with a calibrated answerability decision and scene -> query text."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from vehicle_assist import clock
from vehicle_assist.config import KnowledgeSettings
from vehicle_assist.knowledge import KnowledgeError
from vehicle_assist.knowledge.corpus import Chunk
from vehicle_assist.knowledge.index import KnowledgeIndex, Progress
from vehicle_assist.knowledge.normalize import (
    Terms,
    bm25_tokens,
    load_terms,
    normalize,
    out_of_scope,
    scene_query,  # noqa: F401  (re-exported: scene -> query text lives with the other query rewriting)
)
from vehicle_assist.messages import Passage, Scene

MODES = ("hybrid", "dense", "bm25")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Retrieval:
    """What a search found: passages best first, whether the Code can answer, stage timings (ms)."""

    query: str
    passages: tuple[Passage, ...]
    answerable: bool
    timings: dict[str, float]
    normalized: str = ""
    """The query text actually searched (after scene expansion and normalisation)."""
    reason: str = ""
    """Why the question was judged unanswerable ("" when answerable)."""
    top_dense: float = 0.0
    """Cosine similarity of the best dense match."""
    p_answerable: float | None = None
    """P(answerable) from the answerability model (None when the model was not used)."""
    features: tuple[float, ...] = ()
    """The answerability model's scalar features (answerability.FEATURES) for this question."""


def _rule_ranking(chunk_order: np.ndarray, chunks: list[Chunk], limit: int) -> list[tuple[str, int]]:
    """Chunk indices best first -> [(rule_id, best chunk index)], one entry per rule."""
    seen: dict[str, int] = {}
    for ci in chunk_order:
        ci = int(ci)
        if ci < 0:
            continue
        rid = chunks[ci].rule_id
        if rid not in seen:
            seen[rid] = ci
            if len(seen) >= limit:
                break
    return list(seen.items())


def make_encoder(settings: KnowledgeSettings, res, embedder=None, threads: int = 1, on_event=None):
    """The query/build encoder for ``settings.encoder`` (or for the ``embedder`` passed in)."""
    from vehicle_assist import models
    from vehicle_assist.knowledge.encoder import Encoder, OnnxEncoder
    from vehicle_assist.knowledge import onnx_embed
    from vehicle_assist.knowledge.onnx_embed import OnnxEmbedder, OnnxUnavailable

    build_threads = settings.build_threads or None
    if isinstance(embedder, OnnxEmbedder):
        return OnnxEncoder(embedder, build_threads)
    if embedder is None and settings.encoder == "onnx" and not settings.embed_int8:
        try:
            return OnnxEncoder(onnx_embed.load(res, threads=threads), build_threads)
        except OnnxUnavailable as err:
            log.warning("ONNX embedder unavailable, using torch: %s", err)
            if on_event:
                on_event(f"ONNX embedder unavailable, using torch: {err}")
    embedder = embedder if embedder is not None else models.load_embedder(res)
    return Encoder(embedder, int8=settings.embed_int8, threads=threads)


class Retriever:
    """Searches the Highway Code index; load once, search many times."""

    def __init__(self, index: KnowledgeIndex, encoder, settings: KnowledgeSettings,
                 terms: Terms | None = None) -> None:
        self.index = index
        self.encoder = encoder
        self.settings = settings
        self.terms = terms or load_terms()
        self.passages_by_id: dict[str, Passage] = {
            r.id: Passage(r.id, r.section, r.title, r.text, 0.0, r.source) for r in index.records.values()
        }
        self.attribution = " ".join(s.attribution for s in index.sources)
        self.vocabulary = frozenset(getattr(index.bm25, "idf", {}))
        self.answer_model = self._answer_model()
        n = len(index.chunks)
        self.vectors = (index.faiss_index.reconstruct_n(0, n) if n else np.zeros((0, 1), dtype=np.float32))
        """Chunk vectors (row order of ``index.chunks``) for score fusion over every chunk."""
        other = self.terms.other_audience_sections
        self.audience = np.array([settings.other_audience_factor if c.section in other else 1.0
                                  for c in index.chunks], dtype=np.float32)
        """Per-chunk score factor: rules written for other road users rank lower."""
        from vehicle_assist.knowledge.adapter import QueryAdapter

        self.adapter = QueryAdapter(index.adapter, settings.adapter_weight) if index.adapter is not None else None
        """The query adapter used for ranking with ``settings.adapter_weight`` (None, or a weight of 0:
        the raw query vector ranks)."""

    def _answer_model(self):
        """The fitted answerability model when configured and fitted for this embedding model."""
        from vehicle_assist.knowledge import answerability

        if self.settings.answerability != "model":
            return None
        model = answerability.load()
        if model is not None and model.model_id != self.index.model_id:
            log.warning("answerability model fitted for another embedding model: using the similarity threshold")
            return None
        return model

    @classmethod
    def load(cls, settings: KnowledgeSettings | None = None, embedder=None, progress: Progress | None = None,
             rebuild: bool = False, on_event=None, threads: int | None = None) -> Retriever:
        """Load (or build, when sources or model changed) the index. The embedder is loaded through
        ``models`` unless one is passed: ``settings.encoder`` "onnx" (default; falls back to torch
        if the model cannot be exported) or "torch"; a passed sentence-transformers model uses
        torch, a passed ``OnnxEmbedder`` ONNX. ``threads``: embedding threads for queries (None:
        ``runtime.threads.embedder`` of the onboard config when ``settings`` is None too, else that
        table's default). ``progress``: the caller's progress bar for a (re)build (None: none)."""
        from vehicle_assist import models
        from vehicle_assist.config import ThreadSettings
        from vehicle_assist.knowledge.index import model_fingerprint, open_index

        if settings is None:
            from vehicle_assist.config import load_app

            app = load_app()
            settings, threads = app.knowledge, threads if threads is not None else app.runtime.threads.embedder
        threads = threads if threads is not None else ThreadSettings().embedder
        try:
            res = models.resolve("embedder")
        except models.ModelNotFound as err:
            raise KnowledgeError("model-missing", str(err)) from err
        encoder = make_encoder(settings, res, embedder, threads, on_event)
        index = open_index(settings, encoder, model_fingerprint(res.path), progress=progress,
                           rebuild=rebuild, on_event=on_event)
        return cls(index, encoder, settings)

    def passage(self, rule_id: str) -> Passage | None:
        """The whole record cited as ``rule_id`` (e.g. "126"), or None if there is none."""
        return self.passages_by_id.get(rule_id)

    def search(self, text: str, scene: Scene | None = None, k: int | None = None, *,
               mode: str = "hybrid", normalize_query: bool | None = None) -> Retrieval:
        """Find the rules for a question and/or a scene; one passage per rule, best first."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        s = self.settings
        k = k or s.k
        timings: dict[str, float] = {}
        t0 = clock.perf_ns()
        text = (text or "").strip()
        parts = [text] if text else []
        if scene is not None:
            parts.append(scene_query(scene, self.terms))
        raw = ". ".join(parts)
        do_norm = s.normalize_queries if normalize_query is None else normalize_query
        query = normalize(raw, self.terms) if do_norm and raw else raw
        scope = out_of_scope(text, self.terms) if (s.reject_out_of_scope and text) else None
        timings["normalize_ms"] = (clock.perf_ns() - t0) / 1e6
        if not query or not any(ch.isalnum() for ch in query) or not self.index.chunks:
            timings["total_ms"] = (clock.perf_ns() - t0) / 1e6
            return Retrieval(text, (), False, timings, query, "empty")
        chunks = self.index.chunks
        t = clock.perf_ns()
        vec = self.encoder.encode([query])
        q = vec[0]  # one view: ``rank_vec is q`` below tells the raw vector (no adapter) from an adapted one
        rank_vec = self.adapter.apply(q, s.adapter_weight) if self.adapter is not None and s.adapter_weight > 0 else q
        timings["embed_ms"] = (clock.perf_ns() - t) / 1e6
        if mode == "hybrid" and s.fusion == "score":
            ordered, best_chunk, fused, top_dense, bm25_top = self._score_fusion(q, rank_vec, query, k,
                                                                                 timings)
        else:
            ordered, best_chunk, fused, top_dense, bm25_top = self._rank_fusion(vec, rank_vec[None, :], query,
                                                                                k, mode, text, timings)
        t = clock.perf_ns()
        passages = tuple(self._passage_of(chunks[best_chunk[rid]], fused[rid]) for rid in ordered)
        timings["fuse_ms"] = timings.get("fuse_ms", 0.0) + (clock.perf_ns() - t) / 1e6
        reason, p_ok, feats = "", None, ()
        if text:
            from vehicle_assist.knowledge.answerability import features

            feats = features(text, top_dense, bm25_top, self.vocabulary)
            if self.answer_model is not None:
                p_ok = self.answer_model.probability(vec[0], feats)
        if scope:
            reason = f"out-of-scope:{scope}"
        elif p_ok is not None:
            reason = f"low-answerability:{p_ok:.2f}" if p_ok < self.answer_model.threshold else ""
        elif top_dense < s.reject_min_dense:
            reason = f"low-similarity:{top_dense:.2f}"
        timings["total_ms"] = (clock.perf_ns() - t0) / 1e6
        return Retrieval(text or query, passages, not reason and bool(passages), timings, query,
                         reason, top_dense, p_ok, tuple(float(f) for f in feats))

    def _score_fusion(self, vec: np.ndarray, rank_vec: np.ndarray, query: str, k: int,
                      timings: dict[str, float]):
        """Per chunk: (dense + w / (1 + BM25 rank / scale)) x audience factor, over every chunk
        (chunks without a query word get no bonus), where dense is the cosine with ``rank_vec``
        (the query vector, adapted when the adapter is on); a rule scores as its best chunk. Returns
        (rule ids best first, best chunk per rule, score per rule, top raw cosine of ``vec``, top BM25)."""
        t = clock.perf_ns()
        dense = self.vectors @ rank_vec
        top_dense = float((self.vectors @ vec).max()) if rank_vec is not vec else float(dense.max())
        timings["dense_ms"] = (clock.perf_ns() - t) / 1e6
        t = clock.perf_ns()
        tokens = bm25_tokens(query)
        lex = self.index.bm25.get_scores(tokens) if tokens else np.zeros(len(dense))
        bm25_top = float(lex.max()) if len(lex) else 0.0
        timings["bm25_ms"] = (clock.perf_ns() - t) / 1e6
        t = clock.perf_ns()
        rank = np.empty(len(lex))
        rank[np.argsort(-lex, kind="stable")] = np.arange(len(lex))
        bonus = self.settings.bm25_score_weight / (1.0 + rank / self.settings.bm25_rank_scale) * (lex > 0)
        score = (dense + bonus) * self.audience
        ranking = _rule_ranking(np.argsort(-score, kind="stable"), self.index.chunks, k)
        timings["fuse_ms"] = (clock.perf_ns() - t) / 1e6
        return ([rid for rid, _ in ranking], dict(ranking), {rid: float(score[ci]) for rid, ci in ranking},
                top_dense, bm25_top)

    def _rank_fusion(self, vec: np.ndarray, rank_vec: np.ndarray, query: str, k: int, mode: str, text: str,
                     timings: dict[str, float]):
        """Reciprocal rank fusion of the dense (by ``rank_vec``) and BM25 candidate lists (or one of
        them alone, by ``mode``). Returns what ``_score_fusion`` does (top raw cosine of ``vec``)."""
        s = self.settings
        chunks = self.index.chunks
        n_cand = min(s.candidates, len(chunks))
        dense_rank: list[tuple[str, int]] = []
        t = clock.perf_ns()
        scores, ids = self.index.faiss_index.search(np.ascontiguousarray(rank_vec, dtype=np.float32), n_cand)
        top_dense = float((self.vectors @ vec[0]).max()) if len(self.vectors) else 0.0
        if mode != "bm25":
            dense_rank = _rule_ranking(ids[0], chunks, n_cand)
        timings["dense_ms"] = (clock.perf_ns() - t) / 1e6
        bm25_rank: list[tuple[str, int]] = []
        bm25_top = 0.0
        if mode != "dense" or (self.answer_model is not None and text):
            t = clock.perf_ns()
            tokens = bm25_tokens(query)
            if tokens:
                lex = self.index.bm25.get_scores(tokens)
                bm25_top = float(lex.max())
                if mode != "dense":
                    top = np.argsort(-lex, kind="stable")[: n_cand * 2]
                    top = top[lex[top] > 0]
                    bm25_rank = _rule_ranking(top, chunks, n_cand)
            timings["bm25_ms"] = (clock.perf_ns() - t) / 1e6
        t = clock.perf_ns()
        fused: dict[str, float] = {}
        best_chunk: dict[str, int] = {}
        for weight, ranking in ((1.0, dense_rank), (s.bm25_weight, bm25_rank)):
            for rank, (rid, ci) in enumerate(ranking):
                fused[rid] = fused.get(rid, 0.0) + weight / (s.rrf_k + rank + 1)
                best_chunk.setdefault(rid, ci)
        for rid in fused:
            fused[rid] *= float(self.audience[best_chunk[rid]])
        ordered = sorted(fused, key=lambda r: -fused[r])[:k]
        timings["fuse_ms"] = (clock.perf_ns() - t) / 1e6
        return ordered, best_chunk, fused, top_dense, bm25_top

    def _passage_of(self, chunk: Chunk, score: float) -> Passage:
        return Passage(chunk.rule_id, chunk.section, chunk.title, chunk.text, round(score, 6), chunk.source)
