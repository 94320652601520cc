"""Push-to-talk buttons for the live runtime: the Enter key on a terminal, or a GPIO line.

Both yield :class:`~vehicle_assist.speech.activation.ButtonEvent` from a blocking ``events()``
iterator, which the runtime reads in a worker thread. A terminal cannot see a key being held, so
Enter toggles: the first press opens the microphone, the next one ends the utterance.
"""

from __future__ import annotations

import sys
import threading
from typing import Callable, Iterator, TextIO

from vehicle_assist.speech.activation import ButtonEvent, FileButton


class KeyButton:
    """Enter on the terminal toggles push-to-talk (down, then up)."""

    def __init__(self, now_ns: Callable[[], int], stream: TextIO | None = None) -> None:
        self.now_ns, self.stream = now_ns, stream if stream is not None else sys.stdin

    def events(self) -> Iterator[ButtonEvent]:
        pressed = False
        for _line in self.stream:
            pressed = not pressed
            yield ButtonEvent(pressed, self.now_ns())


class PolledButton:
    """A GPIO line (sysfs value file) read every ``period_s``; yields its transitions."""

    def __init__(self, line: FileButton, period_s: float = 0.02) -> None:
        self.line, self.period_s = line, period_s
        self._stop = threading.Event()

    def events(self) -> Iterator[ButtonEvent]:
        while not self._stop.wait(self.period_s):
            ev = self.line.poll()
            if ev is not None:
                yield ev

    def close(self) -> None:
        self._stop.set()


def open_button(spec: str, now_ns: Callable[[], int], stdin: TextIO | None = None):
    """``key`` | ``gpio:PATH[:active_low]`` | ``none`` -> (button or None, why it is missing or None)."""
    spec = (spec or "none").strip()
    if spec == "none":
        return None, "no push-to-talk button configured (speech.activation.button: none)"
    if spec == "key":
        stream = stdin if stdin is not None else sys.stdin
        if stream is None or not stream.isatty():
            return None, "push-to-talk key needs a terminal (stdin is not one)"
        return KeyButton(now_ns, stream), None
    if spec.startswith("gpio:"):
        rest = spec[len("gpio:"):]
        active_low = rest.endswith(":active_low")
        path = rest[: -len(":active_low")] if active_low else rest
        line = FileButton(path, now_ns, active_low)
        try:
            line.path.read_text()
        except OSError as err:
            return None, f"push-to-talk GPIO line {path} cannot be read: {err.strerror or err}"
        return PolledButton(line), None
    raise ValueError(f"push-to-talk button must be key, gpio:PATH[:active_low] or none, got {spec!r}")


__all__ = ["KeyButton", "PolledButton", "open_button"]
