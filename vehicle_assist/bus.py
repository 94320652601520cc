"""In-process pub/sub over asyncio, with the semantics declared in :mod:`vehicle_assist.topics`.

- ``publish(topic, msg)`` wraps ``msg`` in an :class:`~vehicle_assist.messages.Envelope` with a
  strictly increasing ``seq``, the clock's ``t_ns`` and the processing time ``proc_ns``; it never
  blocks and may be called from any thread (ASR and SLM workers publish from theirs).
- Envelopes of logged topics go, in ``seq`` order, to every sink (the trip log) before subscribers
  see them, so what was decided is on disk before it acts.
- A subscription to a ``latest`` topic holds one value: a slow consumer gets the newest, and each
  value it never saw counts as dropped. A ``fifo`` subscription queues up to ``fifo_maxlen``
  values, dropping (and counting) the oldest when full. Memory is bounded either way.
- Staleness: a topic that is *expected* (its source runs) and has ``stale_after_s`` goes stale when
  nothing came for that long. ``check_stale`` publishes each change as a
  :class:`~vehicle_assist.messages.TopicStale` on ``health``; ``watch`` runs it periodically.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import Counter, deque
from typing import Callable

from vehicle_assist.clock import Clock
from vehicle_assist.messages import Envelope, StageTiming, TopicStale
from vehicle_assist.topics import TOPICS, TopicSpec

log = logging.getLogger(__name__)

Sink = Callable[[Envelope], None]


class BusClosed(Exception):
    """The bus was closed: no more values will come on this subscription."""


def is_stale(last_ns: int, now_ns: int, stale_after_s: float | None) -> bool:
    """Pure staleness rule: stale when more than ``stale_after_s`` passed since ``last_ns``."""
    return stale_after_s is not None and (now_ns - last_ns) > stale_after_s * 1e9


class Subscription:
    """One consumer's view of one topic: a latest-value slot or a bounded FIFO (asyncio.Queue-like)."""

    def __init__(self, topic: str, kind: str, maxlen: int) -> None:
        self.topic = topic
        self.kind = kind
        self.maxlen = 1 if kind == "latest" else maxlen
        self.dropped = 0
        """Values this consumer never saw (replaced in the latest slot, or pushed out of the FIFO)."""
        self.delivered = 0
        self._items: deque[Envelope] = deque()
        self._lock = threading.Lock()
        self._waiters: list[asyncio.Future[None]] = []
        self._closed = False

    def _put(self, env: Envelope) -> None:
        with self._lock:
            if self._closed:
                return
            if len(self._items) >= self.maxlen:
                self._items.popleft()
                self.dropped += 1
            self._items.append(env)
            waiters, self._waiters = self._waiters, []
        for fut in waiters:
            _wake(fut)

    def _take(self) -> Envelope | None:
        """Under the lock: the next value (counted as delivered), None if there is none yet;
        BusClosed once closed and drained."""
        if self._items:
            self.delivered += 1
            return self._items.popleft()
        if self._closed:
            raise BusClosed(self.topic)
        return None

    def get_nowait(self) -> Envelope:
        """The next value now; raises asyncio.QueueEmpty if none, BusClosed once closed and drained."""
        with self._lock:
            env = self._take()
        if env is None:
            raise asyncio.QueueEmpty()
        return env

    async def get(self) -> Envelope:
        """Wait for the next value (the newest one on a latest topic); BusClosed once closed."""
        while True:
            with self._lock:
                env = self._take()
                if env is not None:
                    return env
                fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                self._waiters.append(fut)
            try:
                await fut
            finally:
                with self._lock:
                    if fut in self._waiters:
                        self._waiters.remove(fut)

    def qsize(self) -> int:
        """How many values wait (0 or 1 on a latest topic)."""
        return len(self._items)

    def empty(self) -> bool:
        """True when no value waits."""
        return not self._items

    def close(self) -> None:
        """Stop receiving; a waiting ``get`` raises BusClosed once the queue is drained."""
        with self._lock:
            self._closed = True
            waiters, self._waiters = self._waiters, []
        for fut in waiters:
            _wake(fut)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Envelope:
        try:
            return await self.get()
        except BusClosed:
            raise StopAsyncIteration from None


