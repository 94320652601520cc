"""Rule sources -> passages with rule ids -> hybrid (BM25 + dense) retrieval with citations."""

from __future__ import annotations

from vehicle_assist.errors import CodedError


class KnowledgeError(CodedError):
    """A knowledge-base failure with a stable ``code`` (e.g. ``source-missing``) and a clear message."""

    bracketed = True


__all__ = ["KnowledgeError"]
