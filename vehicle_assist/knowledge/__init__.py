"""Rule sources -> passages with rule ids -> hybrid (BM25 + dense) retrieval with citations."""

from __future__ import annotations


class KnowledgeError(Exception):
    """A knowledge-base failure with a stable ``code`` (e.g. ``source-missing``) and a clear message."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(f"[{code}] {message}")


__all__ = ["KnowledgeError"]
