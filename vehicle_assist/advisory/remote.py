"""The optional remote LLM: any OpenAI-compatible chat endpoint, through urllib, with a short timeout.

Off by default; the owner opts in (``advisory.remote.enabled``). Only the question text and the
retrieved passages are sent (:func:`payload` is the one place that decides) - never images, audio,
location, the scene or any vehicle data. Any failure (offline, slow, HTTP error, unusable reply)
raises :class:`RemoteError`; the caller falls back to the local answer.
"""

from __future__ import annotations

import json
import os
import re
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass

from vehicle_assist import clock
from vehicle_assist.config import RemoteSettings, remote_url_problem
from vehicle_assist.errors import CodedError
from vehicle_assist.messages import Passage

SYSTEM = ("You answer a driver's question from the UK Highway Code passages given, in one or two short spoken "
          "sentences, using only those passages. Reply with JSON only: "
          '{"cited": [ids of the passages used], "answer": "..."}. '
          'If the passages do not answer the question, reply {"cited": [], "answer": ""}.')


class RemoteError(CodedError):
    """The remote endpoint could not give a usable answer (``code`` says why)."""


@dataclass(frozen=True)
class RemoteAnswer:
    """What the endpoint answered, with the ids it cited and how long it took."""

    text: str
    cited: tuple[str, ...]
    ms: float


def payload(question: str, passages: tuple[Passage, ...] | list[Passage], model: str, max_passages: int = 3) -> dict:
    """The request body: the question and passage texts only (nothing about the car or the driver)."""
    rules = "\n".join(f"[{p.id}] {p.title}: {p.text}" for p in list(passages)[:max_passages])
    return {
        "model": model,
        "temperature": 0,
        "max_tokens": 160,
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"Passages:\n{rules}\n\nQuestion: {question}"},
        ],
    }


def parse_reply(body: dict, allowed_ids: tuple[str, ...] | list[str]) -> tuple[str, tuple[str, ...]]:
    """(answer, cited) from an OpenAI-style chat completion; cited ids outside ``allowed_ids`` are dropped."""
    try:
        content = body["choices"][0]["message"]["content"] or ""
    except (KeyError, IndexError, TypeError) as err:
        raise RemoteError("remote-malformed", f"no choices[0].message.content in reply: {err}") from err
    m = re.search(r"\{.*\}", content, re.S)
    if not m:
        raise RemoteError("remote-malformed", "reply is not JSON")
    try:
        data = json.loads(m.group(0))
    except json.JSONDecodeError as err:
        raise RemoteError("remote-malformed", f"reply JSON is malformed: {err}") from err
    answer = str(data.get("answer", "")).strip()
    cited = tuple(str(c) for c in data.get("cited", []) if str(c) in set(allowed_ids))
    if not answer:
        raise RemoteError("remote-declined", "the endpoint gave no answer")
    return answer, cited


def ask(question: str, passages: tuple[Passage, ...] | list[Passage], settings: RemoteSettings) -> RemoteAnswer:
    """Ask the endpoint; raises RemoteError when disabled, offline, slow or failing."""
    if not settings.enabled or not settings.url:
        raise RemoteError("remote-disabled", "the remote LLM is not enabled in advisory.remote")
    problem = remote_url_problem(settings.url)  # also here: a settings copy made in code skips validation
    if problem:
        raise RemoteError("remote-insecure", f"{settings.url}: {problem}")
    body = json.dumps(payload(question, passages, settings.model)).encode()
    headers = {"Content-Type": "application/json"}
    key = os.environ.get(settings.api_key_env, "")
    if key:
        headers["Authorization"] = f"Bearer {key}"
    req = urllib.request.Request(settings.url.rstrip("/") + "/chat/completions", data=body, headers=headers)
    start = clock.perf_ns()
    try:
        with urllib.request.urlopen(req, timeout=settings.timeout_s) as resp:
            reply = json.loads(resp.read().decode("utf-8"))
    except (socket.timeout, TimeoutError) as err:
        raise RemoteError("remote-timeout", f"no reply within {settings.timeout_s} s") from err
    except urllib.error.HTTPError as err:
        raise RemoteError("remote-http", f"HTTP {err.code} from {settings.url}") from err
    except urllib.error.URLError as err:
        if isinstance(err.reason, (socket.timeout, TimeoutError)):
            raise RemoteError("remote-timeout", f"no reply within {settings.timeout_s} s") from err
        raise RemoteError("remote-offline", f"{settings.url} unreachable: {err.reason}") from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RemoteError("remote-malformed", f"reply is not JSON: {err}") from err
    except OSError as err:  # connection reset, blocked socket
        raise RemoteError("remote-offline", f"{settings.url}: {err}") from err
    answer, cited = parse_reply(reply, [p.id for p in passages])
    return RemoteAnswer(answer, cited, (clock.perf_ns() - start) / 1e6)
