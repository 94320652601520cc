"""The one adapter over llama-cpp-python, for :mod:`vehicle_assist.advisory.slm`.

Everything the SLM does with a loaded ``llama_cpp.Llama`` goes through :class:`LlamaModel`: the
library's public calls (tokenize, eval, save/load state, streamed completion with a grammar and a
stopping criterion, the chat-template formatter) and the two things only its internals give:

- the text of a special token (``Llama._model.token_get_text``), for the chat template's
  end-of-sequence and beginning-of-sequence strings;
- the tokens now in the KV cache (``Llama._input_ids``), to know whether the saved system-prompt
  state must be restored before a generation.

``tests/test_advisory_llama.py`` loads the real model and fails if the library changes either.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Iterator


class LlamaModel:
    """A loaded ``llama_cpp.Llama`` as the SLM uses it."""

    def __init__(self, llm: Any) -> None:
        self.llm = llm

    @property
    def metadata(self) -> dict[str, str]:
        """The GGUF's metadata (``tokenizer.chat_template``...)."""
        return self.llm.metadata

    def tokenize(self, text: str, add_bos: bool = False, special: bool = True) -> list[int]:
        """Tokens of ``text`` (special tokens such as ``<|im_start|>`` parsed when ``special``)."""
        return self.llm.tokenize(text.encode(), add_bos=add_bos, special=special)

    def special_text(self, token: int) -> str:
        """The text of a token, special ones included (internal API)."""
        return self.llm._model.token_get_text(token)

    def eos_text(self) -> str:
        """The end-of-sequence token's text."""
        return self.special_text(self.llm.token_eos())

    def bos_text(self) -> str:
        """The beginning-of-sequence token's text ('' when the model has none)."""
        bos = self.llm.token_bos()
        return self.special_text(bos) if bos >= 0 else ""

    def cached_tokens(self) -> list[int]:
        """The tokens whose keys and values are in the KV cache now (internal API)."""
        return [int(t) for t in self.llm._input_ids]

    def reset(self) -> None:
        """Empty the KV cache."""
        self.llm.reset()

    def eval(self, tokens: list[int]) -> None:
        """Evaluate ``tokens`` into the KV cache."""
        self.llm.eval(tokens)

    def save_state(self) -> Any:
        """The KV cache and its tokens, to restore later."""
        return self.llm.save_state()

    def load_state(self, state: Any) -> None:
        """Restore a saved state."""
        self.llm.load_state(state)

    def chat_formatter(self) -> Callable[[list[dict[str, str]]], str]:
        """``format(messages) -> prompt`` with the GGUF's own chat template (None when it has none)."""
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = self.metadata.get("tokenizer.chat_template")
        if not template:
            return None
        formatter = Jinja2ChatFormatter(template=template, eos_token=self.eos_text(), bos_token=self.bos_text())
        return lambda messages: formatter(messages=messages).prompt

    def stream(self, tokens: list[int], *, max_tokens: int, json_schema: dict | None = None, stop: list[str] | None = None,
               should_stop: Callable[[], bool] = lambda: False) -> Iterator[tuple[str, str | None]]:
        """Greedy completion of ``tokens``: ``(text, finish_reason)`` per generated token; ``json_schema``
        constrains the output by a grammar; ``should_stop`` is checked on every token."""
        from llama_cpp import LlamaGrammar, StoppingCriteriaList

        grammar = LlamaGrammar.from_json_schema(json.dumps(json_schema), verbose=False) if json_schema else None
        for chunk in self.llm.create_completion(
                tokens, max_tokens=max_tokens, temperature=0.0, top_k=1, repeat_penalty=1.0, stream=True,
                grammar=grammar, stop=stop, stopping_criteria=StoppingCriteriaList([lambda _ids, _logits: should_stop()])):
            choice = chunk["choices"][0]
            yield choice.get("text", ""), choice.get("finish_reason")


__all__ = ["LlamaModel"]
