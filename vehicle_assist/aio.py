"""Asyncio plumbing the lanes share: blocking sources as async iterators, one worker thread per
model, and a topic's envelopes handled in turn (with a view of whether work is pending)."""

from __future__ import annotations

import asyncio
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable, TypeVar

from vehicle_assist.bus import Bus, Subscription
from vehicle_assist.messages import Envelope

T = TypeVar("T")
_END = object()


async def pump(iterable: Iterable[T], name: str) -> AsyncIterator[T]:
    """Iterate a blocking source in a daemon thread (a source stuck in a read never holds up the
    process's exit), handing items over through a 2-slot queue; the source's errors are re-raised."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[Any, BaseException | None]] = asyncio.Queue(maxsize=2)
    stop = threading.Event()

    def hand(item: tuple[Any, BaseException | None]) -> None:
        asyncio.run_coroutine_threadsafe(queue.put(item), loop).result()

    def work() -> None:
        outcome: tuple[Any, BaseException | None] = (_END, None)
        try:
            for item in iterable:
                if stop.is_set():
                    return
                hand((item, None))
        except BaseException as err:  # handed to the stage, which crashes and is restarted
            outcome = (_END, err)
        if not stop.is_set():
            try:
                hand(outcome)
            except RuntimeError:  # the loop is gone
                pass

    threading.Thread(target=work, name=name, daemon=True).start()
    try:
        while True:
            item, err = await queue.get()
            if item is _END:
                if err is not None:
                    raise err
                return
            yield item
    finally:
        stop.set()


def on_signals(fn: Callable[[], None], signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)) -> Callable[[], None]:
    """Call ``fn`` on the running loop when one of ``signals`` comes (where the platform and thread
    allow); returns the function that removes the handlers."""
    loop, handled = asyncio.get_running_loop(), []
    for sig in signals:
        try:
            loop.add_signal_handler(sig, fn)
            handled.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread / platform
            pass

    def undo() -> None:
        for sig in handled:
            loop.remove_signal_handler(sig)

    return undo


class Inputs:
    """The inputs a run waits for (files that end); ``on_all_ended`` once every one has ended."""

    def __init__(self, on_all_ended: Callable[[], object]) -> None:
        self.on_all_ended = on_all_ended
        self.names: set[str] = set()
        self._done: object = None

    def add(self, name: str) -> None:
        """Wait for ``name`` too (replay's drive clock of a telemetry-only drive, say)."""
        self.names.add(name)

    def ended(self, name: str) -> None:
        """``name`` has ended."""
        self.names.discard(name)
        if not self.names and self._done is None:
            self._done = self.on_all_ended()  # kept: a task must not be collected while it runs


class Worker:
    """One thread for one model (detector, ASR, TTS): calls run there in turn, off the event loop."""

    def __init__(self, name: str) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=name)

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the worker thread."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def close(self) -> None:
        """Drop queued calls; a call in progress finishes on its own."""
        self._pool.shutdown(wait=False, cancel_futures=True)


class Inbox:
    """Every envelope of one topic, handled in turn; :meth:`busy` while one is queued or in hand."""

    def __init__(self, bus: Bus, topic: str) -> None:
        self.bus, self.topic = bus, topic
        self._sub: Subscription | None = None
        self._working = 0

    async def serve(self, handle: Callable[[Envelope], Awaitable[None]]) -> None:
        """Subscribe and handle envelopes until the bus closes."""
        self._sub = sub = self.bus.subscribe(self.topic)
        try:
            async for env in sub:
                self._working += 1
                try:
                    await handle(env)
                finally:
                    self._working -= 1
        finally:
            self.bus.unsubscribe(sub)

    def busy(self) -> bool:
        """A value is queued or being handled."""
        return bool(self._working) or (self._sub is not None and not self._sub.empty())


class BusLane:
    """A lane's place on the runtime's bus: its input topic handled in turn (:class:`Inbox`) and one
    worker thread for its model (:class:`Worker`). Subclasses call :meth:`attach` from their ``bind``."""

    _bus: Bus | None = None
    _inbox: Inbox | None = None
    _worker: Worker | None = None

    def attach(self, bus: Bus, topic: str, worker: str) -> None:
        """Run on ``bus``, handling ``topic``, with a worker thread named ``worker``."""
        self._bus, self._inbox, self._worker = bus, Inbox(bus, topic), Worker(worker)

    @property
    def bus(self) -> Bus:
        """The bus the lane runs on (``bind`` first)."""
        if self._bus is None:
            raise RuntimeError(f"{type(self).__name__}.bind(bus) first")
        return self._bus

    async def handle_inputs(self, handle: Callable[[Envelope], Awaitable[None]]) -> None:
        """Handle every envelope of the input topic in turn, until the bus closes."""
        if self._inbox is None:
            raise RuntimeError(f"{type(self).__name__}.bind(bus) first")
        await self._inbox.serve(handle)

    def busy(self) -> bool:
        """An input is queued or being handled."""
        return self._inbox is not None and self._inbox.busy()

    def close(self) -> None:
        """Release the worker thread."""
        if self._worker is not None:
            self._worker.close()


__all__ = ["pump", "on_signals", "Inputs", "Worker", "Inbox", "BusLane"]