class Bus:
    """The runtime's topics: publish from anywhere, subscribe from the event loop."""

    def __init__(self, clock: Clock, topics: dict[str, TopicSpec] | None = None, fifo_maxlen: int = 64) -> None:
        if fifo_maxlen < 1:
            raise ValueError(f"fifo_maxlen must be >= 1, got {fifo_maxlen}")
        self.clock = clock
        self.topics = dict(topics or TOPICS)
        self.fifo_maxlen = fifo_maxlen
        self._lock = threading.Lock()
        self._seq = 0
        self._latest: dict[str, Envelope] = {}
        self._subs: dict[str, list[Subscription]] = {}
        self._sinks: list[Sink] = []
        self._published: Counter[str] = Counter()
        self._dropped_gone: Counter[str] = Counter()
        self._expected: dict[str, int] = {}
        self._stale: set[str] = set()
        self.sink_errors = 0
        """Times a sink (the trip log) raised; the bus keeps running, the first error is logged."""
        self.closed = False

    # --- publishing ---------------------------------------------------------------------------

    def spec(self, topic: str) -> TopicSpec:
        """The spec of a topic on this bus (KeyError naming the known topics)."""
        try:
            return self.topics[topic]
        except KeyError:
            raise KeyError(f"unknown topic '{topic}'; known: {', '.join(self.topics)}") from None

    def add_sink(self, sink: Sink) -> None:
        """Send every envelope of a logged topic to ``sink`` (called in seq order, under the bus lock)."""
        self._sinks.append(sink)

    def publish(self, topic: str, msg: object) -> Envelope:
        """Wrap ``msg`` in an envelope, log it if the topic is logged, deliver it; never blocks."""
        spec = self.spec(topic)
        with self._lock:
            self._seq += 1
            env = Envelope(topic, self.clock.now_ns(), self._seq, msg, proc_ns=self.clock.perf_ns())
            self._latest[topic] = env
            self._published[topic] += 1
            if spec.logged:
                for sink in self._sinks:
                    try:
                        sink(env)
                    except Exception as err:  # a full disk must not stop the safety lane
                        self.sink_errors += 1
                        if self.sink_errors == 1:
                            log.error("trip log sink failed (further failures counted only): %s", err)
            subs = list(self._subs.get(topic, ()))
        for sub in subs:
            sub._put(env)
        return env

    def timing(self, lane: str, stage: str, ms: float, item: int | None = None) -> None:
        """Publish how long one stage took (``timings``)."""
        self.publish("timings", StageTiming(self.clock.now_ns(), lane, stage, round(ms, 3), item))

    def latest(self, topic: str) -> Envelope | None:
        """The newest envelope published on ``topic``, or None."""
        self.spec(topic)
        return self._latest.get(topic)

    def subscribe(self, topic: str) -> Subscription:
        """A new subscription; it sees values published from now on."""
        spec = self.spec(topic)
        sub = Subscription(topic, spec.kind, self.fifo_maxlen)
        with self._lock:
            if self.closed:
                sub.close()
            self._subs.setdefault(topic, []).append(sub)
        return sub

    def subscriptions(self, topic: str) -> list[Subscription]:
        """The current subscriptions of ``topic`` (to see whether consumers have work queued)."""
        with self._lock:
            return list(self._subs.get(topic, ()))

    def unsubscribe(self, sub: Subscription) -> None:
        """Stop delivering to ``sub`` and close it."""
        with self._lock:
            subs = self._subs.get(sub.topic, [])
            if sub in subs:
                subs.remove(sub)
                self._dropped_gone[sub.topic] += sub.dropped  # stats keep what it missed
        sub.close()

    def close(self) -> None:
        """Close every subscription (consumers' ``async for`` loops end)."""
        with self._lock:
            self.closed = True
            subs = [s for lst in self._subs.values() for s in lst]
        for sub in subs:
            sub.close()

    # --- staleness ----------------------------------------------------------------------------

    def expect(self, *topics: str, since_ns: int | None = None) -> None:
        """Declare topics whose source runs: from ``since_ns`` (default now) they can go stale."""
        now = self.clock.now_ns() if since_ns is None else since_ns
        for t in topics:
            self.spec(t)
            self._expected.setdefault(t, now)

    def unexpect(self, topic: str) -> None:
        """The source of ``topic`` ended on purpose (end of file): it no longer goes stale."""
        self._expected.pop(topic, None)
        self._stale.discard(topic)

    def age_s(self, topic: str, now_ns: int | None = None) -> float | None:
        """Seconds since the last value (or since expected, if none came); None if neither."""
        now = self.clock.now_ns() if now_ns is None else now_ns
        env = self._latest.get(topic)
        last = env.t_ns if env is not None else self._expected.get(topic)
        return None if last is None else (now - last) / 1e9

    def stale_topics(self) -> frozenset[str]:
        """Topics stale at the last ``check_stale``."""
        return frozenset(self._stale)

    def check_stale(self, now_ns: int | None = None) -> list[TopicStale]:
        """Compare every expected topic's age with its spec; publish and return each change on ``health``."""
        now = self.clock.now_ns() if now_ns is None else now_ns
        changes: list[TopicStale] = []
        for topic, since in list(self._expected.items()):
            limit = self.topics[topic].stale_after_s
            if limit is None:
                continue
            env = self._latest.get(topic)
            last = env.t_ns if env is not None else since
            stale = is_stale(last, now, limit)
            if stale != (topic in self._stale):
                (self._stale.add if stale else self._stale.discard)(topic)
                changes.append(TopicStale(now, topic, stale, round((now - last) / 1e9, 3), limit))
        for change in changes:
            self.publish("health", change)
        return changes

    async def watch(self, period_s: float = 0.1) -> None:
        """Run ``check_stale`` every ``period_s`` of the clock's time, until cancelled."""
        while not self.closed:
            await self.clock.sleep(period_s)
            self.check_stale()

    # --- introspection ------------------------------------------------------------------------

    @property
    def seq(self) -> int:
        """The last seq handed out."""
        return self._seq

    def stats(self) -> dict[str, dict[str, object]]:
        """Per topic: published, dropped (summed over subscribers, past ones included), subscribers, stale."""
        with self._lock:
            return {
                topic: {
                    "published": self._published[topic],
                    "dropped": self._dropped_gone[topic] + sum(s.dropped for s in self._subs.get(topic, ())),
                    "subscribers": len(self._subs.get(topic, ())),
                    "stale": topic in self._stale,
                }
                for topic in self.topics
            }


def _wake(fut: asyncio.Future[None]) -> None:
    """Resolve a waiter from any thread."""
    loop = fut.get_loop()
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        if not fut.done():
            fut.set_result(None)
        return
    try:
        loop.call_soon_threadsafe(_resolve, fut)
    except RuntimeError:  # the loop is closed: nobody waits any more
        pass


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
