"""The project's error base: every error carries a stable ``code`` (e.g. ``"asr-failed"``) and a message."""

from __future__ import annotations


class CodedError(Exception):
    """An error with a stable ``code``; ``str()`` is ``"code: message"`` (``"[code] message"`` where
    ``bracketed``, the layout of the voice, knowledge and replay errors). The command line prints
    every one as ``error: [code] message`` (or as JSON under ``--json``) from ``code`` and ``message``."""

    bracketed = False

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"[{code}] {message}" if self.bracketed else f"{code}: {message}")
