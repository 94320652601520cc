"""The small local language model through llama.cpp: JSON-schema output, per-token stop hook, streamed.

- The model is loaded only through :func:`vehicle_assist.models.load_slm` (any GGUF; default
  SmolLM2-135M-Instruct) with fixed threads; decoding is greedy (temperature 0), so it is deterministic.
- The system prompt's KV cache is computed once (:meth:`SLM.warm`) and saved; each run starts from it,
  so only the short user message is evaluated.
- Output ``plain`` (the default): the model writes the answer as plain text, stopping at the end of
  the line; each sentence's citations are then picked among the ids in the prompt
  (:func:`validate.pick_citations`), so a cited id can only be a retrieved one. This is the fast path:
  no JSON to write before the answer starts, and no grammar to check on every token.
- Output ``json``: constrained by a grammar compiled from :func:`prompt.answer_schema`: valid JSON
  whose ``cited`` ids can only be the retrieved ones (for stronger models that cite well themselves).
- A stopping criterion checks a ``threading.Event`` (the audio arbiter's ``cancel_event``) and the
  deadline on every token, so pre-emption reaches the model within one token.
- The ``answer`` string is parsed while it streams; each completed sentence goes to ``on_sentence``.
Vendor objects (llama chunks) stop here: callers get :class:`Generated` and plain strings.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from dataclasses import dataclass
from typing import Any, Callable

from vehicle_assist import clock, models
from vehicle_assist.advisory import prompt as prompts
from vehicle_assist.advisory import validate
from vehicle_assist.advisory.llama import LlamaModel
from vehicle_assist.errors import CodedError
from vehicle_assist.messages import Passage, Scene

log = logging.getLogger(__name__)
_SENTENCE_END = re.compile(r"[.!?](?=\s)")


class SLMError(CodedError):
    """The language model could not be loaded or failed while generating."""


@dataclass(frozen=True)
class Generated:
    """One SLM answer: text, cited ids, why it stopped, and its timings (ms) and token counts."""

    text: str
    cited: tuple[str, ...]
    stop: str
    """``done`` | ``cancelled`` | ``timeout`` | ``length`` | ``malformed``"""
    prompt_tokens: int
    tokens: int
    prefill_ms: float
    first_sentence_ms: float | None
    total_ms: float
    raw: str = ""

    @property
    def tokens_per_s(self) -> float:
        """Decode speed (tokens after the first, over the time after prefill)."""
        dt = (self.total_ms - self.prefill_ms) / 1000
        return (self.tokens - 1) / dt if dt > 0 and self.tokens > 1 else 0.0


class AnswerStream:
    """Incremental parser of the model's JSON: yields complete sentences of ``answer`` as they arrive."""

    def __init__(self) -> None:
        self.raw = ""
        self._answer_at: int | None = None
        self._answer = ""
        self._emitted = 0
        self._closed = False

    def feed(self, text: str) -> list[str]:
        """Add generated text; return sentences completed by it."""
        self.raw += text
        if self._answer_at is None:
            m = re.search(r'"answer"\s*:\s*"', self.raw)
            if not m:
                return []
            self._answer_at = m.end()
        if not self._closed:
            self._answer, self._closed = _json_string_prefix(self.raw[self._answer_at:])
        out = []
        while True:
            rest = self._answer[self._emitted:]
            m = _SENTENCE_END.search(rest)
            if not m:
                break
            out.append(rest[: m.end()].strip())
            self._emitted += m.end()
        return [s for s in out if s]

    def finish(self) -> list[str]:
        """The trailing sentence once generation ended (if it has any words)."""
        rest = self._answer[self._emitted:].strip()
        self._emitted = len(self._answer)
        return [rest] if rest else []

    @property
    def answer(self) -> str:
        return self._answer.strip()

    def cited(self) -> tuple[str, ...]:
        """Ids in the ``cited`` array (complete entries only)."""
        m = re.search(r'"cited"\s*:\s*\[([^\]]*)', self.raw)
        if not m:
            return ()
        return tuple(dict.fromkeys(re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(1))))


_BRACKET_REF = re.compile(r"\s*\[[^\]\s]{1,80}\]\s*")


