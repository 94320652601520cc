"""The compact SLM prompt (pure): a fixed system prompt (its KV cache is reused) and a short user
message with the scene, the question and the best passages trimmed to their relevant sentences,
kept within a token budget; plus the JSON schema whose cited ids can only be the retrieved ones."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from vehicle_assist.advisory import scene as scenes
from vehicle_assist.advisory.extractive import rank_sentences
from vehicle_assist.messages import Passage, Scene

SYSTEM = (
    "You are a calm in-car assistant. Answer the driver in one short sentence, using only the rules given. "
    "Copy numbers and units exactly from the rules. Reply in JSON: the ids of the rules you used, then the answer.\n"
    'Example: Rules: [126] Allow at least a two-second gap on high-speed roads. '
    'Question: What gap should I leave? -> {"cited": ["126"], "answer": "Leave at least a two-second gap."}'
)
"""The system prompt when the output is JSON constrained by :func:`answer_schema` (``slm_output: json``)."""

SYSTEM_PLAIN = (
    "You are a calm in-car assistant. Answer the driver in one short sentence, using only the rules given. "
    "Copy numbers and units exactly from the rules.\n"
    "Example: Rules: [126] Allow at least a two-second gap on high-speed roads. "
    "Question: What gap should I leave? Answer: Leave at least a two-second gap."
)
"""The system prompt for a plain-text answer (``slm_output: plain``); citations are picked afterwards
among the ids in the prompt (validate.pick_citations)."""

ANSWER_CUE = "Answer:"
"""Ends a plain-text prompt's user message, so that the model starts with the answer itself."""


def system_prompt(output: str = "plain") -> str:
    """The fixed system prompt for an output mode (``plain`` or ``json``)."""
    if output not in ("plain", "json"):
        raise ValueError(f"output must be plain or json, got {output!r}")
    return SYSTEM_PLAIN if output == "plain" else SYSTEM


@dataclass(frozen=True)
class Prompt:
    """The chat messages for one question, the ids offered to the model, and the prompt's size."""

    system: str
    user: str
    ids: tuple[str, ...]
    tokens: int

    def messages(self) -> list[dict[str, str]]:
        """OpenAI-style chat messages (for llama.cpp's chat templates and remote endpoints)."""
        return [{"role": "system", "content": self.system}, {"role": "user", "content": self.user}]


def approx_tokens(text: str) -> int:
    """A model-free token estimate (about 1.3 tokens per word for English prose)."""
    return int(len(text.split()) * 1.3) + 1


def trimmed_passages(question: str, passages: tuple[Passage, ...] | list[Passage], scene: Scene | None,
                     max_passages: int, max_sentences: int) -> list[tuple[str, list[str]]]:
    """The best ``max_passages`` passages, each cut to its ``max_sentences`` most relevant sentences
    (kept in their original order), best passage first."""
    ranked = rank_sentences(question, passages, scene, max_passages=max_passages)
    by_id: dict[str, list] = {}
    for sc in ranked:
        chosen = by_id.setdefault(sc.sentence.passage_id, [])
        if len(chosen) < max_sentences and sc.score > 0:
            chosen.append(sc.sentence)
    order = [p.id for p in list(passages)[:max_passages] if by_id.get(p.id)]
    return [(pid, [s.text for s in sorted(by_id[pid], key=lambda s: s.index)]) for pid in order]


def build(question: str, passages: tuple[Passage, ...] | list[Passage], scene: Scene | None = None,
          max_tokens: int = 300, max_passages: int = 2, max_sentences: int = 3,
          count: Callable[[str], int] = approx_tokens, output: str = "plain") -> Prompt:
    """Build the prompt; sentences are dropped from the end until it fits ``max_tokens``."""
    system = system_prompt(output)
    parts = trimmed_passages(question, passages, scene, max_passages, max_sentences)
    head = f"Scene: {scenes.describe(scene)}\n" if scene is not None else ""
    tail = f"Question: {question or 'What should I do?'}" + (f"\n{ANSWER_CUE}" if output == "plain" else "")
    fixed = count(system) + count(head + tail) + 12  # chat-template tokens
    while True:
        body = "Rules:\n" + "\n".join(f"[{pid}] {' '.join(sents)}" for pid, sents in parts)
        user = head + body + "\n" + tail
        total = fixed + count(body)
        longest = max(parts, key=lambda p: len(p[1]), default=None)
        if total <= max_tokens or longest is None or (len(parts) == 1 and len(longest[1]) == 1):
            break
        if len(parts) > 1 and len(parts[-1][1]) == 1:
            parts = parts[:-1]
        else:
            longest[1].pop()
    return Prompt(system, user, tuple(pid for pid, _ in parts), total)


def answer_schema(ids: tuple[str, ...] | list[str], max_chars: int = 220) -> dict:
    """JSON schema for the SLM's output: cited ids (only ``ids``) first, then the answer text."""
    return {
        "type": "object",
        "properties": {
            "cited": {"type": "array", "items": {"type": "string", "enum": list(ids)}, "minItems": 1, "maxItems": 2},
            "answer": {"type": "string", "minLength": 8, "maxLength": max_chars},
        },
        "required": ["cited", "answer"],
    }