def _unbracket(sentence: str) -> str:
    """Drop rule markers copied from the prompt's '[126] ...' format: they are not spoken."""
    return " ".join(_BRACKET_REF.sub(" ", sentence).split())


class PlainStream:
    """Incremental splitter of a plain-text answer into complete sentences (same interface as AnswerStream);
    rule markers copied from the prompt ("[126]") are dropped."""

    def __init__(self) -> None:
        self.raw = ""
        self._emitted = 0

    def feed(self, text: str) -> list[str]:
        """Add generated text; return sentences completed by it."""
        self.raw += text
        out = []
        while True:
            rest = self.raw[self._emitted:]
            m = _SENTENCE_END.search(rest)
            if not m:
                break
            out.append(_unbracket(rest[: m.end()]))
            self._emitted += m.end()
        return [s for s in out if re.search(r"\w", s)]

    def finish(self) -> list[str]:
        """The trailing sentence once generation ended (if it has any words)."""
        rest = _unbracket(self.raw[self._emitted:])
        self._emitted = len(self.raw)
        return [rest] if re.search(r"\w", rest) else []

    @property
    def answer(self) -> str:
        return _unbracket(self.raw)


def _json_string_prefix(s: str) -> tuple[str, bool]:
    """Decode the JSON string body at the start of ``s``; (text so far, closed?)."""
    out, i = [], 0
    while i < len(s):
        c = s[i]
        if c == '"':
            return "".join(out), True
        if c == "\\":
            if i + 1 >= len(s):
                break
            nxt = s[i + 1]
            if nxt == "u":
                if i + 6 > len(s):
                    break
                try:
                    out.append(chr(int(s[i + 2:i + 6], 16)))
                except ValueError:
                    pass
                i += 6
                continue
            out.append({"n": " ", "t": " ", "r": " "}.get(nxt, nxt))
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out), False


class SLM:
    """A loaded GGUF model answering from passages; one generation at a time (a lock guards it)."""

    def __init__(self, llm: Any, model_name: str = "", output: str = "plain") -> None:
        self.llm = llm
        """The loaded ``llama_cpp.Llama`` (used here only through :attr:`model`)."""
        self.model = LlamaModel(llm)
        self.model_name = model_name
        self.output = output
        """``plain`` (answer text, citations picked afterwards) or ``json`` (schema-constrained)."""
        self.system = prompts.system_prompt(output)
        self._lock = threading.Lock()
        self._format = self.model.chat_formatter()
        if self._format is None:
            raise SLMError("slm-no-template", f"{model_name}: the GGUF has no chat template")
        self._prefix_tokens: list[int] = []
        self._prefix_state = None
        self.prefix_ms = 0.0

    @classmethod
    def load(cls, threads: int = 2, output: str = "plain") -> "SLM":
        """Load the configured GGUF (models.yaml role ``slm``) with fixed threads (for prompt evaluation
        too), and warm it."""
        try:
            res = models.resolve("slm")
            llm = models.load_slm(res, n_threads=threads, n_threads_batch=threads)
        except models.ModelNotFound:
            raise
        except Exception as err:  # llama.cpp raises ValueError/RuntimeError on a bad file
            raise SLMError("slm-load-failed", f"could not load the SLM: {err}") from err
        slm = cls(llm, res.path.name, output)
        slm.warm()
        return slm

    def _split_prompt(self, p: prompts.Prompt) -> tuple[list[int], list[int]]:
        """Tokens of the fixed part (system prompt + user header) and of the rest."""
        marker = "\x00USER\x00"
        msgs = [{"role": "system", "content": p.system}, {"role": "user", "content": marker}]
        templ = self._format(msgs)
        head, tail = templ.split(marker, 1)
        full = self._format(p.messages())
        assert full.startswith(head)
        body = full[len(head):]
        return self.model.tokenize(head, add_bos=True), self.model.tokenize(body)

    def warm(self) -> float:
        """Evaluate the system prompt once and keep its KV cache; returns the time it took (ms)."""
        with self._lock:
            prefix, _ = self._split_prompt(prompts.Prompt(self.system, "warm", (), 0))
            start = clock.perf_ns()
            self.model.reset()
            self.model.eval(prefix)
            self._prefix_tokens = prefix
            self._prefix_state = self.model.save_state()
            self.prefix_ms = (clock.perf_ns() - start) / 1e6
        return self.prefix_ms

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` for this model."""
        return len(self.model.tokenize(text, special=False))

    def generate(self, question: str, passages: tuple[Passage, ...] | list[Passage], scene: Scene | None = None, *,
                 max_tokens: int = 72, prompt_max_tokens: int = 150, prompt_passages: int = 2,
                 prompt_sentences: int = 2, cancel: threading.Event | None = None, deadline_ns: int | None = None,
                 on_sentence: Callable[[str, tuple[str, ...]], None] | None = None,
                 reuse_prefix: bool = True) -> Generated:
        """Answer from ``passages``; streams sentences to ``on_sentence``; stops on ``cancel`` or the deadline."""
        p = prompts.build(question, passages, scene, max_tokens=prompt_max_tokens, max_passages=prompt_passages,
                          max_sentences=prompt_sentences, count=self.count_tokens, output=self.output)
        if not p.ids:
            return Generated("", (), "malformed", 0, 0, 0.0, None, 0.0)
        plain = self.output == "plain"
        support = validate.support_texts([x for x in passages if x.id in p.ids]) if plain else {}
        cited_plain: list[str] = []

        def cite(sentence: str, stream: Any) -> tuple[str, ...]:
            if not plain:
                return stream.cited()
            ids = validate.pick_citations(sentence, p.ids, support)
            cited_plain.extend(i for i in ids if i not in cited_plain)
            return ids

        cancel = cancel or threading.Event()
        reason = {"stop": ""}

        def stop_hook() -> bool:
            if cancel.is_set():
                reason["stop"] = "cancelled"
                return True
            if deadline_ns is not None and clock.perf_ns() > deadline_ns:
                reason["stop"] = "timeout"
                return True
            return False

        with self._lock:
            start = clock.perf_ns()
            prefix, rest = self._split_prompt(p)
            if not reuse_prefix:
                self.model.reset()
            elif self.model.cached_tokens()[: len(prefix)] != prefix and self._prefix_state is not None:
                self.model.load_state(self._prefix_state)
            stream: Any = PlainStream() if plain else AnswerStream()
            first_token_ns = first_sentence_ns = None
            n = 0
            finish = None
            try:
                for text, finish_reason in self.model.stream(
                        prefix + rest, max_tokens=max_tokens, stop=["\n"] if plain else None, should_stop=stop_hook,
                        json_schema=None if plain else prompts.answer_schema(p.ids)):
                    n += 1
                    if first_token_ns is None:
                        first_token_ns = clock.perf_ns()
                    for s in stream.feed(text):
                        if first_sentence_ns is None:
                            first_sentence_ns = clock.perf_ns()
                        if on_sentence and not cancel.is_set():
                            on_sentence(s, cite(s, stream))
                    finish = finish_reason or finish
            except Exception as err:  # llama.cpp errors (context overflow, decode failure)
                raise SLMError("slm-generate-failed", str(err)) from err
            if not reason["stop"] and finish != "length":  # an answer cut by max_tokens is never spoken whole
                for s in stream.finish():
                    if first_sentence_ns is None:
                        first_sentence_ns = clock.perf_ns()
                    if on_sentence and not cancel.is_set():
                        on_sentence(s, cite(s, stream))
            end = clock.perf_ns()
        stop = reason["stop"] or ("length" if finish == "length" else "done")
        if stop == "done" and not plain:
            try:
                json.loads(stream.raw)
            except json.JSONDecodeError:
                stop = "malformed"
        if stop == "done" and plain and not stream.answer:
            stop = "malformed"
        if plain and not cited_plain and stream.answer:
            cited_plain.extend(validate.pick_citations(stream.answer, p.ids, support))
        ms = lambda t: (t - start) / 1e6 if t is not None else None  # noqa: E731
        return Generated(stream.answer, tuple(cited_plain) if plain else stream.cited(), stop,
                         len(prefix) + len(rest), n, ms(first_token_ns) or 0.0, ms(first_sentence_ns),
                         ms(end) or 0.0, stream.raw)
